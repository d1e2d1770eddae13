"""store/records.py: the checks every write passes, as tables of DNS data — owners inside the
zone, record types zones hold, TTL bounds (RFC 2181 §8), RDATA dnspython parses, the CNAME and
DNAME rules (RFC 2181 §10.1, RFC 6672 §2.4), SOA mailboxes, zone names — and the stored form."""

import dns.name
import dns.rdata
import pytest

from minidns.store.records import (GENERATED, KEY_TYPES, MAX_TTL, Invalid, RRsetData, check_owner_types, check_ttl,
                                   email_to_rname, parse_owner, parse_rdata, parse_type, rdata_from_wire,
                                   rname_to_email, zone_name)  # fmt: skip

ORIGIN = dns.name.from_text("example.test.")
A, NS, CNAME, SOA, MX, TXT, DNAME, RRSIG, NSEC, DNSKEY = 1, 2, 5, 6, 15, 16, 39, 46, 47, 48


@pytest.mark.parametrize("name, owner", [
    ("@", "example.test."), ("www", "www.example.test."), ("WWW.Example.Test.", "www.example.test."),
    ("a.b", "a.b.example.test."), ("*.wild", "*.wild.example.test."), ("example.test.", "example.test."),
])  # fmt: skip
def test_owners_inside_the_zone(name, owner):
    assert parse_owner(name, ORIGIN) == dns.name.from_text(owner)


@pytest.mark.parametrize("name, error", [
    ("www.example.org.", "is not inside the zone example.test."), ("test.", "is not inside the zone"),
    ("xexample.test.", "is not inside the zone"), ("a..b", "bad name"), ("x" * 64, "bad name"),
])  # fmt: skip
def test_owners_outside_the_zone_or_malformed_are_invalid(name, error):
    with pytest.raises(Invalid, match=error):
        parse_owner(name, ORIGIN)


@pytest.mark.parametrize("given, value", [("A", A), (" mx ", MX), ("TYPE65280", 65280), (DNAME, DNAME), ("SOA", SOA)])
def test_record_types(given, value):
    assert parse_type(given) == value


@pytest.mark.parametrize("given, error", [
    ("BOGUS", "unknown record type"), ("ANY", "ANY is not a record type that zones hold"),
    ("AXFR", "not a record type"), ("IXFR", "not a record type"), ("OPT", "OPT is not"), (0, "is not a record type"),
    (255, "ANY is not"),
])  # fmt: skip
def test_meta_and_unknown_types_are_invalid(given, error):
    with pytest.raises(Invalid, match=error):
        parse_type(given)


@pytest.mark.parametrize("ttl, ok", [(0, True), (300, True), (MAX_TTL, True), (2**31, False), (-1, False),
                                     (True, False), ("300", False), (300.0, False), (None, False)])  # fmt: skip
def test_ttl_bounds(ttl, ok):
    """RFC 2181 §8: 0 to 2^31 - 1, an integer (a bool is not one)."""
    if ok:
        assert check_ttl(ttl) == ttl
    else:
        with pytest.raises(Invalid, match="outside 0..2147483647"):
            check_ttl(ttl)


@pytest.mark.parametrize("rtype, text, wire_text", [
    (A, "192.0.2.1", "192.0.2.1"), (MX, "10 mail", "10 mail.example.test."), (CNAME, "www.other.", "www.other."),
    (TXT, '"two" "strings"', '"two" "strings"'), (NS, "@", "example.test."),
])  # fmt: skip
def test_rdata_relative_names_are_taken_relative_to_the_zone(rtype, text, wire_text):
    rd = parse_rdata(rtype, text, ORIGIN)
    assert rd.to_text() == wire_text
    assert rdata_from_wire(rtype, rd.to_wire()) == rd


@pytest.mark.parametrize("rtype, text", [(A, "192.0.2"), (A, "2001:db8::1"), (MX, "mail"), (MX, "x mail"), (A, "")])
def test_rdata_dnspython_does_not_parse_is_invalid(rtype, text):
    with pytest.raises(Invalid, match=f"bad {dns.rdatatype.to_text(rtype)} data"):
        parse_rdata(rtype, text, ORIGIN)


@pytest.mark.parametrize("types, apex, error", [
    ({A: 2, TXT: 1}, False, None), ({CNAME: 1}, False, None), ({CNAME: 1, RRSIG: 1, NSEC: 1}, False, None),
    ({DNAME: 1, A: 1}, False, None), ({DNAME: 1, NS: 1, SOA: 1}, True, None),
    ({CNAME: 1}, True, "a CNAME cannot be at the zone apex"),
    ({CNAME: 1, A: 1}, False, "cannot share its name with other data"),
    ({CNAME: 1, TXT: 1}, False, "RFC 2181 §10.1"),
    ({CNAME: 2}, False, "only one CNAME record"),
    ({DNAME: 2}, False, "only one DNAME record may exist at a name"),
])  # fmt: skip
def test_rules_across_the_rrsets_at_one_owner(types, apex, error):
    if error is None:
        check_owner_types("x.example.test.", types, apex)
    else:
        with pytest.raises(Invalid, match=error):
            check_owner_types("x.example.test.", types, apex)


@pytest.mark.parametrize("email, rname", [
    ("hostmaster@example.test", "hostmaster.example.test."), ("john.doe@example.test", "john\\.doe.example.test."),
    ("h@example.test.", "h.example.test."),
])  # fmt: skip
def test_soa_mailboxes(email, rname):
    """RFC 1035 §8: the local part is the first label, its dots escaped."""
    assert email_to_rname(email) == dns.name.from_text(rname)
    assert rname_to_email(dns.name.from_text(rname)) == email.rstrip(".")


@pytest.mark.parametrize("email", ["hostmaster", "@example.test", "hostmaster@", "a@b..c"])
def test_malformed_mailboxes_are_invalid(email):
    with pytest.raises(Invalid, match=f"email {email!r}"):
        email_to_rname(email)


def test_zone_names():
    assert zone_name(" Example.Test ") == ORIGIN
    for bad, error in ((".", "the root zone is not served"), ("a..b", "bad zone name")):
        with pytest.raises(Invalid, match=error):
            zone_name(bad)


def test_the_stored_form_and_the_generated_types():
    one = RRsetData(b"\x03www" + ORIGIN.to_wire(), "www.example.test.", A, 300, ["192.0.2.1"], [bytes([192, 0, 2, 1])])
    assert one.wire() == b"\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x01" and one.type_text == "A"
    two = RRsetData(one.owner, one.name, TXT, 60, ['"a"', '"bc"'], [b"\x01a", b"\x02bc"])
    assert two.wire() == b"\x00\x10\x00\x00\x00\x3c\x00\x02\x01a" + b"\x00\x10\x00\x00\x00\x3c\x00\x03\x02bc"
    assert KEY_TYPES == {DNSKEY, 59, 60} and GENERATED == {SOA, RRSIG, NSEC, 50, 51, DNSKEY, 59, 60}
