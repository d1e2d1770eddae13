"""Table-driven resolver tests: (qname, qtype) → rcode, AA, answer, authority, additional, on inline zones."""

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from minidns.wire import NOERROR, NXDOMAIN, YXDOMAIN
from minidns.zones.loader import load_zone_text
from minidns.zones.lookup import is_name_error, resolve
from minidns.zones.table import ZoneTable

ZONE = """
$TTL 3600
@           SOA   ns1 hostmaster 42 7200 3600 1209600 300
@           NS    ns1
@           NS    ns.other.test.
@           MX    10 mail
@           A     192.0.2.1
ns1         A     192.0.2.53
ns1         AAAA  2001:db8::53
mail        A     192.0.2.25
www         A     192.0.2.80
www         A     192.0.2.81
www         AAAA  2001:db8::80
www.ent.deep TXT  "deep"
alias       CNAME www
chain1      CNAME chain2
chain2      CNAME alias
loop1       CNAME loop2
loop2       CNAME loop1
dangling    CNAME nothere
external    CNAME www.other.test.
*.wild      A     192.0.2.99
*.wild      TXT   "wildcard"
sub.wild    A     192.0.2.98
a.b.wild2   A     192.0.2.97
*.wild2     A     192.0.2.96
*.cwild     CNAME www
srv         SRV   10 60 5060 mail
deleg       NS    ns1.deleg
deleg       NS    ns.other.test.
deleg       DS    12345 13 2 8F9A7EC3E2C1A63AEB7BA2B2C67A7E1E5E07C1A2B9F1E0D4C3B2A19081726354
ns1.deleg   A     192.0.2.70
occluded.deleg TXT "below the cut"
tocut       CNAME www.deleg
dname       DNAME other.test.
dname2      DNAME target
www.target  A     192.0.2.111
long        DNAME {long}
"""
LONG_TARGET = ".".join(["x" * 60] * 4) + ".test."
SOA_NEG = "zone.test. 300 IN SOA ns1.zone.test. hostmaster.zone.test. 42 7200 3600 1209600 300"

CHILD = """
$TTL 600
@     SOA ns1 hostmaster 7 3600 600 86400 60
@     NS  ns1
ns1   A   192.0.2.71
"""
PARENT_EXTRA = "child NS ns1.child\nns1.child A 192.0.2.71\n"


@pytest.fixture(scope="module")
def table():
    zone = load_zone_text(ZONE.format(long=LONG_TARGET) + PARENT_EXTRA, "zone.test.")
    child = load_zone_text(CHILD, "child.zone.test.")
    return ZoneTable([zone, child])


def rrs(section):
    """An Answer section as a set of presentation-format RRs."""
    out = set()
    for rrset in section:
        owner = dns.name.from_wire(rrset.owner, 0)[0].to_text().lower()
        for rdata in rrset.rdatas:
            rd = dns.rdata.from_wire(dns.rdataclass.IN, rrset.rtype, rdata, 0, len(rdata))
            out.add(f"{owner} {rrset.ttl} IN {dns.rdatatype.to_text(rrset.rtype)} {rd.to_text()}")
    return out


def ask(table, qname, qtype):
    key = dns.name.from_text(qname).to_wire().lower()
    rdtype = dns.rdatatype.from_text(qtype)
    zone = table.find(key, rdtype)
    assert zone is not None, f"{qname} falls in no zone"
    return resolve(zone, key, rdtype)


# (qname, qtype, rcode, aa, answer, authority, additional)
CASES = [
    ("www.zone.test.", "A", NOERROR, True,
     {"www.zone.test. 3600 IN A 192.0.2.80", "www.zone.test. 3600 IN A 192.0.2.81"}, set(), set()),
    ("WWW.Zone.TEST.", "AAAA", NOERROR, True, {"www.zone.test. 3600 IN AAAA 2001:db8::80"}, set(), set()),
    ("www.zone.test.", "MX", NOERROR, True, set(), {SOA_NEG}, set()),
    ("nope.zone.test.", "A", NXDOMAIN, True, set(), {SOA_NEG}, set()),
    ("deep.zone.test.", "A", NOERROR, True, set(), {SOA_NEG}, set()),  # empty non-terminal
    ("ent.deep.zone.test.", "TXT", NOERROR, True, set(), {SOA_NEG}, set()),
    ("x.ent.deep.zone.test.", "TXT", NXDOMAIN, True, set(), {SOA_NEG}, set()),
    ("zone.test.", "NS", NOERROR, True,
     {"zone.test. 3600 IN NS ns1.zone.test.", "zone.test. 3600 IN NS ns.other.test."}, set(),
     {"ns1.zone.test. 3600 IN A 192.0.2.53", "ns1.zone.test. 3600 IN AAAA 2001:db8::53"}),
    ("zone.test.", "MX", NOERROR, True, {"zone.test. 3600 IN MX 10 mail.zone.test."}, set(),
     {"mail.zone.test. 3600 IN A 192.0.2.25"}),
    ("srv.zone.test.", "SRV", NOERROR, True, {"srv.zone.test. 3600 IN SRV 10 60 5060 mail.zone.test."}, set(),
     {"mail.zone.test. 3600 IN A 192.0.2.25"}),
    ("zone.test.", "ANY", NOERROR, True, {"zone.test. 3600 IN A 192.0.2.1"}, set(), set()),  # RFC 8482
    ("alias.zone.test.", "A", NOERROR, True,
     {"alias.zone.test. 3600 IN CNAME www.zone.test.", "www.zone.test. 3600 IN A 192.0.2.80",
      "www.zone.test. 3600 IN A 192.0.2.81"}, set(), set()),
    ("alias.zone.test.", "CNAME", NOERROR, True, {"alias.zone.test. 3600 IN CNAME www.zone.test."}, set(), set()),
    ("alias.zone.test.", "MX", NOERROR, True, {"alias.zone.test. 3600 IN CNAME www.zone.test."}, {SOA_NEG}, set()),
    ("chain1.zone.test.", "AAAA", NOERROR, True,
     {"chain1.zone.test. 3600 IN CNAME chain2.zone.test.", "chain2.zone.test. 3600 IN CNAME alias.zone.test.",
      "alias.zone.test. 3600 IN CNAME www.zone.test.", "www.zone.test. 3600 IN AAAA 2001:db8::80"}, set(), set()),
    ("loop1.zone.test.", "A", NOERROR, True,
     {"loop1.zone.test. 3600 IN CNAME loop2.zone.test.", "loop2.zone.test. 3600 IN CNAME loop1.zone.test."}, set(), set()),
    ("dangling.zone.test.", "A", NXDOMAIN, True, {"dangling.zone.test. 3600 IN CNAME nothere.zone.test."}, {SOA_NEG}, set()),
    ("external.zone.test.", "A", NOERROR, True, {"external.zone.test. 3600 IN CNAME www.other.test."}, set(), set()),
    ("x.wild.zone.test.", "A", NOERROR, True, {"x.wild.zone.test. 3600 IN A 192.0.2.99"}, set(), set()),
    ("a.b.c.wild.zone.test.", "TXT", NOERROR, True, {'a.b.c.wild.zone.test. 3600 IN TXT "wildcard"'}, set(), set()),
    ("x.wild.zone.test.", "MX", NOERROR, True, set(), {SOA_NEG}, set()),  # NODATA at a wildcard
    ("sub.wild.zone.test.", "TXT", NOERROR, True, set(), {SOA_NEG}, set()),  # existing name: no synthesis
    ("x.sub.wild.zone.test.", "A", NXDOMAIN, True, set(), {SOA_NEG}, set()),  # source *.sub.wild absent
    ("x.b.wild2.zone.test.", "A", NXDOMAIN, True, set(), {SOA_NEG}, set()),  # ENT b.wild2 blocks *.wild2
    ("b.wild2.zone.test.", "A", NOERROR, True, set(), {SOA_NEG}, set()),
    ("x.wild2.zone.test.", "A", NOERROR, True, {"x.wild2.zone.test. 3600 IN A 192.0.2.96"}, set(), set()),
    ("*.wild.zone.test.", "A", NOERROR, True, {"*.wild.zone.test. 3600 IN A 192.0.2.99"}, set(), set()),
    ("x.cwild.zone.test.", "A", NOERROR, True,
     {"x.cwild.zone.test. 3600 IN CNAME www.zone.test.", "www.zone.test. 3600 IN A 192.0.2.80",
      "www.zone.test. 3600 IN A 192.0.2.81"}, set(), set()),
    ("www.deleg.zone.test.", "A", NOERROR, False, set(),
     {"deleg.zone.test. 3600 IN NS ns1.deleg.zone.test.", "deleg.zone.test. 3600 IN NS ns.other.test."},
     {"ns1.deleg.zone.test. 3600 IN A 192.0.2.70"}),
    ("deleg.zone.test.", "NS", NOERROR, False, set(),
     {"deleg.zone.test. 3600 IN NS ns1.deleg.zone.test.", "deleg.zone.test. 3600 IN NS ns.other.test."},
     {"ns1.deleg.zone.test. 3600 IN A 192.0.2.70"}),
    ("occluded.deleg.zone.test.", "TXT", NOERROR, False, set(),
     {"deleg.zone.test. 3600 IN NS ns1.deleg.zone.test.", "deleg.zone.test. 3600 IN NS ns.other.test."},
     {"ns1.deleg.zone.test. 3600 IN A 192.0.2.70"}),
    ("deleg.zone.test.", "DS", NOERROR, True,
     {"deleg.zone.test. 3600 IN DS 12345 13 2 8f9a7ec3e2c1a63aeb7ba2b2c67a7e1e5e07c1a2b9f1e0d4c3b2a19081726354"}, set(), set()),
    ("tocut.zone.test.", "A", NOERROR, True, {"tocut.zone.test. 3600 IN CNAME www.deleg.zone.test."},
     {"deleg.zone.test. 3600 IN NS ns1.deleg.zone.test.", "deleg.zone.test. 3600 IN NS ns.other.test."},
     {"ns1.deleg.zone.test. 3600 IN A 192.0.2.70"}),
    ("a.b.dname.zone.test.", "A", NOERROR, True,
     {"dname.zone.test. 3600 IN DNAME other.test.", "a.b.dname.zone.test. 3600 IN CNAME a.b.other.test."}, set(), set()),
    ("www.dname2.zone.test.", "A", NOERROR, True,
     {"dname2.zone.test. 3600 IN DNAME target.zone.test.", "www.dname2.zone.test. 3600 IN CNAME www.target.zone.test.",
      "www.target.zone.test. 3600 IN A 192.0.2.111"}, set(), set()),
    ("dname.zone.test.", "A", NOERROR, True, set(), {SOA_NEG}, set()),  # DNAME never applies to its owner
    # Asked for the CNAME itself: the synthesized CNAME is the answer, not followed (RFC 6672 §3.2).
    ("www.dname2.zone.test.", "CNAME", NOERROR, True,
     {"dname2.zone.test. 3600 IN DNAME target.zone.test.", "www.dname2.zone.test. 3600 IN CNAME www.target.zone.test."},
     set(), set()),
    ("dname.zone.test.", "DNAME", NOERROR, True, {"dname.zone.test. 3600 IN DNAME other.test."}, set(), set()),
    # RFC 6672 §2.2: a substitution longer than 255 octets is YXDOMAIN.
    ("a" * 50 + ".long.zone.test.", "A", YXDOMAIN, True, {f"long.zone.test. 3600 IN DNAME {LONG_TARGET}"}, set(), set()),
    # The child zone is served too: its apex is answered from the child, its DS from the parent side.
    ("child.zone.test.", "NS", NOERROR, True, {"child.zone.test. 600 IN NS ns1.child.zone.test."}, set(),
     {"ns1.child.zone.test. 600 IN A 192.0.2.71"}),
    ("child.zone.test.", "DS", NOERROR, True, set(), {SOA_NEG}, set()),
    ("nx.child.zone.test.", "A", NXDOMAIN, True, set(),
     {"child.zone.test. 60 IN SOA ns1.child.zone.test. hostmaster.child.zone.test. 7 3600 600 86400 60"}, set()),
]


@pytest.mark.parametrize("qname,qtype,rcode,aa,answer,authority,additional", CASES,
                         ids=[f"{c[0]}{c[1]}" for c in CASES])
def test_resolve(table, qname, qtype, rcode, aa, answer, authority, additional):
    ans = ask(table, qname, qtype)
    assert (ans.rcode, ans.aa) == (rcode, aa)
    assert rrs(ans.answer) == answer
    assert rrs(ans.authority) == authority
    assert rrs(ans.additional) == additional


def test_names_outside_every_zone_find_no_zone(table):
    assert table.find(dns.name.from_text("www.example.org.").to_wire(), 1) is None
    assert table.find(b"\x00", 1) is None


def test_longest_match_picks_the_child(table):
    key = dns.name.from_text("www.child.zone.test.").to_wire()
    assert table.find(key, 1).name == "child.zone.test."
    assert table.find(key[4:], 1).name == "child.zone.test."
    assert table.find(key[10:], 1).name == "zone.test."


def test_referral_counts_in_domain_glue_first(table):
    ans = ask(table, "x.deleg.zone.test.", "A")
    assert ans.glue == 1 and ans.additional[0].owner == dns.name.from_text("ns1.deleg.zone.test.").to_wire()
    assert ask(table, "zone.test.", "NS").glue == 0  # not a referral: nothing is required


def test_is_name_error_agrees_with_resolve(table):
    """The engine's way to a signed name error: is_name_error says yes exactly where resolve gives
    a name error with no answer — for every owner in the zone, names below and beside each (under
    cuts, DNAMEs, wildcards, empty non-terminals), any type."""
    zone = table.find(dns.name.from_text("zone.test.").to_wire(), 1)
    names = set()
    for owner in zone.nodes:
        text = dns.name.from_wire(owner, 0)[0]
        names.update({text, dns.name.from_text("nx", text), dns.name.from_text("a.b", text)})
        if len(text) > 2:
            names.add(dns.name.from_text("nothere", text.parent()))
    checked = {True: 0, False: 0}
    for name in names:
        if not name.is_subdomain(dns.name.from_text("zone.test.")) or name.is_subdomain(dns.name.from_text("child.zone.test.")):
            continue
        key = name.to_wire().lower()
        if len(key) > 255:
            continue
        for qtype in (1, 16, 43, 255):  # A, TXT, DS (parent side of a cut), ANY
            ans = resolve(zone, key, qtype)
            expected = ans.nxname is not None and not ans.answer
            assert is_name_error(zone, key, qtype) == expected, (name, qtype)
            checked[expected] += 1
    assert checked[True] > 20 and checked[False] > 20
