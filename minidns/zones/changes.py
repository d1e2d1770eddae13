"""Apply one zone change (RRs removed, RRs added: the difference sequence of RFC 1995 §4) to a
snapshot, giving the next snapshot. The old snapshot is left as it was, so queries and transfers
holding it finish on it.

A change travels as two byte strings of resource records in RFC 1035 §4.1.3 wire form with
uncompressed owner names — the form the change log stores and IXFR later sends.
"""

from __future__ import annotations

from struct import error as struct_error
from struct import pack, unpack_from

from ..wire import CNAME, DNAME, IN, NS, NSEC, RRSIG
from .snapshot import Snapshot, ZoneError, is_subdomain, count_children, node_records, origin_text, pack_node, parent

RR = tuple[bytes, int, int, bytes]  # (lowercase wire owner, type, ttl, rdata)


def pack_rrs(rrs) -> bytes:
    """(owner, type, ttl, rdata) records as uncompressed wire RRs of class IN."""
    return b"".join(owner + pack("!HHIH", rtype, IN, ttl, len(rdata)) + rdata for owner, rtype, ttl, rdata in rrs)


def unpack_rrs(data: bytes) -> list[RR]:
    """The inverse of `pack_rrs`; owner names come back lowercase."""
    out: list[RR] = []
    off, n = 0, len(data)
    try:
        while off < n:
            start = off
            while data[off]:
                off += data[off] + 1
            off += 1
            owner = data[start:off].lower()
            rtype, _, ttl, rdlen = unpack_from("!HHIH", data, off)
            off += 10
            out.append((owner, rtype, ttl, data[off : off + rdlen]))
            off += rdlen
    except (IndexError, struct_error):  # cut inside an owner name or an RR header
        raise ValueError("truncated resource record") from None
    if off != n:
        raise ValueError("truncated resource record")
    return out


def apply_changes(zone: Snapshot, steps: list[tuple[list[RR], list[RR]]]) -> Snapshot:
    """The snapshot after each step's RRs are removed, then its RRs added, step after step (one
    copy of the zone for them all). Removing an RR matches type and RDATA and ignores the TTL
    (RFC 1995 §4); an added RR sets the TTL of its whole RRset."""
    origin = zone.origin
    nodes = dict(zone.nodes)
    children = dict(zone.children if zone.children is not None else count_children(zone))
    touched: dict[bytes, list[tuple[int, int, bytes]]] = {}

    def records(owner: bytes) -> list[tuple[int, int, bytes]]:
        recs = touched.get(owner)
        if recs is None:
            if not is_subdomain(owner, origin):
                raise ZoneError(f"{origin_text(owner)} is outside the zone {zone.name}")
            recs = touched[owner] = list(node_records(nodes.get(owner, b"")))
        return recs

    for removed, added in steps:
        for owner, rtype, _, rdata in removed:
            recs = records(owner)
            recs[:] = [r for r in recs if r[0] != rtype or r[2] != rdata]
        for owner, rtype, ttl, rdata in added:
            recs = records(owner)
            recs[:] = [(t, ttl if t == rtype else rttl, rd) for t, rttl, rd in recs if t != rtype or rd != rdata]
            recs.append((rtype, ttl, rdata))

    cuts, dnames = set(zone.cuts), set(zone.dnames)
    for owner, recs in touched.items():
        types = {r[0] for r in recs}
        if CNAME in types and types - {CNAME, RRSIG, NSEC}:
            raise ZoneError(f"{origin_text(owner)} has a CNAME and other data (RFC 2181 §10.1)")
        _mark(cuts, owner, NS in types and owner != origin)
        _mark(dnames, owner, DNAME in types)
        if recs:
            if owner not in nodes:
                _add_name(nodes, children, owner, origin)
            nodes[owner] = pack_node(recs)
        elif owner in nodes:
            if owner == origin or children.get(owner):
                nodes[owner] = b""  # still an empty non-terminal (RFC 4592 §2.2.2)
            else:
                _remove_name(nodes, children, owner, origin)
    return Snapshot(origin, nodes, frozenset(cuts), frozenset(dnames), children)


def _mark(names: set, owner: bytes, present: bool) -> None:
    if present:
        names.add(owner)
    else:
        names.discard(owner)


def _add_name(nodes: dict, children: dict, owner: bytes, origin: bytes) -> None:
    """Enter a new name, and the empty non-terminals up to the first name already present."""
    nodes[owner] = b""
    while len(owner) > len(origin):
        up = parent(owner)
        children[up] = children.get(up, 0) + 1
        if up in nodes:
            return
        nodes[up] = b""
        owner = up


def _remove_name(nodes: dict, children: dict, owner: bytes, origin: bytes) -> None:
    """Drop a name with no data and nothing below it, and every empty non-terminal that leaves
    with nothing below it."""
    while True:
        del nodes[owner]
        up = parent(owner)
        left = children[up] - 1
        if left:
            children[up] = left
            return
        del children[up]
        if up == origin or nodes.get(up) != b"":
            return
        owner = up
