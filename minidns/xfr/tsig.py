"""TSIG (RFC 8945) for queries, transfers and NOTIFY: checking a signed request and signing the
replies, one message or every message of a multi-message transfer. dnspython computes the MACs;
this module finds the TSIG record in our raw bytes, compares and cuts truncated MACs (RFC 8945
§5.2.2.1), and appends the record we send."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from struct import error as struct_error, pack, unpack_from

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from ..wire import ANYCLASS, TSIG

BADSIG, BADKEY, BADTIME, BADTRUNC = 16, 17, 18, 22  # TSIG error codes (RFC 8945 §3)
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


class Key(dns.tsig.Key):
    """A dnspython key with BIND's and Kea's truncation setting: `digest_bits`, when not 0, is the
    shortest MAC accepted from a peer (shorter: BADTRUNC, RFC 8945 §5.2.4) and the length our own
    unsolicited messages (NOTIFY) are signed with. 0: any length RFC 8945 §5.2.2.1 allows."""

    def __init__(self, name, secret, algorithm, digest_bits: int = 0):
        super().__init__(name, secret, algorithm)
        self.digest_bits = digest_bits

    def __eq__(self, other):
        return super().__eq__(other) and getattr(other, "digest_bits", 0) == self.digest_bits


def full_size(key: dns.tsig.Key) -> int:
    """Octets of the untruncated MAC of the key's algorithm (RFC 8945 §6)."""
    return dns.tsig.mac_sizes[key.algorithm]


def shortest(key: dns.tsig.Key) -> int:
    """The shortest MAC RFC 8945 §5.2.2.1 allows: 10 octets, and half the full length."""
    return max(10, (full_size(key) + 1) // 2)


def make_key(name: str, algorithm: str, secret: str) -> dns.tsig.Key:
    """A key from its name, algorithm name (hmac-sha256…, also as `hmac-sha256.`) and base64 secret.
    BIND's names for a truncated MAC (`hmac-sha256-128`: hmac-sha256 on the wire, MACs of at least
    128 bits) set the key's `digest_bits`."""
    alg, digest_bits = _algorithm(algorithm)
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise TsigKeyError(f"TSIG key {name}: the secret is not base64") from None
    if not raw:
        raise TsigKeyError(f"TSIG key {name}: the secret is empty")
    try:
        return Key(dns.name.from_text(name), raw, alg, digest_bits)
    except dns.exception.DNSException as e:
        raise TsigKeyError(f"TSIG key name {name!r}: {e}") from None


def _algorithm(algorithm: str) -> tuple[dns.name.Name, int]:
    """(wire name, digest bits or 0) of an algorithm as an operator writes it."""
    text = algorithm.lower().rstrip(".")
    base, _, bits = text.rpartition("-")
    if not bits.isdigit():
        base, bits = text, ""
    alg = dns.tsig.HMAC_MD5 if base == "hmac-md5.sig-alg.reg.int" else ALGORITHMS.get(base)
    if alg is None:
        raise TsigKeyError(f"TSIG algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    digest_bits, full = int(bits or 0), dns.tsig.mac_sizes[alg] * 8
    if bits and (digest_bits % 8 or not max(80, full // 2) <= digest_bits <= full):
        raise TsigKeyError(f"TSIG algorithm {algorithm!r}: {base} MACs are truncated to a multiple of 8 bits "
                           f"from {max(80, full // 2)} to {full} (RFC 8945 §5.2.2.1)")  # fmt: skip
    return alg, digest_bits


def algorithm_text(key: dns.tsig.Key) -> str:
    bits = getattr(key, "digest_bits", 0)
    for text, alg in ALGORITHMS.items():
        if alg == key.algorithm:
            return f"{text}-{bits}" if bits else text
    return key.algorithm.to_text()


@dataclass
class Signed:
    """A request whose TSIG checked out: the key, and what signing the reply needs."""

    key: dns.tsig.Key
    mac: bytes
    original_id: int


class TsigError(Exception):
    """A signed request that failed (RFC 8945 §5.2): `error` is BADKEY, BADSIG, BADTIME or
    BADTRUNC. The reply is NOTAUTH with a TSIG record carrying the error; `error_reply` makes it."""

    def __init__(self, error: int, reason: str, key_name: dns.name.Name, rdata, key: dns.tsig.Key | None = None):
        super().__init__(reason)
        self.error = error
        self.key_name = key_name
        self.rdata = rdata
        self.key = key


@dataclass(frozen=True, slots=True)
class TsigRecord:
    """A TSIG record's RDATA (RFC 8945 §4.2) as read off the wire — dnspython's field names, without
    building its rdata objects, which cost more than the HMAC on a signed UPDATE's path."""

    algorithm: dns.name.Name
    time_signed: int
    fudge: int
    mac: bytes
    original_id: int
    error: int
    other: bytes


def read_tsig(data: bytes, at: int) -> tuple[dns.name.Name, TsigRecord]:
    """(owner name, RDATA) of the TSIG record at offset `at`; FormError when it does not parse."""
    try:
        owner, used = dns.name.from_wire(data, at)
        off = at + used
        rdlen = unpack_from("!H", data, off + 8)[0]
        end = off + 10 + rdlen
        algorithm, used = dns.name.from_wire(data[:end], off + 10)
        p = off + 10 + used
        high, low, fudge, size = unpack_from("!HIHH", data, p)
        mac = data[p + 10 : p + 10 + size]
        original_id, error, other_len = unpack_from("!HHH", data, p + 10 + size)
        other = data[p + 16 + size : p + 16 + size + other_len]
    except (dns.exception.DNSException, IndexError, ValueError, struct_error) as e:
        raise dns.exception.FormError(f"TSIG record: {e}") from None
    if len(mac) != size or len(other) != other_len or p + 16 + size + other_len != end or end > len(data):
        raise dns.exception.FormError("TSIG record: its RDATA does not add up to RDLENGTH")
    return owner, TsigRecord(algorithm, (high << 32) | low, fudge, mac, original_id, error, other)


# The HMAC of each algorithm (RFC 8945 §6); a key of another algorithm is signed by dnspython.
_DIGESTS = {
    dns.tsig.HMAC_MD5: hashlib.md5, dns.tsig.HMAC_SHA1: hashlib.sha1, dns.tsig.HMAC_SHA224: hashlib.sha224,
    dns.tsig.HMAC_SHA256: hashlib.sha256, dns.tsig.HMAC_SHA384: hashlib.sha384, dns.tsig.HMAC_SHA512: hashlib.sha512,
}  # fmt: skip


def _digest(key: dns.tsig.Key, request_mac: bytes | None, original_id: int, message: bytes, time_signed: int,
            fudge: int, error: int = 0, other: bytes = b"") -> bytes:  # fmt: skip
    """The full MAC of one message (RFC 8945 §4.3.3): the request's MAC (for a reply), the message
    with its original ID and without its TSIG record, and the TSIG variables (names canonical)."""
    h = hmac.new(key.secret, digestmod=_DIGESTS[key.algorithm])
    if request_mac:
        h.update(pack("!H", len(request_mac)) + request_mac)
    h.update(pack("!H", original_id))
    h.update(message[2:])
    h.update(key.name.to_digestable() + b"\x00\xff\x00\x00\x00\x00" + key.algorithm.to_digestable()
             + pack("!HIHHH", (time_signed >> 32) & 0xFFFF, time_signed & 0xFFFFFFFF, fudge, error, len(other)) + other)  # fmt: skip
    return h.digest()


def verify(data: bytes, at: int, keyring: dict, now: float | None = None) -> Signed:
    """Check the TSIG record at offset `at` (the message's last record) of a request, in the order
    of RFC 8945 §5.2: key, then MAC, then time, then truncation. A MAC may be truncated as §5.2.2.1
    allows; its octets are compared with the first octets of the MAC we compute. Raises TsigError,
    or FormError for a record that does not parse or a MAC longer than the algorithm's or shorter
    than §5.2.2.1 allows (FORMERR, its rules 1 and 3)."""
    now = time.time() if now is None else now
    owner, rdata = read_tsig(data, at)
    key = keyring.get(owner)
    if key is None:
        raise TsigError(BADKEY, f"unknown TSIG key {owner}", owner, rdata)
    if key.algorithm != rdata.algorithm:
        raise TsigError(BADKEY, f"TSIG key {owner} is not {rdata.algorithm}", owner, rdata)
    if not shortest(key) <= len(rdata.mac) <= full_size(key):
        raise dns.exception.FormError(f"TSIG MAC of {len(rdata.mac)} octets for {key.algorithm}")
    if rdata.error or not hmac.compare_digest(_mac(data[:at], key, rdata)[: len(rdata.mac)], rdata.mac):
        raise TsigError(BADSIG, "TSIG signature does not verify", owner, rdata)
    if abs(rdata.time_signed - int(now)) > rdata.fudge:
        raise TsigError(BADTIME, f"TSIG time {rdata.time_signed} is off by more than {rdata.fudge}s", owner, rdata, key)
    if len(rdata.mac) * 8 < getattr(key, "digest_bits", 0):
        raise TsigError(BADTRUNC, f"TSIG MAC of {len(rdata.mac) * 8} bits, under the key's {key.digest_bits}", owner, rdata, key)
    return Signed(key, rdata.mac, rdata.original_id)


def _mac(message: bytes, key: dns.tsig.Key, rdata) -> bytes:
    """The full MAC of a request (RFC 8945 §4.3.3) given without its TSIG record: dnspython's
    signing over the message with the record's ARCOUNT taken off, and the record's variables."""
    arcount = unpack_from("!H", message, 10)[0]
    if arcount == 0:
        raise dns.exception.FormError("TSIG record not counted in ARCOUNT")
    unsigned = message[:10] + pack("!H", arcount - 1) + message[12:]
    if key.algorithm in _DIGESTS:
        return _digest(key, None, rdata.original_id, unsigned, rdata.time_signed, rdata.fudge, rdata.error, rdata.other)
    return dns.tsig.sign(unsigned, key, _rdata(rdata), rdata.time_signed)[0].mac


def _rdata(r: TsigRecord):
    """dnspython's TSIG rdata of the same fields."""
    return dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG, r.algorithm, r.time_signed, r.fudge, r.mac,
                                     r.original_id, r.error, r.other)  # fmt: skip


class Signer:
    """Signs the replies to one signed request: `sign(message)` appends the TSIG record. For a
    transfer, every message is signed, each MAC covering the previous one as sent (RFC 8945
    §5.3.1). A request's truncated MAC is covered as received (§5.2.2.1 rule 4), and the replies'
    MACs are truncated to its length; with no request (NOTIFY) to the key's `digest_bits`."""

    def __init__(self, signed: Signed, multi: bool = False, clock=time.time):
        self.signed = signed
        self.multi = multi
        self.clock = clock
        self.ctx = None
        self.first = True
        key = signed.key
        self.size = len(signed.mac) or getattr(key, "digest_bits", 0) // 8 or full_size(key)

    def sign(self, message: bytes) -> bytes:
        key = self.signed.key
        if not self.multi and key.algorithm in _DIGESTS:  # one reply: the HMAC here, the record built here
            now = int(self.clock())
            mac = _digest(key, self.signed.mac, self.signed.original_id, message, now, FUDGE)[: self.size]
            body = (key.algorithm.to_wire() + pack("!HIHH", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF, FUDGE, len(mac)) + mac
                    + pack("!HHH", self.signed.original_id, 0, 0))  # fmt: skip
            self.first = False
            return _append(message, key.name, body)
        template = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, FUDGE, b"", self.signed.original_id, 0, b""
        )
        rdata, _ = dns.tsig.sign(
            message, key, template, int(self.clock()), self.signed.mac if self.first else None, self.ctx, self.multi
        )
        rdata = rdata.replace(mac=rdata.mac[: self.size])
        if self.multi:
            self.ctx = _chained(key, rdata.mac)
        self.first = False
        return _append(message, key.name, rdata)

    def room(self) -> int:
        """Octets the TSIG record takes in a message (so a transfer leaves room for it)."""
        key = self.signed.key
        return len(key.name.to_wire()) + 10 + len(key.algorithm.to_wire()) + 16 + 64


def _chained(key: dns.tsig.Key, mac: bytes):
    """The digest the next message of a transfer continues: the previous MAC as sent, its length
    first (RFC 8945 §5.3.1)."""
    ctx = dns.tsig.get_context(key)
    ctx.update(pack("!H", len(mac)) + mac)
    return ctx


def error_reply(message: bytes, err: TsigError, clock=time.time) -> bytes:
    """The TSIG record for a failed request appended to `message` (a NOTAUTH reply): unsigned
    with the error for BADKEY and BADSIG; signed for BADTIME, with our time in Other Data, and for
    BADTRUNC, its MAC of the key's length (RFC 8945 §5.2.3, §5.2.4, §5.3.2)."""
    req = err.rdata
    if err.error in (BADTIME, BADTRUNC) and err.key is not None:
        now = int(clock())
        other = pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF) if err.error == BADTIME else b""
        template = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY, dns.rdatatype.TSIG, req.algorithm, 0, req.fudge, b"", req.original_id, err.error, other
        )  # fmt: skip
        signed_at = req.time_signed if err.error == BADTIME else now
        rdata, _ = dns.tsig.sign(message, err.key, template, signed_at, req.mac, None, False)
        size = len(req.mac) if err.error == BADTIME else err.key.digest_bits // 8
        return _append(message, err.key_name, rdata.replace(mac=rdata.mac[:size]))
    rdata = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, req.algorithm, req.time_signed, req.fudge, b"", req.original_id, err.error, b""
    )
    return _append(message, err.key_name, rdata)


def _append(message: bytes, owner: dns.name.Name, rdata) -> bytes:
    """`message` with the TSIG record of `rdata` (dnspython's, or its RDATA in wire form) added last."""
    body = rdata if isinstance(rdata, bytes) else rdata.to_wire()
    arcount = unpack_from("!H", message, 10)[0] + 1
    return (message[:10] + pack("!H", arcount) + message[12:] + owner.to_wire()
            + pack("!HHIH", TSIG, ANYCLASS, 0, len(body)) + body)  # fmt: skip
