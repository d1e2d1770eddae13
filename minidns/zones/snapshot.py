"""Immutable zone snapshots: compact per-name record blobs, swapped in whole by one assignment.

A snapshot keeps one dict from lowercase wire owner name to a packed node: the node's records,
sorted by type, each as `type:u16 ttl:u32 rdlen:u16 rdata`. Empty non-terminals are present with an
empty node, so the closest-encloser walk of RFC 4592 §3.3.1 sees them. No dnspython object is kept:
a million-name zone costs about two small bytes objects and a dict slot per name.
"""

from __future__ import annotations

from struct import pack, unpack_from

import dns.name

from ..wire import CNAME, DNAME, NS, NSEC, RRSIG, SOA
from ..wire.render import RRset

_REC = "!HIH"


class ZoneError(ValueError):
    """A zone that cannot be served as given (no SOA at the apex, data outside the zone…)."""


def node_rrsets(node: bytes) -> list[tuple[int, int, tuple[bytes, ...]]]:
    """Decode a packed node into (type, ttl, rdatas) per RRset, in type order."""
    out: list[tuple[int, int, tuple[bytes, ...]]] = []
    off, n = 0, len(node)
    cur_type, cur_ttl, cur = -1, 0, []
    while off < n:
        rtype, ttl, rdlen = unpack_from(_REC, node, off)
        off += 8
        if rtype != cur_type:
            if cur:
                out.append((cur_type, cur_ttl, tuple(cur)))
            cur_type, cur_ttl, cur = rtype, ttl, []
        cur.append(node[off : off + rdlen])
        off += rdlen
    if cur:
        out.append((cur_type, cur_ttl, tuple(cur)))
    return out


def node_records(node: bytes):
    """Each (type, ttl, rdata) of a packed node, as stored."""
    off, n = 0, len(node)
    while off < n:
        rtype, ttl, rdlen = unpack_from(_REC, node, off)
        off += 8
        yield rtype, ttl, node[off : off + rdlen]
        off += rdlen


def node_find(node: bytes, want: int) -> tuple[int, tuple[bytes, ...]] | None:
    """The (ttl, rdatas) of the RRset of type `want` in a packed node, or None."""
    off, n = 0, len(node)
    ttl, found = 0, []
    while off < n:
        rtype, rttl, rdlen = unpack_from(_REC, node, off)
        off += 8
        if rtype == want:
            if not found:
                ttl = rttl
            found.append(node[off : off + rdlen])
        elif rtype > want:
            break
        off += rdlen
    return (ttl, tuple(found)) if found else None


def pack_node(records: list[tuple[int, int, bytes]]) -> bytes:
    """Pack (type, ttl, rdata) records: sorted by type, duplicates dropped, and each RRset given
    one TTL, the lowest of its records (RFC 2181 §5.2 forbids differing TTLs within an RRset)."""
    records = sorted(dict.fromkeys(records), key=lambda r: r[0])  # file order kept within an RRset
    ttls: dict[int, int] = {}
    for rtype, ttl, _ in records:
        ttls[rtype] = min(ttl, ttls.get(rtype, ttl))
    return b"".join(pack(_REC, t, ttls[t], len(rd)) + rd for t, _, rd in records)


def parent(name: bytes) -> bytes:
    """The wire name with its first label removed."""
    return name[name[0] + 1 :]


class Version:
    """What a cached reply depends on: `live` turns False when the snapshot (or zone table) it
    stands for is replaced. The cache holds this, not the snapshot, so a replaced snapshot is
    freed at once however many replies were cached from it."""

    __slots__ = ("live",)

    def __init__(self):
        self.live = True


class Versioned:
    """`live` of an object whose cached replies depend on its `version` (Snapshot, ZoneTable)."""

    __slots__ = ()

    @property
    def live(self) -> bool:
        return self.version.live

    @live.setter
    def live(self, value: bool) -> None:
        self.version.live = value


class Snapshot(Versioned):
    """One zone at one serial. Never changed after build; `live` turns False when it is replaced,
    which retires every response cached from it (through `version`)."""

    __slots__ = ("origin", "nodes", "cuts", "dnames", "children", "soa", "neg_ttl", "serial", "version", "name", "keys",
                 "__weakref__")  # fmt: skip

    def __init__(self, origin: bytes, nodes: dict[bytes, bytes], cuts: frozenset, dnames: frozenset, children=None):
        self.origin = origin
        self.nodes = nodes
        self.cuts = cuts
        self.dnames = dnames
        # How many names sit directly below each name; kept so a change can tell an empty
        # non-terminal from a name to drop (zones/changes.py). Counted on first use.
        self.children: dict[bytes, int] | None = children
        found = node_find(nodes.get(origin, b""), SOA)
        if found is None:
            raise ZoneError("no SOA record at the zone apex")
        ttl, rdatas = found
        minimum = unpack_from("!I", rdatas[0], len(rdatas[0]) - 4)[0]
        self.serial = unpack_from("!I", rdatas[0], len(rdatas[0]) - 20)[0]
        self.soa = RRset(origin, SOA, ttl, rdatas[:1])
        # RFC 2308 §5: the negative-caching TTL is the lesser of the SOA's TTL and MINIMUM field.
        self.neg_ttl = min(ttl, minimum)
        self.version = Version()
        self.name = origin_text(origin)
        # DNSSEC: the zone's signing keys (dnssec/signer.ZoneKeys) when it is served signed; set by
        # whoever loads the zone (store/follow.py), None for an unsigned zone.
        self.keys = None


    def __len__(self) -> int:
        return len(self.nodes)


def origin_text(name: bytes) -> str:
    """A wire name in presentation format, for logs and errors."""
    return dns.name.from_wire(name, 0)[0].to_text()


class SnapshotBuilder:
    """Collects records for one zone, then finishes them into a Snapshot.

    Each record is packed as it arrives and appended to its owner's node, so the builder's dict
    becomes the snapshot's dict with no second copy; nodes that got several records are sorted and
    de-duplicated at `build()`, and the empty non-terminals between owners and the apex are added.
    """

    def __init__(self, origin: bytes):
        self.origin = origin.lower()
        self.nodes: dict[bytes, bytes] = {}
        self.multi: set[bytes] = set()
        self.cuts: set[bytes] = set()
        self.dnames: set[bytes] = set()

    def add(self, owner: bytes, rtype: int, ttl: int, rdata: bytes) -> None:
        owner = owner.lower()
        if not is_subdomain(owner, self.origin):
            raise ZoneError(f"{origin_text(owner)} is outside the zone {origin_text(self.origin)}")
        rec = pack(_REC, rtype, ttl, len(rdata)) + rdata
        old = self.nodes.get(owner)
        if old is None:
            self.nodes[owner] = rec
        else:
            self.nodes[owner] = old + rec
            self.multi.add(owner)
        if rtype == NS and owner != self.origin:
            self.cuts.add(owner)
        elif rtype == DNAME:
            self.dnames.add(owner)

    def build(self) -> Snapshot:
        origin, nodes = self.origin, self.nodes
        for owner in self.multi:
            recs = list(node_records(nodes[owner]))
            types = {r[0] for r in recs}
            if CNAME in types and types - {CNAME, RRSIG, NSEC}:
                raise ZoneError(f"{origin_text(owner)} has a CNAME and other data (RFC 2181 §10.1)")
            nodes[owner] = pack_node(recs)
        return finish_snapshot(origin, nodes, self.cuts, self.dnames)


def finish_snapshot(origin: bytes, nodes: dict[bytes, bytes], cuts, dnames) -> Snapshot:
    """Add the empty non-terminals between each owner and the apex to `nodes` (in place) and wrap
    them in a Snapshot. Every node must already be packed and every owner inside the zone."""
    for owner in list(nodes):
        name = owner
        while len(name) > len(origin):
            name = parent(name)
            if name in nodes:
                break
            nodes[name] = b""  # an empty non-terminal (RFC 4592 §2.2.2)
    return Snapshot(origin, nodes, frozenset(cuts), frozenset(dnames))


def count_children(zone: Snapshot) -> dict[bytes, int]:
    """Names directly below each name of the zone (the apex's parent excluded)."""
    counts: dict[bytes, int] = {}
    origin_len = len(zone.origin)
    for name in zone.nodes:
        if len(name) > origin_len:
            up = parent(name)
            counts[up] = counts.get(up, 0) + 1
    return counts


def is_subdomain(name: bytes, origin: bytes) -> bool:
    """True when `origin` is a whole-label suffix of `name` (both lowercase wire)."""
    off = 0
    cut = len(name) - len(origin)
    while off < cut:
        off += name[off] + 1
    return off == cut and name[cut:] == origin
