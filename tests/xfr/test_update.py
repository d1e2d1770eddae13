"""RFC 2136 in memory (xfr/update.py): the message read, the forms checked (§3.1.1, §3.2, §3.4.1),
prerequisites evaluated and updates applied to a View, with the RFC's silent skips."""

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.update
import pytest

from minidns.xfr.update import (
    RRset, UpdateError, View, apply_updates, check_prerequisite_forms, check_prerequisites, parse_update, prescan,
)  # fmt: skip

ORIGIN = dns.name.from_text("z.test.")


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text, ORIGIN)


def rd(rtype: str, text: str):
    return dns.rdata.from_text("IN", rtype, text, ORIGIN, relativize=False)


def view() -> View:
    t = dns.rdatatype.from_text
    v = View(ORIGIN)
    for owner, rtype, rrset in [
        (ORIGIN, "SOA", RRset(3600, (rd("SOA", "ns1 h 10 3600 600 86400 300"),))),
        (ORIGIN, "NS", RRset(3600, (rd("NS", "ns1"), rd("NS", "ns2")))),
        (name("www"), "A", RRset(300, (rd("A", "192.0.2.1"), rd("A", "192.0.2.2")))),
        (name("alias"), "CNAME", RRset(300, (rd("CNAME", "www"),))),
    ]:  # fmt: skip
        v.put((owner.to_wire().lower(), t(rtype)), rrset)
    v.touched.clear()
    return v


def parsed(m: dns.update.UpdateMessage):
    return parse_update(m.to_wire())


def rcode_of(fn, *args) -> int:
    try:
        fn(*args)
    except UpdateError as e:
        return e.rcode
    return dns.rcode.NOERROR


def test_the_sections_are_read_in_order_with_their_classes():
    m = dns.update.UpdateMessage("z.test.")
    m.present("www", "A")
    m.delete("www", "A", "192.0.2.1")
    m.add("new", 60, "TXT", '"x"')
    m.delete("old")
    u = parsed(m)
    assert u.zone == ORIGIN and u.zclass == 1
    assert [(str(r.name), r.rclass, r.rtype, r.rdata is None) for r in u.prerequisites] == [("www.z.test.", 255, 1, True)]
    assert [(str(r.name), r.rclass, r.rtype) for r in u.updates] == [("www.z.test.", 254, 1), ("new.z.test.", 1, 16),
                                                                      ("old.z.test.", 255, 255)]  # fmt: skip


@pytest.mark.parametrize("mangle, rcode", [
    (lambda w: w[:4] + b"\x00\x02" + w[6:], dns.rcode.FORMERR),  # ZOCOUNT 2
    (lambda w: w[:-4] + b"\x00\x01\x00\x01", dns.rcode.FORMERR),  # zone type A (the message ends with it)
    (lambda w: w + b"\x00", dns.rcode.NOERROR),  # trailing octet: the additional section is the caller's
    (lambda w: w[:8] + b"\x00\x05" + w[10:], dns.rcode.FORMERR),  # UPCOUNT 5 with nothing there
])  # fmt: skip
def test_malformed_messages_are_formerr(mangle, rcode):
    wire = dns.update.UpdateMessage("z.test.").to_wire()
    assert rcode_of(parse_update, mangle(wire)) == rcode


def test_too_many_records_are_refused_before_they_are_read():
    m = dns.update.UpdateMessage("z.test.")
    for i in range(11):
        m.add(f"h{i}", 60, "A", "192.0.2.1")
    assert rcode_of(parse_update, m.to_wire(), 10) == dns.rcode.REFUSED
    assert len(parse_update(m.to_wire(), 11).updates) == 11


@pytest.mark.parametrize("build, rcode", [
    (lambda m: m.add("elsewhere.example.", 60, "A", "192.0.2.1"), dns.rcode.NOTZONE),
    (lambda m: m.add("x", 60, "RRSIG", "A 13 2 300 20300101000000 20200101000000 1 z.test. AAAA"), dns.rcode.REFUSED),
    (lambda m: m.add("x", 60, "NSEC3PARAM", "1 0 0 -"), dns.rcode.REFUSED),
    (lambda m: m.add("@", 60, "DNSKEY", "257 3 13 AAAA"), dns.rcode.REFUSED),
    (lambda m: m.delete("x", "A"), dns.rcode.NOERROR),
    (lambda m: m.add("x", 60, "DHCID", "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="), dns.rcode.NOERROR),
])  # fmt: skip
def test_prescan(build, rcode):
    m = dns.update.UpdateMessage("z.test.")
    build(m)
    assert rcode_of(prescan, parsed(m)) == rcode


def test_prescan_refuses_meta_types_and_odd_classes():
    m = dns.update.UpdateMessage("z.test.")
    m.add("x", 60, "A", "192.0.2.1")
    wire = bytearray(m.to_wire())
    wire[-14:-12] = (255).to_bytes(2, "big")  # type ANY with data, class IN
    assert rcode_of(parse_update, bytes(wire)) == dns.rcode.FORMERR
    wire = bytearray(m.to_wire())
    wire[-12:-10] = (4).to_bytes(2, "big")  # class HS
    assert rcode_of(lambda: prescan(parse_update(bytes(wire)))) == dns.rcode.FORMERR


@pytest.mark.parametrize("build, rcode", [
    (lambda m: m.present("www"), dns.rcode.NOERROR),
    (lambda m: m.present("nope"), dns.rcode.NXDOMAIN),
    (lambda m: m.absent("www"), dns.rcode.YXDOMAIN),
    (lambda m: m.present("www", "A"), dns.rcode.NOERROR),
    (lambda m: m.present("www", "MX"), dns.rcode.NXRRSET),
    (lambda m: m.absent("www", "A"), dns.rcode.YXRRSET),
    (lambda m: m.present("www", "A", "192.0.2.2", "192.0.2.1"), dns.rcode.NOERROR),  # order does not matter
    (lambda m: m.present("www", "A", "192.0.2.1"), dns.rcode.NXRRSET),  # the whole RRset must match
    (lambda m: m.present("nope.elsewhere.", "A"), dns.rcode.NOTZONE),
])  # fmt: skip
def test_prerequisites(build, rcode):
    m = dns.update.UpdateMessage("z.test.")
    build(m)
    u = parsed(m)
    got = rcode_of(check_prerequisite_forms, u)
    if got == dns.rcode.NOERROR:
        got = rcode_of(check_prerequisites, u, view())
    assert got == rcode


def applied(build) -> dict:
    m = dns.update.UpdateMessage("z.test.")
    build(m)
    v = view()
    apply_updates(parsed(m), v)
    return {(dns.name.from_wire(k[0], 0)[0].relativize(ORIGIN).to_text(), dns.rdatatype.to_text(k[1])):
            (r.ttl, sorted(x.to_text() for x in r.rdatas)) for k, r in v.rrsets.items() if k[1] != 6}  # fmt: skip


def test_add_to_an_rrset_sets_its_ttl_and_skips_duplicates():
    got = applied(lambda m: (m.add("www", 60, "A", "192.0.2.2"), m.add("www", 60, "A", "192.0.2.3")))
    assert got[("www", "A")] == (60, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])


def test_cname_and_other_data_are_not_mixed():
    got = applied(lambda m: (m.add("www", 60, "CNAME", "x"), m.add("alias", 60, "TXT", '"t"'), m.add("alias", 60, "CNAME", "y")))
    assert ("www", "CNAME") not in got and ("alias", "TXT") not in got
    assert got[("alias", "CNAME")] == (60, ["y.z.test."])  # a CNAME replaces the CNAME


def test_deletions_keep_the_apex_soa_and_ns():
    got = applied(lambda m: (m.delete("@"), m.delete("@", "NS"), m.delete("@", "SOA"), m.delete("www")))
    assert set(got) == {("@", "NS"), ("alias", "CNAME")}
    got = applied(lambda m: (m.delete("@", "NS", "ns1"), m.delete("@", "NS", "ns2")))
    assert got[("@", "NS")] == (3600, ["ns2.z.test."])


def test_deleting_what_is_not_there_is_not_an_error():
    got = applied(lambda m: (m.delete("www", "A", "192.0.2.99"), m.delete("nope"), m.delete("nope", "MX")))
    assert got == applied(lambda m: None)


def test_soa_only_forwards():
    lower = applied(lambda m: m.replace("@", 3600, "SOA", "ns1 h 9 1 1 1 1"))
    higher = applied(lambda m: m.replace("@", 3600, "SOA", "ns1 h 11 1 1 1 1"))
    v = view()
    apply_updates(parsed(_soa_msg("ns1 h 9 1 1 1 1")), v)
    assert v.rrsets[(v.apex, 6)].rdatas[0].serial == 10
    v = view()
    apply_updates(parsed(_soa_msg("ns1 h 11 1 1 1 1")), v)
    assert v.rrsets[(v.apex, 6)].rdatas[0].serial == 11
    assert lower == higher  # the SOA aside, nothing else moved


def _soa_msg(text):
    m = dns.update.UpdateMessage("z.test.")
    m.replace("@", 3600, "SOA", text)
    return m
