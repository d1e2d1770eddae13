"""apply_changes and the change-log RR encoding, without a database.

Each case applies steps of (removed RRs, added RRs) to a snapshot loaded from zone text and checks
the result three ways: against a snapshot loaded from the zone text the change should produce
(nodes, cuts, dnames, ENT child counts), by the answers `resolve` gives, and that the snapshot it
started from is untouched.
"""

import random

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from minidns.wire import NOERROR, NXDOMAIN
from minidns.zones.changes import apply_changes, pack_rrs, unpack_rrs
from minidns.zones.loader import load_zone_text
from minidns.zones.lookup import resolve
from minidns.zones.snapshot import ZoneError, count_children, node_find, node_records

ORIGIN = "zone.test."
_O = dns.name.from_text(ORIGIN)

BASE = [
    "$TTL 3600",
    "@        SOA   ns1 hostmaster 1 7200 3600 1209600 300",
    "@        NS    ns1",
    "ns1      A     192.0.2.53",
    "www      A     192.0.2.80",
    "www      A     192.0.2.81",
    "host.ent A     192.0.2.9",
    "deep     A     192.0.2.7",
    "x.y.deep TXT   \"below\"",
    "alias    CNAME www",
    "sub      NS    ns.other.test.",
]


def zone(drop=(), add=()):
    """The base zone with lines dropped (each must be there) and lines added."""
    for line in drop:
        assert line in BASE, line
    return load_zone_text("\n".join([line for line in BASE if line not in drop] + list(add)), ORIGIN)


def w(name: str) -> bytes:
    return dns.name.from_text(name, _O).to_wire().lower()


def rr(name: str, rtype: str, ttl: int, text: str):
    t = dns.rdatatype.from_text(rtype)
    return (w(name), t, ttl, dns.rdata.from_text(dns.rdataclass.IN, t, text, origin=_O, relativize=False).to_wire())


def soa(serial: int, ttl: int = 3600):
    return rr("@", "SOA", ttl, f"ns1 hostmaster {serial} 7200 3600 1209600 300")


def canon(snap):
    """Nodes with each node's records sorted: record order inside an RRset carries no meaning."""
    return {owner: sorted(node_records(node)) for owner, node in snap.nodes.items()}


def assert_same_zone(got, want):
    assert canon(got) == canon(want)
    assert got.cuts == want.cuts
    assert got.dnames == want.dnames
    assert got.serial == want.serial
    assert got.children == count_children(want)  # the maintained counts equal a recount


def ask(snap, name, rtype="A"):
    return resolve(snap, w(name), dns.rdatatype.from_text(rtype))


def outcome(snap, name, rtype="A"):
    """"NXDOMAIN", "NODATA", "REFERRAL" or the answer's RRset count."""
    ans = ask(snap, name, rtype)
    if ans.rcode == NXDOMAIN:
        return "NXDOMAIN"
    assert ans.rcode == NOERROR
    if ans.answer:
        return len(ans.answer)
    if ans.authority and ans.authority[0].rtype == dns.rdatatype.NS:
        return "REFERRAL"
    assert ans.authority[0].rtype == dns.rdatatype.SOA
    return "NODATA"


# (id, steps, expected zone (drop, add), probes: (name, type, outcome) after the change)
CASES = [
    (
        "add-deep-name-creates-ENTs",
        [([], [rr("a.b.c", "A", 3600, "192.0.2.1")])],
        ((), ["a.b.c A 192.0.2.1"]),
        [("a.b.c", "A", 1), ("b.c", "A", "NODATA"), ("c", "A", "NODATA"), ("z.c", "A", "NXDOMAIN")],
    ),
    (
        "remove-last-record-at-deep-name-removes-ENTs",
        [([rr("x.y.deep", "TXT", 3600, '"below"')], [])],
        (['x.y.deep TXT   "below"'], []),
        [("x.y.deep", "TXT", "NXDOMAIN"), ("y.deep", "A", "NXDOMAIN"), ("deep", "A", 1)],
    ),
    (
        "remove-keeps-ENT-with-other-children",
        [
            ([], [rr("q.y.deep", "A", 3600, "192.0.2.2")]),
            ([rr("x.y.deep", "TXT", 3600, '"below"')], []),
        ],
        (['x.y.deep TXT   "below"'], ["q.y.deep A 192.0.2.2"]),
        [("x.y.deep", "TXT", "NXDOMAIN"), ("y.deep", "A", "NODATA"), ("q.y.deep", "A", 1)],
    ),
    (
        "remove-all-data-at-name-with-children-leaves-ENT",
        [([rr("deep", "A", 3600, "192.0.2.7")], [])],
        (["deep     A     192.0.2.7"], []),
        [("deep", "A", "NODATA"), ("x.y.deep", "TXT", 1)],
    ),
    (
        "data-added-at-ENT-then-removed-leaves-ENT",
        [([], [rr("ent", "A", 3600, "192.0.2.10")]), ([rr("ent", "A", 3600, "192.0.2.10")], [])],
        ((), []),
        [("ent", "A", "NODATA"), ("host.ent", "A", 1)],
    ),
    (
        "remove-ENT-child-removes-ENT-chain-to-data",
        [([rr("host.ent", "A", 3600, "192.0.2.9")], [])],
        (["host.ent A     192.0.2.9"], []),
        [("ent", "A", "NXDOMAIN"), ("host.ent", "A", "NXDOMAIN")],
    ),
    (
        "NS-at-non-apex-delegates",
        [([], [rr("d.deep", "NS", 3600, "ns.other.test.")])],
        ((), ["d.deep NS ns.other.test."]),
        [("d.deep", "A", "REFERRAL"), ("w.d.deep", "A", "REFERRAL"), ("deep", "A", 1)],
    ),
    (
        "NS-removed-undelegates",
        [([rr("sub", "NS", 3600, "ns.other.test.")], [])],
        (["sub      NS    ns.other.test."], []),
        [("sub", "A", "NXDOMAIN"), ("w.sub", "A", "NXDOMAIN")],
    ),
    (
        "NS-at-apex-is-no-cut",
        [([], [rr("@", "NS", 3600, "ns.other.test.")])],
        ((), ["@ NS ns.other.test."]),
        [("@", "NS", 1), ("www", "A", 1)],
    ),
    (
        "DNAME-added",
        [([], [rr("dn", "DNAME", 3600, "other.test.")])],
        ((), ["dn DNAME other.test."]),
        [("a.dn", "A", 2), ("dn", "A", "NODATA")],  # DNAME + synthesized CNAME
    ),
    (
        "DNAME-added-then-removed",
        [([], [rr("dn", "DNAME", 3600, "other.test.")]), ([rr("dn", "DNAME", 3600, "other.test.")], [])],
        ((), []),
        [("a.dn", "A", "NXDOMAIN"), ("dn", "A", "NXDOMAIN")],
    ),
    (
        "added-RR-sets-TTL-of-whole-RRset-down",
        [([], [rr("www", "A", 60, "192.0.2.82")])],
        (["www      A     192.0.2.80", "www      A     192.0.2.81"],
         ["www 60 A 192.0.2.80", "www 60 A 192.0.2.81", "www 60 A 192.0.2.82"]),
        [("www", "A", 1)],
    ),
    (
        "added-RR-sets-TTL-of-whole-RRset-up",
        [([], [rr("www", "A", 86400, "192.0.2.80")])],
        (["www      A     192.0.2.80", "www      A     192.0.2.81"], ["www 86400 A 192.0.2.80", "www 86400 A 192.0.2.81"]),
        [("www", "A", 1)],
    ),
    (
        "removal-ignores-TTL",
        [([rr("www", "A", 5, "192.0.2.80")], [])],
        (["www      A     192.0.2.80"], []),
        [("www", "A", 1)],
    ),
    (
        "removal-of-absent-RR-is-harmless",
        [([rr("www", "A", 3600, "192.0.2.99"), rr("nothere", "A", 3600, "192.0.2.99")], [])],
        ((), []),
        [("www", "A", 1), ("nothere", "A", "NXDOMAIN")],
    ),
    (
        "add-then-remove-in-later-step-is-gone",
        [([], [rr("new", "TXT", 3600, '"x"')]), ([soa(1)], [soa(2)]), ([rr("new", "TXT", 3600, '"x"')], [])],
        (["@        SOA   ns1 hostmaster 1 7200 3600 1209600 300"],
         ["@ SOA ns1 hostmaster 2 7200 3600 1209600 300"]),
        [("new", "TXT", "NXDOMAIN")],
    ),
    (
        "remove-then-add-in-later-step-is-back",
        [([rr("www", "A", 3600, "192.0.2.80")], []), ([], [rr("www", "A", 3600, "192.0.2.80")])],
        ((), []),
        [("www", "A", 1)],
    ),
    (
        "SOA-replaced-sets-serial",
        [([soa(1)], [soa(7)]), ([soa(7)], [soa(8, ttl=600)])],
        (["@        SOA   ns1 hostmaster 1 7200 3600 1209600 300"],
         ["@ 600 SOA ns1 hostmaster 8 7200 3600 1209600 300"]),
        [("@", "SOA", 1)],
    ),
    (
        "CNAME-replaced-by-A-in-one-step",
        [([rr("alias", "CNAME", 3600, "www")], [rr("alias", "A", 3600, "192.0.2.3")])],
        (["alias    CNAME www"], ["alias A 192.0.2.3"]),
        [("alias", "A", 1), ("alias", "CNAME", "NODATA")],
    ),
    (
        "wildcard-added-and-ENT-above",
        [([], [rr("*.wild.c", "A", 3600, "192.0.2.4")])],
        ((), ["*.wild.c A 192.0.2.4"]),
        [("any.wild.c", "A", 1), ("wild.c", "A", "NODATA"), ("c", "A", "NODATA")],
    ),
]


@pytest.mark.parametrize("steps, expected, probes", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_apply_changes(steps, expected, probes):
    old = zone()
    before = (dict(old.nodes), old.cuts, old.dnames, old.serial, count_children(old))
    new = apply_changes(old, steps)
    assert_same_zone(new, zone(*expected))
    for name, rtype, want in probes:
        assert outcome(new, name, rtype) == want, (name, rtype)
    # The old snapshot is left exactly as it was.
    assert (old.nodes, old.cuts, old.dnames, old.serial) == before[:4]
    assert old.children is None or old.children == before[4]


def test_ent_probes_before_and_after():
    """The same names answer NXDOMAIN before the deep add, NODATA after, NXDOMAIN after removal."""
    s0 = zone()
    assert [outcome(s0, n) for n in ("a.b.c", "b.c", "c")] == ["NXDOMAIN"] * 3
    s1 = apply_changes(s0, [([], [rr("a.b.c", "A", 300, "192.0.2.1"), rr("z.c", "A", 300, "192.0.2.2")])])
    assert [outcome(s1, n) for n in ("a.b.c", "b.c", "c", "z.c")] == [1, "NODATA", "NODATA", 1]
    s2 = apply_changes(s1, [([rr("a.b.c", "A", 300, "192.0.2.1")], [])])
    assert [outcome(s2, n) for n in ("a.b.c", "b.c", "c", "z.c")] == ["NXDOMAIN", "NXDOMAIN", "NODATA", 1]
    s3 = apply_changes(s2, [([rr("z.c", "A", 300, "192.0.2.2")], [])])
    assert [outcome(s3, n) for n in ("a.b.c", "b.c", "c", "z.c")] == ["NXDOMAIN"] * 4
    assert canon(s3) == canon(s0)
    # Every intermediate snapshot kept its answers.
    assert outcome(s1, "b.c") == "NODATA" and outcome(s2, "c") == "NODATA"


def test_delegation_add_and_remove_changes_cuts():
    s0 = zone()
    assert w("d") not in s0.cuts
    s1 = apply_changes(s0, [([], [rr("d", "NS", 3600, "ns1.d"), rr("ns1.d", "A", 3600, "192.0.2.5")])])
    assert w("d") in s1.cuts
    ans = ask(s1, "host.d")
    assert not ans.aa and ans.authority[0].owner == w("d") and ans.additional  # referral with glue
    s2 = apply_changes(s1, [([rr("d", "NS", 3600, "ns1.d")], [])])
    assert w("d") not in s2.cuts
    assert outcome(s2, "ns1.d") == 1  # no longer occluded
    assert outcome(s2, "d") == "NODATA"  # ENT above ns1.d
    assert w("d") in s1.cuts  # s1 unchanged


def test_dname_add_and_remove_changes_dnames():
    s0 = zone()
    s1 = apply_changes(s0, [([], [rr("dn", "DNAME", 3600, "zone.test.")])])
    assert s1.dnames == {w("dn")}
    ans = ask(s1, "www.dn")
    assert [r.rtype for r in ans.answer] == [dns.rdatatype.DNAME, dns.rdatatype.CNAME, dns.rdatatype.A]
    s2 = apply_changes(s1, [([rr("dn", "DNAME", 60, "zone.test.")], [])])
    assert s2.dnames == frozenset()
    assert outcome(s2, "www.dn") == "NXDOMAIN"
    assert s1.dnames == {w("dn")}


def test_ttl_follows_added_rr_and_removal_ignores_ttl():
    s0 = zone()
    s1 = apply_changes(s0, [([], [rr("www", "A", 120, "192.0.2.80")])])
    ttl, rdatas = node_find(s1.nodes[w("www")], dns.rdatatype.A)
    assert ttl == 120 and len(rdatas) == 2
    assert all(t == 120 for rtype, t, _ in node_records(s1.nodes[w("www")]) if rtype == dns.rdatatype.A)
    # Removed with a TTL matching neither.
    s2 = apply_changes(s1, [([rr("www", "A", 99999, "192.0.2.80"), rr("www", "A", 0, "192.0.2.81")], [])])
    assert outcome(s2, "www") == "NXDOMAIN"
    assert node_find(s0.nodes[w("www")], dns.rdatatype.A)[0] == 3600


@pytest.mark.parametrize(
    "added",
    [
        [rr("www", "CNAME", 3600, "ns1")],  # CNAME beside A
        [rr("alias", "A", 3600, "192.0.2.1")],  # A beside CNAME
        [rr("new", "CNAME", 3600, "www"), rr("new", "TXT", 3600, '"x"')],  # both new
    ],
    ids=["cname-beside-a", "a-beside-cname", "new-name-both"],
)
def test_cname_and_other_data_raises(added):
    s0 = zone()
    nodes = dict(s0.nodes)
    with pytest.raises(ZoneError):
        apply_changes(s0, [([], added)])
    assert s0.nodes == nodes


def test_cname_conflict_across_steps_raises():
    """The check is on the end state: a conflict made over two steps is caught."""
    with pytest.raises(ZoneError):
        apply_changes(zone(), [([], [rr("n", "A", 60, "192.0.2.1")]), ([], [rr("n", "CNAME", 60, "www")])])


def test_outside_zone_raises():
    out = (dns.name.from_text("www.other.test.").to_wire(), dns.rdatatype.A, 60, b"\xc0\x00\x02\x01")
    with pytest.raises(ZoneError):
        apply_changes(zone(), [([], [out])])


def test_removing_soa_raises():
    with pytest.raises(ZoneError):
        apply_changes(zone(), [([soa(1)], [])])


def test_chained_snapshots_are_all_immutable():
    snaps = [zone()]
    copies = [dict(snaps[0].nodes)]
    for i in range(10):
        step = ([], [rr(f"n{i}.chain", "A", 60, f"192.0.2.{i}")])
        if i % 2:
            step = ([rr(f"n{i - 1}.chain", "A", 60, f"192.0.2.{i - 1}")], step[1])
        snaps.append(apply_changes(snaps[-1], [step]))
        copies.append(dict(snaps[-1].nodes))
    for snap, nodes in zip(snaps, copies):
        assert snap.nodes == nodes
    assert outcome(snaps[1], "n0.chain") == 1 and outcome(snaps[2], "n0.chain") == "NXDOMAIN"


def test_random_steps_equal_zone_text():
    """Random adds/removes/TTL changes, applied step by step and all at once, equal the zone text
    that a model of the same edits gives."""
    rnd = random.Random(1995)
    names = ["a", "b.a", "c.b.a", "d", "e.d", "f.e.d", "g", "*.g", "h.g", "deep", "y.deep", "z.y.deep"]
    model: dict[tuple[str, str], tuple[int, list[str]]] = {}
    base = zone(drop=[line for line in BASE if line.split()[0] in ("deep", "x.y.deep")])
    snap_each = base
    steps = []
    for _ in range(300):
        name = rnd.choice(names)
        rtype = rnd.choice(["A", "TXT"])
        value = f"192.0.2.{rnd.randrange(4)}" if rtype == "A" else f'"t{rnd.randrange(4)}"'
        ttl = rnd.choice([60, 300, 3600])
        key = (name, rtype)
        if rnd.random() < 0.5 and key in model:
            have_ttl, values = model[key]
            gone = rnd.choice(values)
            values.remove(gone)
            if not values:
                del model[key]
            step = ([rr(name, rtype, rnd.choice([1, have_ttl]), gone)], [])
        else:
            _, values = model.get(key, (ttl, []))
            if value not in values:
                values.append(value)
            model[key] = (ttl, values)
            step = ([], [rr(name, rtype, ttl, value)])
        steps.append(step)
        snap_each = apply_changes(snap_each, [step])
    lines = [f"{n} {t} {rt} {v}" for (n, rt), (t, vs) in model.items() for v in vs]
    want = load_zone_text("\n".join([line for line in BASE if line.split()[0] not in ("deep", "x.y.deep")] + lines), ORIGIN)
    assert_same_zone(snap_each, want)
    snap_all = apply_changes(base, steps)
    assert_same_zone(snap_all, want)


# -- pack_rrs / unpack_rrs ----------------------------------------------------------------------

RRS = [
    soa(5),
    rr("www", "A", 300, "192.0.2.1"),
    rr("@", "MX", 0, "10 mail"),
    rr("t", "TXT", 2**31 - 1, '"hello" "world"'),
    (b"\x03WwW\x04Zone\x04test\x00", dns.rdatatype.AAAA, 60, bytes(16)),
    (b"\x01*\x04zone\x04test\x00", 65280, 1, b""),  # empty RDATA, private type
]


def test_pack_unpack_round_trip():
    data = pack_rrs(RRS)
    back = unpack_rrs(data)
    assert back == [(owner.lower(), t, ttl, rd) for owner, t, ttl, rd in RRS]
    assert pack_rrs(back) == pack_rrs([(o.lower(), t, ttl, rd) for o, t, ttl, rd in RRS])
    assert unpack_rrs(b"") == []
    # The wire form dnspython reads: owner, type, class IN, ttl, rdlength, rdata.
    owner, rtype, ttl, rdata = RRS[1]
    assert pack_rrs([RRS[1]]) == owner + bytes.fromhex("0001 0001 0000012c 0004") + rdata


def test_unpack_truncated_raises_value_error():
    data = pack_rrs(RRS)
    ends = set()
    off = 0
    for r in RRS:
        off += len(pack_rrs([r]))
        ends.add(off)
    for cut in range(1, len(data)):
        if cut in ends:
            assert len(unpack_rrs(data[:cut])) >= 1
            continue
        with pytest.raises(ValueError):
            unpack_rrs(data[:cut])
