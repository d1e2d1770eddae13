"""store/db.py against a real PostgreSQL: the shipped migrations in order, applied once each
(also by two upgrades at the same time), schema_current before and after, connection errors as
DatabaseError, and the pool's session settings and jsonb codec."""

import asyncio
import contextlib
import itertools
import re
import socket

import pytest

from minidns.store import db

_count = itertools.count()


@contextlib.asynccontextmanager
async def blank_database(pg_server):
    """An empty database (no schema at all), dropped on the way out."""
    name = f"blank_{next(_count)}"
    admin = await db.connect(pg_server.url)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield re.sub(r"/postgres\?", f"/{name}?", pg_server.url, count=1)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def test_the_shipped_migrations_are_numbered_in_order_without_gaps():
    found = db.migrations()
    assert [v for v, _, _ in found] == list(range(1, len(found) + 1)) and len(found) >= 14
    assert found[0][1] == "0001_initial.sql" and "CREATE TABLE zones" in found[0][2]
    assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", name) and name.startswith(f"{v:04d}_") for v, name, _ in found)


async def test_upgrade_applies_each_migration_once_and_then_the_schema_is_current(pg_server):
    async with blank_database(pg_server) as url:
        conn = await db.connect(url)
        try:
            assert await db.schema_current(conn) is False  # no schema_migrations table at all
            applied = await db.upgrade(conn)
            assert applied == [name for _, name, _ in db.migrations()]
            assert await db.schema_current(conn) is True
            assert await db.upgrade(conn) == []  # idempotent
            rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
            assert [(r["version"], r["name"]) for r in rows] == [(v, n) for v, n, _ in db.migrations()]
            last = rows[-1]["version"]
            await conn.execute("DELETE FROM schema_migrations WHERE version = $1", last)
            assert await db.schema_current(conn) is False  # one shipped migration not recorded
        finally:
            await conn.close()


async def test_two_upgrades_at_once_apply_each_migration_once(pg_server):
    """The advisory lock: servers starting together upgrade once."""
    async with blank_database(pg_server) as url:
        conns = [await db.connect(url), await db.connect(url)]
        try:
            results = await asyncio.gather(*(db.upgrade(c) for c in conns))
            assert sorted(results[0] + results[1]) == sorted(name for _, name, _ in db.migrations())
            assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(db.migrations())
            assert await db.schema_current(conns[1])
        finally:
            for c in conns:
                await c.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens there once the socket is closed


async def test_connection_errors_are_database_errors(pg_server):
    url = f"postgresql://minidns@127.0.0.1:{closed_port()}/nothere"
    with pytest.raises(db.DatabaseError, match="cannot connect to the database"):
        await db.connect(url, timeout=5)
    with pytest.raises(db.DatabaseError, match="cannot connect to the database"):
        await db.create_pool(url)
    with pytest.raises(db.DatabaseError, match='database "no_such_database" does not exist'):
        await db.connect(re.sub(r"/postgres\?", "/no_such_database?", pg_server.url, count=1))


async def test_pool_connections_carry_the_session_settings_and_the_jsonb_codec(pool):
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "10s"
        assert await conn.fetchval("SELECT $1::jsonb", {"a": [1, "two", None]}) == {"a": [1, "two", None]}
        assert await conn.fetchval("""SELECT '{"x": {"y": true}}'::jsonb -> 'x'""") == {"y": True}
