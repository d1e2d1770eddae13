"""The heartbeat TXT (store/heartbeat.py) against a real PostgreSQL: written by every change with
that change's serial, no serial of its own, periodic changes for zones left alone (once, however
many processes try), signed like any record in a signed zone."""

import asyncio
import re
import time

import dns.name
import pytest

from minidns.store import db, heartbeat
from minidns.services import dnssec
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings
from minidns.zones.changes import unpack_rrs

from tests.store.test_follow import make_zone
from tests.store.test_signing import MASTER, check_signed, zone_rows

ZONE = "zone.test."
HB = "_heartbeat"
HB_OWNER = dns.name.from_text(f"{HB}.{ZONE}").to_wire()
TEXT = re.compile(r'^"serial=(\d+) committed=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) unix=(\d+)"$')


@pytest.fixture
def store(pool):
    return Store(pool, StoreSettings(heartbeat_name=HB), stages=write_stages())


async def beat_of(pool, zone=ZONE) -> tuple[int, str, int, bool]:
    """(serial, committed, unix, managed) of the stored heartbeat."""
    r = await pool.fetchrow("SELECT r.records, r.managed, r.ttl FROM rrsets r JOIN zones z ON z.id = r.zone_id"
                            " WHERE z.name = $1 AND r.owner = $2 AND r.type = 16", zone, HB_OWNER)  # fmt: skip
    assert r is not None and len(r["records"]) == 1 and r["ttl"] == heartbeat.TTL
    m = TEXT.match(r["records"][0])
    assert m, r["records"]
    return int(m.group(1)), m.group(2), int(m.group(3)), r["managed"]


async def serial_of(pool, zone=ZONE) -> int:
    return await pool.fetchval("SELECT serial FROM zones WHERE name = $1", zone)


async def age(pool, zone=ZONE, seconds=3600) -> None:
    """Make the zone's change log look `seconds` old."""
    await pool.execute("UPDATE zone_changes SET created_at = created_at - make_interval(secs => $2)"
                       " WHERE zone_id = (SELECT id FROM zones WHERE name = $1)", zone, float(seconds))  # fmt: skip


async def test_every_change_writes_the_heartbeat_with_its_own_serial(store, pool):
    before = time.time()
    await make_zone(store)
    serial, committed, unix, managed = await beat_of(pool)
    assert serial == await serial_of(pool) and managed
    assert int(before) <= unix <= time.time() and committed == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))
    for i in range(3):
        change = await store.change(ZONE, [Edit("add", f"n{i}", "A", None, ("192.0.2.9",))], source="t")
        assert change.serial_to == change.serial_from + 1  # no serial of its own
        assert (await beat_of(pool))[0] == change.serial_to == await serial_of(pool)
    row = await pool.fetchrow("SELECT removed, added FROM zone_changes ORDER BY seq DESC LIMIT 1")
    added = [rr for rr in unpack_rrs(row["added"]) if rr[0] == HB_OWNER]
    removed = [rr for rr in unpack_rrs(row["removed"]) if rr[0] == HB_OWNER]
    assert len(added) == len(removed) == 1 and b"serial=%d" % change.serial_to in added[0][3]


async def test_a_write_that_changes_nothing_commits_nothing(store, pool):
    await make_zone(store)
    serial = await serial_of(pool)
    change = await store.change(ZONE, [], source="t")
    assert change.serial_to == serial == await serial_of(pool)


async def test_a_zone_left_alone_gets_a_heartbeat_change_and_a_fresh_one_does_not(store, pool):
    await make_zone(store)
    await make_zone(store, "other.test.")
    assert await heartbeat.beat(store, 60) == []  # both changed just now
    await age(pool)
    serial = await serial_of(pool)
    changes = await heartbeat.beat(store, 60)
    assert [(c.zone, c.serial_from, c.serial_to) for c in changes] == [(ZONE, serial, serial + 1)]
    assert (await beat_of(pool))[0] == serial + 1
    src = await pool.fetchval("SELECT source FROM zone_changes ORDER BY seq DESC LIMIT 1")
    assert src == heartbeat.SOURCE
    assert await heartbeat.beat(store, 60) == []


async def test_several_processes_bump_a_zone_once(store, pool, database_url):
    await make_zone(store)
    pools = [await db.create_pool(database_url, size=2) for _ in range(4)]
    try:
        for _ in range(3):
            await age(pool)
            serial = await serial_of(pool)
            rounds = await asyncio.gather(*(heartbeat.beat(Store(p, StoreSettings(heartbeat_name=HB), stages=write_stages()), 60) for p in pools))
            assert sum(len(r) for r in rounds) == 1
            assert await serial_of(pool) == serial + 1
    finally:
        for p in pools:
            await p.close()


async def test_catalog_zones_get_none(store, pool):
    await store.create_zone("catalog.invalid.", email="hostmaster@invalid", catalog_members=["*"])
    await make_zone(store)
    owner = dns.name.from_text(f"{HB}.catalog.invalid.").to_wire()
    assert await pool.fetchval("SELECT count(*) FROM rrsets WHERE owner = $1", owner) == 0
    await age(pool, "catalog.invalid.")
    await age(pool)
    assert [c.zone for c in await heartbeat.beat(store, 60)] == [ZONE]


async def test_a_cname_at_the_name_leaves_changes_without_a_heartbeat(store, pool):
    await Store(pool, stages=write_stages()).create_zone(ZONE, email="hostmaster@zone.test", edits=[Edit("add", HB, "CNAME", None, ("www",))])
    change = await store.change(ZONE, [Edit("add", "www", "A", None, ("192.0.2.1",))], source="t")
    assert change.serial_to == await serial_of(pool)
    assert await pool.fetchval("SELECT count(*) FROM rrsets WHERE owner = $1 AND type = 16", HB_OWNER) == 0


async def test_a_zone_file_heartbeat_is_replaced_on_import(store, pool, tmp_path):
    from minidns.services.zonefile import import_zone

    path = tmp_path / "zone.test.zone"
    path.write_text(f"$ORIGIN {ZONE}\n@ 300 SOA ns1 h 7 1 1 1 1\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n"
                    f'{HB} 0 TXT "serial=1 old"\n')  # fmt: skip
    await import_zone(store, str(path))
    assert (await beat_of(pool))[0] == 7 == await serial_of(pool)


async def test_a_signed_zone_heartbeat_is_signed(store, pool):
    store.master = MASTER
    z = await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER)
    await store.change(ZONE, [Edit("add", "www2", "A", None, ("192.0.2.7",))], source="t")
    assert (await beat_of(pool))[0] == await serial_of(pool)
    assert check_signed(await zone_rows(pool, z.zone_id)) >= 8
    rows = await zone_rows(pool, z.zone_id)
    assert any(bytes(r["owner"]) == HB_OWNER and r["type"] == 46 for r in rows)
    await age(pool)
    assert len(await heartbeat.beat(store, 60)) == 1
    assert (await beat_of(pool))[0] == await serial_of(pool)
    check_signed(await zone_rows(pool, z.zone_id))
    store.master = None  # a process without the master key leaves signed zones alone
    await age(pool)
    assert await heartbeat.beat(store, 60) == []


def test_heartbeat_names_are_relative():
    assert heartbeat.check_heartbeat_name("_hb.ops") == dns.name.from_text("_hb.ops", None)
    for bad in ("", "abs.", "@", "*.x", "a..b"):
        with pytest.raises(ValueError):
            heartbeat.check_heartbeat_name(bad)
