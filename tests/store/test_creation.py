"""A zone's creation and deletion (minidns.store.creation) against a real PostgreSQL: joining the
caller's transaction, the pool's NS at the apex, catalog membership (RFC 9432), deletion."""

import uuid

import dns.name
import pytest

from minidns.store.creation import DEFAULT_POOL_ID, pool_nameservers
from minidns.store.edits import Edit
from minidns.store.records import Conflict, Invalid, NotFound
from minidns.store.stages import write_stages
from minidns.store.writer import Store

NS, PTR = 2, 12
DEFAULT_POOL_NS = "ns1.pool.test."  # the default pool's NS in a test database (tests/conftest.py)


@pytest.fixture
def store(pool):
    return Store(pool, stages=write_stages())


async def rrset(pool, zone: str, name: str, rtype: int):
    owner = dns.name.from_text(name, dns.name.from_text(zone)).to_wire()
    return await pool.fetchrow("SELECT * FROM rrsets WHERE owner = $1 AND type = $2", owner, rtype)


async def test_a_zone_without_apex_ns_gets_its_pools(store, pool):
    change = await store.create_zone("pooled.test.", email="h@pooled.test")
    z = await store.zone("pooled.test.")
    assert (change.serial_from, change.serial_to) == (None, z["serial"])
    assert (await rrset(pool, "pooled.test.", "@", NS))["records"] == [DEFAULT_POOL_NS]
    assert z["mname"] == DEFAULT_POOL_NS and z["pool_id"] == DEFAULT_POOL_ID
    assert [c["serial_from"] for c in await store.changes("pooled.test.")] == [None]


async def test_creating_inside_the_callers_transaction_goes_with_it(store, pool):
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await store.create_zone("held.test.", email="h@held.test", conn=conn)
        assert await conn.fetchval("SELECT count(*) FROM zones WHERE name = 'held.test.'") == 1
        await tx.rollback()
    with pytest.raises(NotFound):
        await store.zone("held.test.")


async def test_a_catalog_lists_zones_made_after_it_and_drops_deleted_ones(store, pool):
    await store.create_zone("before.test.", email="h@before.test")
    await store.create_zone("catalog.invalid.", email="h@catalog.invalid", catalog_members=["*.test"])
    await store.create_zone("after.test.", email="h@after.test")
    members = lambda: pool.fetch("SELECT r.records FROM rrsets r JOIN zones z ON z.id = r.zone_id"  # noqa: E731
                                 " WHERE z.name = 'catalog.invalid.' AND r.type = $1", PTR)  # fmt: skip
    assert sorted(r["records"][0] for r in await members()) == ["after.test.", "before.test."]
    await store.delete_zone("before.test.")
    assert [r["records"][0] for r in await members()] == ["after.test."]
    with pytest.raises(Conflict):
        await store.create_zone("after.test.", email="h@after.test")


async def test_a_pool_without_ns_records_makes_no_zone(store, pool):
    async with pool.acquire() as conn:
        assert await pool_nameservers(conn, DEFAULT_POOL_ID) == [DEFAULT_POOL_NS]
    with pytest.raises(Invalid, match="has no NS records"):
        await store.create_zone("nopool.test.", email="h@nopool.test", pool_id=uuid.uuid4())
    await store.create_zone("ownns.test.", email="h@ownns.test", edits=[Edit("add", "@", "NS", None, ("ns.example.",))])
    assert (await store.zone("ownns.test."))["mname"] == "ns1.ownns.test."
