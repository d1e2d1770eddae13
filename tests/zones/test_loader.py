"""Zone files into snapshots: origins, errors with file:line, and the compact node form."""

import pytest

from minidns.wire import A, CNAME
from minidns.zones.loader import ZoneFileError, load_zone_file, load_zone_text
from minidns.zones.snapshot import node_find, node_rrsets

SOA = "$TTL 60\n@ SOA ns hostmaster 5 2 3 4 5\n"


@pytest.mark.parametrize("body,line,reason", [
    ("foo A 1.2.3\n", 3, "malformed"),
    ("foo A 1.2.3.4 extra\nbar A 1.1.1.1\n", 3, "expected EOL"),
    ("ok A 1.1.1.1\nfoo BOGUS 1\n", 4, "unknown rdatatype"),
])
def test_errors_name_the_line_and_reason(body, line, reason):
    with pytest.raises(ZoneFileError) as e:
        load_zone_text(SOA + body, "z.test.")
    assert str(e.value).startswith(f"<text>:{line}: ") and reason in str(e.value)


def test_cname_and_other_data_is_refused():
    with pytest.raises(ZoneFileError, match="CNAME and other data"):
        load_zone_text(SOA + "x CNAME a\nx A 1.1.1.1\n", "z.test.")


def test_no_soa_is_refused():
    with pytest.raises(ZoneFileError, match="no SOA"):
        load_zone_text("$TTL 5\nx A 1.2.3.4\n", "z.test.")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ZoneFileError, match="missing.zone"):
        load_zone_file(str(tmp_path / "missing.zone"))


def test_origin_from_first_owner_without_origin_directive(tmp_path):
    p = tmp_path / "z"
    p.write_text("z.test. 60 IN SOA ns.z.test. h.z.test. 9 2 3 4 5\nwww.z.test. 60 IN A 192.0.2.1\n")
    zone = load_zone_file(str(p))
    assert zone.name == "z.test." and zone.serial == 9


def test_relative_owner_without_origin_needs_one(tmp_path):
    p = tmp_path / "z"
    p.write_text("@ 60 IN SOA ns h 9 2 3 4 5\n")
    with pytest.raises(ZoneFileError, match="give the zone as ORIGIN=PATH"):
        load_zone_file(str(p))
    assert load_zone_file(str(p), "given.test.").name == "given.test."


def test_nodes_are_sorted_deduplicated_with_one_ttl_per_rrset():
    zone = load_zone_text(SOA + "x 30 TXT b\nx 60 A 192.0.2.2\nx 20 A 192.0.2.1\nx 60 A 192.0.2.2\n", "z.test.")
    node = zone.nodes[b"\x01x\x01z\x04test\x00"]
    rrsets = node_rrsets(node)
    assert [t for t, _, _ in rrsets] == [A, 16]
    assert rrsets[0][1] == 20 and rrsets[0][2] == (bytes([192, 0, 2, 2]), bytes([192, 0, 2, 1]))
    assert node_find(node, CNAME) is None


def test_empty_non_terminals_exist_as_empty_nodes():
    zone = load_zone_text(SOA + "a.b.c A 192.0.2.1\n", "z.test.")
    assert zone.nodes[b"\x01b\x01c\x01z\x04test\x00"] == b""
    assert zone.nodes[b"\x01c\x01z\x04test\x00"] == b""
    assert zone.cuts == frozenset() and len(zone) == 4


def test_names_are_case_folded_but_rdata_keeps_case():
    zone = load_zone_text(SOA + "WWW CNAME Target.Example.\n", "Z.Test.")
    node = zone.nodes[b"\x03www\x01z\x04test\x00"]
    assert node_find(node, CNAME)[1] == (b"\x06Target\x07Example\x00",)


# dnspython's Reader skips records outside its zone without a word; every door refuses them instead.
@pytest.mark.parametrize("body,line,owner", [
    ("www A 192.0.2.1\nwww.other.example. A 192.0.2.2\nmail A 192.0.2.3\n", 4, "www.other.example."),
    ("a A 192.0.2.1\n$ORIGIN other.example.\nb A 192.0.2.2\n", 5, "b.other.example."),
    ("$GENERATE 1-3 host$.other.example. A 10.0.0.$\n", 3, "host1.other.example."),
    ("www A 192.0.2.1\nwww.y.test. A 192.0.2.9 ; no end of line after it", 4, "www.y.test."),
    ("test. A 192.0.2.9\n", 3, "test."),  # the parent
])
def test_a_record_outside_the_zone_is_refused_and_its_line_named(body, line, owner):
    with pytest.raises(ZoneFileError) as e:
        load_zone_text(SOA + body, "z.test.")
    assert str(e.value) == f"<text>:{line}: {owner} is outside the zone z.test."


def test_a_record_outside_the_zone_in_an_included_file_names_that_file(tmp_path):
    inc = tmp_path / "hosts.inc"
    inc.write_text("a A 192.0.2.1\nwww.other.example. A 192.0.2.2\n")
    main = tmp_path / "z.test.zone"
    main.write_text(f"$ORIGIN z.test.\n{SOA}$INCLUDE {inc}\n")
    with pytest.raises(ZoneFileError) as e:
        load_zone_file(str(main))
    assert str(e.value) == f"{inc}:2: www.other.example. is outside the zone z.test."


def test_names_below_the_origin_in_any_spelling_are_in_the_zone():
    snap = load_zone_text(SOA + "WWW.Z.TEST. A 192.0.2.1\n$ORIGIN sub.z.test.\nx A 192.0.2.2\n", "z.test.")
    assert node_find(snap.nodes[b"\x03www\x01z\x04test\x00"], A) is not None
    assert node_find(snap.nodes[b"\x01x\x03sub\x01z\x04test\x00"], A) is not None
