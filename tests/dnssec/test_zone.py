"""dnssec/zone.py: the stored signed zone's RRSIG and NSEC3 records in presentation form, made
without dnspython, read back by dnspython as the same records; and the RRSIG fields read from
RDATA."""

import dns.name
import dns.rdata
import dns.rdatatype
import pytest

from minidns.dnssec import keys as K
from minidns.dnssec.nsec3 import nsec3_hash, nsec3_rdata
from minidns.dnssec.records import rrsig_rdatas, type_bitmap
from minidns.dnssec.zone import (TEXT, bitmap_types, covered, nsec3_text, rrsig_expiration, rrsig_key_tag,
                                 rrsig_original_ttl, rrsig_text)  # fmt: skip
from minidns.wire import NSEC3, RRSIG


def rdata_of(rtype: str, wire: bytes) -> dns.rdata.Rdata:
    return dns.rdata.from_wire("IN", dns.rdatatype.from_text(rtype), wire, 0, len(wire))


@pytest.mark.parametrize("signer", ["example.test.", "Ex\\.ample.test.", "a\\032b.test.", "\\@\\$\\;\\(\\).test.",
                                    "x\\255\\000y.test.", "\\\\\\\".test."])  # fmt: skip
@pytest.mark.parametrize("rtype, rdata", [("A", b"\xc0\x00\x02\x01"), ("MX", b"\x00\x0a\x00"),
                                          ("DNSKEY", b"\x01\x00\x03\x0f" + bytes(32)), ("TYPE65280", b"\x01\x02")])  # fmt: skip
def test_rrsig_text_reads_back_as_the_same_record(signer, rtype, rdata):
    """RFC 4034 §3.2, and RFC 1035 §5.1's escapes in the signer's name."""
    key = K.generate(K.ED25519, "csk")
    signer_wire = dns.name.from_text(signer).to_wire()
    t = dns.rdatatype.from_text(rtype)
    (sig,) = rrsig_rdatas([key], signer_wire, b"\x01x" + signer_wire, t, 3600, (rdata,), 3,
                          1_700_000_000, 1_701_209_600)  # fmt: skip
    text = rrsig_text(sig)
    assert dns.rdata.from_text("IN", "RRSIG", text) == rdata_of("RRSIG", sig)
    assert text.split()[4:6] == ["20231128221320", "20231114221320"]  # expiration, inception: UTC YYYYMMDDHHmmSS
    assert TEXT[RRSIG] is rrsig_text


def test_rrsig_fields_are_read_from_the_rdata():
    key = K.generate(K.ECDSAP256SHA256, "zsk")
    (sig,) = rrsig_rdatas([key], b"\x04test\x00", b"\x01a\x04test\x00", 28, 600, (bytes(16),), 2, 100, 0xFFFFFFF0)
    assert (covered(sig), rrsig_original_ttl(sig), rrsig_expiration(sig), rrsig_key_tag(sig)) == (28, 600, 0xFFFFFFF0, key.key_tag)


@pytest.mark.parametrize("types, optout, salt, iterations", [
    ([1, 46], False, b"", 0), ([2, 6, 46, 48, 51], False, b"", 0), ([2], True, b"", 0),
    ([], False, b"", 0),  # an empty non-terminal: no types at all
    ([1, 16, 46, 256], False, b"\xab\xcd", 5),
])  # fmt: skip
def test_nsec3_text_reads_back_as_the_same_record(types, optout, salt, iterations):
    """RFC 5155 §3.3; the salt is always written `-` (RFC 9276: no salt), so the table's salted
    row checks the other fields read past it."""
    rd = nsec3_rdata(nsec3_hash(b"\x03www\x04test\x00", salt, iterations), type_bitmap(types) if types else b"",
                     optout, salt, iterations)  # fmt: skip
    text = nsec3_text(rd)
    parsed = dns.rdata.from_text("IN", "NSEC3", text)
    wanted = rdata_of("NSEC3", rd)
    assert (parsed.algorithm, parsed.flags, parsed.iterations, parsed.next) == (1, int(optout), iterations, wanted.next)
    assert sorted(parsed.windows) == sorted(wanted.windows) and parsed.salt == b""
    if not salt:
        assert parsed == wanted
    assert TEXT[NSEC3] is nsec3_text


@pytest.mark.parametrize("types", [[1], [1, 2, 6, 46, 47, 48], [1, 255, 256, 1000, 65535], []])
def test_bitmap_types_inverts_type_bitmap(types):
    assert bitmap_types(type_bitmap(types)) == sorted(types)
