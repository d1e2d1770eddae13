"""Transfer settings kept in the database — TSIG keys, each zone's secondaries and access list —
and the propagation status the servers record. Every change here NOTIFYs CONFIG_CHANNEL so the
running servers reload the settings at once (store/follow.py)."""

from __future__ import annotations

import base64
import ipaddress
import os

import asyncpg
import dns.name

from ..xfr.tsig import TsigKeyError, algorithm_text, make_key
from ..store.db import CONFIG_CHANNEL
from ..store.records import Invalid, zone_name
from ..store.writer import Conflict, NotFound
from .listing import Where, by_creation


class TsigKeyNotFound(NotFound):
    status, type = 404, "tsigkey_not_found"


class DuplicateTsigKey(Conflict):
    status, type = 409, "duplicate_tsigkey"


class TsigKeyInUse(Conflict):
    """Secondaries use the key: it may be neither renamed nor deleted."""

    status, type = 409, "duplicate_tsigkey"



async def _key_uses(conn, name: str) -> int:
    """How many secondaries (of zones, and pool targets) sign with the key."""
    return await conn.fetchval("SELECT (SELECT count(*) FROM zone_secondaries WHERE key_name = $1)"
                               " + (SELECT count(*) FROM pool_targets WHERE key_name = $1)", name)  # fmt: skip


def _key_name(name: str) -> str:
    try:
        return dns.name.from_text(name).to_text().lower()
    except Exception as e:  # noqa: BLE001 - dnspython's name errors
        raise Invalid(f"bad key name {name!r}: {e}") from None


async def add_key(pool: asyncpg.Pool, name: str, algorithm: str = "hmac-sha256", secret: str | None = None) -> tuple[str, str, str]:
    """Store a TSIG key; without a secret one is made (32 random octets, RFC 8945 §6). Returns
    (name, algorithm, secret): the one time the secret is shown."""
    name = _key_name(name)
    secret = secret or base64.b64encode(os.urandom(32)).decode()
    try:
        key = make_key(name, algorithm, secret)
    except TsigKeyError as e:
        raise Invalid(str(e)) from None
    alg = algorithm_text(key)
    async with pool.acquire() as conn, conn.transaction():
        done = await conn.fetchval(
            "INSERT INTO tsig_keys (name, algorithm, secret) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id",
            name, alg, secret,
        )  # fmt: skip
        if done is None:
            raise Conflict(f"TSIG key {name} exists")
        await conn.execute("SELECT pg_notify($1, 'keys')", CONFIG_CHANNEL)
    return name, alg, secret


async def delete_key(pool: asyncpg.Pool, name: str) -> None:
    name = _key_name(name)
    async with pool.acquire() as conn, conn.transaction():
        used = await _key_uses(conn, name)
        if used:
            raise Conflict(f"TSIG key {name} is used by {used} secondary entr{'y' if used == 1 else 'ies'}")
        if await conn.fetchval("DELETE FROM tsig_keys WHERE name = $1 RETURNING id", name) is None:
            raise NotFound(f"no TSIG key {name}")
        await conn.execute("SELECT pg_notify($1, 'keys')", CONFIG_CHANNEL)


async def list_keys(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    """(name, algorithm) of every key; secrets stay in the database."""
    return [(r["name"], r["algorithm"]) for r in await pool.fetch("SELECT name, algorithm FROM tsig_keys ORDER BY name")]


async def _zone_id(conn, zone: str):
    zid = await conn.fetchval("SELECT id FROM zones WHERE name = $1", zone_name(zone).to_text().lower())
    if zid is None:
        raise NotFound(f"no zone {zone}")
    return zid


async def set_allow_transfer(pool: asyncpg.Pool, zone: str, entries: list[str] | None) -> None:
    """The zone's own transfer access list (prefixes, "key:NAME"); None returns it to the default."""
    checked = None
    if entries is not None:
        checked = []
        for entry in entries:
            if entry.startswith("key:"):
                checked.append("key:" + _key_name(entry[4:]))
            else:
                try:
                    checked.append(str(ipaddress.ip_network(entry, strict=False)))
                except ValueError:
                    raise Invalid(f"{entry!r} is neither an address prefix nor key:NAME") from None
    async with pool.acquire() as conn, conn.transaction():
        zid = await _zone_id(conn, zone)
        await conn.execute("UPDATE zones SET allow_transfer = $2 WHERE id = $1", zid, checked)
        await conn.execute("SELECT pg_notify($1, 'acl')", CONFIG_CHANNEL)


async def check_secondary(conn, address: str, port: int, key: str | None):
    """A secondary's (address, port, key name) checked: an IP address, a port, a stored TSIG key."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise Invalid(f"{address!r} is not an IP address") from None
    if not 0 < port < 65536:
        raise Invalid(f"bad port {port}")
    if key is not None:
        key = _key_name(key)
        if await conn.fetchval("SELECT 1 FROM tsig_keys WHERE name = $1", key) is None:
            raise NotFound(f"no TSIG key {key}")
    return ip, port, key


async def add_secondary(pool: asyncpg.Pool, zone: str, address: str, port: int = 53, key: str | None = None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        zid = await _zone_id(conn, zone)
        ip, port, key = await check_secondary(conn, address, port, key)
        await conn.execute(
            "INSERT INTO zone_secondaries (zone_id, address, port, key_name) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (zone_id, address, port) DO UPDATE SET key_name = EXCLUDED.key_name",
            zid, ip, port, key,
        )  # fmt: skip
        await conn.execute("SELECT pg_notify($1, 'secondaries')", CONFIG_CHANNEL)


async def delete_secondary(pool: asyncpg.Pool, zone: str, address: str, port: int = 53) -> None:
    async with pool.acquire() as conn, conn.transaction():
        zid = await _zone_id(conn, zone)
        done = await conn.fetchval(
            "DELETE FROM zone_secondaries WHERE zone_id = $1 AND address = $2 AND port = $3 RETURNING port",
            zid, ipaddress.ip_address(address), port,
        )  # fmt: skip
        if done is None:
            raise NotFound(f"{address}#{port} is not a secondary of {zone}")
        await conn.execute("SELECT pg_notify($1, 'secondaries')", CONFIG_CHANNEL)


async def zone_status(pool: asyncpg.Pool, zone: str) -> tuple[dict, list[dict]]:
    """The zone (name, serial, status, action) and its secondaries' recorded status."""
    async with pool.acquire() as conn:
        zid = await _zone_id(conn, zone)
        z = dict(await conn.fetchrow("SELECT name, serial, status, action, updated_at FROM zones WHERE id = $1", zid))
        rows = [dict(r) for r in await conn.fetch(
            "SELECT secondary, target, serial, state, seen_at, updated_at FROM secondary_status WHERE zone_id = $1"
            " ORDER BY secondary", zid)]  # fmt: skip
    return z, rows


# -- TSIG keys as the API (Designate's /v2/tsigkeys) sees them: rows by id ----------------------

TSIG_SCOPES = ("POOL", "ZONE")
_KEY_COLUMNS = "id, name, algorithm, secret, scope, resource_id, created_at, updated_at"


def _checked_key(name: str, algorithm: str, secret: str) -> tuple[str, str]:
    """(absolute lowercase name, canonical algorithm) of a usable key, else Invalid."""
    name = _key_name(name)
    try:
        key = make_key(name, algorithm, secret)
    except TsigKeyError as e:
        raise Invalid(str(e)) from None
    except Exception as e:  # noqa: BLE001 - dnspython's errors for an odd name or secret
        raise Invalid(f"bad TSIG key: {e}") from None
    return name, algorithm_text(key)


async def key_rows(pool, *, name: str | None = None, algorithm: str | None = None, scope: str | None = None,
                   limit: int = 1000, marker=None) -> tuple[list[dict], int]:  # fmt: skip
    """Keys (secrets included: the API is admin-only) by creation, filtered and paged after
    `marker`; and how many match in all pages."""
    w = Where()
    for column, value in (("name", None if name is None else _key_name(name)), ("algorithm", algorithm), ("scope", scope)):
        if value is not None:
            w.add(f"{column} = {w.arg(value)}")
    return await by_creation(pool, f"SELECT {_KEY_COLUMNS} FROM tsig_keys", w, limit, marker)


async def key_row(pool, key_id) -> dict:
    row = await pool.fetchrow(f"SELECT {_KEY_COLUMNS} FROM tsig_keys WHERE id = $1", key_id)
    if row is None:
        raise TsigKeyNotFound(f"no TSIG key {key_id}")
    return dict(row)


async def create_key_row(pool: asyncpg.Pool, name: str, algorithm: str, secret: str, scope: str = "POOL",
                         resource_id=None) -> dict:  # fmt: skip
    """Store a key given whole (the API's create); the servers load it at once."""
    name, alg = _checked_key(name, algorithm, secret)
    if scope not in TSIG_SCOPES:
        raise Invalid(f"scope must be one of {', '.join(TSIG_SCOPES)}")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO tsig_keys (name, algorithm, secret, scope, resource_id) VALUES ($1, $2, $3, $4, $5)"
            f" ON CONFLICT (name) DO NOTHING RETURNING {_KEY_COLUMNS}",
            name, alg, secret, scope, resource_id,
        )  # fmt: skip
        if row is None:
            raise DuplicateTsigKey(f"TSIG key {name} exists")
        await conn.execute("SELECT pg_notify($1, 'keys')", CONFIG_CHANNEL)
    return dict(row)


async def update_key_row(pool: asyncpg.Pool, key_id, values: dict) -> dict:
    """Change a key's name, algorithm, secret, scope or resource_id; the whole key is checked again.
    Renaming a key that secondaries use is refused (Conflict)."""
    unknown = set(values) - {"name", "algorithm", "secret", "scope", "resource_id"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    async with pool.acquire() as conn, conn.transaction():
        cur = await conn.fetchrow(f"SELECT {_KEY_COLUMNS} FROM tsig_keys WHERE id = $1 FOR UPDATE", key_id)
        if cur is None:
            raise TsigKeyNotFound(f"no TSIG key {key_id}")
        new = {**dict(cur), **values}
        new["name"], new["algorithm"] = _checked_key(new["name"], new["algorithm"], new["secret"])
        if new["scope"] not in TSIG_SCOPES:
            raise Invalid(f"scope must be one of {', '.join(TSIG_SCOPES)}")
        if new["name"] != cur["name"]:
            used = await _key_uses(conn, cur["name"])
            if used:
                raise TsigKeyInUse(f"TSIG key {cur['name']} is used by {used} secondary entr{'y' if used == 1 else 'ies'}")
            if await conn.fetchval("SELECT 1 FROM tsig_keys WHERE name = $1", new["name"]):
                raise DuplicateTsigKey(f"TSIG key {new['name']} exists")
        row = await conn.fetchrow(
            "UPDATE tsig_keys SET name = $2, algorithm = $3, secret = $4, scope = $5, resource_id = $6, updated_at = now()"
            f" WHERE id = $1 RETURNING {_KEY_COLUMNS}",
            key_id, new["name"], new["algorithm"], new["secret"], new["scope"], new["resource_id"],
        )  # fmt: skip
        await conn.execute("SELECT pg_notify($1, 'keys')", CONFIG_CHANNEL)
    return dict(row)


async def delete_key_row(pool: asyncpg.Pool, key_id) -> None:
    async with pool.acquire() as conn, conn.transaction():
        name = await conn.fetchval("SELECT name FROM tsig_keys WHERE id = $1 FOR UPDATE", key_id)
        if name is None:
            raise TsigKeyNotFound(f"no TSIG key {key_id}")
        used = await _key_uses(conn, name)
        if used:
            raise TsigKeyInUse(f"TSIG key {name} is used by {used} secondary entr{'y' if used == 1 else 'ies'}")
        await conn.execute("DELETE FROM tsig_keys WHERE id = $1", key_id)
        await conn.execute("SELECT pg_notify($1, 'keys')", CONFIG_CHANNEL)
