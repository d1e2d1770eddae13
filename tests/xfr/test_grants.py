"""The UPDATE grant table (xfr/grants.py): each match kind with BIND's update-policy meaning, types
and ANY, first match wins, deny rules, and the dict form read and written back."""

import dns.name
import dns.rdatatype
import pytest

from minidns.xfr.grants import Grant, decide, grant_from, grant_to

N = dns.name.from_text
KEY = "ddns-key."
ZONE = "example.com."
A, AAAA, TXT, MX, SOA, ANY = 1, 28, 16, 15, 6, 255


def grant(**kw) -> Grant:
    return grant_from({"key": KEY, "zone": ZONE, **kw})


# (grant, owner, type, matches) — the key and zone are KEY and ZONE unless the grant says otherwise.
CASES = [
    # name: the owner exactly, in any letter case
    ({"match": "name", "pattern": "host.example.com."}, "host.example.com.", A, True),
    ({"match": "name", "pattern": "host.example.com."}, "HOST.Example.COM.", A, True),
    ({"match": "name", "pattern": "host.example.com."}, "a.host.example.com.", A, False),
    ({"match": "name", "pattern": "host.example.com."}, "example.com.", A, False),
    # subdomain: the pattern and every name below it
    ({"match": "subdomain", "pattern": "dyn.example.com."}, "dyn.example.com.", A, True),
    ({"match": "subdomain", "pattern": "dyn.example.com."}, "a.b.dyn.example.com.", TXT, True),
    ({"match": "subdomain", "pattern": "dyn.example.com."}, "xdyn.example.com.", A, False),
    ({"match": "subdomain", "pattern": "dyn.example.com."}, "example.com.", A, False),
    # wildcard: RFC 4592 — strictly below the wildcard's parent, the `*` owner itself included
    ({"match": "wildcard", "pattern": "*.dyn.example.com."}, "h1.dyn.example.com.", A, True),
    ({"match": "wildcard", "pattern": "*.dyn.example.com."}, "a.b.dyn.example.com.", A, True),
    ({"match": "wildcard", "pattern": "*.dyn.example.com."}, "*.dyn.example.com.", A, True),
    ({"match": "wildcard", "pattern": "*.dyn.example.com."}, "dyn.example.com.", A, False),
    ({"match": "wildcard", "pattern": "*.dyn.example.com."}, "h1.example.com.", A, False),
    # self / selfsub: the key's own name (a host updating its own records, as BIND's "self")
    ({"match": "self", "key": "host.example.com."}, "host.example.com.", A, True),
    ({"match": "self", "key": "host.example.com."}, "www.host.example.com.", A, False),
    ({"match": "selfsub", "key": "host.example.com."}, "host.example.com.", A, True),
    ({"match": "selfsub", "key": "host.example.com."}, "www.host.example.com.", A, True),
    ({"match": "selfsub", "key": "host.example.com."}, "other.example.com.", A, False),
    # zone: any owner in the zone, the apex included
    ({"match": "zone"}, "example.com.", SOA, True),
    ({"match": "zone"}, "deep.a.example.com.", MX, True),
    # types: listed ones only; ANY (delete every RRset at a name) only under a rule for every type
    ({"match": "zone", "types": ["A", "AAAA"]}, "h.example.com.", AAAA, True),
    ({"match": "zone", "types": ["A", "AAAA"]}, "h.example.com.", TXT, False),
    ({"match": "zone", "types": ["A", "AAAA"]}, "h.example.com.", ANY, False),
    ({"match": "zone", "types": []}, "h.example.com.", ANY, True),
    ({"match": "zone", "types": ["soa"]}, "example.com.", SOA, True),
    ({"match": "zone", "types": ["TYPE65280"]}, "h.example.com.", 65280, True),
]


@pytest.mark.parametrize("entry, owner, rtype, expected", CASES)
def test_a_grant_matches_the_owners_and_types_it_names(entry, owner, rtype, expected):
    g = grant_from({"key": KEY, "zone": ZONE, **entry})
    key = N(entry.get("key", KEY))
    assert g.matches(key, N(ZONE), N(owner), rtype) is expected


@pytest.mark.parametrize("entry, key, zone, matches", [
    ({"key": KEY, "zone": ZONE, "match": "zone"}, "DDNS-Key.", ZONE, True),  # key names compare case-insensitively
    ({"key": KEY, "zone": ZONE, "match": "zone"}, "other-key.", ZONE, False),
    ({"key": KEY, "zone": ZONE, "match": "zone"}, KEY, "example.org.", False),
    ({"key": KEY, "match": "zone"}, KEY, "example.org.", True),  # no zone: every zone
    ({"key": KEY, "match": "subdomain", "pattern": "dyn.example.com."}, KEY, "dyn.example.com.", True),
])  # fmt: skip
def test_a_grant_is_for_its_key_and_zone(entry, key, zone, matches):
    g = grant_from(entry)
    assert g.matches(N(key), N(zone), N(f"x.{zone}") if entry["match"] == "zone" else N("a.dyn.example.com."), A) is matches


def test_the_first_matching_grant_decides_and_none_when_nothing_matches():
    table = (
        grant(match="name", pattern="ns1.example.com.", action="deny"),
        grant(match="subdomain", pattern="example.com.", types=["A", "AAAA"]),
        grant(match="zone", types=["TXT"], action="deny"),
        grant(match="zone"),
    )
    key, zone = N(KEY), N(ZONE)
    assert decide(table, key, zone, N("ns1.example.com."), A) is table[0] and not table[0].allow
    assert decide(table, key, zone, N("www.example.com."), A) is table[1] and table[1].allow
    assert decide(table, key, zone, N("www.example.com."), TXT) is table[2] and not table[2].allow
    assert decide(table, key, zone, N("www.example.com."), MX) is table[3]
    assert decide(table, key, zone, N("www.example.com."), ANY) is table[3]
    assert decide(table, N("stranger."), zone, N("www.example.com."), A) is None
    assert decide((), key, zone, N("www.example.com."), A) is None


@pytest.mark.parametrize("entry, message", [
    ({"key": KEY, "match": "regex", "pattern": "a.example.com."}, "match 'regex' is not one of name, subdomain"),
    ({"key": KEY, "zone": ZONE, "match": "name", "pattern": "a.example.org."}, "outside the zone example.com."),
    ({"key": KEY, "zone": ZONE, "match": "wildcard", "pattern": "dyn.example.com."}, "does not start with a '*' label"),
    ({"key": KEY, "match": "wildcard", "pattern": "a.*.example.com."}, "does not start with a '*' label"),
    ({"key": KEY, "match": "name"}, "match name needs a pattern"),
    ({"key": KEY, "match": "self", "pattern": "a.example.com."}, "match self takes no pattern"),
    ({"key": KEY, "match": "zone", "types": ["A", "BOGUS"]}, "unknown type 'BOGUS'"),
    ({"key": KEY, "match": "zone", "types": "A,AAAA"}, "types must be a list"),
    ({"key": KEY, "match": "zone", "types": [1]}, "1 is not a type name"),
    ({"key": KEY, "match": "zone", "types": ["ANY"]}, "ANY is not a record type"),
    ({"key": KEY, "match": "zone", "types": ["OPT"]}, "OPT is not a record type"),
    ({"key": KEY, "match": "zone", "action": "allow"}, "action 'allow' is not grant or deny"),
    ({"key": KEY, "match": "zone", "managed": "yes"}, "managed must be true or false"),
    ({"key": KEY, "match": "zone", "colour": "red"}, "unknown grant field(s): colour"),
    ({"match": "zone"}, "a grant needs key and match"),
    ({"key": "", "match": "zone"}, "key must be a domain name"),
    ({"key": "a..b", "match": "zone"}, "key 'a..b' is not a domain name"),
    ({"key": KEY, "zone": 5, "match": "zone"}, "zone must be a domain name"),
    (["key", KEY], "a grant is a table"),
] + [({"key": KEY, "match": "zone", "types": ["A", t]}, f"{t} is a DNSSEC type")
     for t in ("RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNSKEY", "CDS", "CDNSKEY")])  # fmt: skip
def test_a_bad_grant_is_refused_with_a_clear_message(entry, message):
    with pytest.raises(ValueError) as e:
        grant_from(entry)
    assert message in str(e.value)


@pytest.mark.parametrize("entry", [
    {"key": "DDNS-Key", "zone": "Example.COM", "match": "subdomain", "pattern": "Dyn.example.com", "types": ["txt", "A"]},
    {"key": KEY, "match": "wildcard", "pattern": "*.dyn.example.com.", "action": "deny", "managed": True},
    {"key": KEY, "match": "selfsub", "zone": None, "pattern": None, "types": []},
    {"key": KEY, "zone": ZONE, "match": "zone", "types": ["SOA", "DHCID", "TYPE65280"]},
])  # fmt: skip
def test_the_dict_form_reads_back_as_the_same_grant(entry):
    g = grant_from(entry)
    out = grant_to(g)
    assert set(out) == {"key", "zone", "match", "pattern", "types", "action", "managed"}
    assert grant_from(out) == g and grant_to(grant_from(out)) == out
    assert out["key"] == out["key"].lower() and out["key"].endswith(".")


def test_the_dict_form_is_plain_text():
    g = grant_from({"key": "DDNS-Key", "zone": "Example.COM", "match": "subdomain", "pattern": "Dyn.example.com",
                    "types": ["txt", "A", "AAAA"]})  # fmt: skip
    assert grant_to(g) == {"key": "ddns-key.", "zone": "example.com.", "match": "subdomain", "pattern": "dyn.example.com.",
                           "types": ["A", "AAAA", "TXT"], "action": "grant", "managed": False}  # fmt: skip
    assert g == Grant(N("ddns-key."), N("example.com."), "subdomain", N("dyn.example.com."),
                      frozenset({A, AAAA, TXT}), True, False)  # fmt: skip
    with pytest.raises(AttributeError):
        g.allow = False  # frozen
