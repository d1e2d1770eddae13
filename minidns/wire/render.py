"""The one response encoder: name compression, section counts, OPT, and truncation (RFC 1035 §4.1)."""

from __future__ import annotations

from struct import pack
from typing import NamedTuple

from . import CNAME, CO_BIT, DO_BIT, IN, MX, NS, OPT, OPT_COOKIE, OPT_EDE, OPT_NSID, PTR, QR, SOA, TC

# RFC 3597 §4: only the RFC 1035 types may have their rdata names compressed. Each entry gives the
# offsets layout: number of leading octets before the first name, and how many names follow.
_COMPRESSIBLE = {NS: (0, 1), CNAME: (0, 1), PTR: (0, 1), MX: (2, 1), SOA: (0, 2)}


class RRset(NamedTuple):
    """An RRset ready to encode. `owner` is an absolute wire name; `rdatas` are uncompressed wire."""

    owner: bytes
    rtype: int
    ttl: int
    rdatas: tuple[bytes, ...]
    rclass: int = IN


def opt_record(payload: int, ext_rcode: int, do: bool, nsid: bytes | None, ede: int | None = None, co: bool = False,
               cookie: bytes | None = None) -> bytes:
    """Our OPT pseudo-RR (RFC 6891 §6.1.2), optionally carrying a COOKIE (RFC 7873; first, so that
    it sits at a known place: right after the OPT's RDLENGTH), NSID (RFC 5001) and an Extended
    DNS Error code without text (RFC 8914), as NSD and Knot send it."""
    options = b"" if cookie is None else pack("!HH", OPT_COOKIE, len(cookie)) + cookie
    if nsid is not None:
        options += pack("!HH", OPT_NSID, len(nsid)) + nsid
    if ede is not None:
        options += pack("!HHH", OPT_EDE, 2, ede)
    flags = (DO_BIT if do else 0) | (CO_BIT if co else 0)
    return b"\x00" + pack("!HHBBHH", OPT, payload, ext_rcode, 0, flags, len(options)) + options


class _Writer:
    __slots__ = ("buf", "comp")

    def __init__(self, question: bytes, qkey: bytes, start: int = 0):
        self.buf = bytearray(12)
        self.buf += question
        self.comp: dict[bytes, int] = {}
        off = start
        while qkey and qkey[off]:
            self.comp[qkey[off:]] = 12 + off
            off += qkey[off] + 1

    def name(self, name: bytes) -> None:
        """Write `name`, pointing at an earlier copy of its longest known suffix (RFC 1035 §4.1.4)."""
        buf, comp = self.buf, self.comp
        start = len(buf)
        key = name.lower()
        off = 0
        while key[off]:
            ptr = comp.get(key[off:])
            if ptr is not None:
                buf += name[:off]
                buf += pack("!H", 0xC000 | ptr)
                return
            if start + off < 0x3FFF:
                comp[key[off:]] = start + off
            off += key[off] + 1
        buf += name

    def rrset(self, rrset: RRset) -> None:
        buf = self.buf
        head = pack("!HHI", rrset.rtype, rrset.rclass, rrset.ttl)
        layout = _COMPRESSIBLE.get(rrset.rtype)
        for rdata in rrset.rdatas:
            self.name(rrset.owner)
            buf += head
            if layout is None:
                buf += pack("!H", len(rdata))
                buf += rdata
                continue
            at = len(buf)
            buf += b"\x00\x00"
            fixed, names = layout
            buf += rdata[:fixed]
            off = fixed
            for _ in range(names):
                end = _name_end(rdata, off)
                self.name(rdata[off:end])
                off = end
            buf += rdata[off:]
            buf[at : at + 2] = pack("!H", len(buf) - at - 2)

    def rollback(self, mark: int) -> None:
        del self.buf[mark:]
        for key in [k for k, v in self.comp.items() if v >= mark]:
            del self.comp[key]


def _name_end(rdata: bytes, off: int) -> int:
    while rdata[off]:
        off += rdata[off] + 1
    return off + 1


def render(
    qid: int,
    flags: int,
    question: bytes,
    qkey: bytes,
    sections: tuple[list[RRset], list[RRset], list[RRset]],
    opt: bytes | None,
    limit: int,
    required: int = 0,
) -> bytes:
    """Encode a reply of at most `limit` octets.

    `question` is the question as the client sent it (so its letter case goes back unchanged) and
    `qkey` the lowercased name in it. When an answer or authority RRset does not fit, the reply
    sets TC and carries no records at all, as NSD and Knot do, so that the client retries over TCP
    (RFC 7766 §5). An additional RRset that does not fit is left out and the next ones are still
    tried (RFC 2181 §9), as Knot does; leaving out one of the first `required` of them, the in-domain
    glue of a referral, sets TC (RFC 9471 §3). Room for the OPT record is reserved first, so the OPT
    is always present (RFC 6891 §7).
    """
    w = _Writer(question, qkey)
    room = limit - (len(opt) if opt else 0)
    counts = [0, 0, 0]
    for i in (0, 1):
        for rrset in sections[i]:
            w.rrset(rrset)
            if len(w.buf) > room:  # answer or authority cut short: TC, and none of it is sent
                w.rollback(12 + len(question))
                counts = [0, 0, 0]
                flags |= TC
                break
            counts[i] += len(rrset.rdatas)
        if flags & TC:
            break
    else:
        for j, rrset in enumerate(sections[2]):
            mark = len(w.buf)
            w.rrset(rrset)
            if len(w.buf) > room:
                w.rollback(mark)
                if j < required:
                    flags |= TC
                continue
            counts[2] += len(rrset.rdatas)
    if opt:
        w.buf += opt
        counts[2] += 1
    w.buf[:12] = pack("!6H", qid, flags | QR, 1 if question else 0, *counts)
    return bytes(w.buf)


def render_section_tail(question_len: int, origin: bytes, rrsets: list[RRset]) -> tuple[bytes, int]:
    """The octets of `rrsets` as they follow the question in any reply whose question is
    `question_len` octets and whose name ends in `origin`: names compressed against the origin's
    place in the question and against each other, never against the rest of the question name
    (which differs from query to query). Returns (octets, RR count)."""
    qname_len = question_len - 4
    stand_in = b"\x00" * (qname_len - len(origin)) + origin  # only its origin suffix is pointed at
    w = _Writer(stand_in + b"\x00\x00\x00\x00", stand_in, qname_len - len(origin))
    for rrset in rrsets:
        w.rrset(rrset)
    return bytes(w.buf[12 + question_len :]), sum(len(r.rdatas) for r in rrsets)


def render_error(qid: int, flags: int, question: bytes, rcode: int, opt: bytes | None) -> bytes:
    """A reply carrying only the header (`flags` as given, plus QR and `rcode`), the question if
    known, and the OPT."""
    head = pack("!6H", qid, QR | flags | rcode, 1 if question else 0, 0, 0, 1 if opt else 0)
    return head + question + (opt or b"")


def render_prepared(qid: int, flags: int, question: bytes, records: bytes, count: int, reserve: int,
                    limit: int) -> bytes | None:  # fmt: skip
    """The head of a reply whose Authority records come encoded already (a compact denial's,
    dnssec/signer.py `compact_nxdomain`): header (`count` authority RRs, one OPT to follow),
    question and `records`; None when it and `reserve` more octets (the OPT, signatures to come)
    would exceed `limit` — the caller then goes to `render`, which truncates."""
    head = pack("!6H", qid, flags | QR, 1, 0, count, 1) + question + records
    return None if len(head) + reserve > limit else head


def insert_cookie(reply: bytes, at: int, cookie: bytes) -> bytes:
    """`reply` with a COOKIE option (RFC 7873 §4) carrying `cookie` first in the OPT record that
    starts at `at`."""
    rdlen = (reply[at + 9] << 8) | reply[at + 10]
    return reply[: at + 9] + pack("!HHH", rdlen + 4 + len(cookie), OPT_COOKIE, len(cookie)) + cookie + reply[at + 11 :]
