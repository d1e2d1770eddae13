"""Propagation status as the server records it (store/propagation_status.py), against a real
PostgreSQL: per secondary the serial seen and its state; the zone's status written only while the
zone is still at the serial it was measured for; zones left unsettled found again at start."""

import datetime

from minidns.services.access import zone_status
from minidns.store.propagation_status import record_status, unsettled_zones
from minidns.store.writer import Edit

from test_follow import ZONE, make_zone, store  # noqa: F401  (store: a fixture)

SEEN = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)


async def test_each_secondary_and_the_zone_status_are_recorded(store, pool):  # noqa: F811
    z = await make_zone(store)
    await record_status(pool, ZONE, z.serial_to, [("192.0.2.1#53", z.serial_to, "OK", SEEN), ("192.0.2.2#53", None, "PENDING", None)],
                        "PENDING")  # fmt: skip
    zone, secondaries = await zone_status(pool, ZONE)
    assert zone["status"] == "PENDING"
    assert [(s["secondary"], s["target"], s["serial"], s["state"], s["seen_at"]) for s in secondaries] == [
        ("192.0.2.1#53", z.serial_to, z.serial_to, "OK", SEEN), ("192.0.2.2#53", z.serial_to, None, "PENDING", None)]
    await record_status(pool, ZONE, z.serial_to, [("192.0.2.2#53", z.serial_to, "OK", SEEN)], "ACTIVE")
    zone, secondaries = await zone_status(pool, ZONE)
    assert (zone["status"], zone["action"]) == ("ACTIVE", "NONE")
    assert [s["state"] for s in secondaries] == ["OK", "OK"]


async def test_a_status_measured_for_an_older_serial_leaves_the_zone_as_it_is(store, pool):  # noqa: F811
    z = await make_zone(store)
    await record_status(pool, ZONE, z.serial_to, [], "PENDING")
    await store.change(ZONE, [Edit("add", "www", "A", 300, ("192.0.2.7",))], source="test")
    await record_status(pool, ZONE, z.serial_to, [], "ACTIVE")  # late news of the change before
    zone, _ = await zone_status(pool, ZONE)
    assert zone["status"] != "ACTIVE"


async def test_a_zone_not_in_the_database_records_nothing(pool):
    await record_status(pool, "nowhere.test.", 1, [("192.0.2.1#53", 1, "OK", SEEN)], "ACTIVE")
    assert await pool.fetchval("SELECT count(*) FROM secondary_status") == 0


async def test_zones_not_active_are_unsettled(store, pool):  # noqa: F811
    z = await make_zone(store)
    await record_status(pool, ZONE, z.serial_to, [], "ERROR")
    assert await unsettled_zones(pool) == [ZONE]
    await record_status(pool, ZONE, z.serial_to, [], "ACTIVE")
    assert await unsettled_zones(pool) == []
