"""UPDATE messages (RFC 2136) to fuzz a door that takes them (tests/server/test_updates_fuzzed.py):
well-formed updates of every kind, then mutated where an UPDATE reader can go wrong.

Well formed: the prerequisites of §2.4 (name in use, name not in use, RRset exists, RRset does not
exist, RRset exists with these data) and the updates of §2.5 (add, delete an RRset, delete every
RRset at a name, delete one RR) of A, AAAA, TXT, MX, CNAME, NS and the apex SOA, at names of the
zone (owners sometimes compressed against the zone section, RFC 1035 §4.1.4) and now and then
outside it, for the zone or another; a section sometimes repeated whole; an OPT now and then;
unsigned or signed by gen.sign (the good keys mostly, else unknown keys, wrong secrets, bad
times and MACs). Mutated: bits flipped, the message cut short, a header count changed, a record's
CLASS, TYPE, TTL or RDLENGTH changed (the builder knows where each record's fields are), and
gen.mutate's byte-level changes — before signing mostly, so that the mutated message reaches the
door with a TSIG that verifies; after it now and then.

Nothing here imports minidns; the choices come from gen.Choices, so a seeded RandomChoices
replays the same messages.
"""

from __future__ import annotations

from struct import pack

from .gen import Choices, Keys, mutate, sign, soa_rdata, wire_name

ANY, NONE, IN = 255, 254, 1
A, NS, CNAME, SOA, MX, TXT, AAAA = 1, 2, 5, 6, 15, 16, 28
DATA_TYPES = (A, A, AAAA, TXT, TXT, MX, CNAME, NS, SOA)
OWNERS = ("@", "fz", "a.fz", "b.fz", "c.b.fz", "www", "h1", "mail", "*.fz", "alias.fz")
OUTSIDE = ("x.elsewhere.", "test.", ".", "fz.example.com.")
CLASSES = (IN, ANY, NONE, 3, 4, 0, 2, 65535)
TYPES = (ANY, SOA, CNAME, 252, 251, 41, 250, 46, 48, 50, 0, 65535, 249, 253)
TTLS = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 300)


class Update:
    """An UPDATE being built: the records of each section written at once, and where each record's
    TYPE field is (CLASS, TTL and RDLENGTH follow it at +2, +4 and +8)."""

    def __init__(self, zone: str):
        self.zone = zone
        self.buf = bytearray(12) + wire_name(zone) + pack("!HH", SOA, IN)  # the zone section (§2.3)
        self.counts = [1, 0, 0, 0]
        self.fields: list[int] = []

    def owner(self, r: Choices, name: str) -> None:
        if name.endswith("."):
            self.buf += wire_name(name)
            return
        labels = wire_name(name + ".")[:-1] if name != "@" else b""
        if r.chance(0.6):  # compressed against the zone section's name
            self.buf += labels + pack("!H", 0xC000 | 12)
        else:
            self.buf += labels + wire_name(self.zone)

    def rr(self, r: Choices, section: int, name: str, rtype: int, rclass: int, ttl: int, rdata: bytes) -> None:
        self.owner(r, name)
        self.fields.append(len(self.buf))
        self.buf += pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata
        self.counts[section] += 1

    def wire(self, qid: int, flags: int) -> bytearray:
        self.buf[:12] = pack("!6H", qid, flags, *self.counts)
        return self.buf


def rdata(r: Choices, rtype: int, zone: str) -> bytes:
    if rtype == A:
        return bytes((192, 0, 2, r.int(0, 255)))
    if rtype == AAAA:
        return bytes.fromhex("20010db8") + bytes(11) + bytes((r.int(0, 255),))
    if rtype == TXT:
        text = r.pick((b"v=1", b"hello world", b"", b"x" * 255))
        return bytes([len(text)]) + text
    if rtype == MX:
        return pack("!H", r.int(0, 20)) + wire_name(r.pick(("mx." + zone, "mail.example.net.", ".")))
    if rtype in (CNAME, NS):
        return wire_name(r.pick(("www." + zone, "ns1." + zone, "target.example.net.", "fz." + zone)))
    return soa_rdata(r, r.pick((None, 1, 2_000_000_000, 0xFFFFFFFF)))


def owner_name(r: Choices) -> str:
    return r.pick(OUTSIDE) if r.chance(0.04) else r.pick(OWNERS)


def prerequisite(r: Choices, zone: str) -> tuple:
    """One of §2.4's five forms, at a name of the zone mostly: (owner, TYPE, CLASS, TTL, RDATA)."""
    name, rtype = owner_name(r), r.pick(DATA_TYPES)
    kind = r.int(0, 4)
    if kind == 0:  # name is in use (§2.4.4)
        return name, ANY, ANY, 0, b""
    if kind == 1:  # name is not in use (§2.4.5)
        return name, ANY, NONE, 0, b""
    if kind == 2:  # RRset exists, value independent (§2.4.1)
        return name, rtype, ANY, 0, b""
    if kind == 3:  # RRset does not exist (§2.4.3)
        return name, rtype, NONE, 0, b""
    return name, rtype, IN, 0, rdata(r, rtype, zone)  # RRset exists, value dependent (§2.4.2)


def update_rr(r: Choices, zone: str) -> tuple:
    """One of §2.5's four forms; an SOA at the apex mostly, as a client sends it."""
    rtype = r.pick(DATA_TYPES)
    name = "@" if rtype == SOA and r.chance(0.9) else owner_name(r)
    kind = r.int(0, 5)
    if kind <= 2:  # add to an RRset (§2.5.1)
        return name, rtype, IN, r.pick((60, 300, 3600)), rdata(r, rtype, zone)
    if kind == 3:  # delete an RRset (§2.5.2)
        return name, rtype, ANY, 0, b""
    if kind == 4:  # delete all RRsets from a name (§2.5.3)
        return name, ANY, ANY, 0, b""
    return name, rtype, NONE, 0, rdata(r, rtype, zone)  # delete an RR from an RRset (§2.5.4)


def well_formed(r: Choices, zone: str, others: tuple[str, ...], qid: int) -> tuple[bytes, list[int]]:
    """(an UPDATE for `zone`, or now and then one of `others`, with its ADCOUNT not yet counting a
    TSIG; where its records' TYPE fields are)."""
    u = Update(zone if r.chance(0.93) else r.pick(others))
    prereqs = [prerequisite(r, u.zone) for _ in range(r.int(0, 3))]
    updates = [update_rr(r, u.zone) for _ in range(r.int(0, 4))]
    for section, records in ((1, prereqs), (2, updates)):
        for _ in range(2 if records and r.chance(0.08) else 1):  # a section repeated whole, now and then
            for record in records:
                u.rr(r, section, *record)
    if r.chance(0.1):  # an OPT record (RFC 6891), EDNS version 0
        u.buf += b"\x00" + pack("!HHIH", 41, 1232, 0, 0)
        u.counts[3] += 1
    flags = 5 << 11 | (0x8000 if r.chance(0.02) else 0) | (r.pick((0x0400, 0x0100, 0x0010)) if r.chance(0.05) else 0)
    return bytes(u.wire(qid, flags)), u.fields


def mutated_fields(r: Choices, wire: bytes, fields: list[int]) -> bytes:
    """0 to 3 mutations of the kinds the module docstring lists."""
    buf = bytearray(wire)
    for _ in range(r.int(0, 3) if r.chance(0.8) else 0):
        kind = r.int(0, 7)
        at = r.pick(fields) if fields else None
        if kind == 0 and buf:
            i = r.int(0, len(buf) - 1)
            buf[i] ^= 1 << r.int(0, 7)
        elif kind == 1 and len(buf) > 12:
            del buf[r.int(12, len(buf) - 1) :]
        elif kind == 2:
            i = 4 + 2 * r.int(0, 3)
            old = int.from_bytes(buf[i : i + 2], "big")
            buf[i : i + 2] = pack("!H", r.pick((0, old + 1, max(0, old - 1), 10_000, 0xFFFF)) & 0xFFFF)
        elif kind == 3 and at is not None and at + 4 <= len(buf):
            buf[at + 2 : at + 4] = pack("!H", r.pick(CLASSES))
        elif kind == 4 and at is not None and at + 2 <= len(buf):
            buf[at : at + 2] = pack("!H", r.pick(TYPES) if r.chance(0.8) else r.int(0, 65535))
        elif kind == 5 and at is not None and at + 8 <= len(buf):
            buf[at + 4 : at + 8] = pack("!I", r.pick(TTLS))
        elif kind == 6 and at is not None and at + 10 <= len(buf):
            old = int.from_bytes(buf[at + 8 : at + 10], "big")
            buf[at + 8 : at + 10] = pack("!H", r.pick((old + 1, max(0, old - 1), 0, 0xFFFF, r.int(0, 300))) & 0xFFFF)
        elif kind == 7:
            buf = bytearray(mutate(r, bytes(buf)))
    return bytes(buf)


def fuzzed_update(r: Choices, keys: Keys, zone: str, others: tuple[str, ...], qid: int, now: int) -> bytes:
    """One UPDATE message: well formed, perhaps mutated, perhaps signed at about `now`, perhaps
    mutated after signing."""
    wire, fields = well_formed(r, zone, others, qid)
    wire = mutated_fields(r, wire, fields)
    if len(wire) >= 12 and wire[10:12] != b"\xff\xff" and r.chance(0.5):
        wire = sign(r, keys, wire, now)
        if r.chance(0.1):
            wire = mutate(r, wire)
    return wire
