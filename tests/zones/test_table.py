"""zones/table.py: zone selection by the longest origin a name falls in (RFC 1034 §4.3.2 step 2),
DS at a zone's apex answered from its parent when that is served (RFC 4035 §3.1.4.1)."""

import dns.name
import pytest

from minidns.wire import DS, NS, SOA, A
from minidns.zones.loader import load_zone_text
from minidns.zones.table import ZoneTable

ORIGINS = ["test.", "example.test.", "sub.example.test.", "deep.x.sub.example.test.", "other.org."]


def zone(origin: str):
    return load_zone_text("$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n", origin)


@pytest.fixture(scope="module")
def table():
    return ZoneTable(zone(o) for o in ORIGINS)


@pytest.mark.parametrize("qname, qtype, served_by", [
    ("www.example.test.", A, "example.test."),
    ("WWW.EXAMPLE.TEST.", A, None),  # the table is keyed by lowercase names: the caller lowercases
    ("example.test.", SOA, "example.test."),
    ("a.b.sub.example.test.", A, "sub.example.test."),
    ("x.sub.example.test.", A, "sub.example.test."),
    ("deep.x.sub.example.test.", NS, "deep.x.sub.example.test."),
    ("www.deep.x.sub.example.test.", A, "deep.x.sub.example.test."),
    ("xsub.example.test.", A, "example.test."),  # a whole-label match, not a string suffix
    ("test.", A, "test."), ("anything.test.", A, "test."),
    ("www.other.org.", A, "other.org."), ("org.", A, None), ("example.com.", A, None), (".", A, None),
    # DS at an apex: the parent's answer when the parent is served, else the zone's own.
    ("sub.example.test.", DS, "example.test."), ("example.test.", DS, "test."), ("test.", DS, "test."),
    ("other.org.", DS, "other.org."), ("deep.x.sub.example.test.", DS, "sub.example.test."),
    ("www.sub.example.test.", DS, "sub.example.test."),  # below an apex: the zone the name is in
])  # fmt: skip
def test_find(table, qname, qtype, served_by):
    found = table.find(dns.name.from_text(qname).to_wire(), qtype)
    assert (found.name if found else None) == served_by


def test_an_empty_table_finds_nothing_and_each_table_has_its_own_version():
    empty = ZoneTable()
    assert empty.find(dns.name.from_text("example.test.").to_wire(), A) is None and empty.zones == {}
    other = ZoneTable([zone("example.test.")])
    empty.live = False
    assert not empty.live and other.live
