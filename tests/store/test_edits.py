"""Edits of RRsets in memory (minidns.store.edits): each op's effect, the checks, and the difference
in RFC 1995 §4 form that the change log keeps. Pure: rows are given as the database holds them."""

from struct import pack

import dns.name
import dns.rdata
import dns.rdataclass
import pytest

from minidns.store.edits import Edit, RRsetEdits, then
from minidns.store.records import Conflict, Invalid, NotFound

ORIGIN = dns.name.from_text("edit.test.")
A, NS, CNAME, TXT = 1, 2, 5, 16


def owner(name: str) -> bytes:
    return dns.name.from_text(name, ORIGIN).to_wire().lower()


def rd(text: str, rtype: int = A) -> bytes:
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, text, origin=ORIGIN).to_wire()


def row(name: str, rtype: int, ttl: int, *texts: str) -> dict:
    wire = b"".join(pack("!HIH", rtype, ttl, len(rd(t, rtype))) + rd(t, rtype) for t in texts)
    return {"owner": owner(name), "name": dns.name.from_text(name, ORIGIN).to_text(), "type": rtype, "ttl": ttl,
            "wire": wire, "description": None, "managed": False, "managed_source": None,
            "managed_resource_type": None, "managed_resource_id": None, "managed_tenant_id": None, "managed_extra": None}


def edited(*edits: Edit, rows=()) -> RRsetEdits:
    e = RRsetEdits(ORIGIN, 3600)
    e.load(list(rows))
    for x in edits:
        e.apply(x)
    return e


WWW = [row("www", A, 300, "192.0.2.1", "192.0.2.2")]


@pytest.mark.parametrize("edit,after", [
    (Edit("add", "www", "A", None, ("192.0.2.3",)), (300, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])),
    (Edit("add", "www", "A", 60, ("192.0.2.1",)), (60, ["192.0.2.1", "192.0.2.2"])),  # a TTL given: the whole RRset
    (Edit("replace", "www", "A", None, ("192.0.2.2", "192.0.2.9")), (3600, ["192.0.2.2", "192.0.2.9"])),
    (Edit("remove", "www", "A", None, ("192.0.2.1",)), (300, ["192.0.2.2"])),
    (Edit("remove", "www", "A"), None),
    (Edit("delete", "www", "A"), None),
    (Edit("replace", "www", "A"), None),
])  # fmt: skip
def test_each_op_leaves_the_rrset(edit, after):
    rr = edited(edit, rows=WWW).after.get((owner("www"), A))
    assert (rr.ttl, [r.to_text() for r, _ in rr.recs]) == after if after else rr is None


@pytest.mark.parametrize("edit,error", [
    (Edit("create", "www", "A", None, ("192.0.2.3",)), Conflict),
    (Edit("remove", "www", "A", None, ("192.0.2.9",)), NotFound),
    (Edit("delete", "none", "A"), NotFound),
    (Edit("add", "www", "A"), Invalid),  # no records to add
    (Edit("add", "www.other.test.", "A", None, ("192.0.2.1",)), Invalid),  # not inside the zone
    (Edit("add", "www", "RRSIG", None, ("A 13 2 300 20300101000000 20200101000000 1 edit.test. AA==",)), Invalid),
    (Edit("add", "x", "A", None, ("not-an-address",)), Invalid),
    (Edit("rename", "www", "A", None, ("192.0.2.1",)), Invalid),
])  # fmt: skip
def test_edits_refused(edit, error):
    with pytest.raises(error):
        edited(edit, rows=WWW)


def test_a_cname_beside_other_data_fails_the_check():
    e = edited(Edit("add", "www", "CNAME", None, ("elsewhere.test.",)), rows=WWW)
    with pytest.raises(Invalid):
        e.check(ORIGIN.to_wire())


def test_the_difference_keeps_what_stays_and_a_new_ttl_moves_the_rrset():
    removed, added, write, delete = edited(Edit("replace", "www", "A", 300, ("192.0.2.2", "192.0.2.3")), rows=WWW).diff()
    assert (removed, added) == ([(owner("www"), A, 300, rd("192.0.2.1"))], [(owner("www"), A, 300, rd("192.0.2.3"))])
    assert [k for k, _ in write] == [(owner("www"), A)] and delete == []
    removed, added, _, _ = edited(Edit("add", "www", "A", 60, ("192.0.2.1",)), rows=WWW).diff()
    assert [r[2] for r in removed] == [300, 300] and [a[2] for a in added] == [60, 60]


def test_values_given_parsed_equal_values_given_as_text():
    text = edited(Edit("add", "v", "A", 60, ("192.0.2.5",))).diff()
    value = edited(Edit("add", owner_name := dns.name.from_text("v", ORIGIN), A, 60,
                        (dns.rdata.from_text(dns.rdataclass.IN, A, "192.0.2.5"),))).diff()  # fmt: skip
    wire = edited(Edit("add", owner_name, A, 60, (rd("192.0.2.5"),))).diff()
    assert text[:2] == value[:2] == wire[:2]


def test_then_cancels_what_the_second_difference_takes_back():
    x, y = (b"o", A, 60, b"x"), (b"o", A, 60, b"y")
    assert then([], [x], [x], [y]) == ([], [y])  # added then removed: in neither
    assert then([x], [], [], [x]) == ([x], [x])  # removed then added back: in both
