"""The check stage: a query held to RFC 1035/6891/8906 (opcode, EDNS version, meta types, transfers
over UDP) before any zone is looked at, and the reply to one that did not parse."""

from __future__ import annotations

import logging

from ..wire import (
    AXFR,
    BADVERS,
    CD,
    EDE_PROHIBITED,
    FORMERR,
    IXFR,
    NOTAUTH,
    NOTIFY,
    NOTIMP,
    NXNAME,  # fmt: skip
    QUERY,
    RD,
    REFUSED,
)
from ..wire.query import Query, QueryError
from ..wire.render import render_error

log = logging.getLogger("minidns.engine")

OPCODE_RD = 0x7800 | RD
KEEP = OPCODE_RD | CD  # the query's header bits a reply carries back
ECHOED = (QUERY, NOTIFY)  # opcodes whose first section is a question, echoed in error replies (UPDATE's is a zone)
MAX_UDP = 65507  # the largest UDP payload over IPv4


def malformed(data: bytes, error: Exception) -> bytes:
    """The reply to a message the parser refused: its rcode (FORMERR, or NOTIMP for an opcode)
    with the question echoed when it was read (RFC 1035 §4.1.1); FORMERR for anything else."""
    if isinstance(error, QueryError):
        flags = int.from_bytes(data[2:4], "big")
        question = data[12 : error.qend] if error.qend and (flags >> 11) & 0xF in ECHOED else b""
        return render_error(int.from_bytes(data[:2], "big"), flags & OPCODE_RD, question, error.rcode, None)
    log.error("unexpected error parsing %r", data, exc_info=error)
    return render_error(int.from_bytes(data[:2], "big"), 0, b"", FORMERR, None)


def check(q: Query, tcp: bool, question: bytes, opt) -> bytes | None:
    """The error reply to a query that is not answered from a zone (RFC 6891 §6.1.3 BADVERS, RFC
    8906 §3.1.4 NOTIMP, RFC 9824 §6 NXNAME, RFC 5936 §4.2 transfers), or None. `opt(q, ext_rcode,
    ede)` makes the reply's OPT."""
    keep = q.flags & KEEP
    edns = q.edns
    if edns is not None and edns.version > 0:  # BADVERS, with our version 0
        return render_error(q.id, keep, question, 0, opt(q, BADVERS >> 4))
    if q.opcode != QUERY:
        if q.opcode == NOTIFY:  # no zone is a secondary here: NOTAUTH, as Knot answers
            return render_error(q.id, keep, question, NOTAUTH, opt(q))
        return render_error(q.id, keep, b"", NOTIMP, None)  # header only, as NSD sends it
    if q.qtype == NXNAME:  # a meta type, only ever in a compact denial's bitmap
        return render_error(q.id, keep, question, FORMERR, opt(q))
    if q.qtype == AXFR or q.qtype == IXFR:
        # Transfers are TCP-only: AXFR over UDP is NOTIMP; otherwise, until transfers are served,
        # REFUSED with EDE "Prohibited", as NSD answers.
        if q.qtype == AXFR and not tcp:
            return render_error(q.id, keep, question, NOTIMP, opt(q))
        return render_error(q.id, keep, question, REFUSED, opt(q, 0, EDE_PROHIBITED))
    return None


def udp_limit(payload: int, ours: int) -> int:
    """The largest UDP reply to a client that offers `payload`: below 512 counts as 512
    (RFC 6891 §6.2.5); never more than ours or one IPv4 datagram."""
    return min(max(512, payload), ours, MAX_UDP)
