"""The signing stage through the engine: every signed RRset validates with dnspython against the
zone's DNSKEY, denial is RFC 9824's compact form, and the signature cache never serves a stale
signature."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import socket
import struct

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from minidns.dnssec import keys as K
from minidns.dnssec.records import count_labels, type_bitmap
from minidns.dnssec.signer import SignatureCache, ZoneKeys, predecessor
from minidns.answer.engine import LATER, Engine, EngineSettings
from minidns.server.transport import UdpProtocol
from minidns.zones.loader import load_zone_text

ORIGIN = dns.name.from_text("example.test.")
NOW = 1_790_000_000.0
ZONE = """
$TTL 300
@        SOA  ns1 hostmaster 1 7200 3600 1209600 60
@        NS   ns1
{dnskeys}
ns1      A    192.0.2.53
www      A    192.0.2.80
www      A    192.0.2.81
mail     MX   10 mx
mx       A    192.0.2.25
alias    CNAME www
dangling CNAME nothere
*.wild   TXT  "from the wildcard"
a.b.c    TXT  "below an empty non-terminal"
dn       DNAME other.test.
secure   NS   ns.secure
secure   DS   12345 13 2 {digest}
ns.secure A   192.0.2.99
insecure NS   ns.elsewhere.test.
"""
DIGEST = "AB" * 32


def make_zone(keys):
    lines = "\n".join(f"@ 3600 DNSKEY {k.flags} 3 {k.algorithm} {base64.b64encode(k.public).decode()}" for k in keys)
    snap = load_zone_text(ZONE.format(dnskeys=lines, digest=DIGEST), "example.test.")
    snap.keys = ZoneKeys(snap.origin, keys)
    return snap


@pytest.fixture(params=["csk-ecdsa", "ksk-zsk-ed25519", "csk-rsa"])
def keys(request):
    if request.param == "csk-ecdsa":
        return [K.generate(K.ECDSAP256SHA256, "csk")]
    if request.param == "csk-rsa":
        return [K.generate(K.RSASHA256, "csk", rsa_bits=1024)]
    return [K.generate(K.ED25519, "ksk"), K.generate(K.ED25519, "zsk")]


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(keys, clock):
    e = Engine(EngineSettings(), clock=clock)
    e.set_zones([make_zone(keys)])
    return e


def ask(engine, name, rdtype="A", do=True, co=False, payload=4096):
    q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do, payload=payload)
    if co:
        q.ednsflags |= 0x4000
    return dns.message.from_wire(engine.answer(q.to_wire()))


def dnskey_rrset(engine):
    r = ask(engine, "example.test.", "DNSKEY")
    return next(s for s in r.answer if s.rdtype == dns.rdatatype.DNSKEY)


def validate_all(engine, reply, clock):
    """Every RRset of answer and authority (and additional, except glue) has a valid RRSIG."""
    keyset = {ORIGIN: dnskey_rrset(engine)}
    checked = 0
    for section in (reply.answer, reply.authority, reply.additional):
        sigs = {(s.name, s.covers): s for s in section if s.rdtype == dns.rdatatype.RRSIG}
        for rrset in section:
            if rrset.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.OPT):
                continue
            sig = sigs.get((rrset.name, rrset.rdtype))
            if sig is None:
                continue
            dns.dnssec.validate(rrset, sig, keyset, now=clock.now)
            checked += 1
    return checked


def sigs_for(section, rdtype):
    return [s for s in section if s.rdtype == dns.rdatatype.RRSIG and s.covers == rdtype]


def nsec(section):
    found = [s for s in section if s.rdtype == dns.rdatatype.NSEC]
    assert len(found) == 1, section
    return found[0]


def test_positive_answers_validate(engine, clock):
    for name, rdtype in [("www.example.test.", "A"), ("example.test.", "SOA"), ("example.test.", "NS"),
                         ("example.test.", "DNSKEY"), ("mail.example.test.", "MX"), ("secure.example.test.", "DS")]:
        r = ask(engine, name, rdtype)
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
        assert sigs_for(r.answer, dns.rdatatype.from_text(rdtype)), (name, rdtype)
        assert validate_all(engine, r, clock) >= 1


def test_dnskey_is_signed_by_the_key_signing_key_and_the_rest_by_the_zone_key(engine, keys):
    r = ask(engine, "example.test.", "DNSKEY")
    tags = {sig.key_tag for sig in sigs_for(r.answer, dns.rdatatype.DNSKEY)[0]}
    assert tags == {k.key_tag for k in keys if k.signs_keys}
    r = ask(engine, "www.example.test.")
    assert {sig.key_tag for sig in sigs_for(r.answer, dns.rdatatype.A)[0]} == {k.key_tag for k in keys if k.signs_zone}


def test_without_do_nothing_is_signed(engine):
    r = ask(engine, "www.example.test.", do=False)
    assert not sigs_for(r.answer, dns.rdatatype.A)
    r = ask(engine, "nothere.example.test.", do=False)
    assert r.rcode() == dns.rcode.NXDOMAIN and not any(s.rdtype == dns.rdatatype.NSEC for s in r.authority)


def test_nxdomain_is_compact_nodata_with_nxname(engine, clock):
    r = ask(engine, "nothere.example.test.")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer  # RFC 9824 §3: NOERROR
    n = nsec(r.authority)
    assert n.name == dns.name.from_text("nothere.example.test.")
    assert n[0].next == dns.name.from_text("\\000.nothere.example.test.")
    assert _types(n) == {"RRSIG", "NSEC", "NXNAME"}
    assert n.ttl == 60  # RFC 9077: min(SOA TTL 300, MINIMUM 60)
    assert validate_all(engine, r, clock) == 2  # SOA and NSEC


def test_co_flag_restores_the_nxdomain_rcode(engine, clock):
    r = ask(engine, "nothere.example.test.", co=True)
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.ednsflags & 0x4000  # echoed
    assert _types(nsec(r.authority)) == {"RRSIG", "NSEC", "NXNAME"}
    assert validate_all(engine, r, clock) == 2


def test_nodata_bitmap_has_the_real_types_never_the_query_type(engine, clock):
    r = ask(engine, "www.example.test.", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    n = nsec(r.authority)
    assert n.name == dns.name.from_text("www.example.test.") and _types(n) == {"A", "RRSIG", "NSEC"}
    r = ask(engine, "example.test.", "MX")
    assert _types(nsec(r.authority)) == {"SOA", "NS", "DNSKEY", "RRSIG", "NSEC"}
    assert validate_all(engine, r, clock) == 2


def test_empty_non_terminal_is_nsec_rrsig_only(engine, clock):
    r = ask(engine, "b.c.example.test.", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert _types(nsec(r.authority)) == {"RRSIG", "NSEC"}
    assert validate_all(engine, r, clock) == 2


def test_rrsig_query_answers_unsigned_signatures():
    """A query for type RRSIG (a zone signed in its rows, as store/signing.py keeps it) gets the
    stored RRSIGs, not signatures over them (RFC 4035 §2.2)."""
    keys = [K.generate(K.ECDSAP256SHA256, "csk")]
    lines = "\n".join(f"@ 3600 DNSKEY {k.flags} 3 {k.algorithm} {base64.b64encode(k.public).decode()}" for k in keys)
    text = ZONE.format(dnskeys=lines, digest=DIGEST) + "www RRSIG A 13 3 300 20300101000000 20200101000000 1 example.test. AAAA\n"
    snap = load_zone_text(text, "example.test.")
    snap.keys = ZoneKeys(snap.origin, keys)
    e = Engine(EngineSettings(), clock=Clock())
    e.set_zones([snap])
    r = ask(e, "www.example.test.", "RRSIG")
    assert [s.rdtype for s in r.answer] == [dns.rdatatype.RRSIG] and r.answer[0].covers == dns.rdatatype.A


def test_nxname_query_is_formerr(engine):
    r = ask(engine, "www.example.test.", 128)
    assert r.rcode() == dns.rcode.FORMERR


def test_wildcard_answer_signed_as_the_wildcard_and_next_closer_covered(engine, clock):
    r = ask(engine, "x.y.wild.example.test.", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    sig = sigs_for(r.answer, dns.rdatatype.TXT)[0]
    assert sig[0].labels == 3  # *.wild.example.test. → wild.example.test.
    assert validate_all(engine, r, clock) == 2  # the TXT (as expanded) and the NSEC
    n = nsec(r.authority)
    closer = dns.name.from_text("y.wild.example.test.")
    qname = dns.name.from_text("x.y.wild.example.test.")
    assert n.name < closer < qname < n[0].next  # the next closer name and the query name covered (RFC 4035 §3.1.3.3)
    assert n[0].next == dns.name.from_text("y\\000.wild.example.test.")  # at the next closer's depth
    # NODATA at a wildcard-made name: compact NODATA at the name, the wildcard's types.
    r = ask(engine, "x.wild.example.test.", "A")
    assert _types(nsec(r.authority)) == {"TXT", "RRSIG", "NSEC"}
    assert validate_all(engine, r, clock) == 2


def test_cname_chain_and_dangling_cname(engine, clock):
    r = ask(engine, "alias.example.test.", "A")
    assert [s.rdtype for s in r.answer if s.rdtype != dns.rdatatype.RRSIG] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert validate_all(engine, r, clock) == 2
    r = ask(engine, "dangling.example.test.", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert nsec(r.authority).name == dns.name.from_text("nothere.example.test.")
    assert validate_all(engine, r, clock) == 3  # CNAME, SOA, NSEC


def test_dname_signed_and_synthesized_cname_not(engine, clock):
    r = ask(engine, "x.dn.example.test.", "A")
    assert sigs_for(r.answer, dns.rdatatype.DNAME) and not sigs_for(r.answer, dns.rdatatype.CNAME)
    assert validate_all(engine, r, clock) == 1


def test_referrals_prove_ds_or_its_absence_and_glue_is_unsigned(engine, clock):
    r = ask(engine, "host.secure.example.test.", "A")
    assert not r.flags & dns.flags.AA
    assert not sigs_for(r.authority, dns.rdatatype.NS)
    assert sigs_for(r.authority, dns.rdatatype.DS)
    assert not sigs_for(r.additional, dns.rdatatype.A)  # glue
    assert validate_all(engine, r, clock) == 1
    r = ask(engine, "host.insecure.example.test.", "A")
    n = nsec(r.authority)
    assert n.name == dns.name.from_text("insecure.example.test.") and _types(n) == {"NS", "RRSIG", "NSEC"}
    assert validate_all(engine, r, clock) == 1
    r = ask(engine, "insecure.example.test.", "DS")  # the parent's NODATA for DS
    assert r.flags & dns.flags.AA and _types(nsec(r.authority)) == {"NS", "RRSIG", "NSEC"}


def test_additional_in_zone_data_is_signed(engine, clock):
    r = ask(engine, "mail.example.test.", "MX")
    assert sigs_for(r.additional, dns.rdatatype.A)
    assert validate_all(engine, r, clock) == 2


def test_a_changed_rrset_never_gets_the_old_signature(keys, clock):
    e = Engine(EngineSettings(), clock=clock)
    z1 = make_zone(keys)
    e.set_zones([z1])
    first = sigs_for(ask(e, "www.example.test.").answer, dns.rdatatype.A)[0]
    text = ZONE.replace("www      A    192.0.2.81", "www      A    192.0.2.82")
    lines = "\n".join(f"@ 3600 DNSKEY {k.flags} 3 {k.algorithm} {base64.b64encode(k.public).decode()}" for k in keys)
    z2 = load_zone_text(text.format(dnskeys=lines, digest=DIGEST), "example.test.")
    z2.keys = z1.keys  # the same keys object (and signature cache identity), new data
    e.replace_zone(z2)
    r = ask(e, "www.example.test.")
    assert {rd.address for rd in r.answer[0]} == {"192.0.2.80", "192.0.2.82"}
    assert sigs_for(r.answer, dns.rdatatype.A)[0] != first
    assert validate_all(e, r, clock) == 1


def test_signatures_are_cached_refreshed_at_three_quarters_and_spread(engine, clock, keys):
    before = engine.signer.cache.signed
    ask(engine, "www.example.test.")
    made = engine.signer.cache.signed - before
    assert made >= 1
    engine.udp_cache.clear()
    ask(engine, "www.example.test.")
    assert engine.signer.cache.signed - before == made  # from the signature cache
    sig = sigs_for(ask(engine, "www.example.test.").answer, dns.rdatatype.A)[0][0]
    assert sig.inception == int(NOW) - 3600
    validity = 14 * 86400
    assert int(NOW) + validity * 0.9 <= sig.expiration <= int(NOW) + validity
    other = sigs_for(ask(engine, "ns1.example.test.").answer, dns.rdatatype.A)[0][0]
    mx = sigs_for(ask(engine, "mx.example.test.").answer, dns.rdatatype.A)[0][0]
    assert len({sig.expiration, other.expiration, mx.expiration}) > 1  # spread
    # Past 75% of the validity: signed again; the cached reply is retired by the next renewal.
    clock.now = NOW + validity * 0.8
    assert engine.renew_signed() == 1
    sig2 = sigs_for(ask(engine, "www.example.test.").answer, dns.rdatatype.A)[0][0]
    assert sig2.inception > sig.inception
    assert validate_all(engine, ask(engine, "www.example.test."), clock) == 1


def test_a_full_signature_cache_drops_the_least_recently_used():
    cache = SignatureCache(entries=3)
    for i in range(5):
        cache.put(("k", i), (b"s",), NOW + 10)
    assert len(cache) == 3 and cache.get(("k", 0), NOW) is None and cache.get(("k", 4), NOW) == (b"s",)
    cache.get(("k", 2), NOW)
    cache.put(("k", 5), (b"s",), NOW + 10)
    assert cache.get(("k", 2), NOW) is not None and cache.get(("k", 3), NOW) is None
    assert cache.get(("k", 4), NOW + 11) is None  # due for refresh


def test_truncation_keeps_signed_answers_whole(engine):
    q = dns.message.make_query("www.example.test.", "A", use_edns=0, want_dnssec=True, payload=512)
    r = dns.message.from_wire(engine.answer(q.to_wire()))
    if r.flags & dns.flags.TC:
        assert not r.answer
    else:
        assert sigs_for(r.answer, dns.rdatatype.A)


def test_helpers():
    assert count_labels(b"\x01*\x03foo\x00") == 1
    assert count_labels(b"\x03www\x03foo\x00") == 2
    assert type_bitmap([1, 46, 47, 128]) == dns.rdata.from_text("IN", "NSEC", "x. A RRSIG NSEC TYPE128").to_wire()[3:]
    n = dns.name.from_text("b.example.")
    p = dns.name.from_wire(predecessor(n.to_wire()), 0)[0]
    assert p < n and p.parent() == n.parent()


def _types(nsec_rrset) -> set[str]:
    text = nsec_rrset[0].to_text().split()[1:]
    return {"NXNAME" if t == "TYPE128" else t for t in text}


@pytest.mark.parametrize("name", ["nothere.example.test.", "x.ns1.example.test.", "Z.HostMaster.Example.TEST.",
                                  "a.b.c.d.e.f.www.example.test.", "x" * 63 + ".mx.example.test.", "q.secure2.example.test."])
def test_name_error_fast_path_gives_the_general_encoders_records(engine, keys, clock, name):
    """A name error is encoded by Engine.compact_denial, not the general encoder: the same
    records (signatures aside, which ECDSA randomises), every one valid, for names that share
    suffixes with the SOA's names, in any letter case (0x20), short or long."""
    general = Engine(EngineSettings(), clock=clock)
    general.set_zones(list(engine.table.zones.values()))
    general.compact_denial = lambda *args: None  # the general path: resolve, sign_answer, render
    for co in (False, True):
        fast, slow = ask(engine, name, co=co), ask(general, name, co=co)
        assert fast.rcode() == slow.rcode() == (dns.rcode.NXDOMAIN if co else dns.rcode.NOERROR)
        assert fast.flags == slow.flags and fast.ednsflags == slow.ednsflags
        assert fast.question == slow.question and fast.question[0].name.to_text() == name  # case kept
        assert [r for r in fast.authority if r.rdtype != dns.rdatatype.RRSIG] == \
               [r for r in slow.authority if r.rdtype != dns.rdatatype.RRSIG]  # fmt: skip
        assert [(r.name, r.covers, r.ttl, [(s.key_tag, s.labels, s.original_ttl, s.expiration) for s in r])
                for r in fast.authority if r.rdtype == dns.rdatatype.RRSIG] == \
               [(r.name, r.covers, r.ttl, [(s.key_tag, s.labels, s.original_ttl, s.expiration) for s in r])
                for r in slow.authority if r.rdtype == dns.rdatatype.RRSIG]  # fmt: skip
        assert validate_all(engine, fast, clock) == 2


def test_name_error_too_large_for_the_payload_is_truncated():
    """RSA-2048 KSK+ZSK signatures do not fit a 512-octet reply: the fast path steps aside and
    the general encoder sets TC (RFC 7766 §5), as for any answer."""
    keys = [K.generate(K.RSASHA256, "ksk", rsa_bits=2048), K.generate(K.RSASHA256, "zsk", rsa_bits=2048)]
    e = Engine(EngineSettings(), clock=Clock())
    e.set_zones([make_zone(keys)])
    r = ask(e, "nothere.example.test.", payload=512)
    assert r.flags & dns.flags.TC and not r.authority
    r = ask(e, "nothere.example.test.", payload=1232)
    assert not r.flags & dns.flags.TC and _types(nsec(r.authority)) == {"RRSIG", "NSEC", "NXNAME"}


REAL = [("www.example.test.", "A"), ("mail.example.test.", "MX"), ("ns1.example.test.", "A"),
        ("alias.example.test.", "CNAME"), ("x.wild.example.test.", "TXT"), ("example.test.", "DNSKEY")]


def test_a_flood_of_missing_names_leaves_the_real_names_cached(clock):
    """A random-subdomain flood (each name once) neither pushes the real names' replies out of the
    reply cache nor their signatures out of the signature cache, however small both are: its
    replies are not cached on a first sight and its NSEC signatures are kept apart."""
    e = Engine(EngineSettings(cache_entries=200, signature_cache_entries=20), clock=clock)
    e.set_zones([make_zone([K.generate(K.ECDSAP256SHA256, "csk")])])
    for name, rdtype in REAL:
        ask(e, name, rdtype)
    ask(e, "nothere.example.test.")  # the SOA's signature, which every denial carries
    cached, signed = len(e.udp_cache), e.signer.cache.signed
    for i in range(3000):
        assert ask(e, f"flood{i}.example.test.").authority  # a signed denial each
    assert e.signer.cache.signed - signed == 3000  # one NSEC signature per flood name
    assert len(e.udp_cache) == cached
    hits = e.stats.engine_hits[False]
    signed = e.signer.cache.signed
    replies = [ask(e, name, rdtype) for name, rdtype in REAL]
    assert e.stats.engine_hits[False] - hits == len(REAL)  # every one from the reply cache
    assert all(validate_all(e, r, clock) >= 1 for r in replies)
    e.udp_cache.clear()
    for name, rdtype in REAL:
        ask(e, name, rdtype)
    assert e.signer.cache.signed == signed  # and their signatures still cached


def test_a_name_error_asked_again_is_cached_and_one_nsec_signature_serves_every_type(engine, clock):
    before = len(engine.udp_cache)
    first = ask(engine, "typo.example.test.")
    signed = engine.signer.cache.signed
    assert len(engine.udp_cache) == before  # once: not kept
    assert ask(engine, "typo.example.test.").authority == first.authority  # the same signature (kept apart)
    assert len(engine.udp_cache) == before + 1  # twice: kept
    hits = engine.stats.engine_hits[False]
    ask(engine, "typo.example.test.")
    assert engine.stats.engine_hits[False] == hits + 1
    aaaa = ask(engine, "typo.example.test.", "AAAA")  # a resolver's AAAA after its A: no new signature
    assert engine.signer.cache.signed == signed  # signed once, for the first
    nsec = [r for r in aaaa.authority if r.rdtype == dns.rdatatype.NSEC]
    assert nsec and validate_all(engine, aaaa, clock) == 2


def _query(name, rdtype="A", co=False, payload=1232, qid=None):
    q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=True, payload=payload)
    if co:
        q.ednsflags |= 0x4000
    if qid is not None:
        q.id = qid
    return q


def test_a_burst_of_name_errors_is_signed_when_finished(clock):
    """Engine.answer with a `later` list defers signed name errors whose NSEC is not signed yet;
    finish signs them one after another and gives each reply with its peer: the same records as
    a reply made at once, valid, counted once in the statistics."""
    e = Engine(EngineSettings(), clock=clock)
    e.set_zones([make_zone([K.generate(K.ECDSAP256SHA256, "csk")])])
    now = Engine(EngineSettings(), clock=clock)
    now.set_zones(list(e.table.zones.values()))
    queries = [_query(f"burst{i}.example.test.", co=i == 3) for i in range(9)] + [_query("Mixed.CASE.Example.test.")]
    peers = [("127.0.0.1", 1000 + i) for i in range(len(queries))]
    e.answer(_query("first.example.test.").to_wire())  # signs the SOA, which every denial carries
    later, signed, answered = [], e.signer.cache.signed, sum(e.stats.answers.values())
    for q, peer in zip(queries, peers):
        assert e.answer(q.to_wire(), False, peer, later) is LATER
    assert len(later) == len(queries) and e.signer.cache.signed == signed  # nothing signed yet
    assert isinstance(e.answer(_query("www.example.test.").to_wire(), False, peers[0], later), bytes)  # not a name error
    assert len(later) == len(queries)
    out = e.finish(later)
    assert later == [] and [p for _, p, _ in out] == peers
    assert [query for _, _, query in out] == [q.to_wire() for q in queries]
    assert e.signer.cache.signed == signed + len(queries) + 1  # and www's A RRset
    assert sum(e.stats.answers.values()) == answered + len(queries) + 1
    for (wire, _, _), q in zip(out, queries):
        r, at_once = dns.message.from_wire(wire), dns.message.from_wire(now.answer(q.to_wire()))
        assert r.id == q.id and r.question == q.question and r.question[0].name.to_text() == q.question[0].name.to_text()
        assert (r.rcode(), r.flags, r.ednsflags) == (at_once.rcode(), at_once.flags, at_once.ednsflags)
        assert [x for x in r.authority if x.rdtype != dns.rdatatype.RRSIG] == \
               [x for x in at_once.authority if x.rdtype != dns.rdatatype.RRSIG]  # fmt: skip
        assert validate_all(e, r, clock) == 2
    assert dns.message.from_wire(out[3][0]).rcode() == dns.rcode.NXDOMAIN  # the CO flag kept
    # Asked again, the NSEC's signature is cached: answered at once.
    assert isinstance(e.answer(queries[0].to_wire(), False, peers[0], later), bytes) and later == []


def test_a_deferred_reply_that_cannot_be_signed_is_servfail_and_the_rest_go(clock):
    """RFC 8906: a signing failure in a burst answers that query SERVFAIL; the others are signed."""
    key = K.generate(K.ECDSAP256SHA256, "csk")
    e = Engine(EngineSettings(), clock=clock)
    e.set_zones([make_zone([key])])
    later = []
    queries = [_query(f"fails{i}.example.test.") for i in range(3)]
    for q in queries:
        assert e.answer(q.to_wire(), False, None, later) is LATER
    broken = dataclasses.replace(key, private=None, native=None)  # a key whose signing raises
    inputs, *rest = later[1].pending
    later[1].pending = ([(broken, fields, data) for _, fields, data in inputs], *rest)
    replies = [dns.message.from_wire(w) for w, _, _ in e.finish(later)]
    assert [r.rcode() for r in replies] == [dns.rcode.NOERROR, dns.rcode.SERVFAIL, dns.rcode.NOERROR]
    assert replies[1].id == queries[1].id and replies[1].question == queries[1].question
    assert validate_all(e, replies[0], clock) == 2 and validate_all(e, replies[2], clock) == 2


def test_a_deferred_name_error_too_large_for_the_payload_is_truncated_at_once():
    """RSA-2048 KSK+ZSK signatures do not fit 512 octets: such a name error is not deferred; the
    general encoder sets TC."""
    e = Engine(EngineSettings(), clock=Clock())
    e.set_zones([make_zone([K.generate(K.RSASHA256, "ksk", rsa_bits=2048), K.generate(K.RSASHA256, "zsk", rsa_bits=2048)])])
    later = []
    wire = e.answer(_query("nothere.example.test.", payload=512).to_wire(), False, None, later)
    assert later == [] and dns.message.from_wire(wire).flags & dns.flags.TC
    assert e.answer(_query("nothere2.example.test.").to_wire(), False, None, later) is LATER
    r = dns.message.from_wire(e.finish(later)[0][0])
    assert not r.flags & dns.flags.TC and len(sigs_for(r.authority, dns.rdatatype.NSEC)[0]) == 1


def test_a_burst_over_udp_is_signed_in_batches(clock):
    """Over a real UDP socket on uvloop (as the server runs): datagrams that arrive together are
    signed in batches, every one answered and valid."""
    e = Engine(EngineSettings(), clock=clock)
    e.set_zones([make_zone([K.generate(K.ECDSAP256SHA256, "csk")])])
    batches = []
    finish = e.finish
    e.finish = lambda later: (batches.append(len(later)), finish(later))[1]
    n = 150
    replies = _flood_over_udp(lambda: UdpProtocol(e), [_query(f"udp{i}.example.test.", qid=i) for i in range(n)], wait=30)
    assert sorted(replies) == list(range(n))
    assert sum(batches) == n and max(batches) > 1
    assert all(replies[i].question[0].name.to_text() == f"udp{i}.example.test." for i in range(n))
    assert all(validate_all(e, r, clock) == 2 for r in replies.values())


def _flood_over_udp(protocol, queries, wait=2.0):
    """Send `queries` all at once over UDP on uvloop to a `protocol()` on loopback; the replies
    that came within `wait` seconds of the last, by ID."""
    import uvloop

    async def main():
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(protocol, local_addr=("127.0.0.1", 0))
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        try:
            for q in queries:  # all sent before the server's loop gets a turn
                client.sendto(q.to_wire(), transport.get_extra_info("sockname"))
            replies = {}
            try:
                async with asyncio.timeout(wait):  # the dropped ones never come
                    while len(replies) < len(queries):
                        r = dns.message.from_wire(await loop.sock_recv(client, 65535))
                        replies[r.id] = r
            except TimeoutError:
                pass
            return replies
        finally:
            client.close()
            transport.close()

    return uvloop.run(main())


def test_with_rrl_a_limited_name_error_is_never_signed(clock):
    """RrlUdpProtocol counts a deferred signed name error from its unsigned part: what RRL lets
    through is signed and valid, a slipped one goes truncated with no records, a dropped one gets
    nothing — and neither of those two is signed."""
    from minidns.answer.rrl import RateLimiter
    from minidns.server.transport import RrlUdpProtocol

    e = Engine(EngineSettings(), clock=clock)
    e.set_zones([make_zone([K.generate(K.ECDSAP256SHA256, "csk")])])
    e.answer(_query("first.example.test.").to_wire())  # signs the SOA, which every denial carries
    signed, answered = e.signer.cache.signed, sum(e.stats.answers.values())
    limiter = RateLimiter(5, slip=2)  # 5 denials a second for the zone, then every 2nd limited one slips
    n = 60
    replies = _flood_over_udp(lambda: RrlUdpProtocol(e, limiter), [_query(f"rrl{i}.example.test.", qid=i) for i in range(n)])
    whole = [r for r in replies.values() if not r.flags & dns.flags.TC]
    slipped = [r for r in replies.values() if r.flags & dns.flags.TC]
    assert 5 <= len(whole) <= 6  # the allowance (plus what a second of test time credits)
    assert e.signer.cache.signed - signed == len(whole)  # only what was sent whole was signed
    assert sum(e.stats.answers.values()) - answered == n  # every query counted, limited or not
    assert all(validate_all(e, r, clock) == 2 for r in whole)
    assert all(not r.authority and not r.answer and r.question[0].name.to_text() == f"rrl{r.id}.example.test."
               for r in slipped)  # fmt: skip
    assert len(slipped) == limiter.slipped and limiter.slipped + limiter.dropped == n - len(whole)
    assert limiter.dropped > 20 and limiter.slipped > 20


def test_with_rrl_and_cookies_deferred_name_errors_are_limited_as_other_replies(clock):
    """With DNS cookies on, a query with a cookie and another option takes the deferred way too:
    one with a valid server cookie is never limited (its address is proven), one with a client
    cookie alone slips as BADCOOKIE with a fresh server cookie (RFC 7873 §5.2.3)."""
    import time

    from minidns.answer.cookies import Cookies, address_octets
    from minidns.answer.rrl import RateLimiter
    from minidns.server.transport import RrlUdpProtocol

    e = Engine(EngineSettings(), clock=clock)
    e.cookies = Cookies()
    e.set_zones([make_zone([K.generate(K.ECDSAP256SHA256, "csk")])])
    client = b"\x07" * 8
    nsid = dns.edns.GenericOption(dns.edns.NSID, b"")

    def with_cookie(name, qid, server=b""):
        q = _query(name, qid=qid)
        q.use_edns(0, dns.flags.DO, 1232, options=[dns.edns.CookieOption(client, server), nsid])
        return q

    valid = e.cookies.make(client, address_octets(("127.0.0.1", 0)), int(time.time()))
    limiter = RateLimiter(2, slip=1)  # 2 denials a second for the zone, then every limited one slips
    n = 30
    replies = _flood_over_udp(lambda: RrlUdpProtocol(e, limiter),
                              [with_cookie(f"valid{i}.example.test.", i, valid) for i in range(n)])  # fmt: skip
    assert len(replies) == n and limiter.slipped == limiter.dropped == 0
    assert all(not r.flags & dns.flags.TC and validate_all(e, r, clock) == 2 for r in replies.values())
    replies = _flood_over_udp(lambda: RrlUdpProtocol(e, limiter),
                              [with_cookie(f"client{i}.example.test.", i) for i in range(n)])  # fmt: skip
    assert len(replies) == n and limiter.slipped >= n - 3
    bad = [r for r in replies.values() if r.rcode() == dns.rcode.BADCOOKIE]
    assert len(bad) == limiter.slipped and all(not r.authority for r in bad)
    assert all(len(next(o for o in r.options if o.otype == dns.edns.COOKIE).server) == 16 for r in bad)


def test_p256_signatures_in_dnssec_form_whatever_the_integers_lengths():
    """p256_raw turns OpenSSL's DER into r||s (RFC 6605 §4): INTEGERs of 33 octets (high bit
    set), 32, and shorter ones (small values), checked against cryptography's own encoder."""
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    for r, s in [(2**255 + 5, 7), (2**200, 2**256 - 3), (1, 2**255), (0x1234, 0x00FF << 240), (2**248 - 1, 2**248)]:
        raw = K.p256_raw(encode_dss_signature(r, s))
        assert raw == r.to_bytes(32, "big") + s.to_bytes(32, "big")
    key = K.generate(K.ECDSAP256SHA256, "csk")
    for signer in (key, dataclasses.replace(key, native=None)):  # the C accelerator (when built) and cryptography
        for i in range(200):  # real signatures: about half have a 33-octet r or s
            data = b"signed %d" % i
            raw = signer.sign(data)
            assert len(raw) == 64
            key.private.public_key().verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                                            data, K._ECDSA_SHA256)  # fmt: skip


def test_the_c_accelerator_is_built_and_used_for_p256():
    """The test command installs with a C compiler: P-256 keys sign through dnssec/_p256.c (one
    OpenSSL context per key), which refuses what is not a private key."""
    assert K.NativeP256 is not None
    key = K.load_private("csk", K.ECDSAP256SHA256, K.private_der(K.generate(K.ECDSAP256SHA256, "csk")))
    assert key.native is not None and K.generate(K.ED25519, "csk").native is None
    with pytest.raises(ValueError):
        K.NativeP256(b"not a key")
    with pytest.raises(TypeError):
        key.native.sign("text")


def _two_engines(clock):
    """Two engines serving one zone signed with Ed25519 (deterministic signatures): the second
    never takes the quick way to a name error."""
    keys = [K.generate(K.ED25519, "ksk"), K.generate(K.ED25519, "zsk")]
    quick, general = Engine(EngineSettings(), clock=clock), Engine(EngineSettings(), clock=clock)
    quick.set_zones([make_zone(keys)])
    general.set_zones(list(quick.table.zones.values()))
    general.quick_denial = lambda data, later: None
    return quick, general


def test_the_quick_way_to_a_name_error_gives_the_general_ways_reply_byte_for_byte(clock):
    """Engine.quick_denial answers the flood's query shape without the general parse: for names
    in any case, CO or not, any payload, RD/CD, any ordinary type, the reply is the same octets the
    general way gives (Ed25519 signs deterministically), and it validates."""
    quick, general = _two_engines(clock)
    cases = []
    for i, (name, rdtype) in enumerate([("nothere.example.test.", "A"), ("Mixed.CASE.example.TEST.", "AAAA"),
                                        ("a.b.c.d.e.f.www.example.test.", "MX"), ("x" * 63 + ".mx.example.test.", "TXT"),
                                        ("q.secure2.example.test.", "DS"), ("any.example.test.", "ANY"),
                                        ("n.ns1.example.test.", "NS")]):  # fmt: skip
        for co, payload, flags in ((False, 1232, dns.flags.RD), (True, 512, dns.flags.CD), (False, 4096, 0)):
            q = _query(f"c{i}{co:d}{payload}.{name}", rdtype, co=co, payload=payload)
            q.flags = flags
            cases.append(q)
    later_q, later_g = [], []
    for q in cases:
        probe = []
        assert quick.quick_denial(q.to_wire(), probe) is not None and len(probe) == 1  # it takes the quick way
        quick.doorkeeper = type(quick.doorkeeper)()  # forget the probe's sight of the name
        quick.signer.nx_cache.data.clear()
        assert quick.answer(q.to_wire(), False, None, later_q) is LATER
        assert general.answer(q.to_wire(), False, None, later_g) is LATER
    replies_q, replies_g = quick.finish(later_q), general.finish(later_g)
    assert [r for r, _, _ in replies_q] == [r for r, _, _ in replies_g]
    for (wire, _, _), q in zip(replies_q, cases):
        r = dns.message.from_wire(wire)
        assert r.id == q.id and r.question[0].name.to_text() == q.question[0].name.to_text()
        assert r.rcode() == (dns.rcode.NXDOMAIN if q.ednsflags & 0x4000 else dns.rcode.NOERROR)
        assert validate_all(quick, r, clock) == 2


def test_anything_but_the_floods_query_shape_goes_the_general_way(clock, caplog):
    quick, _ = _two_engines(clock)
    unsigned = Engine(EngineSettings(), clock=clock)
    unsigned.set_zones([load_zone_text(ZONE.format(dnskeys="", digest=DIGEST), "example.test.")])

    def q(name="nx.example.test.", rdtype="A", **kw):
        kw.setdefault("want_dnssec", True)
        return dns.message.make_query(name, rdtype, use_edns=kw.pop("use_edns", 0), **kw).to_wire()

    def header(wire, **fields):
        qid, flags, qd, an, ns, ar = struct.unpack("!6H", wire[:12])
        f = dict(qid=qid, flags=flags, qd=qd, an=an, ns=ns, ar=ar) | fields
        return struct.pack("!6H", f["qid"], f["flags"], f["qd"], f["an"], f["ns"], f["ar"]) + wire[12:]

    others = {
        "no DO": q(want_dnssec=False),
        "no EDNS": q(use_edns=None, want_dnssec=False),
        "an option (NSID)": q(options=[dns.edns.GenericOption(dns.edns.NSID, b"")]),
        "a cookie": q(options=[dns.edns.CookieOption(b"\x01" * 8, b"")]),
        "EDNS version 1": q(use_edns=1),
        "class CH": q(rdclass="CH"),
        "class ANY": q(rdclass="ANY"),
        "AXFR": q(rdtype="AXFR"),
        "NXNAME": q(rdtype=128),
        "an existing name": q("www.example.test."),
        "a wildcard's name": q("x.wild.example.test."),
        "an empty non-terminal": q("b.c.example.test."),
        "below a delegation": q("x.secure.example.test."),
        "below a DNAME": q("x.dn.example.test."),
        "outside every zone": q("nx.elsewhere.test."),
        "a response (QR)": header(q(), flags=0x8100),
        "NOTIFY": header(q(), flags=0x2000),
        "a record in answer": header(q() + b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00", an=1),
        "trailing octets": q() + b"\x00",
        "truncated": q()[:-3],
        "only a header": q()[:12],
        "a name running past the end": q()[:12] + b"\x05ab\x00\x00",
        "a compression pointer": q()[:12] + b"\xc0\x0c" + q()[-15:],
    }
    for what, wire in others.items():
        later = []
        assert quick.quick_denial(wire, later) is None and later == [], what
    later = []
    assert unsigned.quick_denial(q(), later) is None and later == []
    assert quick.quick_denial(q("again.example.test."), later) is not None
    assert quick.quick_denial(q("again.example.test."), later) is None  # asked again: the general way caches it
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # nothing of this is an internal error
