"""Telling secondaries and watching them, over UDP: NOTIFY (RFC 1996) after every change, then
polling each secondary's SOA serial until it has the change, which drives the zone's status. The
messages and the decisions are xfr/notify.py and xfr/propagation.py; here are the sockets and timers.

NOTIFY: a change to a zone schedules one NOTIFY per secondary a couple of milliseconds later, so a
burst of changes to one zone becomes one message carrying the newest serial. Each is sent over UDP
(TSIG-signed when the secondary has a key), retried with doubling timeouts until answered or out
of attempts; a newer change supersedes the retries of an older one. A global rate limit with a
queue keeps thousands of zones changing at once from flooding anyone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections import deque
from struct import unpack_from

from ..xfr.notify import Secondary, answer_serial, holding, notify_message, reply_rcode, retry_timeouts, soa_query
from ..xfr.propagation import PollSchedule, ZoneState, decide_status, mark_error, observe_serial, set_status, zone_changed
from ..zones.snapshot import Snapshot

__all__ = ["Notifier", "Secondary"]

log = logging.getLogger("minidns.notify")

COALESCE = 0.002  # seconds a change waits for more changes to the same zone


class _Client(asyncio.DatagramProtocol):
    """One UDP socket for our NOTIFYs and SOA polls; replies matched by (address, port, id)."""

    def __init__(self):
        self.waiting: dict[tuple, asyncio.Future] = {}
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if len(data) < 12:
            return
        fut = self.waiting.pop((addr[0], addr[1], unpack_from("!H", data)[0]), None)
        if fut is not None and not fut.done():
            fut.set_result(data)

    def error_received(self, exc) -> None:
        pass

    def new_id(self, sec: Secondary) -> int:
        """A message ID not awaiting a reply from `sec`, so no reply is taken for another's."""
        while True:
            qid = random.getrandbits(16)
            if (sec.address, sec.port, qid) not in self.waiting:
                return qid

    async def ask(self, message: bytes, sec: Secondary, timeout: float) -> bytes | None:
        key = (sec.address, sec.port, unpack_from("!H", message)[0])
        fut = asyncio.get_running_loop().create_future()
        self.waiting[key] = fut
        try:
            self.transport.sendto(message, (sec.address, sec.port))
            return await asyncio.wait_for(fut, timeout)
        except (asyncio.TimeoutError, OSError):
            return None
        finally:
            if self.waiting.get(key) is fut:
                del self.waiting[key]


class Notifier:
    """NOTIFY and propagation tracking for every zone the server serves."""

    def __init__(self, secondaries: list[Secondary], *, retries: int = 5, timeout: float = 1.0, rate: int = 1000,
                 propagation_timeout: float = 60.0, share: float = 1.0, on_status=None, zone_secondaries=None,
                 renotify: float = 10.0):  # fmt: skip
        self.secondaries = secondaries
        self.zone_secondaries = zone_secondaries  # callable(zone name) -> extra [Secondary] (from the database)
        self.retries = retries
        self.timeout = timeout
        self.rate = rate
        self.propagation_timeout = propagation_timeout
        self.renotify = renotify  # seconds until a secondary still behind is NOTIFYed again (0: never)
        self.share = share
        self.on_status = on_status  # callable(ZoneState) when a zone's status changes
        self.zones: dict[str, ZoneState] = {}
        self.pending: dict[bytes, Snapshot] = {}
        # NOTIFYs waiting for the rate limit: each (zone, secondary) at most once, holding the newest
        # snapshot, so the queue is bounded by zones × secondaries however fast zones change.
        self.queue: deque = deque()  # (zone name, secondary label)
        self.queued: dict[tuple[str, str], tuple[Snapshot, Secondary]] = {}
        self.current: dict[tuple[str, str], int] = {}  # (zone, secondary) -> serial being notified
        self.tasks: set[asyncio.Task] = set()
        self.pollers: dict[tuple[str, str], asyncio.Task] = {}
        self.client = _Client()
        self.client6 = _Client()
        self.tokens = float(rate)
        self.last_fill = time.monotonic()
        self.pumping = False
        self.sent = 0  # NOTIFY messages sent, for metrics and tests
        self.renotified = 0  # re-NOTIFYs to secondaries left behind
        self.notifying: set[tuple[str, str]] = set()  # (zone, secondary) with a NOTIFY being sent

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.client, local_addr=("0.0.0.0", 0), family=socket.AF_INET)
        try:
            await loop.create_datagram_endpoint(lambda: self.client6, local_addr=("::", 0), family=socket.AF_INET6)
        except OSError:  # no IPv6 here
            self.client6 = None

    def stop(self) -> None:
        for task in [*self.tasks, *self.pollers.values()]:
            task.cancel()
        for client in (self.client, self.client6):
            if client is not None and client.transport is not None:
                client.transport.close()

    def for_zone(self, name: str) -> list[Secondary]:
        out = [s for s in self.secondaries if s.serves(name)]
        if self.zone_secondaries is not None:
            out += [s for s in self.zone_secondaries(name) if s not in out]
        return out

    # -- a change was applied --------------------------------------------------------------------
    def changed(self, snapshot: Snapshot) -> None:
        first = snapshot.origin not in self.pending
        self.pending[snapshot.origin] = snapshot
        if first:
            asyncio.get_running_loop().call_later(COALESCE, self._fire, snapshot.origin)

    def dropped(self, name: str) -> None:
        self.zones.pop(name, None)
        for key in [k for k in self.pollers if k[0] == name]:
            self.pollers.pop(key).cancel()

    def _fire(self, origin: bytes) -> None:
        snap = self.pending.pop(origin, None)
        if snap is None:
            return
        secs = self.for_zone(snap.name)
        zs = zone_changed(snap.name, snap.serial, time.time(), [s.label for s in secs], self.zones.get(snap.name))
        self.zones[snap.name] = zs
        if not secs:
            self._set_status(zs, "ACTIVE")
            self._report(zs)
            return
        self._report(zs)
        for sec in secs:
            key = (snap.name, sec.label)
            self.current[key] = snap.serial
            self._queue(snap, sec)
            self._poll(snap, sec)
        self._pump()

    def _queue(self, snap: Snapshot, sec: Secondary) -> None:
        key = (snap.name, sec.label)
        if key not in self.queued:
            self.queue.append(key)
        self.queued[key] = (snap, sec)

    # -- sending NOTIFY, rate limited ------------------------------------------------------------
    def _pump(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last_fill) * self.rate)
        self.last_fill = now
        while self.queue and self.tokens >= 1:
            snap, sec = self.queued.pop(self.queue.popleft())
            if self.current.get((snap.name, sec.label)) != snap.serial:
                continue  # superseded by a newer change
            self.tokens -= 1
            task = asyncio.ensure_future(self._notify(snap, sec))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        if self.queue and not self.pumping:
            self.pumping = True
            asyncio.get_running_loop().call_later(max(0.001, (1 - self.tokens) / self.rate), self._repump)

    def _repump(self) -> None:
        self.pumping = False
        self._pump()

    async def _notify(self, snap: Snapshot, sec: Secondary) -> None:
        key = (snap.name, sec.label)
        self.notifying.add(key)
        try:
            await self._notify_one(snap, sec)
        finally:
            self.notifying.discard(key)

    async def _notify_one(self, snap: Snapshot, sec: Secondary) -> None:
        client = self.client6 if ":" in sec.address else self.client
        st = self.zones.get(snap.name)
        for attempt, timeout in enumerate(retry_timeouts(self.timeout, self.retries), 1):
            if self.current.get((snap.name, sec.label)) != snap.serial:
                return
            msg = notify_message(client.new_id(sec), snap, sec.key)
            self.sent += 1
            log.debug("NOTIFY %s serial %d to %s (attempt %d)", snap.name, snap.serial, sec.label, attempt)
            reply = await client.ask(msg, sec, timeout)
            if reply is not None:
                self._answered(snap, sec, reply_rcode(reply), st)
                return
        log.warning("NOTIFY %s serial %d to %s: no answer after %d attempts", snap.name, snap.serial, sec.label, self.retries)
        if st is not None and sec.label in st.secondaries:
            st.secondaries[sec.label].notified = "unanswered"

    @staticmethod
    def _answered(snap: Snapshot, sec: Secondary, rcode: int, st: ZoneState | None) -> None:
        log.debug("NOTIFY %s serial %d to %s: answered, rcode %d", snap.name, snap.serial, sec.label, rcode)
        if rcode:
            log.warning("NOTIFY %s serial %d to %s: rcode %d", snap.name, snap.serial, sec.label, rcode)
        if st is not None and sec.label in st.secondaries:
            st.secondaries[sec.label].notified = "answered"

    # -- propagation -----------------------------------------------------------------------------
    def _poll(self, snap: Snapshot, sec: Secondary) -> None:
        key = (snap.name, sec.label)
        old = self.pollers.pop(key, None)
        if old is not None:
            old.cancel()
        task = asyncio.ensure_future(self._poll_until(snap, sec))
        self.pollers[key] = task
        task.add_done_callback(lambda t, key=key: self.pollers.pop(key, None) if self.pollers.get(key) is t else None)

    async def _poll_until(self, snap: Snapshot, sec: Secondary) -> None:
        """Poll the secondary's SOA until it has the snapshot's serial (or a newer change or the
        zone's removal makes the poll moot); NOTIFY it again while it stays behind."""
        client = self.client6 if ":" in sec.address else self.client
        plan = PollSchedule(time.monotonic(), self.renotify, self.propagation_timeout)
        delay = plan.delay
        while True:
            await asyncio.sleep(delay)
            zs = self.zones.get(snap.name)
            if zs is None or zs.serial != snap.serial:
                return
            reply = await client.ask(soa_query(client.new_id(sec), snap, sec.key), sec, min(1.0, self.timeout))
            serial = answer_serial(reply)
            st = zs.secondaries.get(sec.label)
            if st is None:
                return
            if observe_serial(st, serial, snap.serial, time.time()):
                self._update(zs)
                return
            now = time.monotonic()
            if plan.renotify_due(now):
                self._renotify(snap, sec, holding(reply, serial), now - plan.started)
            if plan.timed_out(now) and mark_error(st):
                log.warning("zone %s serial %d: secondary %s %s after %.0fs", snap.name, snap.serial,
                            sec.label, holding(reply, serial), self.propagation_timeout)  # fmt: skip
                self._update(zs)
            delay = plan.next_delay(now)

    def _renotify(self, snap: Snapshot, sec: Secondary, seen: str, after: float) -> None:
        """A secondary still behind is NOTIFYed again, unless a NOTIFY to it is under way or a
        newer change supersedes this one."""
        key = (snap.name, sec.label)
        if key in self.notifying or self.current.get(key) != snap.serial:
            return
        self.renotified += 1
        log.info("zone %s serial %d: secondary %s %s after %.0fs: NOTIFY again", snap.name, snap.serial, sec.label,
                 seen, after)  # fmt: skip
        self._queue(snap, sec)
        self._pump()

    def _update(self, zs: ZoneState) -> None:
        """A secondary's state changed: work out the zone's status and report both."""
        status = decide_status(zs, self.share)
        if status is not None:
            self._set_status(zs, status)
        self._report(zs)

    def _set_status(self, zs: ZoneState, status: str) -> None:
        if set_status(zs, status, time.time()):
            (log.info if zs.secondaries else log.debug)(
                "zone %s serial %d: ACTIVE %.0f ms after the change reached this server", zs.name, zs.serial,
                (zs.active_at - zs.changed_at) * 1000,
            )  # fmt: skip

    def _report(self, zs: ZoneState) -> None:
        if self.on_status is not None:
            self.on_status(zs)
