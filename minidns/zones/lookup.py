"""Authoritative lookup (RFC 1034 §4.3.2, RFC 2181, RFC 4592, RFC 6672): snapshot + question → Answer.

No I/O and no encoding here: the result names its sections as RRsets and the encoder writes them.
Responses are minimal, as Knot's are: no apex NS in authority of positive answers; additional A/AAAA
only for the targets of NS, MX and SRV records that are in the zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..wire import ANY, CNAME, DNAME, DS, MX, NOERROR, NS, NXDOMAIN, SRV, YXDOMAIN, A, AAAA
from ..wire.query import MAX_NAME
from ..wire.render import RRset
from .snapshot import Snapshot, is_subdomain, node_find, node_rrsets, parent

MAX_CHAIN = 16  # CNAME/DNAME links followed before the answer is returned as it stands

# Where the name of an additional-section target sits in each rdata (RFC 3596 §3, RFC 2782).
_TARGET_OFFSET = {NS: 0, MX: 2, SRV: 6}


@dataclass(slots=True)
class Answer:
    """An abstract reply: rcode, AA and the three sections, before any encoding."""

    rcode: int = NOERROR
    aa: bool = True
    answer: list[RRset] = field(default_factory=list)
    authority: list[RRset] = field(default_factory=list)
    additional: list[RRset] = field(default_factory=list)
    glue: int = 0  # the first `glue` additional RRsets are a referral's in-domain glue (RFC 9471)
    # What a DNSSEC signer must prove (dnssec/signer.py): the name found not to exist, or the name
    # (and its node) found without the type asked for; answer owners made from a wildcard → the
    # wildcard's owner (RFC 4592 §3.3.1, RFC 4035 §3.1.3.3).
    nxname: bytes | None = None
    nodata: bytes | None = None
    nodata_node: bytes = b""
    wild: dict | None = None


def resolve(zone: Snapshot, qname: bytes, qtype: int) -> Answer:
    """Answer `qtype` at `qname` (lowercase wire, inside `zone`) from the snapshot alone."""
    ans = Answer()
    seen = {qname}
    name: bytes | None = qname
    for _ in range(MAX_CHAIN):
        name = _answer_name(zone, name, qtype, ans, seen)
        if name is None:
            break
    _add_additional(zone, ans)
    return ans


def _answer_name(zone: Snapshot, name: bytes, qtype: int, ans: Answer, seen: set) -> bytes | None:
    """One step of §4.3.2: answer at `name`; return the next name when a CNAME/DNAME leads on."""
    if zone.cuts or zone.dnames:
        hit = find_cut_or_dname(zone, name, qtype)
        if hit is not None:
            owner, kind = hit
            if kind == NS:
                answer_referral(zone, owner, ans)
                return None
            return synthesize_dname(zone, name, qtype, owner, ans, seen)
    node = zone.nodes.get(name)
    if node is None:
        wildcard = b"\x01*" + closest_encloser(zone, name)
        node = zone.nodes.get(wildcard)
        if node is None:
            answer_name_error(zone, ans, name)
            return None
        if ans.wild is None:
            ans.wild = {}
        ans.wild[name] = wildcard
    if qtype == ANY:
        answer_any(zone, name, node, ans)
        return None
    found = node_find(node, qtype)
    if found is not None:
        ans.answer.append(RRset(name, qtype, found[0], found[1]))
        return None
    if qtype != CNAME:
        cname = node_find(node, CNAME)
        if cname is not None:
            ans.answer.append(RRset(name, CNAME, cname[0], cname[1]))
            return _next_in_zone(zone, cname[1][0], seen)
    answer_nodata(zone, ans, name, node)
    return None


def is_name_error(zone: Snapshot, qname: bytes, qtype: int) -> bool:
    """Whether `resolve` would answer `qname` with a name error at once: no node, not at or below
    a zone cut or DNAME, no wildcard at its closest encloser (the tests of `_answer_name`,
    without building an Answer). The engine's way to a signed name error."""
    nodes = zone.nodes
    if qname in nodes:
        return False
    encloser = closest_encloser(zone, qname)
    # A zone cut or DNAME has an owner node, so one above `qname` is at or above its closest
    # encloser: none can apply when that is the apex (which is neither).
    if encloser != zone.origin and (zone.cuts or zone.dnames) and find_cut_or_dname(zone, qname, qtype) is not None:
        return False
    return b"\x01*" + encloser not in nodes


def find_cut_or_dname(zone: Snapshot, name: bytes, qtype: int) -> tuple[bytes, int] | None:
    """The highest zone cut or DNAME between the apex and `name` (RFC 1034 §4.3.2 3b, RFC 6672 §3).

    A cut at `name` itself does not apply to a DS query: DS lives on the parent side (RFC 4035
    §3.1.4.1). A DNAME never applies to its own owner.
    """
    offsets = []
    off, below = 0, len(name) - len(zone.origin)
    while off < below:
        offsets.append(off)
        off += name[off] + 1
    for off in reversed(offsets):
        suffix = name[off:]
        if suffix in zone.cuts and (off or qtype != DS):
            return suffix, NS
        if off and suffix in zone.dnames:
            return suffix, DNAME
    return None


def closest_encloser(zone: Snapshot, name: bytes) -> bytes:
    """The longest existing ancestor of `name`, empty non-terminals included (RFC 4592 §3.3.1)."""
    nodes = zone.nodes
    while name not in nodes:
        name = parent(name)
    return name


def answer_referral(zone: Snapshot, cut: bytes, ans: Answer) -> None:
    """Referral to the child: NS in authority, AA clear unless earlier data was ours (RFC 1034 §4.3.2)."""
    ttl, rdatas = node_find(zone.nodes[cut], NS)
    ans.authority.append(RRset(cut, NS, ttl, rdatas))
    if not ans.answer:
        ans.aa = False


def synthesize_dname(zone: Snapshot, name: bytes, qtype: int, owner: bytes, ans: Answer, seen: set) -> bytes | None:
    """DNAME substitution (RFC 6672 §2.2): the DNAME, then a CNAME from `name` to the new name,
    which is followed unless the CNAME itself was asked for."""
    ttl, rdatas = node_find(zone.nodes[owner], DNAME)
    ans.answer.append(RRset(owner, DNAME, ttl, rdatas))
    target = name[: len(name) - len(owner)] + rdatas[0]
    if len(target) > MAX_NAME:
        ans.rcode = YXDOMAIN
        return None
    ans.answer.append(RRset(name, CNAME, ttl, (target,)))
    if qtype == CNAME:
        return None
    return _next_in_zone(zone, target, seen)


def answer_any(zone: Snapshot, name: bytes, node: bytes, ans: Answer) -> None:
    """RFC 8482 §4.1: answer ANY with one RRset (the lowest type), as NSD and Knot do."""
    rrsets = node_rrsets(node)
    if not rrsets:
        answer_nodata(zone, ans, name, node)
        return
    rtype, ttl, rdatas = rrsets[0]
    ans.answer.append(RRset(name, rtype, ttl, rdatas))


def answer_nodata(zone: Snapshot, ans: Answer, name: bytes, node: bytes) -> None:
    """NOERROR with no data: the SOA with the negative TTL in authority (RFC 2308 §2.2)."""
    ans.nodata, ans.nodata_node = name, node
    ans.authority.append(RRset(zone.origin, zone.soa.rtype, zone.neg_ttl, zone.soa.rdatas))


def answer_name_error(zone: Snapshot, ans: Answer, name: bytes) -> None:
    """NXDOMAIN: the SOA with the negative TTL in authority (RFC 2308 §2.1)."""
    ans.rcode = NXDOMAIN
    ans.nxname = name
    ans.authority.append(RRset(zone.origin, zone.soa.rtype, zone.neg_ttl, zone.soa.rdatas))


def _next_in_zone(zone: Snapshot, target: bytes, seen: set) -> bytes | None:
    """Follow a CNAME/DNAME target while it stays in this zone and does not loop (RFC 1034 §3.6.2)."""
    key = target.lower()
    if key in seen or not is_subdomain(key, zone.origin):
        return None
    seen.add(key)
    return key


def _add_additional(zone: Snapshot, ans: Answer) -> None:
    """A and AAAA for in-zone targets of NS, MX and SRV (RFC 1035 §3.3.9/§4.3.2, RFC 2782).

    A referral's in-domain glue (name servers at or below the cut) comes first and is counted in
    `ans.glue`: the encoder must set TC when it cannot all be sent (RFC 9471 §3)."""
    targets: list[bytes] = []
    for rrset in (*ans.answer, *ans.authority):
        off = _TARGET_OFFSET.get(rrset.rtype)
        if off is None:
            continue
        for rdata in rrset.rdatas:
            key = rdata[off:].lower()
            if key not in targets:
                targets.append(key)
    cut = next((r.owner for r in ans.authority if r.rtype == NS and r.owner != zone.origin), None)
    if cut is not None:
        required = [t for t in targets if is_subdomain(t, cut)]
        targets = required + [t for t in targets if t not in required]
    nodes = zone.nodes
    for i, key in enumerate(targets):
        node = nodes.get(key)
        if not node:
            continue
        for rtype in (A, AAAA):
            found = node_find(node, rtype)
            if found is not None:
                ans.additional.append(RRset(key, rtype, found[0], found[1]))
                if cut is not None and i < len(required):
                    ans.glue += 1
