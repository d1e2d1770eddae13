"""Zones as the Designate-shaped API makes and sees them (services/zones.py), called directly on a
real database: names, neighbours of other projects, per-project visibility, shares, deletion."""

import asyncio

import pytest

from minidns.services import shares, zones
from minidns.services.listing import Query
from minidns.services.recordsets import RecordsetWriter
from minidns.services.shares import ShareRefused
from minidns.services.zones import DuplicateZone, Forbidden, ZoneNotFound
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Store


@pytest.fixture
def store(pool):
    return Store(pool, stages=write_stages())


@pytest.mark.parametrize("name, error", [
    ("example.com.", None),
    ("Example.COM.", None),
    ("_srv-x.example.com.", None),
    ("example.com", "ending in a dot"),
    ("example..com.", "letters, digits"),
    ("com.", "more than one label"),
    ("-a.example.", "letters, digits"),
    ("a-.example.", "letters, digits"),
    ("a b.example.", "letters, digits"),
    ("x" * 64 + ".example.", "letters, digits"),
    (42, "ending in a dot"),
])  # fmt: skip
def test_zone_names_as_designate_takes_them(name, error):
    if error is None:
        assert zones.check_zone_name(name) == name.lower()
    else:
        with pytest.raises(Invalid, match=error):
            zones.check_zone_name(name)


async def test_a_new_zone_gets_its_pools_ns_and_is_seen_only_by_its_project(store):
    z = await zones.create_zone(store, "alice", name="a.test.", email="h@a.test")
    assert (z["name"], z["project_id"], z["shared"]) == ("a.test.", "alice", False)
    ns = await zones.nameservers(store.pool, z["id"], "alice")
    assert ns == [("ns1.pool.test.", 1)]  # tests/conftest.py seeds the default pool with this NS
    assert (await zones.get_zone(store.pool, z["id"], None))["id"] == z["id"]
    with pytest.raises(ZoneNotFound):
        await zones.get_zone(store.pool, z["id"], "bob")
    rows, total, more = await zones.list_zones(store.pool, "bob", Query())
    assert (rows, total, more) == ([], 0, False)


async def test_the_same_zone_twice_is_a_duplicate(store):
    await zones.create_zone(store, "alice", name="a.test.", email="h@a.test")
    with pytest.raises(DuplicateZone):
        await zones.create_zone(store, "alice", name="a.test.", email="h@a.test")


@pytest.mark.parametrize("first, second", [("a.test.", "sub.a.test."), ("sub.a.test.", "a.test.")])
async def test_no_zone_above_or_below_another_projects_zone(store, first, second):
    await zones.create_zone(store, "alice", name=first, email="h@a.test")
    with pytest.raises(Forbidden):
        await zones.create_zone(store, "bob", name=second, email="h@a.test")
    await zones.create_zone(store, "alice", name=second, email="h@a.test")  # its own project may


async def test_a_shared_zone_is_read_by_the_guest_changed_only_by_its_owner_and_deleted_with_its_shares(store):
    z = await zones.create_zone(store, "alice", name="a.test.", email="h@a.test")
    await shares.share(store.pool, await zones.get_zone(store.pool, z["id"], "alice"), "bob")
    assert (await zones.get_zone(store.pool, z["id"], "bob", shared=True))["shared"] is True
    with pytest.raises(Forbidden):
        await zones.update_zone(store, z["id"], "bob", {"ttl": 600})
    with pytest.raises(ShareRefused, match="shared with other projects"):
        await zones.delete_zone(store, z["id"], "alice")
    gone = await zones.delete_zone(store, z["id"], "alice", delete_shares=True)
    assert (gone["status"], gone["action"]) == ("PENDING", "DELETE")


async def test_a_new_zone_ttl_carries_the_rrsets_that_follow_it_in_one_change(store):
    z = await zones.create_zone(store, "alice", name="a.test.", email="h@a.test", ttl=300)
    writer = RecordsetWriter(store)
    follows = await writer.create(z["id"], "alice", name="f.a.test.", rtype="A", records=["192.0.2.1"])  # ttl null
    fixed = await writer.create(z["id"], "alice", name="g.a.test.", rtype="A", records=["192.0.2.1"], ttl=60)
    before = (await zones.get_zone(store.pool, z["id"], None))["serial"]
    updated = await zones.update_zone(store, z["id"], "alice", {"ttl": 900, "description": "d"})
    assert (updated["ttl"], updated["description"], updated["serial"]) == (900, "d", before + 1)
    ttls = {r["id"]: r["ttl"] for r in await store.pool.fetch("SELECT id, ttl FROM rrsets WHERE zone_id = $1", z["id"])}
    assert (ttls[follows["id"]], ttls[fixed["id"]]) == (900, 60)


async def test_concurrent_creates_of_one_name_make_one_zone(store):
    results = await asyncio.gather(*(zones.create_zone(store, "alice", name="race.test.", email="h@a.test")
                                     for _ in range(5)), return_exceptions=True)  # fmt: skip
    made = [r for r in results if isinstance(r, dict)]
    assert len(made) == 1 and all(isinstance(r, DuplicateZone) for r in results if not isinstance(r, dict))
