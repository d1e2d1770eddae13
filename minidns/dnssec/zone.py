"""The signed zone as stored, for transfers: RRSIG records (RFC 4034 §3) and NSEC3 records
(built in dnssec/nsec3.py) read and put in presentation form as the store keeps them. Pure
functions; the store decides what to sign and writes the rows (store/signing.py).
"""

from __future__ import annotations

import base64
import time
from struct import unpack_from

import dns.rdatatype

from ..wire import NSEC3, RRSIG
from .nsec3 import nsec3_bitmap
from .records import remembered



def covered(rrsig: bytes) -> int:
    return unpack_from("!H", rrsig)[0]


def rrsig_expiration(rrsig: bytes) -> int:
    return unpack_from("!I", rrsig, 8)[0]


def rrsig_key_tag(rrsig: bytes) -> int:
    return unpack_from("!H", rrsig, 16)[0]


def rrsig_original_ttl(rrsig: bytes) -> int:
    return unpack_from("!I", rrsig, 4)[0]


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
