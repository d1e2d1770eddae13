"""Parse an incoming query straight from bytes: header, question and the OPT record (RFC 1035 §4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from struct import unpack_from

from . import CO_BIT, FORMERR, OPT, OPT_COOKIE, OPT_NSID, QR, TSIG

MAX_NAME = 255  # RFC 1035 §3.1: a name is at most 255 octets in wire form


class QueryError(Exception):
    """A query that can only be answered with an error rcode; `qend` is set when the question parsed."""

    def __init__(self, rcode: int, reason: str, qend: int | None = None):
        super().__init__(reason)
        self.rcode = rcode
        self.qend = qend


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, which
# costs a microsecond a query here. Both are read-only by convention (dataclasses.replace to vary).
@dataclass(slots=True)
class Edns:
    """The client's OPT record (RFC 6891 §6.1.2)."""

    payload: int
    version: int
    do: bool
    nsid: bool  # the NSID option (RFC 5001) was present
    options: bytes  # the raw option data, kept so callers can look for other options
    co: bool = False  # Compact Answers OK (RFC 9824 §4): an NXDOMAIN rcode is wanted with compact denial
    cookie: bytes | None = None  # the COOKIE option's data (RFC 7873 §4): 8 octets, or 16 to 40


@dataclass(slots=True)
class Query:
    """A parsed query. `qname` is the uncompressed wire name exactly as sent; `key` is it lowercased."""

    id: int
    flags: int
    qname: bytes
    key: bytes
    qtype: int
    qclass: int
    qend: int  # offset just past the question: data[12:qend] is the question as sent
    edns: Edns | None
    tsig: int = 0  # offset of the TSIG record (RFC 8945), the message's last; 0 when unsigned

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF


def read_name(data: bytes, off: int) -> tuple[bytes, int]:
    """Read a possibly compressed name at `off`; return (uncompressed wire name, offset after it).

    Compression pointers (RFC 1035 §4.1.4) must point strictly backwards, which rules out loops,
    and past the header, where no name can start.
    """
    labels = []
    total = 0
    end = None
    limit = off
    n = len(data)
    while True:
        if off >= n:
            raise QueryError(FORMERR, "name runs past the end of the message")
        length = data[off]
        if length == 0:
            labels.append(b"\x00")
            total += 1
            if end is None:
                end = off + 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if off + 1 >= n:
                raise QueryError(FORMERR, "truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[off + 1]
            if end is None:
                end = off + 2
            if target >= limit:
                raise QueryError(FORMERR, "compression pointer loop")
            if target < 12:
                raise QueryError(FORMERR, "compression pointer into the header")
            off = limit = target
            continue
        if kind:
            raise QueryError(FORMERR, "unknown label type")
        label = data[off : off + 1 + length]
        if len(label) != length + 1:
            raise QueryError(FORMERR, "label runs past the end of the message")
        total += length + 1
        if total + 1 > MAX_NAME:
            raise QueryError(FORMERR, "name longer than 255 octets")
        labels.append(label)
        off += length + 1
    return b"".join(labels), end


def parse_query(data: bytes) -> Query | None:
    """Parse a query; None when no reply may be sent (shorter than a header, or QR set).

    Raises QueryError for a message that gets an error rcode (FORMERR for a malformed question,
    records or OPT). Only header and question are needed to answer; the other sections are walked
    to find the OPT record and to check that the message is well formed.
    """
    if len(data) < 12:
        return None
    qid, flags, qdcount, ancount, nscount, arcount = unpack_from("!6H", data)
    if flags & QR:
        return None
    if qdcount != 1:
        raise QueryError(FORMERR, f"QDCOUNT is {qdcount}, not 1")
    qname, off = question_name(data)
    if off + 4 > len(data):
        raise QueryError(FORMERR, "truncated question")
    qtype, qclass = unpack_from("!HH", data, off)
    qend = off + 4
    try:
        if (arcount == 1 and not ancount and not nscount and data[qend : qend + 3] == b"\x00\x00\x29"
                and len(data) >= qend + 11 and qend + 11 + (data[qend + 9] << 8 | data[qend + 10]) == len(data)):  # fmt: skip
            # The common shape: the question, then one OPT record (root owner) ending the message.
            payload, ttl = unpack_from("!HI", data, qend + 3)
            edns, tsig = _read_opt(data[qend + 11 :], payload, ttl), 0
        else:
            edns, tsig = _read_records(data, qend, ancount, nscount, arcount)
    except QueryError as e:
        e.qend = qend
        raise
    return Query(qid, flags, qname, qname.lower(), qtype, qclass, qend, edns, tsig)


def question_name(data: bytes) -> tuple[bytes, int]:
    """The question's name (at offset 12) and the offset after it; QueryError when it is not a
    valid one. A question name is never
    compressed (a pointer could only point into the header or forwards, both refused by
    read_name), so the labels are walked without copying; anything unusual goes to read_name,
    which says what is wrong."""
    off = 12
    try:
        length = data[off]
        while length:
            if length > 63:
                return read_name(data, 12)
            off += length + 1
            length = data[off]
    except IndexError:
        return read_name(data, 12)
    if off - 11 > MAX_NAME:
        return read_name(data, 12)
    return data[12 : off + 1], off + 1


def _read_records(data: bytes, off: int, ancount: int, nscount: int, arcount: int) -> tuple[Edns | None, int]:
    """Walk answer, authority and additional; return the OPT record if any (RFC 6891 §6.1.1) and
    the offset of the TSIG record, which must be the last one (RFC 8945 §5.1)."""
    edns = None
    tsig = 0
    n = len(data)
    total = ancount + nscount + arcount
    for i in range(total):
        start = off
        owner, off = read_name(data, off)
        if off + 10 > n:
            raise QueryError(FORMERR, "truncated resource record")
        rtype, rclass, ttl, rdlen = unpack_from("!HHIH", data, off)
        off += 10
        if off + rdlen > n:
            raise QueryError(FORMERR, "rdata runs past the end of the message")
        if rtype == OPT:
            if i < ancount + nscount:
                raise QueryError(FORMERR, "OPT outside the additional section")
            if edns is not None:
                raise QueryError(FORMERR, "more than one OPT record")
            if owner != b"\x00":
                raise QueryError(FORMERR, "OPT owner is not the root")
            edns = _read_opt(data[off : off + rdlen], rclass, ttl)
        elif rtype == TSIG:
            if i != total - 1 or i < ancount + nscount:
                raise QueryError(FORMERR, "TSIG is not the last record")
            tsig = start
        off += rdlen
    return edns, tsig


def _read_opt(rdata: bytes, payload: int, ttl: int) -> Edns:
    nsid = False
    cookie = None
    off = 0
    while off < len(rdata):
        if off + 4 > len(rdata):
            raise QueryError(FORMERR, "truncated EDNS option")
        code, length = unpack_from("!HH", rdata, off)
        off += 4 + length
        if off > len(rdata):
            raise QueryError(FORMERR, "EDNS option runs past the OPT record")
        if code == OPT_NSID:
            nsid = True
        elif code == OPT_COOKIE and cookie is None:
            if length != 8 and not 16 <= length <= 40:  # RFC 7873 §5.2.2
                raise QueryError(FORMERR, f"COOKIE option of {length} octets")
            cookie = rdata[off - length : off]
    return Edns(payload, (ttl >> 16) & 0xFF, bool(ttl & 0x8000), nsid, rdata, bool(ttl & CO_BIT), cookie)
