"""NSEC3 (RFC 5155): hashed owner names (§5), NSEC3 RDATA (§3.2) and the chain a signed zone's
names make (§7.1: authoritative names and empty non-terminals, glue left out, delegations without
DS left out under opt-out, §6), with RFC 9276's parameters by default (SHA-1, no salt, no extra
iterations). Pure functions over owner names in wire form (lowercase); no I/O."""

from __future__ import annotations

import base64
import hashlib

from ..wire import DS, NS, RRSIG
from ..zones.snapshot import parent
from .records import type_bitmap

NSEC3PARAM_RDATA = b"\x01\x00\x00\x00\x00"  # SHA-1, flags 0, 0 iterations, no salt (RFC 9276 §3.1)
_B32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUV", b"abcdefghijklmnopqrstuv")


# -- one record ------------------------------------------------------------------------------------
def nsec3_hash(owner: bytes, salt: bytes = b"", iterations: int = 0) -> bytes:
    """RFC 5155 §5: SHA-1 of the canonical owner and the salt, hashed again `iterations` times."""
    h = hashlib.sha1(owner.lower() + salt).digest()
    for _ in range(iterations):
        h = hashlib.sha1(h + salt).digest()
    return h


def nsec3_owner(h: bytes, origin: bytes) -> bytes:
    """The hashed owner name: base32hex of the hash (lowercase) as a label under the apex."""
    label = base64.b32hexencode(h).translate(_B32)
    return bytes([len(label)]) + label + origin


def owner_hash(owner: bytes) -> bytes:
    """The hash a hashed owner name (nsec3_owner) stands for."""
    return base64.b32hexdecode(owner[1 : 1 + owner[0]].upper())


def nsec3_rdata(next_hash: bytes, bitmap: bytes, optout: bool = False, salt: bytes = b"", iterations: int = 0) -> bytes:
    """NSEC3 RDATA (RFC 5155 §3.2): SHA-1, the Opt-Out flag as asked, the iterations and salt,
    the next hashed owner and the type bitmap."""
    return (bytes([1, 1 if optout else 0]) + iterations.to_bytes(2, "big") + bytes([len(salt)]) + salt
            + bytes([len(next_hash)]) + next_hash + bitmap)  # fmt: skip


def nsec3_next(rdata: bytes) -> bytes:
    salt = rdata[4]
    n = rdata[5 + salt]
    return rdata[6 + salt : 6 + salt + n]


def nsec3_bitmap(rdata: bytes) -> bytes:
    salt = rdata[4]
    return rdata[6 + salt + rdata[5 + salt] :]


def nsec3_with_next(rdata: bytes, next_hash: bytes) -> bytes:
    """The same NSEC3 RDATA linking to another next hashed owner."""
    salt = rdata[4]
    n = rdata[5 + salt]
    return rdata[: 6 + salt] + next_hash + rdata[6 + salt + n :]


# -- the names of the chain --------------------------------------------------------------------------
def ancestors(owner: bytes, apex: bytes):
    """Proper ancestors of `owner` down to (not including) the apex, nearest first."""
    name = owner
    while len(name) > len(apex):
        name = parent(name)
        if len(name) > len(apex):
            yield name


def is_below(owner: bytes, name: bytes) -> bool:
    """Whether `owner`, which ends in `name`'s octets, is `name` or a descendant of it (the octets start at a label)."""
    off = 0
    cut = len(owner) - len(name)
    while off < cut:
        off += owner[off] + 1
    return off == cut


def chain_bitmap(types: set[int], is_cut: bool) -> bytes:
    """The type bitmap of a name's NSEC3 (RFC 5155 §3.2.1): its types, and RRSIG when any of them
    is signed — all but NS at a delegation (RFC 4035 §2.2)."""
    signed = types - {NS} if is_cut else types
    return type_bitmap(types | ({RRSIG} if signed else set()))


def in_chain(types: set[int], is_cut: bool, optout: bool) -> bool:
    """Whether a name holding `types` has an NSEC3 of its own: it has data and is not, under
    opt-out, a delegation without DS (RFC 5155 §6)."""
    return bool(types) and not (optout and is_cut and DS not in types)


def delegations(types: dict[bytes, set[int]], apex: bytes) -> set[bytes]:
    """The zone cuts: names below the apex holding NS."""
    return {o for o, t in types.items() if o != apex and NS in t}


def authoritative(owners, apex: bytes, cuts: set[bytes]) -> set[bytes]:
    """The names at or above the cuts: all but glue (names below a cut)."""
    return {o for o in owners if not any(a in cuts for a in ancestors(o, apex))}


def chain(types: dict[bytes, set[int]], apex: bytes, optout: bool = False, salt: bytes = b"",
          iterations: int = 0) -> dict[bytes, bytes]:  # fmt: skip
    """The zone's NSEC3 chain (RFC 5155 §7.1) from the types at each owner: hashed owner → NSEC3
    RDATA, in hash order. Authoritative names in the chain (in_chain) and every empty
    non-terminal above an authoritative name, each linked to the next hash, the last to the first."""
    cuts = delegations(types, apex)
    auth = authoritative(types, apex, cuts)
    members = {o for o in auth if in_chain(types[o], o in cuts, optout)} | {a for o in auth for a in ancestors(o, apex)}
    ordered = sorted((nsec3_hash(n, salt, iterations), n) for n in members)
    out = {}
    for i, (h, n) in enumerate(ordered):
        nxt = ordered[(i + 1) % len(ordered)][0]
        have = types.get(n, set()) if n in auth else set()
        bitmap = chain_bitmap(have, n in cuts) if have else b""
        out[nsec3_owner(h, apex)] = nsec3_rdata(nxt, bitmap, optout, salt, iterations)
    return out
