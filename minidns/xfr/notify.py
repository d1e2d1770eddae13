"""NOTIFY (RFC 1996) as bytes: the secondaries a zone is told about, the NOTIFY and SOA-query
messages sent to them (TSIG-signed when a secondary has a key), and what their replies say.
Pure functions of (snapshot, secondary, reply bytes); sending them is the server's."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from struct import error as struct_error
from struct import pack, unpack_from

import dns.rcode
import dns.tsig

from ..wire import AA, IN, NOTIFY, QR, SOA
from ..wire.query import QueryError, read_name
from ..zones.snapshot import Snapshot
from .tsig import Signed, Signer

NOTIFY_FLAGS = (NOTIFY << 11) | AA  # RFC 1996 §3.7: opcode NOTIFY, AA set


@dataclass(frozen=True)
class Secondary:
    """A server that transfers zones from this one: told of changes, then polled for its serial."""

    address: str
    port: int = 53
    key: dns.tsig.Key | None = field(default=None, compare=False)
    zones: tuple[str, ...] = ("*",)  # patterns of the zones it serves (fnmatch on absolute names)

    @property
    def label(self) -> str:
        return f"{self.address}#{self.port}"

    def serves(self, zone: str) -> bool:
        return any(fnmatch.fnmatchcase(zone, p if p.endswith(".") or p == "*" else p + ".") for p in self.zones)


def zone_message(qid: int, flags: int, snapshot: Snapshot, with_soa: bool) -> bytes:
    """A message whose question is the zone's SOA; with the SOA itself in the answer when asked
    (RFC 1996 §3.7: a NOTIFY may carry the new SOA as a hint)."""
    origin = snapshot.origin
    out = pack("!6H", qid, flags, 1, 1 if with_soa else 0, 0, 0) + origin + pack("!HH", SOA, IN)
    if with_soa:
        rd = snapshot.soa.rdatas[0]
        out += b"\xc0\x0c" + pack("!HHIH", SOA, IN, snapshot.soa.ttl, len(rd)) + rd
    return out


def sign(message: bytes, key: dns.tsig.Key | None) -> bytes:
    """The message TSIG-signed with `key` (RFC 8945), or as it is without one."""
    if key is None:
        return message
    return Signer(Signed(key, b"", unpack_from("!H", message)[0])).sign(message)


def notify_message(qid: int, snapshot: Snapshot, key: dns.tsig.Key | None = None) -> bytes:
    """The NOTIFY of the zone's current serial (RFC 1996 §3.7)."""
    return sign(zone_message(qid, NOTIFY_FLAGS, snapshot, True), key)


def soa_query(qid: int, snapshot: Snapshot, key: dns.tsig.Key | None = None) -> bytes:
    """The SOA query that asks a secondary which serial of the zone it serves."""
    return sign(zone_message(qid, 0, snapshot, False), key)


def reply_rcode(reply: bytes) -> int:
    """The RCODE of a reply (its header's low four bits)."""
    return reply[3] & 0xF


def answer_serial(reply: bytes | None) -> int | None:
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


def holding(reply: bytes | None, serial: int | None) -> str:
    """What the last SOA poll of a secondary showed, for the log: its serial, no answer at all, or
    an answer without the zone's SOA (an error rcode, say, while it has not loaded the zone)."""
    if serial is not None:
        return f"has serial {serial}"
    if reply is None or len(reply) < 4:
        return "has not answered the SOA query"
    return f"answered the SOA query with {dns.rcode.to_text(reply_rcode(reply))} and no SOA"


def retry_timeouts(first: float, attempts: int) -> list[float]:
    """How long each NOTIFY attempt waits for its answer: doubling from `first` (RFC 1996 §3.6
    leaves the schedule to the primary)."""
    return [first * 2**i for i in range(attempts)]
