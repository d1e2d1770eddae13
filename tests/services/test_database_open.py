"""Opening the database (services/database.py): a URL's database gets its schema and the default
pool's NS records; with upgrade=False a database whose schema is not current is refused; the
embedded default is created in its directory and gets the seed zone once — not again when
opened the next time."""

import asyncio
from importlib import resources

import pytest

from minidns.services.database import open_database
from minidns.store import db
from minidns.store.writer import Edit, StoreSettings
from tests.conftest import database_url_for

SEED = str(resources.files("minidns").joinpath("data/example.com.zone"))


@pytest.fixture
def empty_url(pg_server):
    """An empty database without the schema, dropped after the test."""
    name = "open_database_test"

    async def run(sql):
        conn = await db.connect(pg_server.url)
        await conn.execute(sql)
        await conn.close()

    asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    asyncio.run(run(f"CREATE DATABASE {name}"))
    yield database_url_for(pg_server.url, name)
    asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def test_a_url_without_the_schema_is_refused_without_upgrade_and_made_current_with(empty_url):
    with pytest.raises(db.DatabaseError, match="not current"):
        await open_database(empty_url, None, upgrade=False)
    database = await open_database(empty_url, None, settings=StoreSettings(pool_nameservers=("ns1.open.test.",)))
    try:
        assert database.embedded is None and database.url == empty_url
        async with database.pool.acquire() as conn:
            assert await db.schema_current(conn)
        assert [r["hostname"] for r in await database.pool.fetch("SELECT hostname FROM pool_ns_records")] == ["ns1.open.test."]
        change = await database.store.create_zone("a.test.", email="h@a.test", edits=[Edit("add", "www", "A", 300, ("192.0.2.1",))])
        assert change.zone == "a.test."
    finally:
        await database.close()
    again = await open_database(empty_url, None, upgrade=False)
    try:
        assert await again.pool.fetchval("SELECT count(*) FROM zones WHERE name = 'a.test.'") == 1
    finally:
        await again.close()


async def test_the_embedded_default_is_created_and_seeded_once(tmp_path):
    first = await open_database(None, str(tmp_path / "pg"), seed_zone_file=SEED)
    try:
        assert first.embedded is not None and first.embedded.created
        zones = [r["name"] for r in await first.pool.fetch("SELECT name FROM zones")]
        assert zones == ["example.com."]
        serial = await first.pool.fetchval("SELECT serial FROM zones")
    finally:
        await first.close()
    second = await open_database(None, str(tmp_path / "pg"), seed_zone_file=SEED)
    try:
        assert not second.embedded.created
        assert [(r["name"], r["serial"]) for r in await second.pool.fetch("SELECT name, serial FROM zones")] == [
            ("example.com.", serial)]
    finally:
        await second.close()
