"""The UPDATE grants kept in the database (xfr/grants.py says what one means): listed, added at a
position, deleted. Positions are 1, 2, 3… with no gaps; the first grant that matches decides.
Every change NOTIFYs CONFIG_CHANNEL so the running servers read the grants again at once."""

from __future__ import annotations

import uuid

import asyncpg

from ..store.db import CONFIG_CHANNEL
from ..store.records import Invalid, NotFound
from ..store.transfer_settings import grant_entry
from ..xfr.grants import Grant, canonical_name, grant_from, grant_to


class UpdateGrantNotFound(NotFound):
    status, type = 404, "update_grant_not_found"


_COLUMNS = "id, position, key_name, zone, match, pattern, types, action, managed, description, created_at"
_LOCK = "LOCK TABLE update_grants IN SHARE ROW EXCLUSIVE MODE"  # one writer at a time: positions stay 1..n


def checked(entry: dict) -> Grant:
    """The grant of `entry` (its dict form), or Invalid with grant_from's reason."""
    try:
        return grant_from(entry)
    except ValueError as e:
        raise Invalid(str(e)) from None


def row_dict(row) -> dict:
    """A stored grant as the API and CLI show it: id, position, the grant's dict form, description, created_at."""
    return {"id": row["id"], "position": row["position"], **grant_entry(row), "description": row["description"],
            "created_at": row["created_at"]}  # fmt: skip


def _name_filter(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        return canonical_name(value, what).to_text()
    except ValueError as e:
        raise Invalid(str(e)) from None


async def list_grants(pool: asyncpg.Pool, key: str | None = None, zone: str | None = None) -> list[dict]:
    """The stored grants in position order; `key`: that key's only; `zone`: those that apply to the
    zone (its own and those for every zone)."""
    key, zone = _name_filter(key, "key"), _name_filter(zone, "zone")
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM update_grants WHERE ($1::text IS NULL OR key_name = $1)"
        " AND ($2::text IS NULL OR zone = $2 OR zone IS NULL) ORDER BY position",
        key, zone,
    )  # fmt: skip
    return [row_dict(r) for r in rows]


def _grant_id(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid(f"{value!r} is not a grant id") from None


async def get_grant(pool: asyncpg.Pool, grant_id: uuid.UUID | str) -> dict:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM update_grants WHERE id = $1", _grant_id(grant_id))
    if row is None:
        raise UpdateGrantNotFound(f"no update grant {grant_id}")
    return row_dict(row)


async def add_grant(pool: asyncpg.Pool, entry: dict, position: int | None = None, description: str | None = None) -> dict:
    """Store the grant of `entry` (its dict form) at `position` (1: read first; the grants from there
    on move down one), by default after the others. Returns the stored grant (row_dict)."""
    form = grant_to(checked(entry))
    if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 1):
        raise Invalid(f"position must be a whole number from 1, not {position!r}")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK)
        count = await conn.fetchval("SELECT count(*) FROM update_grants")
        if position is None:
            position = count + 1
        elif position > count + 1:
            raise Invalid(f"position {position} is past the end: there are {count} grant(s)")
        await conn.execute("UPDATE update_grants SET position = position + 1 WHERE position >= $1", position)
        row = await conn.fetchrow(
            "INSERT INTO update_grants (position, key_name, zone, match, pattern, types, action, managed, description)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}",
            position, form["key"], form["zone"], form["match"], form["pattern"], form["types"], form["action"],
            form["managed"], description,
        )  # fmt: skip
        await conn.execute("SELECT pg_notify($1, 'grants')", CONFIG_CHANNEL)
    return row_dict(row)


async def delete_grant(pool: asyncpg.Pool, grant_id: uuid.UUID | str) -> None:
    """Remove a grant; those after it move up one."""
    grant_id = _grant_id(grant_id)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK)
        position = await conn.fetchval("DELETE FROM update_grants WHERE id = $1 RETURNING position", grant_id)
        if position is None:
            raise UpdateGrantNotFound(f"no update grant {grant_id}")
        await conn.execute("UPDATE update_grants SET position = position - 1 WHERE position > $1", position)
        await conn.execute("SELECT pg_notify($1, 'grants')", CONFIG_CHANNEL)
