"""Fixtures shared by every test package: one embedded PostgreSQL for the session (the same wheel
`minidns serve` starts by default) and a fresh database per test."""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest

from minidns.store import db
from minidns.store.embedded import start_embedded

_count = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A private PostgreSQL for the test session, with fsync off (test data need not survive a
    power cut)."""
    emb = start_embedded(str(tmp_path_factory.mktemp("pg")))

    async def tune():
        conn = await db.connect(emb.url)
        await conn.execute("ALTER SYSTEM SET fsync = off")
        await conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        await conn.execute("SELECT pg_reload_conf()")
        await conn.close()

    asyncio.run(tune())
    yield emb
    emb.stop()


def database_url_for(base_url: str, name: str) -> str:
    return re.sub(r"/postgres\?", f"/{name}?", base_url, count=1)


@pytest.fixture
def database_url(pg_server):
    """The URL of an empty database with the current schema, dropped after the test."""
    name = f"t{next(_count)}"

    async def create():
        conn = await db.connect(pg_server.url)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()
        conn = await db.connect(database_url_for(pg_server.url, name))
        await db.upgrade(conn)
        await conn.close()

    async def drop():
        conn = await db.connect(pg_server.url)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()

    asyncio.run(create())
    yield database_url_for(pg_server.url, name)
    asyncio.run(drop())
