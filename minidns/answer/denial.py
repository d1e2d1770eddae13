"""The compact-denial stages of signed name errors (RFC 9824 §3.1): the flood-shaped query read
without the general parse, the reply encoded from the signer's records, and batched signing."""

from __future__ import annotations

import logging

from ..wire import AA, AXFR, IXFR, NOERROR, NXDOMAIN, NXNAME, SERVFAIL
from ..wire.query import QueryError, question_name
from ..wire.render import render_error, render_prepared

log = logging.getLogger("minidns.engine")

LATER = object()  # Engine.answer's reply when it was put in the caller's `later` list (Deferred)
MAX_LATER = 64  # deferred replies a caller holds at most before it finishes them
NOT_QUICK = (AXFR, IXFR, NXNAME)  # query types the general way answers with an error
ONE_QUESTION_AND_OPT = b"\x00\x01\x00\x00\x00\x00\x00\x01"  # QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT


class Deferred:
    """A signed name error whose NSEC signatures are still to be made (`finish`): the reply
    before and after its RRSIG records, and what finishing needs (the query and the peer it came
    from, when for the statistics, the header and question for a SERVFAIL)."""

    __slots__ = ("head", "pending", "sigs", "tail", "query", "peer", "started", "qtype", "qid", "keep", "question")

    def __init__(self, head: bytes, pending: tuple, tail: bytes, qid: int, keep: int, question: bytes):
        self.head, self.pending, self.sigs, self.tail = head, pending, None, tail
        self.qid, self.keep, self.question = qid, keep, question
        self.query = self.peer = self.started = self.qtype = None

    def whole(self, records) -> bytes:
        """The reply made whole with its signatures (`records`: Signer.pending_records), or
        SERVFAIL when they could not be made."""
        if self.sigs is None:
            return render_error(self.qid, self.keep, self.question, SERVFAIL, None)
        return self.head + records(self.pending, self.sigs) + self.tail


def flood_question(data: bytes) -> tuple[bytes, int, int] | None:
    """(question name, end of the question, qtype) of a query of the random-subdomain flood's one
    shape — a QUERY with one question in class IN and one OPT record (version 0, DO set, no
    options) ending the message — or None for any other, which goes the general way."""
    if data[-2:] != b"\x00\x00" or data[4:12] != ONE_QUESTION_AND_OPT or data[2] & 0xF8:
        return None  # not ending with an OPT without options, other counts, QR or an opcode set
    try:
        qname, off = question_name(data)
    except QueryError:
        return None  # the general way answers FORMERR
    qend = off + 4
    if not _in_class_with_do(data, qend):
        return None
    qtype = (data[off] << 8) | data[off + 1]
    return None if qtype in NOT_QUICK else (qname, qend, qtype)


def _in_class_with_do(data: bytes, qend: int) -> bool:
    """Whether the question ending at `qend` is in class IN and followed by the OPT, last, of
    EDNS version 0 with DO set."""
    return (len(data) == qend + 11 and data[qend - 2 : qend + 3] == b"\x00\x01\x00\x00\x29" and not data[qend + 6]
            and bool(data[qend + 7] & 0x80))  # fmt: skip


def encode_denial(denial: tuple, qid: int, keep: int, question: bytes, co: bool, opt: bytes, limit: int,
                  sig_octets: int, later: list | None):  # fmt: skip
    """The encode stage of a compact denial: `denial` is the signer's (authority octets, RR count,
    pending signatures or None). The reply; LATER when it went into `later` to be signed; None
    when it does not fit `limit` (the general encoder then truncates)."""
    authority, count, pending = denial
    flags = keep | AA | (NXDOMAIN if co else NOERROR)
    if pending is None:
        head = render_prepared(qid, flags, question, authority, count, len(opt), limit)
        return None if head is None else head + opt
    head = render_prepared(qid, flags, question, authority, count, sig_octets + len(opt), limit)
    if head is None:
        return None
    later.append(Deferred(head, pending, opt, qid, keep, question))
    return LATER


def finish(signer, stats, later: list, clock) -> list[tuple[bytes, object, bytes]]:
    """The sign stage of the replies deferred into `later` (which is emptied), each with the peer
    it goes to and the query it answers, each counted in `stats`."""
    sign_deferred(signer, later)
    out = []
    answered = stats.answered
    records = signer.pending_records
    for d in later:
        reply = d.whole(records)
        answered(False, d.qtype, reply, clock() - d.started)
        out.append((reply, d.peer, d.query))
    later.clear()
    return out


def sign_deferred(signer, later: list) -> None:
    """Make the NSEC signatures of the deferred replies one after another, the signing alone: that
    keeps the signing code and its tables in the CPU's caches."""
    sign = signer.sign_pending
    for d in later:
        try:
            d.sigs = sign(d.pending)
        except Exception:  # noqa: BLE001 - RFC 8906: never leave a query unanswered (SERVFAIL)
            log.exception("internal error signing a name error for %r", d.question)
