"""dnssec/records.py: the RRSIG Labels field, canonical RDATA and RRsets (RFC 4034 §6), the RRSIG
fields and validity window, which keys sign which types, and NSEC type bitmaps — each against
dnspython's reading of the same records."""

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from minidns.dnssec import keys as K
from minidns.dnssec.records import (INCEPTION_SKEW, KEY_SIGNED, SPREAD, VALIDITY, canonical_rdata, canonical_rrset,
                                    count_labels, expiration_for, remembered, rrsig_inputs, rrsig_rdatas, signers_for,
                                    type_bitmap)  # fmt: skip

ORIGIN = dns.name.from_text("example.test.")


def name(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def rdata(rtype: str, text: str) -> bytes:
    return dns.rdata.from_text("IN", rtype, text).to_wire()


@pytest.mark.parametrize("owner, labels", [
    (".", 0), ("test.", 1), ("example.test.", 2), ("www.example.test.", 3), ("*.example.test.", 2),
    ("*.a.b.example.test.", 4), ("a.*.example.test.", 4),  # a `*` not first is an ordinary label
])  # fmt: skip
def test_labels_field(owner, labels):
    """RFC 4034 §3.1.3: the root and a leading wildcard label are not counted."""
    assert count_labels(name(owner)) == labels


@pytest.mark.parametrize("rtype, text, canonical", [
    ("NS", "NS1.Example.TEST.", "ns1.example.test."),
    ("CNAME", "WWW.Example.TEST.", "www.example.test."),
    ("MX", "10 Mail.Example.TEST.", "10 mail.example.test."),
    ("SRV", "1 2 5060 SIP.Example.TEST.", "1 2 5060 sip.example.test."),
    ("SOA", "NS1.EXAMPLE.TEST. Host.Master.TEST. 1 2 3 4 5", "ns1.example.test. host.master.test. 1 2 3 4 5"),
    ("DNAME", "Other.TEST.", "other.test."),
    ("TXT", '"Mixed Case"', '"Mixed Case"'),  # not a name: kept as it is
])  # fmt: skip
def test_canonical_rdata_lowercases_the_listed_types_names(rtype, text, canonical):
    t = dns.rdatatype.from_text(rtype)
    assert canonical_rdata(t, rdata(rtype, text)) == rdata(rtype, canonical)


def test_canonical_rrset_is_sorted_deduplicated_with_the_original_ttl():
    owner = name("WWW.Example.TEST.")
    a, b = rdata("A", "192.0.2.2"), rdata("A", "192.0.2.1")
    got = canonical_rrset(owner, 1, 300, (a, b, a))
    head = name("www.example.test.") + b"\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04"
    assert got == head + b + head + a
    assert canonical_rrset(owner, 1, 300, (a,)) == head + a


def test_validity_window_is_an_hour_back_and_spread_before_the_validity():
    now = 1_790_000_000.5
    ends = set()
    for i in range(200):
        inception, expiration = expiration_for(name(f"n{i}.example.test."), 1, now, VALIDITY)
        assert inception == 1_790_000_000 - INCEPTION_SKEW
        assert 1_790_000_000 + VALIDITY * (1 - SPREAD) < expiration <= 1_790_000_000 + VALIDITY
        ends.add(expiration)
    assert len(ends) > 100  # spread, not all at once
    # The same owner and type always get the same expiration; case does not matter.
    assert expiration_for(name("A.example.test."), 1, now, VALIDITY) == expiration_for(name("a.example.test."), 1, now, VALIDITY)
    assert expiration_for(name("a.example.test."), 1, now, 0) == (1_790_000_000 - INCEPTION_SKEW, 1_790_000_000)


def test_key_signing_keys_sign_the_key_rrsets_and_zone_keys_the_rest():
    ksk, zsk = K.generate(K.ED25519, "ksk"), K.generate(K.ED25519, "zsk")
    csk = K.generate(K.ED25519, "csk")
    assert KEY_SIGNED == {48, 59, 60}  # DNSKEY, CDS, CDNSKEY
    for rtype in KEY_SIGNED:
        assert signers_for([ksk, zsk], rtype) == [ksk] and signers_for([csk], rtype) == [csk]
    for rtype in (1, 6, 43, 50):
        assert signers_for([ksk, zsk], rtype) == [zsk] and signers_for([csk], rtype) == [csk]


def test_rrsig_fields_as_dnspython_reads_them_and_the_signature_validates():
    ksk, zsk = K.generate(K.ED25519, "ksk"), K.generate(K.ED25519, "zsk")
    owner = dns.name.from_text("Www.Example.Test.")
    rrset = dns.rrset.from_text(owner, 300, "IN", "MX", "10 Mail.Example.TEST.", "20 mx2.example.test.")
    rdatas = tuple(rd.to_wire() for rd in rrset)
    sigs = rrsig_rdatas([ksk, zsk], name("EXAMPLE.test."), owner.to_wire(), 15, 300, rdatas, 3, 1000, 2000)
    assert len(sigs) == 2
    for key, sig in zip((ksk, zsk), sigs):
        rd = dns.rdata.from_wire("IN", "RRSIG", sig, 0, len(sig))
        assert (rd.type_covered, rd.algorithm, rd.labels, rd.original_ttl) == (15, 15, 3, 300)
        assert (rd.inception, rd.expiration, rd.key_tag, rd.signer) == (1000, 2000, key.key_tag, ORIGIN)
        keys = {ORIGIN: dns.rrset.from_rdata(ORIGIN, 3600, dns.rdata.from_wire("IN", "DNSKEY", key.dnskey, 0, len(key.dnskey)))}
        dns.dnssec.validate(rrset, dns.rrset.from_rdata(owner, 300, rd), keys, now=1500)
        with pytest.raises(dns.dnssec.ValidationFailure):
            dns.dnssec.validate(rrset, dns.rrset.from_rdata(owner, 300, rd), keys, now=2001)
    (key, fields, data) = rrsig_inputs([zsk], name("example.test."), 15, 300, 3, 1000, 2000, b"body")[0]
    assert key is zsk and data == fields + b"body" and sigs[1].startswith(fields)


@pytest.mark.parametrize("types, text", [
    ([1], "A"), ([1, 46, 47], "A RRSIG NSEC"), ([2, 6, 46, 47, 48], "NS SOA RRSIG NSEC DNSKEY"),
    ([1, 46, 47, 128], "A RRSIG NSEC TYPE128"), ([1, 256, 65534], "A URI TYPE65534"), ([47, 1, 47], "A NSEC"),
])  # fmt: skip
def test_type_bitmap_as_nsec_carries_it(types, text):
    """RFC 4034 §4.1.2: windows in order, each as long as its last set octet."""
    assert type_bitmap(types) == dns.rdata.from_text("IN", "NSEC", f"x. {text}").to_wire()[3:]


def test_remembered_makes_once_and_empties_past_4096():
    made = []
    memo: dict = {}
    assert remembered(memo, 1, lambda k: made.append(k) or k * 2) == 2
    assert remembered(memo, 1, lambda k: made.append(k) or k * 3) == 2 and made == [1]
    for i in range(5000):
        remembered(memo, i, str)
    assert len(memo) <= 4097
