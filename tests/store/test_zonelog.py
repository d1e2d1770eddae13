"""Changes to several zones in one transaction, logged once per zone (minidns.store.zonelog.ZoneLog)
against a real PostgreSQL."""

import uuid

import pytest

from minidns.store.edits import Edit
from minidns.store.records import NotFound
from minidns.store.stages import write_stages
from minidns.store.writer import Store
from minidns.store.zonelog import ZoneLog


@pytest.fixture
async def store(pool):
    s = Store(pool, stages=write_stages())
    for name in ("one.test.", "two.test."):
        await s.create_zone(name, email=f"h@{name}", edits=[Edit("add", "@", "NS", None, ("ns1.example.",))])
    return s


async def test_many_writes_make_one_change_per_zone(store, pool):
    before = {z["name"]: z["serial"] for z in await store.zones()}
    async with pool.acquire() as conn, conn.transaction():
        log = ZoneLog(store, "batch")
        for i in range(3):
            log.keep(await log.write(conn, (await log.zone(conn, "one.test."))["id"], [Edit("add", f"h{i}", "A", 60, ("192.0.2.1",))]), "e1")
        log.keep(await log.write(conn, (await log.zone(conn, "two.test."))["id"], [Edit("add", "x", "A", 60, ("192.0.2.2",))]), "e2")
        changes = await log.flush(conn)
    assert sorted((c.zone, c.serial_to - c.serial_from, c.added) for c in changes) == [("one.test.", 1, 3), ("two.test.", 1, 1)]
    last = {z: (await store.changes(z))[-1] for z in before}
    assert (last["one.test."]["source"], last["two.test."]["source"]) == ("e1", "e2")
    assert all(last[z]["serial_to"] == before[z] + 1 for z in before)


async def test_a_write_not_kept_is_not_logged_and_add_then_remove_nets_to_nothing(store, pool):
    async with pool.acquire() as conn, conn.transaction():
        log = ZoneLog(store, "batch")
        zid = (await log.zone(conn, "one.test."))["id"]
        tx = conn.transaction()
        await tx.start()
        await log.write(conn, zid, [Edit("add", "rolled", "A", 60, ("192.0.2.3",))])  # its savepoint rolls back
        await tx.rollback()
        log.keep(await log.write(conn, zid, [Edit("add", "brief", "A", 60, ("192.0.2.4",))]), "e")
        log.keep(await log.write(conn, zid, [Edit("delete", "brief", "A")]), "e")
        (change,) = await log.flush(conn)
    assert (change.removed, change.added) == (0, 0)  # only the SOA moved
    assert await log.zone(pool, "nowhere.test.") is None
    with pytest.raises(NotFound):
        async with pool.acquire() as conn, conn.transaction():
            await ZoneLog(store, "batch").write(conn, uuid.uuid4(), [])


async def test_held_writes_reach_the_table_before_any_read_and_the_last_word_on_an_rrset_wins(store, pool):
    async with pool.acquire() as conn, conn.transaction():
        log = ZoneLog(store, "batch", hold_writes=True)
        z = await log.zone(conn, "one.test.")
        await log.prefetch_owners(conn, [(z["id"], b"\x01a\x03one\x04test\x00"), (z["id"], b"\x01b\x03one\x04test\x00")])
        log.keep(await log.write(conn, z["id"], [Edit("add", "a", "A", 60, ("192.0.2.1",))]), "e")
        log.keep(await log.write(conn, z["id"], [Edit("add", "b", "A", 60, ("192.0.2.2",))]), "e")
        assert await conn.fetchval("SELECT count(*) FROM rrsets WHERE zone_id = $1 AND type = 1", z["id"]) == 0  # held
        log.keep(await log.write(conn, z["id"], [Edit("delete", "b", "A")]), "e")  # b again: read, so written first
        assert await conn.fetchval("SELECT count(*) FROM rrsets WHERE zone_id = $1 AND type = 1", z["id"]) == 2
        log.keep(await log.write(conn, z["id"], [Edit("add", "a", "A", 60, ("192.0.2.9",))]), "e")
        log.keep(await log.write(conn, z["id"], [Edit("remove", "a", "A", None, ("192.0.2.9",))]), "e")
        log.keep(await log.write(conn, z["id"], [Edit("add", "a", "A", 60, ("192.0.2.3",))]), "e")
        [change] = await log.flush(conn)
        rows = await conn.fetch("SELECT name, records FROM rrsets WHERE zone_id = $1 AND type = 1 ORDER BY name", z["id"])
    assert [(r["name"], sorted(r["records"])) for r in rows] == [("a.one.test.", ["192.0.2.1", "192.0.2.3"])]
    assert (change.removed, change.added) == (0, 2)


async def test_reads_are_kept_for_the_transaction_until_a_write_touches_them(store, pool):
    async with pool.acquire() as conn, conn.transaction():
        log = ZoneLog(store, "batch")
        await log.prefetch_zones(conn, ["one.test.", "none.test."])
        assert "none.test." in log.absent and "one.test." in log.rows
        assert "two.test." not in log.rows and "two.test." not in log.absent
        assert await log.zone(conn, "none.test.") is None
        z = log.rows["one.test."]
        owner = b"\x01a\x03one\x04test\x00"
        assert await log.rrsets_at(conn, z["id"], [owner]) == []
        await conn.execute("INSERT INTO rrsets (id, zone_id, name, owner, type, ttl, records, wire)"
                           " VALUES ($1, $2, 'a.one.test.', $3, 16, 60, '{}', '')", uuid.uuid4(), z["id"], owner)  # fmt: skip
        assert await log.rrsets_at(conn, z["id"], [owner]) == []  # kept: nobody else writes under the zone lock
        log.keep(await log.write(conn, z["id"], [Edit("add", "a", "A", 60, ("192.0.2.1",))]), "e")
        assert sorted(r["type"] for r in await log.rrsets_at(conn, z["id"], [owner])) == [1, 16]  # read again
        log.forget_reads()
        assert "none.test." not in log.absent
