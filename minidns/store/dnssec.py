"""DNSSEC keys kept in the database: enabling and disabling signing of a zone, its keys' status,
what the parent needs (DS), and the keys unsealed for serving.

Private keys are stored sealed with AES-256-GCM under a 32-octet master key that the database never
holds (dnssec/keys.seal, the zone id and key id bound in as associated data, so a sealed key copied
to another row does not open). The master key comes from, in order: $MINIDNS_MASTER_KEY (base64),
the file named by the setting `dnssec_master_key_file` (base64), or — for the embedded database
only — `master.key` in its data directory, made (mode 0600) the first time a zone is signed. A
check value sealed under it (table dnssec_master) tells a wrong master key at once.

The apex DNSKEY RRset, and CDS/CDNSKEY (RFC 7344 §3, RFC 8078 §3) made from the KSK or CSK with
SHA-256 (RFC 4509), are ordinary rows written through the one write path (writer.Store._change,
source "dnssec") in the transaction that stores the keys, so the change log and transfers carry them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import uuid
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from ..dnssec.keys import ALGORITHMS, MASTER_KEY_OCTETS, SEP, ZONE_KEY, BadKey, SigningKey, dnskey_rdata, ds_rdata
from ..dnssec.keys import generate, load_private, private_der, seal, unseal
from ..wire import CDNSKEY, CDS, DNSKEY, DS
from .records import Invalid
from .writer import Change, Conflict, Edit, Store, _find_zone

ENV = "MINIDNS_MASTER_KEY"
KEY_FILE = "master.key"  # in the embedded database's data directory
_CHECK, _CHECK_AAD = b"minidns DNSSEC master key check", b"dnssec_master"
_NAMES = {number: name for name, number in ALGORITHMS.items()}


class MasterKeyError(BadKey):
    """No usable master key, or not the one the database's keys were sealed under."""


class DnssecEnabled(Conflict):
    status, type = 409, "dnssec_enabled"


class DnssecNotEnabled(Invalid):
    """The zone to stop signing is not signed."""

    status, type = 404, "dnssec_not_enabled"


# -- the master key --------------------------------------------------------------------------------
def find_master_key(key_file: str | None, data_dir: str | None, *, create: bool = False, environ=os.environ) -> bytes | None:
    """The master key from $MINIDNS_MASTER_KEY, else `key_file`, else `data_dir`/master.key (pass
    `data_dir` only for the embedded database). None when there is none; with `create`, a missing
    master.key is made: 32 random octets, base64, mode 0600. Raises MasterKeyError for a key that
    is there but cannot be used. The key itself is never put in a message."""
    if environ.get(ENV):
        return _decode(environ[ENV], f"${ENV}")
    if key_file:
        return _read(Path(key_file).expanduser())
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser() / KEY_FILE
    if path.exists() or not create:
        return _read(path) if path.exists() else None
    key = os.urandom(MASTER_KEY_OCTETS)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by another process just now
        return _read(path)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")
    return key


def _read(path: Path) -> bytes:
    try:
        text = path.read_text()
    except OSError as e:
        raise MasterKeyError(f"master key file {path}: {e.strerror or e}") from None
    return _decode(text, f"master key file {path}")


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{where} is not base64") from None
    if len(key) != MASTER_KEY_OCTETS:
        raise MasterKeyError(f"{where} holds {len(key)} octets, not {MASTER_KEY_OCTETS}")
    return key


async def check_master(conn, master: bytes | None, *, create: bool = False) -> None:
    """Raise MasterKeyError unless `master` opens the database's check value; with `create`, a
    database without one gets one sealed under `master`."""
    if master is None:
        raise MasterKeyError(f"no DNSSEC master key (set ${ENV} or dnssec_master_key_file)")
    sealed = await conn.fetchval("SELECT check_sealed FROM dnssec_master")
    if sealed is None and create:
        await conn.execute("INSERT INTO dnssec_master (check_sealed) VALUES ($1) ON CONFLICT DO NOTHING",
                           seal(master, _CHECK, _CHECK_AAD))  # fmt: skip
        sealed = await conn.fetchval("SELECT check_sealed FROM dnssec_master")
    if sealed is None:
        return
    try:
        ok = unseal(master, bytes(sealed), _CHECK_AAD) == _CHECK
    except BadKey:
        ok = False
    if not ok:
        raise MasterKeyError("wrong DNSSEC master key: it does not open the check value the database's keys were stored with")


# -- keys of a zone --------------------------------------------------------------------------------
def _aad(zone_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
    return zone_id.bytes + key_id.bytes


def _algorithm(name: str) -> int:
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        raise Invalid(f"algorithm must be one of {', '.join(ALGORITHMS)}") from None


def _text(rtype: int, rdata: bytes) -> str:
    return dns.rdata.from_wire(dns.rdataclass.IN, rtype, rdata, 0, len(rdata)).to_text()


def _key_edits(origin: bytes, ttl: int, dnskeys: list[bytes], sep: list[bytes]) -> list[Edit]:
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
        z = await _find_zone(conn, zone, lock=True)
        if z["dnssec"]:
            raise DnssecEnabled(f"zone {z['name']} is signed already")
        await check_master(conn, master, create=True)
        for k in keys:
            key_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO dnssec_keys (id, zone_id, role, algorithm, key_tag, public_key, private_sealed, state,"
                " activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', now())",
                key_id, z["id"], k.role, k.algorithm, k.key_tag, k.public, seal(master, private_der(k), _aad(z["id"], key_id)),
            )  # fmt: skip
        await conn.execute("UPDATE zones SET dnssec = true, nsec3_optout = $2 WHERE id = $1", z["id"], nsec3_optout)
        origin = dns.name.from_text(z["name"]).to_wire().lower()
        edits = _key_edits(origin, z["ttl"], [k.dnskey for k in keys], [k.dnskey for k in keys if k.signs_keys])
        return await store._change(conn, z["id"], edits, "dnssec", {}, key_records=True)


async def set_nsec3_optout(store: Store, zone: str | uuid.UUID, optout: bool) -> Change:
    """Turn NSEC3 opt-out on or off for a signed zone: the chain is made anew, as one change."""
    async with store.pool.acquire() as conn, conn.transaction():
        z = await _find_zone(conn, zone, lock=True)
        if not z["dnssec"]:
            raise Invalid(f"zone {z['name']} is not signed")
        await conn.execute("UPDATE zones SET nsec3_optout = $2 WHERE id = $1", z["id"], optout)
        return await store._change(conn, z["id"], [], "dnssec", {}, resign=True)


async def disable(store: Store, zone: str | uuid.UUID) -> Change:
    """Stop signing `zone`: its keys are deleted and DNSKEY, CDS and CDNSKEY removed, as one change.
    The parent's DS must be gone (and its TTL passed) first, or validators will find the zone bogus
    (RFC 6781 §4.3.5.2)."""
    async with store.pool.acquire() as conn, conn.transaction():
        z = await _find_zone(conn, zone, lock=True)
        if not z["dnssec"]:
            raise DnssecNotEnabled(f"zone {z['name']} is not signed")
        await conn.execute("DELETE FROM dnssec_keys WHERE zone_id = $1", z["id"])
        await conn.execute("UPDATE zones SET dnssec = false WHERE id = $1", z["id"])
        edits = [Edit("replace", "@", t) for t in ("DNSKEY", "CDS", "CDNSKEY")]
        return await store._change(conn, z["id"], edits, "dnssec", {}, key_records=True)


async def status(store: Store, zone: str | uuid.UUID) -> tuple[dict, list[dict]]:
    """The zone's row and its keys, oldest first: id, role, algorithm (name), key_tag, state,
    created_at, activated_at, retired_at. Never the private key."""
    async with store.pool.acquire() as conn:
        z = dict(await _find_zone(conn, zone, lock=False))
        rows = await conn.fetch(
            "SELECT id, role, algorithm, key_tag, state, created_at, activated_at, retired_at FROM dnssec_keys"
            " WHERE zone_id = $1 ORDER BY created_at, role", z["id"],
        )  # fmt: skip
    return z, [{**dict(r), "algorithm": _NAMES.get(r["algorithm"], str(r["algorithm"]))} for r in rows]


async def ds(store: Store, zone: str | uuid.UUID) -> list[str]:
    """What the parent needs, in presentation form: for each KSK/CSK that is published or active,
    its DS (SHA-256, RFC 4509) and its DNSKEY (for parents that take DNSKEY, RFC 8078 §3)."""
    async with store.pool.acquire() as conn:
        z = await _find_zone(conn, zone, lock=False)
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


async def load_zone_keys(conn, zone_id: uuid.UUID, master: bytes | None) -> list[SigningKey]:
    """The zone's active keys with their private halves, unsealed: what it is signed with. A
    key-signing key (KSK or CSK) that a rollover has published but not yet made active comes too,
    as a KSK: it co-signs the DNSKEY RRset only (store/rollover.py: the DNSKEY RRset signed by the
    old and the new key while the parent's DS changes). MasterKeyError when `master` is missing or
    does not open them, BadKey when a stored key does not match its public half."""
    rows = await conn.fetch(
        "SELECT id, role, algorithm, key_tag, public_key, private_sealed, state FROM dnssec_keys"
        " WHERE zone_id = $1 AND (state = 'active' OR (state = 'published' AND role IN ('csk', 'ksk')))"
        " ORDER BY created_at, role", zone_id,
    )  # fmt: skip
    if rows and master is None:
        raise MasterKeyError(f"no DNSSEC master key (set ${ENV} or dnssec_master_key_file)")
    keys = []
    for r in rows:
        try:
            der = unseal(master, bytes(r["private_sealed"]), _aad(zone_id, r["id"]))
        except BadKey:
            raise MasterKeyError("wrong DNSSEC master key: it does not open the zone's private keys") from None
        key = load_private(r["role"] if r["state"] == "active" else "ksk", r["algorithm"], der)  # same flags, same tag
        if key.public != bytes(r["public_key"]) or key.key_tag != r["key_tag"]:
            raise BadKey(f"key {r['id']}: the private key does not match its stored public key")
        keys.append(key)
    return keys
