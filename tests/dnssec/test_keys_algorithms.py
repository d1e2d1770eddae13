"""dnssec/keys.py: keys made for each algorithm, their DNSKEY RDATA, key tag (RFC 4034 Appendix B)
and DS (RFC 4509, RFC 6605) against dnspython's, signatures that dnspython validates, and the
private key sealed under the master key."""

import time

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from minidns.dnssec import keys as K
from minidns.dnssec.records import canonical_rrset, rrsig_rdatas

ORIGIN = dns.name.from_text("example.test.")
ALGORITHMS = [(K.ECDSAP256SHA256, {}), (K.ED25519, {}), (K.RSASHA256, {"rsa_bits": 1024})]


def as_dnskey(key: K.SigningKey) -> dns.rdata.Rdata:
    return dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.DNSKEY, key.dnskey, 0, len(key.dnskey))


@pytest.mark.parametrize("role, flags", [("csk", 257), ("ksk", 257), ("zsk", 256)])
@pytest.mark.parametrize("algorithm, kw", ALGORITHMS, ids=["p256", "ed25519", "rsa"])
def test_generated_keys_dnskey_and_key_tag_agree_with_dnspython(algorithm, kw, role, flags):
    key = K.generate(algorithm, role, **kw)
    dnskey = as_dnskey(key)
    assert (dnskey.flags, dnskey.protocol, dnskey.algorithm, dnskey.key) == (flags, 3, algorithm, key.public)
    assert key.key_tag == K.key_tag(key.dnskey) == dns.dnssec.key_id(dnskey)
    assert key.signs_keys == (role != "zsk") and key.signs_zone == (role != "ksk")
    assert len(key.sign(b"data")) == key.signature_octets == (128 if algorithm == K.RSASHA256 else 64)


@pytest.mark.parametrize("digest_type, name", [(2, "SHA256"), (4, "SHA384")])
def test_ds_agrees_with_dnspython(digest_type, name):
    key = K.generate(K.ECDSAP256SHA256, "ksk")
    owner = dns.name.from_text("Example.TEST.").to_wire()  # the owner is lowercased (RFC 4034 §6.2)
    ds = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.DS, K.ds_rdata(owner, key.dnskey, digest_type), 0,
                             len(K.ds_rdata(owner, key.dnskey, digest_type)))  # fmt: skip
    assert ds == dns.dnssec.make_ds(ORIGIN, as_dnskey(key), name)


def test_key_tag_of_a_known_dnskey():
    """RFC 4034 Appendix B over a DNSKEY whose tag dnspython gives independently."""
    text = "257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="
    rd = dns.rdata.from_text("IN", "DNSKEY", text)
    assert K.key_tag(rd.to_wire()) == dns.dnssec.key_id(rd)
    assert K.key_tag(b"") == 0 and K.key_tag(b"\x01\x02") == 0x0102 and K.key_tag(b"\xff\xff\x00\x02") == 2  # 0x10001, carry folded


@pytest.mark.parametrize("algorithm, kw", ALGORITHMS, ids=["p256", "ed25519", "rsa"])
def test_signatures_validate_with_dnspython(algorithm, kw):
    key = K.generate(algorithm, "csk", **kw)
    owner = dns.name.from_text("www.example.test.")
    rrset = dns.rrset.from_text(owner, 300, "IN", "A", "192.0.2.1", "192.0.2.2")
    now = int(time.time())
    rdatas = tuple(rd.to_wire() for rd in rrset)
    (sig,) = rrsig_rdatas([key], ORIGIN.to_wire(), owner.to_wire(), 1, 300, rdatas, 3, now - 60, now + 3600)
    rrsig = dns.rrset.from_rdata(owner, 300, dns.rdata.from_wire("IN", "RRSIG", sig, 0, len(sig)))
    dns.dnssec.validate(rrset, rrsig, {ORIGIN: dns.rrset.from_rdata(ORIGIN, 3600, as_dnskey(key))}, now=now)
    assert canonical_rrset(owner.to_wire(), 1, 300, rdatas[::-1]) == canonical_rrset(owner.to_wire(), 1, 300, rdatas)


@pytest.mark.parametrize("algorithm, kw", ALGORITHMS, ids=["p256", "ed25519", "rsa"])
def test_private_key_round_trips_through_der(algorithm, kw):
    key = K.generate(algorithm, "zsk", **kw)
    again = K.load_private("zsk", algorithm, K.private_der(key))
    assert (again.public, again.key_tag, again.flags) == (key.public, key.key_tag, key.flags)


def test_unknown_algorithm_or_role_is_a_bad_key():
    with pytest.raises(K.BadKey, match="algorithm 5"):
        K.generate(5, "csk")
    with pytest.raises(K.BadKey, match="role"):
        K.generate(K.ED25519, "signer")
    assert K.ALGORITHMS == {"rsasha256": 8, "ecdsap256sha256": 13, "ed25519": 15}


def test_sealed_private_key_opens_only_with_its_master_key_and_row():
    master, other = bytes(range(32)), bytes(range(1, 33))
    sealed = K.seal(master, b"private", b"row-1")
    assert b"private" not in sealed and len(sealed) == 12 + len(b"private") + 16
    assert K.seal(master, b"private", b"row-1") != sealed  # a fresh nonce each time
    assert K.unseal(master, sealed, b"row-1") == b"private"
    for key, aad, data in [(other, b"row-1", sealed), (master, b"row-2", sealed), (master, b"row-1", sealed[:-1] + bytes([sealed[-1] ^ 1]))]:
        with pytest.raises(K.BadKey, match="master key does not open"):
            K.unseal(key, data, aad)
