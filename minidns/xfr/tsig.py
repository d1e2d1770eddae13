"""TSIG (RFC 8945) for queries, transfers and NOTIFY: checking a signed request and signing the
replies, one message or every message of a multi-message transfer. dnspython computes the MACs;
this module finds the TSIG record in our raw bytes and appends the one we send."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from struct import pack, unpack_from

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from ..wire import ANYCLASS, TSIG

BADSIG, BADKEY, BADTIME = 16, 17, 18  # TSIG error codes (RFC 8945 §3)
FUDGE = 300  # seconds of clock difference allowed (RFC 8945 §10: 300 recommended)

# Algorithm names an operator writes, to the names on the wire (RFC 8945 §6).
ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
}


class TsigKeyError(ValueError):
    """A key definition that cannot be used (unknown algorithm, secret not base64…)."""


def make_key(name: str, algorithm: str, secret: str) -> dns.tsig.Key:
    """A key from its name, algorithm name (hmac-sha256…, also as `hmac-sha256.`) and base64 secret."""
    alg = ALGORITHMS.get(algorithm.lower().rstrip("."))
    if alg is None:
        if algorithm.lower().rstrip(".") == "hmac-md5.sig-alg.reg.int":
            alg = dns.tsig.HMAC_MD5
        else:
            raise TsigKeyError(f"TSIG algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise TsigKeyError(f"TSIG key {name}: the secret is not base64") from None
    if not raw:
        raise TsigKeyError(f"TSIG key {name}: the secret is empty")
    try:
        return dns.tsig.Key(dns.name.from_text(name), raw, alg)
    except dns.exception.DNSException as e:
        raise TsigKeyError(f"TSIG key name {name!r}: {e}") from None


def algorithm_text(key: dns.tsig.Key) -> str:
    for text, alg in ALGORITHMS.items():
        if alg == key.algorithm:
            return text
    return key.algorithm.to_text()


@dataclass
class Signed:
    """A request whose TSIG checked out: the key, and what signing the reply needs."""

    key: dns.tsig.Key
    mac: bytes
    original_id: int


class TsigError(Exception):
    """A signed request that failed (RFC 8945 §5.2): `error` is BADKEY, BADSIG or BADTIME. The
    reply is NOTAUTH with a TSIG record carrying the error; `reply_tsig` makes it."""

    def __init__(self, error: int, reason: str, key_name: dns.name.Name, rdata, key: dns.tsig.Key | None = None):
        super().__init__(reason)
        self.error = error
        self.key_name = key_name
        self.rdata = rdata
        self.key = key


def read_tsig(data: bytes, at: int):
    """(owner name, TSIG rdata) of the TSIG record at offset `at`."""
    owner, used = dns.name.from_wire(data, at)
    off = at + used
    rdlen = unpack_from("!H", data, off + 8)[0]
    rdata = dns.rdata.from_wire(dns.rdataclass.ANY, dns.rdatatype.TSIG, data, off + 10, rdlen)
    return owner, rdata


def verify(data: bytes, at: int, keyring: dict, now: float | None = None) -> Signed:
    """Check the TSIG record at offset `at` (the message's last record) of a request, in the order
    of RFC 8945 §5.2: key, then MAC, then time. Raises TsigError, or FormError for a record that
    does not parse."""
    now = time.time() if now is None else now
    owner, rdata = read_tsig(data, at)
    key = keyring.get(owner)
    if key is None:
        raise TsigError(BADKEY, f"unknown TSIG key {owner}", owner, rdata)
    if key.algorithm != rdata.algorithm:
        raise TsigError(BADKEY, f"TSIG key {owner} is not {rdata.algorithm}", owner, rdata)
    try:
        dns.tsig.validate(data, key, owner, rdata, int(now), b"", at)
    except dns.tsig.BadTime:
        raise TsigError(BADTIME, f"TSIG time {rdata.time_signed} is off by more than {rdata.fudge}s", owner, rdata, key) from None
    except (dns.tsig.BadSignature, dns.tsig.BadAlgorithm, dns.tsig.BadKey, dns.tsig.PeerError, dns.exception.DNSException) as e:
        raise TsigError(BADSIG, f"TSIG signature does not verify ({type(e).__name__})", owner, rdata) from None
    return Signed(key, rdata.mac, rdata.original_id)


class Signer:
    """Signs the replies to one signed request: `sign(message)` appends the TSIG record. For a
    transfer, every message is signed, each MAC covering the previous one (RFC 8945 §5.3.1)."""

    def __init__(self, signed: Signed, multi: bool = False, clock=time.time):
        self.signed = signed
        self.multi = multi
        self.clock = clock
        self.ctx = None
        self.first = True

    def sign(self, message: bytes) -> bytes:
        key = self.signed.key
        template = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, FUDGE, b"", self.signed.original_id, 0, b""
        )
        rdata, ctx = dns.tsig.sign(
            message, key, template, int(self.clock()), self.signed.mac if self.first else None, self.ctx, self.multi
        )
        self.ctx, self.first = ctx, False
        return _append(message, key.name, rdata)

    def room(self) -> int:
        """Octets the TSIG record takes in a message (so a transfer leaves room for it)."""
        key = self.signed.key
        return len(key.name.to_wire()) + 10 + len(key.algorithm.to_wire()) + 16 + 64


def error_reply(message: bytes, err: TsigError, clock=time.time) -> bytes:
    """The TSIG record for a failed request appended to `message` (a NOTAUTH reply): unsigned
    with the error for BADKEY and BADSIG; for BADTIME signed, with our time in Other Data
    (RFC 8945 §5.2.3, §5.3.2)."""
    req = err.rdata
    if err.error == BADTIME and err.key is not None:
        now = int(clock())
        template = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY, dns.rdatatype.TSIG, req.algorithm, 0, req.fudge, b"", req.original_id, BADTIME,
            pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF),
        )  # fmt: skip
        rdata, _ = dns.tsig.sign(message, err.key, template, req.time_signed, req.mac, None, False)
        return _append(message, err.key_name, rdata)
    rdata = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, req.algorithm, req.time_signed, req.fudge, b"", req.original_id, err.error, b""
    )
    return _append(message, err.key_name, rdata)


def _append(message: bytes, owner: dns.name.Name, rdata) -> bytes:
    body = rdata.to_wire()
    arcount = unpack_from("!H", message, 10)[0] + 1
    return (message[:10] + pack("!H", arcount) + message[12:] + owner.to_wire()
            + pack("!HHIH", TSIG, ANYCLASS, 0, len(body)) + body)  # fmt: skip
