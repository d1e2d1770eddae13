"""CH TXT version.bind / id.server (RFC 4892): the server's name and version, when configured."""

from __future__ import annotations

from ..wire import CH, REFUSED, TXT
from ..wire.query import Query
from ..wire.render import RRset, render, render_error


def chaos_names(version: str | None, identity: str | None) -> dict[bytes, bytes]:
    """Question name (wire, lowercase) → the TXT string answered."""
    names = {}
    if version:
        v = version.encode()[:255]
        names[b"\x07version\x04bind\x00"] = names[b"\x07version\x06server\x00"] = v
    if identity:
        i = identity.encode()[:255]
        names[b"\x02id\x06server\x00"] = names[b"\x08hostname\x04bind\x00"] = i
    return names


def answer_chaos(names: dict[bytes, bytes], q: Query, question: bytes, keep: int, opt: bytes | None, limit: int) -> bytes:
    """The reply, without AA as NSD and Knot answer it; REFUSED for any other CH question."""
    text = names.get(q.key)
    if text is None or q.qtype != TXT:
        return render_error(q.id, keep, question, REFUSED, opt)
    rrset = RRset(q.key, TXT, 0, (bytes([len(text)]) + text,), CH)
    return render(q.id, keep, question, q.key, ([rrset], [], []), opt, limit)
