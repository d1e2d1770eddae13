"""Telling secondaries and watching them: NOTIFY (RFC 1996) after every change, then polling each
secondary's SOA serial until it has the change, which drives the zone's status.

NOTIFY: a change to a zone schedules one NOTIFY per secondary a couple of milliseconds later, so a
burst of changes to one zone becomes one message carrying the newest serial. Each is sent over UDP
(TSIG-signed when the secondary has a key), retried with doubling timeouts until answered or out
of attempts; a newer change supersedes the retries of an older one. A global rate limit with a
queue keeps thousands of zones changing at once from flooding anyone.

Propagation: after a NOTIFY, the secondary's SOA serial is polled (backing off from 20 ms to 100 ms)
until it reaches the zone's (RFC 1982 comparison). Per zone and secondary the serial seen, when and
a state are kept; the zone is ACTIVE when the configured share of its secondaries has the change,
ERROR when the timeout passes first (polling goes on slower and can still turn it ACTIVE).

Re-NOTIFY: a secondary still behind `renotify` seconds after the change is NOTIFYed again, then
after twice as long, and so on up to RENOTIFY_MAX. A NOTIFY only prompts a secondary to check
the zone's SOA (RFC 1996 §3), so an answered one is not a transfer done: a secondary can drop the
transfer it started (a busy primary, an IXFR it gave up on) and would otherwise wait for its SOA
refresh timer, an hour by default.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import random
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from struct import error as struct_error
from struct import pack, unpack_from

import dns.tsig

from ..wire import AA, IN, NOERROR, NOTIFY, QR, SOA
from ..wire.query import QueryError, read_name
from ..xfr.tsig import Signed, Signer
from ..zones.snapshot import Snapshot
from .transfers import serial_lt

log = logging.getLogger("minidns.notify")

COALESCE = 0.002  # seconds a change waits for more changes to the same zone
POLL_FIRST, POLL_MAX, POLL_AFTER_ERROR = 0.02, 0.1, 5.0
RENOTIFY_MAX = 300.0  # seconds between re-NOTIFYs to a secondary that stays behind, at most


@dataclass(frozen=True)
class Secondary:
    address: str
    port: int = 53
    key: dns.tsig.Key | None = field(default=None, compare=False)
    zones: tuple[str, ...] = ("*",)  # patterns of the zones it serves (fnmatch on absolute names)

    @property
    def label(self) -> str:
        return f"{self.address}#{self.port}"

    def serves(self, zone: str) -> bool:
        return any(fnmatch.fnmatchcase(zone, p if p.endswith(".") or p == "*" else p + ".") for p in self.zones)


def _message(qid: int, flags: int, snapshot: Snapshot, with_soa: bool) -> bytes:
    origin = snapshot.origin
    out = pack("!6H", qid, flags, 1, 1 if with_soa else 0, 0, 0) + origin + pack("!HH", SOA, IN)
    if with_soa:
        rd = snapshot.soa.rdatas[0]
        out += b"\xc0\x0c" + pack("!HHIH", SOA, IN, snapshot.soa.ttl, len(rd)) + rd
    return out


def _sign(message: bytes, key: dns.tsig.Key | None) -> bytes:
    if key is None:
        return message
    return Signer(Signed(key, b"", unpack_from("!H", message)[0])).sign(message)


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


@dataclass
class SecondaryState:
    serial: int | None = None  # the serial last seen there
    seen_at: float | None = None  # when it was first seen at the target serial
    state: str = "PENDING"  # PENDING (waiting), OK (has the zone's serial), ERROR (timed out)
    notified: str = ""  # "" / "sent" / "answered" / "unanswered"


@dataclass
class ZoneState:
    name: str
    serial: int
    changed_at: float
    status: str = "PENDING"
    secondaries: dict[str, SecondaryState] = field(default_factory=dict)
    active_at: float | None = None


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
        old = self.zones.get(snap.name)
        zs = ZoneState(snap.name, snap.serial, time.time())
        for sec in secs:
            prev = old.secondaries.get(sec.label) if old else None
            zs.secondaries[sec.label] = SecondaryState(serial=prev.serial if prev else None)
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
        timeout = self.timeout
        for attempt in range(1, self.retries + 1):
            if self.current.get((snap.name, sec.label)) != snap.serial:
                return
            msg = _sign(_message(client.new_id(sec), (NOTIFY << 11) | AA, snap, True), sec.key)
            self.sent += 1
            log.debug("NOTIFY %s serial %d to %s (attempt %d)", snap.name, snap.serial, sec.label, attempt)
            reply = await client.ask(msg, sec, timeout)
            if reply is not None:
                log.debug("NOTIFY %s serial %d to %s: answered, rcode %d", snap.name, snap.serial, sec.label, reply[3] & 0xF)
                rcode = reply[3] & 0xF
                if rcode != NOERROR:
                    log.warning("NOTIFY %s serial %d to %s: rcode %d", snap.name, snap.serial, sec.label, rcode)
                if st is not None and sec.label in st.secondaries:
                    st.secondaries[sec.label].notified = "answered"
                return
            timeout *= 2
        log.warning("NOTIFY %s serial %d to %s: no answer after %d attempts", snap.name, snap.serial, sec.label, self.retries)
        if st is not None and sec.label in st.secondaries:
            st.secondaries[sec.label].notified = "unanswered"

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
        client = self.client6 if ":" in sec.address else self.client
        started = time.monotonic()
        renotify_at = started + self.renotify if self.renotify > 0 else None
        delay = POLL_FIRST
        while True:
            await asyncio.sleep(delay)
            zs = self.zones.get(snap.name)
            if zs is None or zs.serial != snap.serial:
                return
            reply = await client.ask(_sign(_message(client.new_id(sec), 0, snap, False), sec.key), sec, min(1.0, self.timeout))
            serial = _answer_serial(reply)
            st = zs.secondaries.get(sec.label)
            if st is None:
                return
            if serial is not None:
                st.serial = serial
                if not serial_lt(serial, snap.serial):
                    st.state, st.seen_at = "OK", time.time()
                    self._update(zs)
                    return
            now = time.monotonic()
            if renotify_at is not None and now >= renotify_at:
                renotify_at = now + min(RENOTIFY_MAX, now - started)
                key = (snap.name, sec.label)
                if key not in self.notifying and self.current.get(key) == snap.serial:
                    self.renotified += 1
                    log.info("zone %s serial %d: secondary %s %s after %.0fs: NOTIFY again", snap.name,
                             snap.serial, sec.label, _holding(reply, serial), now - started)  # fmt: skip
                    self._queue(snap, sec)
                    self._pump()
            if now - started > self.propagation_timeout:
                if st.state != "ERROR":
                    st.state = "ERROR"
                    log.warning("zone %s serial %d: secondary %s %s after %.0fs", snap.name, snap.serial,
                                sec.label, _holding(reply, serial), self.propagation_timeout)
                    self._update(zs)
                delay = POLL_AFTER_ERROR
            else:
                delay = min(POLL_MAX, delay * 2)

    def _update(self, zs: ZoneState) -> None:
        """A secondary's state changed: work out the zone's status and report both."""
        total = len(zs.secondaries)
        ok = sum(1 for s in zs.secondaries.values() if s.state == "OK")
        failed = sum(1 for s in zs.secondaries.values() if s.state == "ERROR")
        if total and ok / total >= self.share - 1e-9:
            self._set_status(zs, "ACTIVE")
        elif failed and (total - failed) / total < self.share - 1e-9:  # the share can no longer be met in time
            self._set_status(zs, "ERROR")
        self._report(zs)

    def _set_status(self, zs: ZoneState, status: str) -> None:
        if status == "ACTIVE" and zs.active_at is None:
            zs.active_at = time.time()
            (log.info if zs.secondaries else log.debug)(
                "zone %s serial %d: ACTIVE %.0f ms after the change reached this server", zs.name, zs.serial,
                (zs.active_at - zs.changed_at) * 1000,
            )  # fmt: skip
        zs.status = status

    def _report(self, zs: ZoneState) -> None:
        if self.on_status is not None:
            self.on_status(zs)


def _holding(reply: bytes | None, serial: int | None) -> str:
    """What the last SOA poll of a secondary showed, for the log: its serial, no answer at all, or
    an answer without the zone's SOA (an error rcode, say, while it has not loaded the zone)."""
    if serial is not None:
        return f"has serial {serial}"
    if reply is None or len(reply) < 4:
        return "has not answered the SOA query"
    import dns.rcode

    return f"answered the SOA query with {dns.rcode.to_text(reply[3] & 0xF)} and no SOA"


def _answer_serial(reply: bytes | None) -> int | None:
    """The serial of the SOA in the answer of a reply to our SOA query, if any."""
    if reply is None or len(reply) < 12 or not reply[2] & (QR >> 8) or reply[3] & 0xF:
        return None
    qd, an = unpack_from("!HH", reply, 4)
    off = 12
    try:
        for _ in range(qd):
            off = read_name(reply, off)[1] + 4
        for _ in range(an):
            off = read_name(reply, off)[1]
            rtype, _, _, rdlen = unpack_from("!HHIH", reply, off)
            off += 10
            if rtype == SOA:
                return unpack_from("!I", reply, off + rdlen - 20)[0]
            off += rdlen
    except (QueryError, struct_error):  # a malformed reply counts as no answer
        return None
    return None
