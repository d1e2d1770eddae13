"""A zone deleted and made again starts above every serial it had (RFC 1982), whatever serial its
zone file or the policy would give it: secondaries still holding the deleted zone see a newer
serial and transfer the new data. The last serial of each deleted zone is kept for that."""

import asyncio
import calendar

from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings, serial_gt

ZONE = "again.test."


async def test_a_zone_made_again_with_a_lower_serial_starts_above_the_deleted_one(pool):
    store = Store(pool, stages=write_stages())
    await store.create_zone(ZONE, email="h@again.test", serial=2026120702, edits=[Edit("add", "@", "NS", 300, ("ns1.again.test.",))])
    await store.delete_zone(ZONE)
    again = await store.create_zone(ZONE, email="h@again.test", serial=5, edits=[Edit("add", "@", "NS", 300, ("ns1.again.test.",))])
    assert again.serial_to == 2026120703
    assert again.note == "serial 5 is not above 2026120702, the last serial of the deleted zone: using 2026120703"
    z = await store.zone(ZONE)
    assert z["serial"] == 2026120703
    soa = await pool.fetchval("SELECT r.records[1] FROM rrsets r WHERE r.zone_id = $1 AND r.type = 6", z["id"])
    assert soa.split()[2] == "2026120703"  # the SOA record served says so too
    log = await store.changes(ZONE)
    assert [(c["serial_from"], c["serial_to"]) for c in log] == [(None, 2026120703)]
    # Deleted again and made with the default serial (1 under increment): above the last again.
    await store.delete_zone(ZONE)
    third = await store.create_zone(ZONE, email="h@again.test")
    assert third.serial_to == 2026120704 and "using 2026120704" in third.note


async def test_a_serial_above_the_deleted_one_is_kept_and_nothing_is_said(pool):
    store = Store(pool, stages=write_stages())
    await store.create_zone(ZONE, email="h@again.test", serial=10)
    await store.delete_zone(ZONE)
    again = await store.create_zone(ZONE, email="h@again.test", serial=11)
    assert (again.serial_to, again.note) == (11, None)
    fresh = await store.create_zone("never-deleted.test.", email="h@again.test", serial=3)
    assert (fresh.serial_to, fresh.note) == (3, None)


async def test_the_serial_policy_chooses_the_next_serial(pool):
    day = calendar.timegm((2026, 12, 7, 12, 0, 0))
    store = Store(pool, StoreSettings(serial_policy="date"), clock=lambda: day, stages=write_stages())
    await store.create_zone(ZONE, email="h@again.test", serial=2026110100)
    await store.delete_zone(ZONE)
    assert (await store.create_zone(ZONE, email="h@again.test", serial=7)).serial_to == 2026120700  # today's date
    await store.delete_zone(ZONE)
    assert (await store.create_zone(ZONE, email="h@again.test", serial=7)).serial_to == 2026120701


async def test_across_the_wrap_the_serial_still_moves_forward(pool):
    store = Store(pool, stages=write_stages())
    await store.create_zone(ZONE, email="h@again.test", serial=2**32 - 1)
    await store.delete_zone(ZONE)
    again = await store.create_zone(ZONE, email="h@again.test", serial=2**32 - 5)
    assert again.serial_to == 0 and serial_gt(0, 2**32 - 1)


async def test_a_delete_and_a_create_at_once_still_give_a_greater_serial(pool):
    """The create waits on the name for the delete to commit, and reads the serial it kept."""
    store = Store(pool, stages=write_stages())
    await store.create_zone(ZONE, email="h@again.test", serial=500)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("DELETE FROM zones WHERE name = $1", ZONE)
        await conn.execute("INSERT INTO deleted_zone_serials (name, serial) VALUES ($1, 500)", ZONE)
        creating = asyncio.ensure_future(store.create_zone(ZONE, email="h@again.test", serial=2))
        await asyncio.sleep(0.3)
        assert not creating.done()  # waiting on the name
        await tx.commit()
    assert (await creating).serial_to == 501


async def test_the_heartbeat_of_a_zone_made_again_names_the_serial_it_got(pool):
    store = Store(pool, StoreSettings(heartbeat_name="_heartbeat"), stages=write_stages())
    await store.create_zone(ZONE, email="h@again.test", serial=40)
    await store.delete_zone(ZONE)
    z = await store.zone((await store.create_zone(ZONE, email="h@again.test", serial=4)).zone_id)
    txt = await pool.fetchval("SELECT records[1] FROM rrsets WHERE zone_id = $1 AND name = $2", z["id"], f"_heartbeat.{ZONE}")
    assert z["serial"] == 41 and txt.startswith('"serial=41 ')
