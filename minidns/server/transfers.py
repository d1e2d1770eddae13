"""What the engine hands over: zone transfers (AXFR, IXFR), NOTIFY, dynamic UPDATE (its door is
server/updates.py), and any TSIG-signed message.

Access to transfers is per zone, else the global default: a list of address prefixes and TSIG
key names; a request is allowed when its source address is in a listed prefix or it is signed
with a listed key. Refused → REFUSED with EDE 18 "Prohibited" (RFC 8914); a zone not served →
NOTAUTH. IXFR (RFC 1995) is built from the database's change log: the run of logged changes from
the client's serial to the served one, condensed into one difference; when the log does not reach
back, or the difference is not smaller than the zone, the reply is the whole zone (AXFR-style).
At most `max_concurrent` transfers are sent at once; one more is answered SERVFAIL with EDE 0
(Other Error), as BIND answers one over its transfers-out quota.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from struct import unpack_from
from typing import AsyncIterator, Awaitable, Callable

import dns.exception
import dns.name

from ..wire import AXFR, EDE_OTHER, EDE_PROHIBITED, FORMERR, IN, IXFR, NOTAUTH, NOTIFY, NOTIMP, QUERY, RD, REFUSED, SERVFAIL, SOA, UPDATE
from ..wire.query import Query, QueryError, read_name
from ..wire.render import render_error
from ..xfr.transfer import axfr, condense, ixfr, serial_lt, single_soa, soa_serial
from ..xfr.tsig import Signer, TsigError, error_reply, verify
from ..zones.changes import unpack_rrs
from ..zones.snapshot import Snapshot

log = logging.getLogger("minidns.xfr")

_KEEP = 0x7800 | RD  # opcode and RD go back as they came


@dataclass
class Acl:
    """Who may transfer: address prefixes, and TSIG key names (absolute, lowercase)."""

    networks: list = field(default_factory=list)
    keys: set = field(default_factory=set)

    @classmethod
    def parse(cls, entries) -> "Acl":
        """Entries like "127.0.0.0/8", "::1", "192.0.2.7", "key:xfr-key."."""
        acl = cls()
        for entry in entries:
            entry = entry.strip()
            if entry.startswith("key:"):
                acl.keys.add(dns.name.from_text(entry[4:]))
            else:
                acl.networks.append(ipaddress.ip_network(entry, strict=False))
        return acl

    def allows(self, address: str | None, key: dns.name.Name | None) -> bool:
        if key is not None and key in self.keys:
            return True
        if address is None or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def describe(self) -> str:
        return ", ".join([str(n) for n in self.networks] + [f"key:{k}" for k in sorted(self.keys)]) or "nobody"


# History of a zone: the logged changes (serial_from, serial_to, removed, added), oldest first,
# or None when the zone has none (a zone file) or the database cannot be asked.
History = Callable[[Snapshot], Awaitable[list | None]]


class Transfers:
    """Answers the messages the engine does not: transfers, NOTIFY, UPDATE and signed queries."""


    update_grants: tuple = ()  # the UPDATE grants (xfr/grants.Grant), configured then stored; set by TransferAccess

    def __init__(self, engine, *, keyring: dict | None = None, acl: Acl | None = None, history: History | None = None,
                 clock=time.time, max_concurrent: int = 10):  # fmt: skip
        self.engine = engine
        self.max_concurrent = max_concurrent
        self.running = 0  # transfers being sent
        self.keyring: dict = keyring or {}
        self.acl = acl or Acl.parse(["127.0.0.0/8", "::1"])
        self.zone_acls: dict[bytes, Acl] = {}
        self.history = history
        self.clock = clock
        self.stats: Counter = Counter()  # transfers served, by kind; for metrics and tests
        self.updates = None  # server/updates.py UpdateDoor: dynamic UPDATE (opcode 5)

    # -- entry point ---------------------------------------------------------------------------
    def handle(self, q: Query, data: bytes, tcp: bool, peer) -> bytes | AsyncIterator[bytes] | None:
        """The reply (bytes), or for a TCP transfer an async iterator of messages."""
        question = data[12 : q.qend] if q.opcode in (QUERY, NOTIFY) else b""  # UPDATE's is a zone section
        keep = q.flags & _KEEP
        signed = None
        if q.tsig:
            try:
                signed = verify(data, q.tsig, self.keyring, self.clock())
            except TsigError as e:
                log.warning("TSIG from %s: %s", _addr(peer), e)
                return error_reply(render_error(q.id, keep, question, NOTAUTH, None), e, self.clock)
            except (dns.exception.DNSException, ValueError, IndexError) as e:
                return render_error(q.id, keep, question, FORMERR, self.engine.reply_opt(q))
        key = signed.key.name if signed else None
        if q.opcode == UPDATE and self.updates is not None:
            return self.updates.handle(q, data, peer, signed, keep)
        if q.opcode == UPDATE:  # no door for it (an engine without a server)
            reply = render_error(q.id, keep, b"", NOTIMP, self.engine.reply_opt(q))
        elif q.opcode == NOTIFY:
            reply = self._notify(q, data, question, keep, peer, key)
        elif q.opcode == QUERY and q.qtype in (AXFR, IXFR):
            result = self._transfer(q, data, question, keep, tcp, peer, key, signed)
            if not isinstance(result, bytes):
                return result
            reply = result
        else:
            room = Signer(signed).room() if signed is not None else 0  # RFC 8945 §5.3: the TSIG must fit too
            reply, _ = self.engine.stages(q, data, tcp, room)
        if signed is not None and reply is not None:
            reply = Signer(signed, clock=self.clock).sign(reply)
        return reply

    # -- NOTIFY --------------------------------------------------------------------------------
    def _notify(self, q: Query, data: bytes, question: bytes, keep: int, peer, key) -> bytes:
        """minidns is primary for every zone it serves and secondary for none, so a NOTIFY
        (RFC 1996) has nothing to start: NOTAUTH with the question, as Knot answers a NOTIFY for
        a zone it is primary for and for one it does not serve (NSD answers REFUSED)."""
        return render_error(q.id, keep, question, NOTAUTH, self.engine.reply_opt(q))

    # -- AXFR / IXFR ---------------------------------------------------------------------------
    def _transfer(self, q: Query, data: bytes, question: bytes, keep: int, tcp: bool, peer, key, signed):
        if q.qtype == AXFR and not tcp:  # RFC 5936 §4.2: TCP only
            return render_error(q.id, keep, question, NOTIMP, self.engine.reply_opt(q))
        zone = self.engine.table.zones.get(q.key) if q.qclass == IN else None
        if zone is None:
            return render_error(q.id, keep, question, NOTAUTH, self.engine.reply_opt(q))
        acl = self.zone_acls.get(zone.origin, self.acl)
        address = _addr(peer)
        if not acl.allows(address, key):
            self.stats["refused"] += 1
            log.warning("transfer of %s refused to %s%s", zone.name, address, f" (key {key})" if key else "")
            return _refused(self.engine, q, question, keep)
        if tcp and self.running >= self.max_concurrent and (q.qtype == AXFR or serial_lt(_ixfr_serial_or(data, q), zone.serial)):
            self.stats["busy"] += 1
            log.warning("transfer of %s to %s refused: %d transfers running (xfr_max_concurrent)", zone.name, address,
                        self.running)  # fmt: skip
            return render_error(q.id, keep, question, SERVFAIL, self.engine.reply_opt(q, ede=EDE_OTHER))
        if q.qtype == AXFR:
            return self._stream(zone, "AXFR", address, axfr, signed, q, question, keep)
        try:
            client = _ixfr_serial(data, q)
        except QueryError:
            return render_error(q.id, keep, question, FORMERR, self.engine.reply_opt(q))
        if not tcp or not serial_lt(client, zone.serial):
            # Over UDP the reply is only the current SOA: the client goes on over TCP (RFC 1995 §2).
            self.stats["IXFR-current" if tcp else "IXFR-udp"] += 1
            return single_soa(zone, q.id, keep, question)
        return self._ixfr(zone, client, address, signed, q, question, keep)

    def _stream(self, zone, kind, address, make, signed, q, question, keep):
        self.stats[kind] += 1
        signer = Signer(signed, multi=True, clock=self.clock) if signed else None
        room = signer.room() if signer else 0
        return _Transfer(make(zone, q.id, keep, question, room), signer, kind, zone, address, self)

    def _ixfr(self, zone: Snapshot, client: int, address, signed, q, question, keep):
        transfers = self

        async def messages():
            rows = await transfers.history(zone) if transfers.history else None
            steps = _chain(rows or [], client, zone.serial)
            diff = None
            if steps:
                removed, added = condense((unpack_rrs(r), unpack_rrs(a)) for r, a in (s[2:4] for s in steps))
                if len(removed) + len(added) < _zone_size(zone, len(removed) + len(added)):
                    diff = removed, added, unpack_rrs(steps[0][2])[0]
            signer = Signer(signed, multi=True, clock=transfers.clock) if signed else None
            room = signer.room() if signer else 0
            if diff is None:
                transfers.stats["IXFR-AXFR"] += 1
                log.info("IXFR of %s from serial %d to %s: the whole zone (%s)", zone.name, client, address,
                         "no history that far back" if not steps else "the difference is larger than the zone")
                gen = axfr(zone, q.id, keep, question, room)
            else:
                transfers.stats["IXFR"] += 1
                removed, added, old_soa = diff
                log.info("IXFR of %s %d -> %d to %s: %d removed, %d added", zone.name, client, zone.serial, address,
                         len(removed), len(added))
                gen = ixfr(zone, old_soa, removed, added, q.id, keep, question, room)
            for msg in gen:
                yield signer.sign(msg) if signer else msg

        return _Transfer(messages(), None, "IXFR", zone, address, self)


class _Transfer:
    """An async iterator of the messages of one transfer, for the TCP protocol to send."""

    def __init__(self, messages, signer, kind, zone, address, transfers=None):
        self.messages = messages
        self.signer = signer
        self.kind = kind
        self.zone = zone
        self.address = address
        self.transfers = transfers  # holds one of its slots until released
        if transfers is not None:
            transfers.running += 1

    def release(self) -> None:
        """Give the slot back (once): when the transfer ends, or its connection does."""
        transfers, self.transfers = self.transfers, None
        if transfers is not None:
            transfers.running -= 1

    async def __aiter__(self):
        started = time.monotonic()
        count = 0
        try:
            if hasattr(self.messages, "__aiter__"):
                async for msg in self.messages:
                    count += 1
                    yield msg
            else:
                for msg in self.messages:
                    count += 1
                    yield self.signer.sign(msg) if self.signer else msg
        finally:
            self.release()
        if self.kind == "AXFR":
            log.info("AXFR of %s serial %d to %s: %d message(s) in %.3fs", self.zone.name, self.zone.serial,
                     self.address, count, time.monotonic() - started)


def _refused(engine, q: Query, question: bytes, keep: int) -> bytes:
    return render_error(q.id, keep, question, REFUSED, engine.reply_opt(q, ede=EDE_PROHIBITED))


def _addr(peer) -> str | None:
    if peer is None:
        return None
    return peer[0] if isinstance(peer, tuple) else str(peer)


def _ixfr_serial(data: bytes, q: Query) -> int:
    """The client's serial: the SOA in the authority section of an IXFR query (RFC 1995 §3)."""
    ancount, nscount = unpack_from("!HH", data, 6)
    if nscount < 1:
        raise QueryError(FORMERR, "IXFR without an SOA in the authority section")
    off = q.qend
    for _ in range(ancount):
        _, off = read_name(data, off)
        off += 10 + unpack_from("!H", data, off + 8)[0]
    _, off = read_name(data, off)
    rtype, _, _, rdlen = unpack_from("!HHIH", data, off)
    if rtype != SOA:
        raise QueryError(FORMERR, "IXFR authority record is not an SOA")
    off += 10
    _, off = read_name(data, off)  # MNAME
    _, off = read_name(data, off)  # RNAME
    if off + 20 > len(data):
        raise QueryError(FORMERR, "truncated SOA")
    return unpack_from("!I", data, off)[0]


def _ixfr_serial_or(data: bytes, q: Query) -> int:
    """The IXFR client's serial, or 0 for a malformed request (answered FORMERR later)."""
    try:
        return _ixfr_serial(data, q)
    except (QueryError, IndexError, ValueError):
        return 0


def _chain(rows: list, start: int, end: int) -> list:
    """The logged changes leading from serial `start` to `end`, in order; [] when they do not."""
    by_from = {}
    for row in rows:
        if row[0] is not None:
            by_from[row[0]] = row  # a later row from the same serial (a recreated zone) wins
    steps, serial = [], start
    while serial != end:
        row = by_from.get(serial)
        if row is None or len(steps) > len(rows):
            return []
        steps.append(row)
        serial = row[1]
    return steps


def _zone_size(zone: Snapshot, at_least: int) -> int:
    """The zone's record count, counted only as far as needed to exceed `at_least`."""
    count = 0
    for node in zone.nodes.values():
        off, n = 0, len(node)
        while off < n:
            off += 8 + unpack_from("!H", node, off + 6)[0]
            count += 1
        if count > at_least:
            break
    return count
