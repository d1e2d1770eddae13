"""store/transfer_settings.py against a real PostgreSQL: the TSIG keys, each zone's access list
and its secondaries — its own and its pool's targets, one entry per address and port, none for a
catalog zone — as a server reads them."""

import pytest

from minidns.store.stages import write_stages
from minidns.store.transfer_settings import TransferSettings, load_settings
from minidns.store.writer import Store

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQ="


@pytest.fixture
async def store(pool):
    s = Store(pool, stages=write_stages())
    for name in ("a.test.", "b.test.", "c.test."):
        await s.create_zone(name, email=f"h@{name}")
    return s


async def test_an_empty_database_has_no_settings(pool):
    assert await load_settings(pool) == TransferSettings()


async def test_keys_and_access_lists(store, pool):
    await pool.execute("INSERT INTO tsig_keys (name, algorithm, secret) VALUES ('xfr.', 'hmac-sha256', $1),"
                       " ('old.', 'hmac-md5', 'b2xk')", SECRET)  # fmt: skip
    await pool.execute("UPDATE zones SET allow_transfer = $1 WHERE name = 'a.test.'", ["192.0.2.0/24", "key:xfr."])
    await pool.execute("UPDATE zones SET allow_transfer = '{}' WHERE name = 'b.test.'")  # nobody, not the default
    s = await load_settings(pool)
    assert sorted(s.keys) == [("old.", "hmac-md5", "b2xk"), ("xfr.", "hmac-sha256", SECRET)]
    assert s.acls == {"a.test.": ["192.0.2.0/24", "key:xfr."], "b.test.": []}  # c.test.: the server's default
    assert s.secondaries == {}


async def test_secondaries_are_a_zones_own_and_its_pools_targets_once_each(store, pool):
    await pool.execute("INSERT INTO tsig_keys (name, algorithm, secret) VALUES ('xfr.', 'hmac-sha256', $1)", SECRET)
    other = await pool.fetchval("INSERT INTO pools (name) VALUES ('other') RETURNING id")
    await pool.execute("UPDATE zones SET pool_id = $1 WHERE name IN ('b.test.', 'c.test.')", other)
    await store.create_zone("cat.invalid.", email="h@invalid", mname="invalid.", catalog_members=["*"], pool_id=other)
    zone_id = {r["name"]: r["id"] for r in await pool.fetch("SELECT id, name FROM zones")}
    await pool.executemany("INSERT INTO zone_secondaries (zone_id, address, port, key_name) VALUES ($1, $2, $3, $4)", [
        (zone_id["a.test."], "192.0.2.1", 53, None), (zone_id["a.test."], "2001:db8::1", 5300, "xfr."),
        (zone_id["b.test."], "192.0.2.9", 53, None),  # a pool target too, with another key: listed once
    ])  # fmt: skip
    await pool.executemany("INSERT INTO pool_targets (pool_id, address, port, key_name) VALUES ($1, $2, $3, $4)", [
        (other, "192.0.2.9", 53, "xfr."), (other, "192.0.2.10", 5353, None),
    ])  # fmt: skip
    s = await load_settings(pool)
    assert set(s.secondaries) == {"a.test.", "b.test.", "c.test."}  # not the catalog zone
    assert sorted(s.secondaries["a.test."]) == [("192.0.2.1", 53, None), ("2001:db8::1", 5300, "xfr.")]
    assert sorted(s.secondaries["c.test."], key=str) == [("192.0.2.10", 5353, None), ("192.0.2.9", 53, "xfr.")]
    b = s.secondaries["b.test."]
    assert sorted(e[:2] for e in b) == [("192.0.2.10", 5353), ("192.0.2.9", 53)]
