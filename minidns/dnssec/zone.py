"""The signed zone as stored, for transfers: RRSIG records (RFC 4034 §3) and the NSEC3 chain
(RFC 5155; RFC 9276: SHA-1, no salt, no extra iterations, no opt-out) in the forms the store keeps
them. Pure functions; the store decides what to sign and writes the rows (store/signing.py).
"""

from __future__ import annotations

import base64
import hashlib
import time
from struct import unpack_from

import dns.rdatatype

from ..wire import NSEC3, RRSIG
from .records import remembered

NSEC3PARAM_RDATA = b"\x01\x00\x00\x00\x00"  # SHA-1, flags 0, 0 iterations, no salt (RFC 9276 §3.1)
_B32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUV", b"abcdefghijklmnopqrstuv")


def covered(rrsig: bytes) -> int:
    return unpack_from("!H", rrsig)[0]


def rrsig_expiration(rrsig: bytes) -> int:
    return unpack_from("!I", rrsig, 8)[0]


def rrsig_key_tag(rrsig: bytes) -> int:
    return unpack_from("!H", rrsig, 16)[0]


def rrsig_original_ttl(rrsig: bytes) -> int:
    return unpack_from("!I", rrsig, 4)[0]


def nsec3_hash(owner: bytes) -> bytes:
    """RFC 5155 §5 with no salt and no extra iterations: SHA-1 of the canonical owner."""
    return hashlib.sha1(owner.lower()).digest()


def nsec3_owner(h: bytes, origin: bytes) -> bytes:
    """The hashed owner name: base32hex of the hash (lowercase) as a label under the apex."""
    label = base64.b32hexencode(h).translate(_B32)
    return bytes([len(label)]) + label + origin


def nsec3_rdata(next_hash: bytes, bitmap: bytes, optout: bool = False) -> bytes:
    """NSEC3 RDATA (RFC 5155 §3.2): SHA-1, the Opt-Out flag as asked, 0 iterations, no salt, the
    next hashed owner."""
    return bytes([1, 1 if optout else 0]) + b"\x00\x00\x00" + bytes([len(next_hash)]) + next_hash + bitmap


def nsec3_next(rdata: bytes) -> bytes:
    salt = rdata[4]
    n = rdata[5 + salt]
    return rdata[6 + salt : 6 + salt + n]


def nsec3_bitmap(rdata: bytes) -> bytes:
    salt = rdata[4]
    return rdata[6 + salt + rdata[5 + salt] :]


def owner_hash(owner: bytes) -> bytes:
    """The hash a hashed owner name (nsec3_owner) stands for."""
    return base64.b32hexdecode(owner[1 : 1 + owner[0]].upper())


def nsec3_with_next(rdata: bytes, next_hash: bytes) -> bytes:
    salt = rdata[4]
    n = rdata[5 + salt]
    return rdata[: 6 + salt] + next_hash + rdata[6 + salt + n :]


def rrsig_text(rdata: bytes) -> str:
    """Presentation form of an RRSIG RDATA (RFC 4034 §3.2), made without dnspython (fast enough to
    sign a large zone)."""
    rtype, alg, labels, ttl, exp, inc, tag = unpack_from("!HBBIIIH", rdata)
    off = 18
    while rdata[off]:
        off += rdata[off] + 1
    signer = remembered(_SIGNERS, rdata[18 : off + 1], _name_text)
    sig = base64.b64encode(rdata[off + 1 :]).decode()
    return f"{_type_text(rtype)} {alg} {labels} {ttl} {_time(exp)} {_time(inc)} {tag} {signer} {sig}"


_SIGNERS: dict[bytes, str] = {}
_BITMAPS: dict[bytes, str] = {}
_TYPES: dict[int, str] = {}


def _type_text(rtype: int) -> str:
    return remembered(_TYPES, rtype, dns.rdatatype.to_text)


def nsec3_text(rdata: bytes) -> str:
    salt = rdata[4]
    n = rdata[5 + salt]
    nxt = base64.b32hexencode(rdata[6 + salt : 6 + salt + n]).decode()
    types = remembered(_BITMAPS, nsec3_bitmap(rdata), lambda bm: " ".join(_type_text(t) for t in bitmap_types(bm)))
    return f"{rdata[0]} {rdata[1]} {unpack_from('!H', rdata, 2)[0]} - {nxt}" + (f" {types}" if types else "")


def bitmap_types(bitmap: bytes) -> list[int]:
    out, off = [], 0
    while off < len(bitmap):
        win, n = bitmap[off], bitmap[off + 1]
        for i, octet in enumerate(bitmap[off + 2 : off + 2 + n]):
            for bit in range(8):
                if octet & (0x80 >> bit):
                    out.append(win * 256 + i * 8 + bit)
        off += 2 + n
    return out


def _time(t: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t))


def _name_text(wire: bytes) -> str:
    labels, off = [], 0
    while wire[off]:
        labels.append(wire[off + 1 : off + 1 + wire[off]])
        off += wire[off] + 1
    return ".".join(_label_text(lab) for lab in labels) + "."


def _label_text(label: bytes) -> str:
    out = []
    for b in label:
        c = chr(b)
        if c in '."\\()@;$ ' or not 0x21 <= b <= 0x7E:
            out.append("\\" + c if 0x21 <= b <= 0x7E else f"\\{b:03d}")
        else:
            out.append(c)
    return "".join(out)


TEXT = {RRSIG: rrsig_text, NSEC3: nsec3_text}
