"""DNSSEC keys kept in the database: enabling and disabling signing of a zone, its keys' status,
what the parent needs (DS).

The keys themselves are stored sealed under the master key (store/keys.py).

The apex DNSKEY RRset, and CDS/CDNSKEY (RFC 7344 §3, RFC 8078 §3) made from the KSK or CSK with
SHA-256 (RFC 4509), are ordinary rows written through the one write path (Store.change,
source "dnssec") in the transaction that stores the keys, so the change log and transfers carry them.
"""

from __future__ import annotations

import asyncio
import uuid

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from ..dnssec.keys import ALGORITHMS, SEP, ZONE_KEY, SigningKey, dnskey_rdata, ds_rdata, generate, private_der, seal
from ..store.keys import aad, check_master
from ..store.records import Invalid
from ..store.writer import Change, Conflict, Edit, Store, find_zone
from ..wire import CDNSKEY, CDS, DNSKEY, DS

_NAMES = {number: name for name, number in ALGORITHMS.items()}


class DnssecEnabled(Conflict):
    status, type = 409, "dnssec_enabled"


class DnssecNotEnabled(Invalid):
    """The zone to stop signing is not signed."""

    status, type = 404, "dnssec_not_enabled"


def _algorithm(name: str) -> int:
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        raise Invalid(f"algorithm must be one of {', '.join(ALGORITHMS)}") from None


def _text(rtype: int, rdata: bytes) -> str:
    return dns.rdata.from_wire(dns.rdataclass.IN, rtype, rdata, 0, len(rdata)).to_text()


def key_edits(origin: bytes, ttl: int, dnskeys: list[bytes], sep: list[bytes]) -> list[Edit]:
    """The apex DNSKEY RRset of `dnskeys`, and CDS (SHA-256) and CDNSKEY of the `sep` keys
    (RFC 7344 §4: they name the keys the parent's DS should point at)."""
    return [
        Edit("replace", "@", "DNSKEY", ttl, tuple(_text(DNSKEY, k) for k in dnskeys)),
        Edit("replace", "@", "CDS", ttl, tuple(_text(CDS, ds_rdata(origin, k)) for k in sep)),
        Edit("replace", "@", "CDNSKEY", ttl, tuple(_text(CDNSKEY, k) for k in sep)),
    ]


def _make_keys(alg: int, split: bool) -> list[SigningKey]:
    if not split:
        return [generate(alg, "csk")]
    ksk, zsk = generate(alg, "ksk"), generate(alg, "zsk")
    while zsk.key_tag == ksk.key_tag:  # distinct tags spare validators a second try (RFC 4035 §5.3.1)
        zsk = generate(alg, "zsk")
    return [ksk, zsk]


async def enable(store: Store, zone: str | uuid.UUID, master: bytes | None, algorithm: str = "ecdsap256sha256",
                 split: bool = False, nsec3_optout: bool = False) -> Change:  # fmt: skip
    """Sign `zone`: make a CSK (or, with `split`, a KSK and a ZSK with another key tag), store them
    sealed under `master`, and publish DNSKEY, CDS and CDNSKEY at the apex — one transaction, one
    change (source "dnssec") that also signs the zone (store/signing.py), with NSEC3 opt-out when
    asked (RFC 5155 §6). Conflict when the zone is signed already; MasterKeyError when
    `master` is missing or not the database's."""
    keys = await asyncio.to_thread(_make_keys, _algorithm(algorithm), split)  # RSA takes a while: off the loop
    async with store.pool.acquire() as conn, conn.transaction():
        z = await find_zone(conn, zone, lock=True)
        if z["dnssec"]:
            raise DnssecEnabled(f"zone {z['name']} is signed already")
        await check_master(conn, master, create=True)
        for k in keys:
            key_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO dnssec_keys (id, zone_id, role, algorithm, key_tag, public_key, private_sealed, state,"
                " activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', now())",
                key_id, z["id"], k.role, k.algorithm, k.key_tag, k.public, seal(master, private_der(k), aad(z["id"], key_id)),
            )  # fmt: skip
        await conn.execute("UPDATE zones SET dnssec = true, nsec3_optout = $2 WHERE id = $1", z["id"], nsec3_optout)
        origin = dns.name.from_text(z["name"]).to_wire().lower()
        edits = key_edits(origin, z["ttl"], [k.dnskey for k in keys], [k.dnskey for k in keys if k.signs_keys])
        return await store.change(z["id"], edits, source="dnssec", conn=conn, key_records=True)


async def set_nsec3_optout(store: Store, zone: str | uuid.UUID, optout: bool) -> Change:
    """Turn NSEC3 opt-out on or off for a signed zone: the chain is made anew, as one change."""
    async with store.pool.acquire() as conn, conn.transaction():
        z = await find_zone(conn, zone, lock=True)
        if not z["dnssec"]:
            raise Invalid(f"zone {z['name']} is not signed")
        await conn.execute("UPDATE zones SET nsec3_optout = $2 WHERE id = $1", z["id"], optout)
        return await store.change(z["id"], source="dnssec", conn=conn, resign=True)


async def disable(store: Store, zone: str | uuid.UUID) -> Change:
    """Stop signing `zone`: its keys are deleted and DNSKEY, CDS and CDNSKEY removed, as one change.
    The parent's DS must be gone (and its TTL passed) first, or validators will find the zone bogus
    (RFC 6781 §4.3.5.2)."""
    async with store.pool.acquire() as conn, conn.transaction():
        z = await find_zone(conn, zone, lock=True)
        if not z["dnssec"]:
            raise DnssecNotEnabled(f"zone {z['name']} is not signed")
        await conn.execute("DELETE FROM dnssec_keys WHERE zone_id = $1", z["id"])
        await conn.execute("UPDATE zones SET dnssec = false WHERE id = $1", z["id"])
        edits = [Edit("replace", "@", t) for t in ("DNSKEY", "CDS", "CDNSKEY")]
        return await store.change(z["id"], edits, source="dnssec", conn=conn, key_records=True)


async def status(store: Store, zone: str | uuid.UUID) -> tuple[dict, list[dict]]:
    """The zone's row and its keys, oldest first: id, role, algorithm (name), key_tag, state,
    created_at, activated_at, retired_at. Never the private key."""
    async with store.pool.acquire() as conn:
        z = dict(await find_zone(conn, zone, lock=False))
        rows = await conn.fetch(
            "SELECT id, role, algorithm, key_tag, state, created_at, activated_at, retired_at FROM dnssec_keys"
            " WHERE zone_id = $1 ORDER BY created_at, role", z["id"],
        )  # fmt: skip
    return z, [{**dict(r), "algorithm": _NAMES.get(r["algorithm"], str(r["algorithm"]))} for r in rows]


async def ds(store: Store, zone: str | uuid.UUID) -> list[str]:
    """What the parent needs, in presentation form: for each KSK/CSK that is published or active,
    its DS (SHA-256, RFC 4509) and its DNSKEY (for parents that take DNSKEY, RFC 8078 §3)."""
    async with store.pool.acquire() as conn:
        z = await find_zone(conn, zone, lock=False)
        rows = await conn.fetch(
            "SELECT role, algorithm, public_key FROM dnssec_keys WHERE zone_id = $1 AND role IN ('csk', 'ksk')"
            " AND state IN ('published', 'active') ORDER BY created_at", z["id"],
        )  # fmt: skip
    if not z["dnssec"]:
        raise Invalid(f"zone {z['name']} is not signed")
    origin = dns.name.from_text(z["name"])
    lines = []
    for r in rows:
        rdata = dnskey_rdata(ZONE_KEY | SEP, r["algorithm"], bytes(r["public_key"]))
        lines.append(f"{origin} IN DS {_text(DS, ds_rdata(origin.to_wire().lower(), rdata))}")
        lines.append(f"{origin} IN DNSKEY {_text(DNSKEY, rdata)}")
    return lines


