"""Connecting to PostgreSQL and keeping its schema current: plain SQL migrations applied in order,
each recorded in `schema_migrations`, under an advisory lock so that servers starting together
upgrade once."""

from __future__ import annotations

import asyncio
import logging
import re
from importlib import resources

import asyncpg
import orjson

log = logging.getLogger("minidns.store")

# What asyncpg raises when PostgreSQL cannot be reached or is going away (stopped, restarting,
# refusing connections): nothing was done, the caller may try again later (HTTP 503).
DB_DOWN = (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
           asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InvalidCatalogNameError,
           asyncpg.exceptions.ObjectNotInPrerequisiteStateError)  # fmt: skip
# Of those, the connection lost while a statement was under way: if that statement was a COMMIT,
# PostgreSQL may have committed it without the reply arriving, so the outcome is not known.
LOST_MIDWAY = (asyncpg.exceptions.ConnectionDoesNotExistError,)
# What PostgreSQL raises when it cannot take a write now (SQLSTATE class 53: disk full, out of
# memory, too many connections): the transaction was rolled back, nothing was done (HTTP 503).
DB_FULL = (asyncpg.exceptions.InsufficientResourcesError,)
CHANNEL = "minidns_changes"  # NOTIFY channel: payload "<zone id> <serial>" or "<zone id> deleted"
CONFIG_CHANNEL = "minidns_config"  # NOTIFY channel: transfer settings (keys, access lists, secondaries) changed
_MIGRATION_LOCK = 0x6D696E69  # advisory lock key ("mini")
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class DatabaseError(Exception):
    """The database cannot be reached or used; the message says why."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every shipped migration, in order."""
    out = []
    for entry in resources.files("minidns.store").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


async def upgrade(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations the database lacks, each in its own transaction; returns their names."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        have = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in have:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            log.info("database: applied migration %s", name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def schema_current(conn: asyncpg.Connection) -> bool:
    """True when every shipped migration has been applied."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return False
    have = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return all(v in have for v, _, _ in migrations())


async def connect(url: str, timeout: float = 10.0) -> asyncpg.Connection:
    """One connection, with connection errors turned into DatabaseError."""
    try:
        return await asyncpg.connect(url, timeout=timeout, server_settings=SESSION_SETTINGS)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
        raise DatabaseError(f"cannot connect to the database: {e}") from None


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb's binary form is a version byte (1) and the JSON text; binary so that COPY can carry it.
    await conn.set_type_codec(
        "jsonb", encoder=lambda v: b"\x01" + orjson.dumps(v), decoder=lambda b: orjson.loads(b[1:]),
        schema="pg_catalog", format="binary",
    )  # fmt: skip


# A process that stops in the middle of a transaction (killed, frozen, its host gone) must not hold
# a zone's row lock for ever: PostgreSQL ends a session idle in a transaction this long, which
# frees every writer waiting behind it. Our transactions never sit idle for more than moments.
SESSION_SETTINGS = {"idle_in_transaction_session_timeout": "10s"}


async def create_pool(url: str, size: int = 4) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(url, min_size=1, max_size=size, timeout=10, init=_init_connection,
                                         server_settings=SESSION_SETTINGS)  # fmt: skip
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
        raise DatabaseError(f"cannot connect to the database: {e}") from None
