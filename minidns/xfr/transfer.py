"""AXFR (RFC 5936) and IXFR (RFC 1995) replies as streams of messages, straight from a snapshot's
packed nodes and the change log's wire RRs.

Each message is a reply with the question echoed, AA set and as many records as fit in 64 KiB
(less room for a TSIG record). Owner names are written as their labels below the zone origin and a
pointer to the origin's first copy in the message, so a record costs a few slices and no name
walking; record data goes as stored. The snapshot is held by the generator for the whole
transfer: changes that land meanwhile make new snapshots and leave this one as it was.
"""

from __future__ import annotations

from struct import pack, unpack_from
from typing import Iterable, Iterator

from ..wire import AA, IN, QR, RRSIG, SOA
from ..zones.changes import RR
from ..zones.snapshot import Snapshot, node_find

MAX_MESSAGE = 65535
_CLASS_IN = pack("!H", IN)


class _Messages:
    """Packs wire RRs into messages; `owner` names are absolute lowercase wire names in the zone."""

    def __init__(self, qid: int, flags: int, question: bytes, origin: bytes, limit: int):
        self.head_flags = QR | AA | flags
        self.qid = qid
        self.question = question
        self.origin = origin
        self.cut = len(origin)
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.count = 0
        self.ptr = b""  # pointer to the origin's copy in the current message, once written

    def _start(self) -> None:
        self.parts = []
        self.size = 12 + len(self.question)
        self.count = 0
        self.ptr = b""

    def owner(self, owner: bytes) -> bytes:
        if self.ptr:
            return owner[: len(owner) - self.cut] + self.ptr
        return owner

    def add(self, owner: bytes, rr_tail: bytes) -> bytes | None:
        """Add one record (owner, then TYPE CLASS TTL RDLENGTH RDATA); returns a finished
        message when this record did not fit in the current one."""
        out = None
        name = self.owner(owner)
        if self.size + len(name) + len(rr_tail) > self.limit and self.count:
            out = self.finish()
            name = owner
        if not self.ptr:
            # The first owner of a message is written whole; the origin's copy in it is what
            # later owners point to.
            at = self.size + len(owner) - self.cut
            self.ptr = pack("!H", 0xC000 | at) if at < 0x3FFF else b""
        self.parts.append(name)
        self.parts.append(rr_tail)
        self.size += len(name) + len(rr_tail)
        self.count += 1
        return out

    def finish(self) -> bytes:
        head = pack("!6H", self.qid, self.head_flags, 1, self.count, 0, 0)
        msg = b"".join([head, self.question, *self.parts])
        self._start()
        return msg


def _soa_tail(snapshot: Snapshot) -> bytes:
    soa = snapshot.soa
    rd = soa.rdatas[0]
    return pack("!HHIH", SOA, IN, soa.ttl, len(rd)) + rd


def axfr(snapshot: Snapshot, qid: int, flags: int, question: bytes, room: int = 0) -> Iterator[bytes]:
    """The messages of an AXFR reply: the SOA, every other record of the zone (glue and
    delegations included, as RFC 5936 §3.1 asks), the SOA again. `room` octets are left free in
    each message (for a TSIG record)."""
    m = _Messages(qid, flags, question, snapshot.origin, MAX_MESSAGE - room)
    m._start()
    origin = snapshot.origin
    soa = _soa_tail(snapshot)
    out = m.add(origin, soa)
    add = m.add
    for owner, node in snapshot.nodes.items():
        off, n = 0, len(node)
        while off < n:
            rtype, rdlen = unpack_from("!H", node, off)[0], unpack_from("!H", node, off + 6)[0]
            end = off + 8 + rdlen
            if rtype == RRSIG:  # each with its covered RRset's TTL, its Original TTL (RFC 4034 §3)
                out = add(owner, node[off : off + 2] + _CLASS_IN + node[off + 12 : off + 16] + node[off + 6 : end])
                if out is not None:
                    yield out
            elif not (rtype == SOA and owner == origin):
                out = add(owner, node[off : off + 2] + _CLASS_IN + node[off + 2 : end])
                if out is not None:
                    yield out
            off = end
    out = m.add(origin, soa)
    if out is not None:
        yield out
    yield m.finish()


def single_soa(snapshot: Snapshot, qid: int, flags: int, question: bytes) -> bytes:
    """A reply holding only the zone's current SOA: IXFR from a client that is up to date, or
    any IXFR over UDP (RFC 1995 §2, as NSD, Knot and BIND answer)."""
    m = _Messages(qid, flags, question, snapshot.origin, MAX_MESSAGE)
    m._start()
    m.add(snapshot.origin, _soa_tail(snapshot))
    return m.finish()


def condense(steps: Iterable[tuple[list[RR], list[RR]]]) -> tuple[list[RR], list[RR]]:
    """One difference equal to a run of them (RFC 1995 §4 allows sending it condensed): a record
    added then removed vanishes, one removed then added back stays. SOA records are left out.
    Records are compared with their TTL, so a TTL change stays a removal and an addition."""
    removed: dict[RR, None] = {}
    added: dict[RR, None] = {}
    for rem, add in steps:
        for rr in rem:
            if rr[1] == SOA:
                continue
            if rr in added:
                del added[rr]
            else:
                removed[rr] = None
        for rr in add:
            if rr[1] == SOA:
                continue
            if rr in removed:
                del removed[rr]
            else:
                added[rr] = None
    return list(removed), list(added)


def ixfr(
    snapshot: Snapshot, old_soa: RR, removed: list[RR], added: list[RR], qid: int, flags: int, question: bytes, room: int = 0
) -> Iterator[bytes]:
    """The messages of an incremental reply (RFC 1995 §4): the current SOA, then one difference
    sequence — the client's SOA, the records removed, the current SOA, the records added — then
    the current SOA again."""
    m = _Messages(qid, flags, question, snapshot.origin, MAX_MESSAGE - room)
    m._start()
    origin = snapshot.origin
    soa = _soa_tail(snapshot)
    o_owner, _, o_ttl, o_rdata = old_soa

    def records():
        yield origin, soa
        yield origin, pack("!HHIH", SOA, IN, o_ttl, len(o_rdata)) + o_rdata
        for owner, rtype, ttl, rdata in removed:
            yield owner, _rr_tail(rtype, ttl, rdata)
        yield origin, soa
        for owner, rtype, ttl, rdata in added:
            yield owner, _rr_tail(rtype, ttl, rdata)
        yield origin, soa

    for owner, tail in records():
        out = m.add(owner, tail)
        if out is not None:
            yield out
    yield m.finish()


def _rr_tail(rtype: int, ttl: int, rdata: bytes) -> bytes:
    if rtype == RRSIG:  # with its covered RRset's TTL, its Original TTL (RFC 4034 §3)
        ttl = unpack_from("!I", rdata, 4)[0]
    return pack("!HHIH", rtype, IN, ttl, len(rdata)) + rdata


def serial_lt(a: int, b: int) -> bool:
    """a < b in RFC 1982 serial arithmetic (32 bits)."""
    return a != b and ((b - a) & 0xFFFFFFFF) < 0x80000000


def soa_serial(rdata: bytes) -> int:
    """The SERIAL field of SOA rdata (uncompressed names)."""
    return unpack_from("!I", rdata, len(rdata) - 20)[0]


def current_soa(snapshot: Snapshot) -> RR:
    found = node_find(snapshot.nodes.get(snapshot.origin, b""), SOA)
    return (snapshot.origin, SOA, found[0], found[1][0])
