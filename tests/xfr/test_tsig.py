"""TSIG (xfr/tsig.py, RFC 8945) against dnspython's own: keys from their configured form, requests
dnspython signed checked in the RFC's order (key, MAC, time), our signatures verified by dnspython,
and the error replies of §5.2."""

import dns.message
import dns.name
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import pytest
import time

from minidns.xfr.tsig import BADKEY, BADSIG, BADTIME, Signer, TsigError, TsigKeyError, algorithm_text, error_reply
from minidns.xfr.tsig import make_key, verify

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


@pytest.mark.parametrize("algorithm, secret, message", [
    ("hmac-sha3", SECRET, "is not one of"), ("hmac-sha256", "not base64!", "not base64"), ("hmac-sha256", "", "empty"),
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
