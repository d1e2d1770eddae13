"""Pools (services/pools.py): a zone's apex NS RRset is its pool's NS set, written when the zone is
made, kept in step when the pool changes, and repaired where it is missing — each time through the
write path (new serial, change-log row). RFC 1034 §4.2.1: every zone has NS at its apex; BIND
refuses to load (or transfer) a zone without."""

import uuid

import dns.rdatatype
import pytest

from minidns.services import access, pools
from minidns.store.transfer_settings import load_settings
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import DEFAULT_POOL_ID, Edit, Store, StoreSettings

NS = dns.rdatatype.NS


@pytest.fixture
def store(pool):
    return Store(pool, StoreSettings(), stages=write_stages())


async def apex(pool, zone: str, rtype: int = NS):
    return await pool.fetchrow("SELECT r.records, r.managed, r.managed_source FROM rrsets r JOIN zones z ON z.id = r.zone_id"
                               " WHERE z.name = $1 AND r.name = $1 AND r.type = $2", zone, rtype)  # fmt: skip


async def mname(pool, zone: str) -> str:
    return await pool.fetchval("SELECT mname FROM zones WHERE name = $1", zone)


async def test_a_new_zone_gets_its_pools_ns_records_and_mname(store, pool):
    await store.create_zone("a.test.", email="h@a.test")
    row = await apex(pool, "a.test.")
    assert row["records"] == ["ns1.pool.test."] and row["managed"] and row["managed_source"] == "pool"
    assert await mname(pool, "a.test.") == "ns1.pool.test."
    # A zone that brings its own apex NS (a zone file) keeps it, unmanaged.
    await store.create_zone("b.test.", email="h@b.test", mname="ns.b.test.",
                            edits=[Edit("add", "@", "NS", None, ("ns.b.test.",)), Edit("add", "ns", "A", None, ("192.0.2.1",))])
    row = await apex(pool, "b.test.")
    assert row["records"] == ["ns.b.test."] and not row["managed"]
    assert await mname(pool, "b.test.") == "ns.b.test."


async def test_a_pool_without_ns_records_makes_no_zone(store, pool):
    empty = await pool.fetchval("INSERT INTO pools (name) VALUES ('empty') RETURNING id")
    with pytest.raises(Invalid, match="no NS records"):
        await store.create_zone("c.test.", email="h@c.test", pool_id=empty)
    assert await pool.fetchval("SELECT count(*) FROM zones WHERE name = 'c.test.'") == 0
    with pytest.raises(Invalid, match="no NS records"):
        await store.create_zone("c.test.", email="h@c.test", pool_id=uuid.uuid4())


async def test_changing_the_pools_ns_records_moves_every_zone_of_the_pool(store, pool):
    a = await store.create_zone("a.test.", email="h@a.test")
    await store.create_zone("own.test.", email="h@own.test", mname="ns.own.test.",
                            edits=[Edit("add", "@", "NS", None, ("ns.elsewhere.example.",))])
    done = await pools.set_ns_records(store, "default", pools.check_ns_records(["ns2.pool.test.:2", "ns9.pool.test.:1"]))
    assert [(name, what) for name, what, _ in done] == [("a.test.", "had NS out of step with its pool")]
    change = done[0][2]
    assert change.serial_to == a.serial_to + 1
    assert sorted((await apex(pool, "a.test."))["records"]) == ["ns2.pool.test.", "ns9.pool.test."]
    assert await mname(pool, "a.test.") == "ns9.pool.test."  # priority 1 first
    log = await pool.fetchrow("SELECT serial_from, serial_to FROM zone_changes z JOIN zones n ON n.id = z.zone_id"
                              " WHERE n.name = 'a.test.' ORDER BY seq DESC LIMIT 1")  # fmt: skip
    assert (log["serial_from"], log["serial_to"]) == (a.serial_to, change.serial_to)
    assert (await apex(pool, "own.test."))["records"] == ["ns.elsewhere.example."]  # the operator's own NS
    # Setting the same again changes nothing.
    assert await pools.set_ns_records(store, "default", pools.check_ns_records(["ns9.pool.test.:1", "ns2.pool.test.:2"])) == []


async def test_prepare_repairs_zones_left_without_ns_and_says_so(store, pool, caplog):
    """Zones made before pools (the API and the sink made them without NS) are repaired at start."""
    await store.create_zone("old.test.", email="h@old.test")
    await pool.execute("DELETE FROM rrsets WHERE name = 'old.test.' AND type = $1", NS)  # as an older minidns left it
    await pool.execute("UPDATE zones SET mname = 'ns1.old.test.' WHERE name = 'old.test.'")
    serial = await pool.fetchval("SELECT serial FROM zones WHERE name = 'old.test.'")
    await store.create_zone("cat.invalid.", email="h@invalid", mname="invalid.", catalog_members=["*"])
    caplog.set_level("INFO", "minidns.store")
    await pools.prepare(store, ["ns1.configured.test.", "ns2.configured.test."])
    assert sorted((await apex(pool, "old.test."))["records"]) == ["ns1.configured.test.", "ns2.configured.test."]
    assert await mname(pool, "old.test.") == "ns1.configured.test."
    assert await pool.fetchval("SELECT serial FROM zones WHERE name = 'old.test.'") == serial + 1
    assert (await apex(pool, "cat.invalid."))["records"] == ["invalid."]  # a catalog keeps NS invalid. (RFC 9432 §4.1)
    assert "zone old.test. had no NS at its apex: wrote its pool's NS records" in caplog.text
    assert "default pool: NS records ns1.configured.test., ns2.configured.test." in caplog.text


async def test_unconfigured_prepare_seeds_the_default_pool_once(store, pool):
    await pool.execute("DELETE FROM pool_ns_records")
    await pools.prepare(store, ())
    async with pool.acquire() as conn:
        first = await pools.ns_records(conn, DEFAULT_POOL_ID)
    assert first == pools.default_nameservers()
    await pool.execute("UPDATE pool_ns_records SET hostname = 'kept.example.'")
    await pools.prepare(store, ())  # what is stored stays when nothing is configured
    async with pool.acquire() as conn:
        assert [n.hostname for n in await pools.ns_records(conn, DEFAULT_POOL_ID)] == ["kept.example."]


async def test_pool_targets_are_secondaries_of_each_zone_and_a_pool_catalog_lists_its_zones(store, pool):
    other = await pools.create_pool(store, "other", pools.check_ns_records(["ns.other.test."]))
    await store.create_zone("d.test.", email="h@d.test")
    await store.create_zone("e.test.", email="h@e.test", pool_id=other["id"])
    assert sorted((await apex(pool, "e.test."))["records"]) == ["ns.other.test."]
    await pools.set_target(store, "other", "192.0.2.53", 5300)
    settings = await load_settings(pool)
    assert settings.secondaries == {"e.test.": [("192.0.2.53", 5300, None)]}
    await store.create_zone("cat.invalid.", email="h@invalid", mname="invalid.", catalog_members=["*"],
                            catalog_attributes={"pool": str(other["id"])})  # fmt: skip
    await store.create_zone("f.test.", email="h@f.test", pool_id=other["id"])
    listed = {r["records"][0] for r in await pool.fetch(
        "SELECT records FROM rrsets WHERE type = $1 AND name LIKE '%.zones.cat.invalid.'", dns.rdatatype.PTR)}  # fmt: skip
    assert listed == {"e.test.", "f.test."}
    with pytest.raises(Exception, match="has 2 zone"):
        await pools.delete_pool(store, "other")
    with pytest.raises(Invalid):
        pools.check_ns_records(["relative.name"])
    with pytest.raises(Invalid):
        pools.check_ns_records(["a.example.", "a.example.:2"])
