"""TSIG (xfr/tsig.py, RFC 8945) against dnspython's own: keys from their configured form, requests
dnspython signed checked in the RFC's order (key, MAC, time), our signatures verified by dnspython,
and the error replies of §5.2. Truncated MACs (§5.2.2.1), which dnspython neither sends nor checks,
against MACs computed here from the digest components of §4.3.3 with hashlib's HMAC."""

import hashlib
import hmac
from struct import pack

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig
import dns.tsigkeyring
import pytest
import time

from minidns.xfr.notify import sign as sign_notify
from minidns.xfr.tsig import BADKEY, BADSIG, BADTIME, BADTRUNC, Signer, TsigError, TsigKeyError, algorithm_text
from minidns.xfr.tsig import error_reply, make_key, verify

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
KEYRING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
KEY = KEYRING[dns.name.from_text("xfr-key.")]


@pytest.mark.parametrize("algorithm, wire", [
    ("hmac-sha256", dns.tsig.HMAC_SHA256), ("HMAC-SHA256.", dns.tsig.HMAC_SHA256), ("hmac-sha512", dns.tsig.HMAC_SHA512),
    ("hmac-sha1", dns.tsig.HMAC_SHA1), ("hmac-md5", dns.tsig.HMAC_MD5), ("hmac-md5.sig-alg.reg.int", dns.tsig.HMAC_MD5),
])  # fmt: skip
def test_a_key_is_made_from_its_algorithm_name_and_base64_secret(algorithm, wire):
    key = make_key("xfr-key", algorithm, SECRET)
    assert (key.name, key.algorithm, key.secret) == (dns.name.from_text("xfr-key."), wire, KEY.secret)


@pytest.mark.parametrize("algorithm, wire, bits", [
    ("hmac-sha256-128", dns.tsig.HMAC_SHA256, 128), ("HMAC-SHA512-256.", dns.tsig.HMAC_SHA512, 256),
    ("hmac-sha1-80", dns.tsig.HMAC_SHA1, 80), ("hmac-md5-80", dns.tsig.HMAC_MD5, 80), ("hmac-sha384", dns.tsig.HMAC_SHA384, 0),
])  # fmt: skip
def test_a_bind_truncated_algorithm_name_is_its_hmac_on_the_wire_with_digest_bits(algorithm, wire, bits):
    key = make_key("xfr-key", algorithm, SECRET)
    assert (key.algorithm, key.digest_bits) == (wire, bits)
    assert algorithm_text(key) == algorithm.lower().rstrip(".")  # stored as written, read back the same


@pytest.mark.parametrize("algorithm, secret, message", [
    ("hmac-sha3", SECRET, "is not one of"), ("hmac-sha256", "not base64!", "not base64"), ("hmac-sha256", "", "empty"),
    ("hmac-sha256-120", SECRET, "from 128 to 256"), ("hmac-sha256-264", SECRET, "from 128 to 256"),
    ("hmac-sha256-132", SECRET, "multiple of 8"), ("hmac-md5-72", SECRET, "from 80 to 128"),
    ("hmac-sha1-0", SECRET, "from 80"),
])  # fmt: skip
def test_a_key_that_cannot_be_used_is_refused(algorithm, secret, message):
    with pytest.raises(TsigKeyError, match=message):
        make_key("xfr-key", algorithm, secret)


@pytest.mark.parametrize("algorithm, text", [("hmac-sha256", "hmac-sha256"), ("hmac-md5", "hmac-md5"), ("hmac-sha384.", "hmac-sha384")])
def test_a_key_algorithm_is_named_as_configured(algorithm, text):
    assert algorithm_text(make_key("k", algorithm, SECRET)) == text


def _signed_query() -> tuple[bytes, int, int]:
    """An AXFR request dnspython signed now with xfr-key: (wire, offset of its TSIG record, time)."""
    q = dns.message.make_query("example.com.", "AXFR")
    q.use_tsig(KEYRING, "xfr-key.", algorithm=dns.tsig.HMAC_SHA256)
    now = int(time.time())
    wire = q.to_wire()
    return wire, wire.rindex(dns.name.from_text("xfr-key.").to_wire()), now


def test_a_request_signed_with_a_known_key_verifies():
    wire, at, now = _signed_query()
    signed = verify(wire, at, KEYRING, now=now + 10)
    assert signed.key == KEY and signed.original_id == int.from_bytes(wire[:2], "big") and signed.mac


@pytest.mark.parametrize("keyring, skew, error", [
    ({dns.name.from_text("other."): KEY}, 0, BADKEY),  # a key we do not know
    ({dns.name.from_text("xfr-key."): make_key("xfr-key", "hmac-sha512", SECRET)}, 0, BADKEY),  # another algorithm
    ({dns.name.from_text("xfr-key."): make_key("xfr-key", "hmac-sha256", "b3RoZXItc2VjcmV0")}, 0, BADSIG),
    (KEYRING, 305, BADTIME),  # past the 300 s fudge
    (KEYRING, -305, BADTIME),
])  # fmt: skip
def test_a_request_that_fails_is_told_why_in_rfc8945_order(keyring, skew, error):
    wire, at, now = _signed_query()
    with pytest.raises(TsigError) as e:
        verify(wire, at, keyring, now=now + skew)
    assert e.value.error == error and e.value.key_name == dns.name.from_text("xfr-key.")


def _reply_to(wire: bytes) -> bytes:
    q = dns.message.from_wire(wire, keyring=KEYRING)
    r = dns.message.make_response(q)
    r.tsig = None
    r.keyring = None
    return r.to_wire()


def test_every_message_of_a_transfer_is_signed_each_mac_covering_the_last():
    wire, at, now = _signed_query()
    signer = Signer(verify(wire, at, KEYRING, now=now), multi=True)
    request = dns.message.from_wire(wire, keyring=KEYRING)
    replies = [signer.sign(_reply_to(wire)) for _ in range(3)]
    ctx = None
    for i, reply in enumerate(replies):
        m = dns.message.from_wire(reply, keyring=KEYRING, request_mac=request.mac if i == 0 else b"", xfr=True,
                                  origin=None, tsig_ctx=ctx, multi=True)  # fmt: skip
        ctx = m.tsig_ctx
        assert m.had_tsig and m.keyname == dns.name.from_text("xfr-key.")


def test_room_covers_the_tsig_record():
    wire, at, now = _signed_query()
    signer = Signer(verify(wire, at, KEYRING, now=now))
    reply = _reply_to(wire)
    assert len(signer.sign(reply)) - len(reply) <= signer.room()


@pytest.mark.parametrize("keyring, skew, error", [
    ({dns.name.from_text("other."): KEY}, 0, BADKEY),
    ({dns.name.from_text("xfr-key."): make_key("xfr-key", "hmac-sha256", "b3RoZXItc2VjcmV0")}, 0, BADSIG),
    (KEYRING, 400, BADTIME),
])  # fmt: skip
def test_a_failed_request_is_answered_with_the_tsig_error(keyring, skew, error):
    wire, at, signed_at = _signed_query()
    now = signed_at + skew
    with pytest.raises(TsigError) as e:
        verify(wire, at, keyring, now=now)
    q = dns.message.from_wire(wire, keyring=KEYRING)
    r = dns.message.make_response(q)
    r.set_rcode(dns.rcode.NOTAUTH)
    r.tsig = None
    out = error_reply(r.to_wire(), e.value, clock=lambda: now)
    tsig = dns.message.from_wire(out, keyring=False).tsig[0]
    assert tsig.error == error
    assert (tsig.mac != b"") is (error == BADTIME)  # only BADTIME is signed (RFC 8945 §5.2.3)
    if error == BADTIME:
        assert int.from_bytes(tsig.other, "big") == now  # our time, for the client to see the skew


# -- truncated MACs (RFC 8945 §5.2.2.1) ---------------------------------------------------------------

HASHES = {"hmac-md5": hashlib.md5, "hmac-sha1": hashlib.sha1, "hmac-sha224": hashlib.sha224,
          "hmac-sha256": hashlib.sha256, "hmac-sha384": hashlib.sha384, "hmac-sha512": hashlib.sha512}  # fmt: skip
WIRE = {"hmac-md5": "hmac-md5.sig-alg.reg.int."}
SHORTEST = {"hmac-md5": 10, "hmac-sha1": 10, "hmac-sha224": 14, "hmac-sha256": 16, "hmac-sha384": 24, "hmac-sha512": 32}
KEY_NAME = dns.name.from_text("xfr-key.")


def _canonical(name: str) -> bytes:
    return dns.name.from_text(name.lower()).to_wire()


def rfc_mac(algorithm: str, secret: bytes, prior: bytes, message: bytes, time_signed: int, *, fudge: int = 300,
            error: int = 0, other: bytes = b"", chained: bool = False) -> bytes:  # fmt: skip
    """The full MAC of RFC 8945 §4.3.3 over `message` (without its TSIG record): the request's or
    the previous message's MAC with its length, the message, then the TSIG variables (§4.3.3.1), or
    for a later message of a transfer the timers alone (§5.3.1)."""
    timers = pack("!HIH", time_signed >> 32, time_signed & 0xFFFFFFFF, fudge)
    variables = (_canonical(KEY_NAME.to_text()) + pack("!HI", 255, 0) + _canonical(WIRE.get(algorithm, algorithm + "."))
                 + timers + pack("!HH", error, len(other)) + other)  # fmt: skip
    data = (pack("!H", len(prior)) + prior if prior else b"") + message + (timers if chained else variables)
    return hmac.new(secret, data, HASHES[algorithm]).digest()


def signed_request(algorithm: str, octets: int, *, now: int, qname: str = "example.com.", qtype: str = "AXFR",
                   secret: bytes = KEY.secret, tamper: bool = False) -> tuple[bytes, int]:  # fmt: skip
    """(wire, offset of its TSIG record) of a request signed with key xfr-key. and its MAC cut to
    `octets`, as Kea (digest-bits) and BIND (hmac-sha256-128 keys) send it."""
    q = dns.message.make_query(qname, qtype, use_edns=False)
    unsigned = q.to_wire()
    mac = rfc_mac(algorithm, secret, b"", unsigned, now)[:octets]
    if tamper:
        mac = bytes([mac[0] ^ 1]) + mac[1:]
    rdata = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG, dns.name.from_text(WIRE.get(algorithm, algorithm)),
                                      now, 300, mac, q.id, 0, b"")  # fmt: skip
    body = rdata.to_wire()
    record = KEY_NAME.to_wire() + pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(body)) + body
    return unsigned[:10] + pack("!H", 1) + unsigned[12:] + record, len(unsigned)


def unsigned_and_tsig(wire: bytes):
    """(the message as its signer digested it: without its TSIG record, ARCOUNT one less; the TSIG
    rdata) of a signed message whose TSIG record is written uncompressed."""
    tsig = _tsig_of(wire)
    at = len(wire) - len(KEY_NAME.to_wire()) - 10 - len(tsig.to_wire())
    return wire[:10] + pack("!H", int.from_bytes(wire[10:12], "big") - 1) + wire[12:at], tsig


def _keyring(algorithm: str, digest: str = "") -> dict:
    return {KEY_NAME: make_key("xfr-key.", algorithm + digest, SECRET)}


def _tsig_of(wire: bytes):
    return dns.message.from_wire(wire, keyring=False).tsig[0]


def test_the_mac_computed_here_is_dnspythons_for_an_untruncated_request():
    wire, at, _ = _signed_query()
    tsig = _tsig_of(wire)
    unsigned = wire[:10] + pack("!H", int.from_bytes(wire[10:12], "big") - 1) + wire[12:at]
    assert tsig.mac == rfc_mac("hmac-sha256", KEY.secret, b"", unsigned, tsig.time_signed)


@pytest.mark.parametrize("algorithm", list(HASHES))
def test_a_request_with_a_truncated_mac_verifies_and_its_reply_is_truncated_alike(algorithm):
    now = int(time.time())
    n = SHORTEST[algorithm]
    wire, at = signed_request(algorithm, n, now=now)
    signed = verify(wire, at, _keyring(algorithm), now=now + 5)
    assert len(signed.mac) == n and signed.mac == _tsig_of(wire).mac
    reply = _reply_to_raw(wire, at)
    out = Signer(signed, clock=lambda: now + 6).sign(reply)
    tsig = _tsig_of(out)
    # The reply's digest covers the request's MAC as received, truncated (RFC 8945 §5.2.2.1 rule 4).
    assert tsig.mac == rfc_mac(algorithm, KEY.secret, signed.mac, reply, now + 6)[:n]
    assert unsigned_and_tsig(out) == (reply, tsig)


def _reply_to_raw(wire: bytes, at: int) -> bytes:
    """A NOERROR reply to a raw request, without TSIG: the request's header with QR set."""
    flags = int.from_bytes(wire[2:4], "big") | 0x8000
    return wire[:2] + pack("!HHHHH", flags, 1, 0, 0, 0) + wire[12:at]


def test_every_message_of_a_transfer_to_a_truncated_request_is_truncated_each_chained_as_sent():
    now = int(time.time())
    wire, at = signed_request("hmac-sha256", 16, now=now)
    signer = Signer(verify(wire, at, _keyring("hmac-sha256"), now=now), multi=True, clock=lambda: now)
    prior, chained = _tsig_of(wire).mac, False
    for _ in range(3):
        reply = _reply_to_raw(wire, at)
        tsig = _tsig_of(signer.sign(reply))
        assert tsig.mac == rfc_mac("hmac-sha256", KEY.secret, prior, reply, now, chained=chained)[:16]
        prior, chained = tsig.mac, True


@pytest.mark.parametrize("algorithm, octets", [
    ("hmac-md5", 9), ("hmac-sha1", 9), ("hmac-sha256", 15), ("hmac-sha512", 31),  # under RFC 8945 §5.2.2.1's minimum
    ("hmac-sha256", 33), ("hmac-md5", 17),  # longer than the hash
])  # fmt: skip
def test_a_mac_shorter_than_the_rfc_allows_or_longer_than_the_hash_is_a_format_error(algorithm, octets):
    now = int(time.time())
    wire, at = signed_request(algorithm, 64, now=now)
    tsig = _tsig_of(wire)
    mac = (tsig.mac * 2)[:octets]
    wire, at = _with_mac(wire, at, tsig, mac)
    with pytest.raises(dns.exception.FormError):  # the server answers FORMERR (RFC 8945 §5.2.2.1, rules 1 and 3)
        verify(wire, at, _keyring(algorithm), now=now)


def _with_mac(wire: bytes, at: int, tsig, mac: bytes) -> tuple[bytes, int]:
    body = tsig.replace(mac=mac).to_wire()
    owner = KEY_NAME.to_wire()
    return wire[:at] + owner + pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(body)) + body, at


@pytest.mark.parametrize("algorithm", ["hmac-md5", "hmac-sha256", "hmac-sha512"])
def test_a_tampered_truncated_mac_is_badsig(algorithm):
    now = int(time.time())
    wire, at = signed_request(algorithm, SHORTEST[algorithm], now=now, tamper=True)
    with pytest.raises(TsigError) as e:
        verify(wire, at, _keyring(algorithm), now=now)
    assert e.value.error == BADSIG


def test_a_truncated_mac_from_the_wrong_secret_is_badsig():
    now = int(time.time())
    wire, at = signed_request("hmac-sha256", 16, now=now, secret=b"other-secret")
    with pytest.raises(TsigError) as e:
        verify(wire, at, _keyring("hmac-sha256"), now=now)
    assert e.value.error == BADSIG


def test_a_mac_shorter_than_the_keys_digest_bits_is_badtrunc_answered_signed():
    now = int(time.time())
    wire, at = signed_request("hmac-sha256", 16, now=now)
    keyring = _keyring("hmac-sha256", "-192")  # BIND's hmac-sha256-192: at least 24 octets
    with pytest.raises(TsigError) as e:
        verify(wire, at, keyring, now=now)
    assert e.value.error == BADTRUNC
    notauth = _reply_to_raw(wire, at)
    out = error_reply(notauth, e.value, clock=lambda: now + 1)
    tsig = _tsig_of(out)
    # Signed (RFC 8945 §5.3.2: a MAC too short for the local policy), over the request's MAC as
    # received, to the key's length.
    assert tsig.error == BADTRUNC and tsig.time_signed == now + 1
    assert tsig.mac == rfc_mac("hmac-sha256", KEY.secret, _tsig_of(wire).mac, notauth, now + 1, error=BADTRUNC)[:24]
    wire, at = signed_request("hmac-sha256", 24, now=now)
    assert len(verify(wire, at, keyring, now=now).mac) == 24


def test_a_truncated_request_out_of_time_is_badtime_signed_truncated_alike():
    now = int(time.time())
    wire, at = signed_request("hmac-sha384", 24, now=now - 400)
    with pytest.raises(TsigError) as e:
        verify(wire, at, _keyring("hmac-sha384"), now=now)
    assert e.value.error == BADTIME
    notauth = _reply_to_raw(wire, at)
    tsig = _tsig_of(error_reply(notauth, e.value, clock=lambda: now))
    other = pack("!HI", 0, now)
    assert tsig.mac == rfc_mac("hmac-sha384", KEY.secret, _tsig_of(wire).mac, notauth, now - 400, error=BADTIME, other=other)[:24]


def test_the_order_is_key_then_mac_then_time_then_truncation():
    now = int(time.time())
    wire, at = signed_request("hmac-sha256", 16, now=now - 400, tamper=True)
    with pytest.raises(TsigError) as e:  # a bad MAC out of time and too short for the key: BADSIG
        verify(wire, at, _keyring("hmac-sha256", "-256"), now=now)
    assert e.value.error == BADSIG
    wire, at = signed_request("hmac-sha256", 16, now=now - 400)
    with pytest.raises(TsigError) as e:
        verify(wire, at, _keyring("hmac-sha256", "-256"), now=now)
    assert e.value.error == BADTIME


def test_notify_is_signed_to_the_keys_digest_bits():
    key = make_key("xfr-key.", "hmac-sha512-256", SECRET)
    q = dns.message.make_query("example.com.", "SOA", use_edns=False)
    message = q.to_wire()
    tsig = _tsig_of(sign_notify(message, key))
    assert tsig.mac == rfc_mac("hmac-sha512", KEY.secret, b"", message, tsig.time_signed)[:32]
    assert len(_tsig_of(sign_notify(message, make_key("xfr-key.", "hmac-sha512", SECRET))).mac) == 64
