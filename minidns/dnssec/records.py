"""DNSSEC record forms shared by the online signer and the stored signed zone: canonical RRsets
(RFC 4034 §6), RRSIG RDATA and its validity window, NSEC/NSEC3 type bitmaps (RFC 4034 §4.1.2)."""

from __future__ import annotations

import zlib
from struct import pack

from ..wire import CDNSKEY, CDS, CNAME, DNAME, DNSKEY, MX, NS, PTR, SOA, SRV
from .keys import SigningKey

VALIDITY = 14 * 86400  # seconds a signature is valid for (online and stored)
INCEPTION_SKEW = 3600  # seconds: inception an hour back, for clocks behind ours (RFC 4035 §5.3.1)
SPREAD = 0.1  # of the validity: how much earlier than `validity` a signature may expire

# RFC 4034 §6.2 (as amended by RFC 6840 §5.1): types whose RDATA names are lowercased when signed.
# Offsets: octets before the first name, and how many names follow.
# MD MF MB MG MR MINFO RP AFSDB RT PX KX by number.
_NAMES = {NS: (0, 1), CNAME: (0, 1), PTR: (0, 1), DNAME: (0, 1), MX: (2, 1), SRV: (6, 1), SOA: (0, 2), 3: (0, 1),
          4: (0, 1), 7: (0, 1), 8: (0, 1), 9: (0, 1), 14: (0, 2), 17: (0, 2), 18: (2, 1), 21: (2, 1), 26: (2, 2),
          36: (2, 1)}  # fmt: skip


def count_labels(owner: bytes) -> int:
    """The RRSIG Labels field (RFC 4034 §3.1.3): labels of the owner, the root and a leading `*`
    not counted."""
    n, off = 0, 0
    while owner[off]:
        n += 1
        off += owner[off] + 1
    return n - 1 if owner[:2] == b"\x01*" else n


def canonical_rdata(rtype: int, rdata: bytes) -> bytes:
    """RDATA in canonical form (RFC 4034 §6.2): embedded names of the listed types lowercased."""
    layout = _NAMES.get(rtype)
    if layout is None:
        return rdata
    fixed, names = layout
    out = bytearray(rdata[:fixed])
    off = fixed
    for _ in range(names):
        start = off
        while rdata[off]:
            off += rdata[off] + 1
        off += 1
        out += rdata[start:off].lower()
    out += rdata[off:]
    return bytes(out)


def canonical_rrset(owner: bytes, rtype: int, ttl: int, rdatas: tuple[bytes, ...]) -> bytes:
    """The RRs of an RRset as RFC 4034 §3.1.8.1 signs them: canonical owner and RDATA, original
    TTL, sorted by RDATA, duplicates removed."""
    head = owner.lower() + pack("!HHI", rtype, 1, ttl)
    if len(rdatas) == 1:
        rd = canonical_rdata(rtype, rdatas[0])
        return head + pack("!H", len(rd)) + rd
    canon = sorted({canonical_rdata(rtype, rd) for rd in rdatas})
    return b"".join(head + pack("!H", len(rd)) + rd for rd in canon)


def expiration_for(owner: bytes, rtype: int, now: float, validity: int) -> tuple[int, int]:
    """(inception, expiration): an hour back, and `validity` ahead less a spread drawn from the
    owner and type, so a zone's signatures do not all expire (and get refreshed) at once."""
    spread = int(validity * SPREAD)
    cut = zlib.crc32(owner.lower() + pack("!H", rtype)) % spread if spread else 0
    return int(now) - INCEPTION_SKEW, int(now) + validity - cut


# Signed by the key-signing keys (KSK or CSK): DNSKEY (RFC 4035 §2.1), and CDS/CDNSKEY, which must
# be signed by a key the parent's DS names (RFC 7344 §4.1).
KEY_SIGNED = frozenset((DNSKEY, CDS, CDNSKEY))


def signers_for(keys: list[SigningKey], rtype: int) -> list[SigningKey]:
    """The keys that sign an RRset of `rtype`: the key-signing keys for KEY_SIGNED, else the zone's."""
    return [k for k in keys if (k.signs_keys if rtype in KEY_SIGNED else k.signs_zone)]


def rrsig_rdatas(keys: list[SigningKey], signer: bytes, owner: bytes, rtype: int, ttl: int, rdatas, labels: int,
                 inception: int, expiration: int) -> tuple[bytes, ...]:  # fmt: skip
    """One RRSIG RDATA per key (RFC 4034 §3.1.8.1): the fields, then the signature over the
    fields and the RRset in canonical form. `owner` is the one signed (a wildcard's, for
    answers made from it)."""
    body = canonical_rrset(owner, rtype, ttl, rdatas)
    return tuple(fields + k.sign(data) for k, fields, data in
                 rrsig_inputs(keys, signer, rtype, ttl, labels, inception, expiration, body))


def rrsig_inputs(keys: list[SigningKey], signer: bytes, rtype: int, ttl: int, labels: int, inception: int,
                 expiration: int, body: bytes) -> list[tuple[SigningKey, bytes, bytes]]:  # fmt: skip
    """What `rrsig_rdatas` signs, per key: (key, the RRSIG RDATA's fields, the data signed —
    the fields and `body`, the RRset in canonical form), for a caller that signs later, several
    at once."""
    signer = signer.lower()
    out = []
    for k in keys:
        fields = pack("!HBBIIIH", rtype, k.algorithm, labels, ttl, expiration & 0xFFFFFFFF, inception & 0xFFFFFFFF,
                      k.key_tag) + signer  # fmt: skip
        out.append((k, fields, fields + body))
    return out


def type_bitmap(types) -> bytes:
    """The Type Bit Maps field of NSEC (RFC 4034 §4.1.2)."""
    windows: dict[int, bytearray] = {}
    for t in sorted(types):
        win, bit = t >> 8, t & 0xFF
        bm = windows.setdefault(win, bytearray())
        need = bit // 8 + 1
        if len(bm) < need:
            bm += bytes(need - len(bm))
        bm[bit // 8] |= 0x80 >> (bit % 8)
    return b"".join(bytes([w, len(bm)]) + bytes(bm) for w, bm in sorted(windows.items()))


def remembered(memo: dict, key, make):
    """make(key), kept in `memo` (emptied past 4,096 entries): a zone has few type sets and
    signer names, used over and over."""
    got = memo.get(key)
    if got is None:
        if len(memo) > 4096:
            memo.clear()
        got = memo[key] = make(key)
    return got
