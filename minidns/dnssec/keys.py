"""Signing keys: made with `cryptography`, their DNSKEY form (RFC 4034 §2), key tag (RFC 4034
Appendix B), DS digest (RFC 4509), raw DNSSEC signatures (RFC 6605 for ECDSA, RFC 8080 for
Ed25519, RFC 5702 for RSA/SHA-256), and the private key sealed with AES-GCM under a master key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from struct import pack

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RSASHA256, ECDSAP256SHA256, ED25519 = 8, 13, 15
ALGORITHMS = {"rsasha256": RSASHA256, "ecdsap256sha256": ECDSAP256SHA256, "ed25519": ED25519}
ZONE_KEY, SEP = 0x0100, 0x0001  # DNSKEY flags (RFC 4034 §2.1.1)
ROLES = ("csk", "ksk", "zsk")
MASTER_KEY_OCTETS = 32  # AES-256-GCM


try:  # the optional C accelerator (dnssec/_p256.c); without it, cryptography signs
    from ._p256 import Signer as NativeP256
except ImportError:  # pragma: no cover - an install without a C compiler
    NativeP256 = None

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_ECDSA_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))


class BadKey(ValueError):
    """A key that cannot be used: unknown algorithm, wrong master key, damaged ciphertext."""

    status, type = 503, "dnssec_unavailable"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One zone key with its private half. `role` csk/ksk sign the DNSKEY RRset (SEP flag set);
    csk/zsk sign everything else."""

    role: str
    algorithm: int
    public: bytes  # the DNSKEY public key field
    private: object  # a cryptography private key
    key_tag: int
    # P-256 only: the same key in the C accelerator, which keeps one OpenSSL signing context per key
    # and makes a signature in about 1 µs less than `cryptography` (whose result is the same).
    native: object = field(default=None, compare=False, repr=False)

    @property
    def flags(self) -> int:
        return ZONE_KEY | (SEP if self.role in ("csk", "ksk") else 0)

    @property
    def dnskey(self) -> bytes:
        return dnskey_rdata(self.flags, self.algorithm, self.public)

    @property
    def signs_keys(self) -> bool:
        return self.role in ("csk", "ksk")

    @property
    def signs_zone(self) -> bool:
        return self.role in ("csk", "zsk")

    @property
    def signature_octets(self) -> int:
        """The length of `sign`'s result: 64 for P-256 (RFC 6605 §4) and Ed25519 (RFC 8080 §4),
        the modulus length for RSA (RFC 3110 §3)."""
        if self.algorithm in (ECDSAP256SHA256, ED25519):
            return 64
        return (self.private.key_size + 7) // 8

    def sign(self, data: bytes) -> bytes:
        """The signature field of an RRSIG over `data`, in DNSSEC's form for the algorithm."""
        k = self.private
        if self.algorithm == ECDSAP256SHA256:
            if self.native is not None:
                return self.native.sign(data)
            # Hashed here: cryptography's own hashing costs 0.5 µs more a signature.
            return p256_raw(k.sign(hashlib.sha256(data).digest(), _ECDSA_PREHASHED))
        if self.algorithm == ED25519:
            return k.sign(data)
        return k.sign(data, padding.PKCS1v15(), hashes.SHA256())


def p256_raw(der: bytes) -> bytes:
    """A P-256 ECDSA signature as DNSSEC carries it, r and s as 32 octets each (RFC 6605 §4),
    from the DER `SEQUENCE { INTEGER r, INTEGER s }` that OpenSSL gives. The same as
    cryptography's decode_dss_signature and two int.to_bytes, without making the integers: a
    fifth of the time, and this runs once per signature a random-subdomain flood asks for. At
    most 72 octets, so every DER length is one octet; an INTEGER is minimal, with a leading 0
    when its high bit is set (33 octets) and fewer than 32 when it is small."""
    rlen = der[3]
    return der[4 : 4 + rlen][-32:].rjust(32, b"\0") + der[6 + rlen :][-32:].rjust(32, b"\0")


def dnskey_rdata(flags: int, algorithm: int, public: bytes) -> bytes:
    return pack("!HBB", flags, 3, algorithm) + public


def key_tag(rdata: bytes) -> int:
    """RFC 4034 Appendix B."""
    acc = 0
    for i, octet in enumerate(rdata):
        acc += octet if i & 1 else octet << 8
    acc += (acc >> 16) & 0xFFFF
    return acc & 0xFFFF


def ds_rdata(owner: bytes, dnskey: bytes, digest_type: int = 2) -> bytes:
    """DS RDATA for a DNSKEY (RFC 4034 §5.1.4): SHA-256 (2, RFC 4509) or SHA-384 (4, RFC 6605)."""
    h = {2: hashlib.sha256, 4: hashlib.sha384}[digest_type]
    digest = h(owner.lower() + dnskey).digest()
    return pack("!HBB", key_tag(dnskey), dnskey[3], digest_type) + digest


def public_field(algorithm: int, private) -> bytes:
    """The DNSKEY public key field of a private key."""
    pub = private.public_key()
    if algorithm == ECDSAP256SHA256:
        point = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return point[1:]  # RFC 6605 §4: x | y, without the 0x04 prefix
    if algorithm == ED25519:
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    nums = pub.public_numbers()
    e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
    n = nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
    head = bytes([len(e)]) if len(e) < 256 else b"\x00" + pack("!H", len(e))  # RFC 3110 §2
    return head + e + n


def generate(algorithm: int, role: str, rsa_bits: int = 2048) -> SigningKey:
    if role not in ROLES:
        raise BadKey(f"role must be one of {', '.join(ROLES)}")
    if algorithm == ECDSAP256SHA256:
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == ED25519:
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == RSASHA256:
        private = rsa.generate_private_key(65537, rsa_bits)
    else:
        raise BadKey(f"algorithm {algorithm} is not one minidns signs with")
    return from_private(role, algorithm, private)


def from_private(role: str, algorithm: int, private) -> SigningKey:
    public = public_field(algorithm, private)
    flags = ZONE_KEY | (SEP if role in ("csk", "ksk") else 0)
    native = None
    if algorithm == ECDSAP256SHA256 and NativeP256 is not None:
        native = NativeP256(private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))  # fmt: skip
    return SigningKey(role, algorithm, public, private, key_tag(dnskey_rdata(flags, algorithm, public)), native)


def private_der(key: SigningKey) -> bytes:
    return key.private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())  # fmt: skip


def load_private(role: str, algorithm: int, der: bytes) -> SigningKey:
    return from_private(role, algorithm, serialization.load_der_private_key(der, None))


def seal(master: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM: 12-octet random nonce, then ciphertext and tag. `aad` binds it to its row."""
    nonce = os.urandom(12)
    return nonce + AESGCM(master).encrypt(nonce, plaintext, aad)


def unseal(master: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(master).decrypt(sealed[:12], sealed[12:], aad)
    except (InvalidTag, ValueError):
        raise BadKey("the master key does not open this private key (wrong master key, or damaged)") from None
