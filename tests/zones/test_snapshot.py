"""zones/snapshot.py: the packed node form (type-sorted, one TTL per RRset), node lookups, the
builder's cuts, DNAMEs, empty non-terminals and refusals, the SOA-derived fields, and `live`."""

import dns.name
import dns.rdata
import pytest

from minidns.wire import CNAME, DNAME, MX, NS, RRSIG, SOA, TXT, A
from minidns.zones.snapshot import (Snapshot, SnapshotBuilder, ZoneError, count_children, is_subdomain, node_find,
                                    node_records, node_rrsets, origin_text, pack_node, parent)  # fmt: skip


def n(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def rd(rtype: str, text: str) -> bytes:
    return dns.rdata.from_text("IN", rtype, text).to_wire()


ORIGIN = n("example.test.")
SOA_RD = rd("SOA", "ns1.example.test. h.example.test. 2024010101 7200 3600 1209600 300")
A1, A2 = rd("A", "192.0.2.1"), rd("A", "192.0.2.2")


def build(records, origin=ORIGIN) -> Snapshot:
    b = SnapshotBuilder(origin)
    b.add(origin, SOA, 3600, SOA_RD)
    for owner, rtype, ttl, data in records:
        b.add(n(owner), rtype, ttl, data)
    return b.build()


def test_pack_node_sorts_by_type_drops_duplicates_and_gives_each_rrset_its_lowest_ttl():
    node = pack_node([(TXT, 60, b"\x01t"), (A, 300, A2), (A, 100, A1), (A, 300, A2), (MX, 50, b"\x00\x0a\x00")])
    assert node_rrsets(node) == [(A, 100, (A2, A1)), (MX, 50, (b"\x00\x0a\x00",)), (TXT, 60, (b"\x01t",))]
    assert list(node_records(node)) == [(A, 100, A2), (A, 100, A1), (MX, 50, b"\x00\x0a\x00"), (TXT, 60, b"\x01t")]
    assert node_rrsets(b"") == [] and list(node_records(b"")) == []


@pytest.mark.parametrize("want, found", [(A, (100, (A2, A1))), (TXT, (60, (b"\x01t",))), (NS, None), (MX, None), (99, None)])
def test_node_find(want, found):
    node = pack_node([(TXT, 60, b"\x01t"), (A, 100, A2), (A, 100, A1)])
    assert node_find(node, want) == found


@pytest.mark.parametrize("name, origin, inside", [
    ("www.example.test.", "example.test.", True), ("example.test.", "example.test.", True),
    ("a.b.example.test.", "example.test.", True), ("xexample.test.", "example.test.", False),
    ("test.", "example.test.", False), ("www.example.org.", "example.test.", False),
    ("anything.", ".", True),
    ("x\\007example.test.", "example.test.", False),  # the octets of the origin, inside a label
])  # fmt: skip
def test_is_subdomain_is_a_whole_label_suffix(name, origin, inside):
    assert is_subdomain(n(name), n(origin)) is inside


def test_parent_and_origin_text():
    assert parent(n("www.example.test.")) == ORIGIN and parent(n("test.")) == b"\x00"
    assert origin_text(n("Ex\\.ample.test.")) == "Ex\\.ample.test." and origin_text(b"\x00") == "."


def test_builder_lowercases_owners_finds_cuts_and_dnames_and_adds_empty_non_terminals():
    snap = build([("WWW.Example.TEST.", A, 60, A1), ("sub.example.test.", NS, 60, n("ns.sub.example.test.")),
                  ("ns.sub.example.test.", A, 60, A2), ("dn.example.test.", DNAME, 60, n("other.test.")),
                  ("a.b.c.example.test.", TXT, 60, b"\x01x"), ("example.test.", NS, 60, n("ns1.example.test."))])  # fmt: skip
    assert snap.cuts == {n("sub.example.test.")} and snap.dnames == {n("dn.example.test.")}  # the apex NS is no cut
    assert snap.nodes[n("b.c.example.test.")] == b"" and snap.nodes[n("c.example.test.")] == b""
    assert node_find(snap.nodes[n("www.example.test.")], A) == (60, (A1,))
    assert len(snap) == 8 and snap.origin == ORIGIN and snap.name == "example.test."
    assert count_children(snap) == {ORIGIN: 4, n("sub.example.test."): 1, n("c.example.test."): 1, n("b.c.example.test."): 1}


def test_serial_negative_ttl_and_soa_come_from_the_apex_soa():
    """RFC 2308 §5: the negative TTL is the lesser of the SOA's TTL and its MINIMUM."""
    snap = build([])
    assert snap.serial == 2024010101 and snap.neg_ttl == 300 and snap.keys is None
    assert (snap.soa.owner, snap.soa.rtype, snap.soa.ttl, snap.soa.rdatas) == (ORIGIN, SOA, 3600, (SOA_RD,))
    b = SnapshotBuilder(ORIGIN)
    b.add(ORIGIN, SOA, 60, SOA_RD)
    assert b.build().neg_ttl == 60


def test_a_zone_without_soa_data_outside_or_cname_beside_other_data_is_refused():
    b = SnapshotBuilder(ORIGIN)
    b.add(n("www.example.test."), A, 60, A1)
    with pytest.raises(ZoneError, match="no SOA"):
        b.build()
    with pytest.raises(ZoneError, match="www.example.org. is outside the zone example.test."):
        SnapshotBuilder(ORIGIN).add(n("www.example.org."), A, 60, A1)
    with pytest.raises(ZoneError, match="CNAME and other data"):
        build([("x.example.test.", CNAME, 60, n("www.example.test.")), ("x.example.test.", A, 60, A1)])
    ok = build([("x.example.test.", CNAME, 60, n("www.example.test.")), ("x.example.test.", RRSIG, 60, b"sig")])
    assert [t for t, _, _ in node_rrsets(ok.nodes[n("x.example.test.")])] == [CNAME, RRSIG]


def test_live_follows_the_version_shared_with_cached_replies():
    snap = build([])
    version = snap.version
    assert snap.live and version.live
    snap.live = False
    assert not version.live and not snap.live
