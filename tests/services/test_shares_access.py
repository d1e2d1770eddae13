"""Shared zones (services/shares.py) called directly against a real database: a zone shared with
another project once, never with its owner; each side sees its shares; an unshare is refused
while the other project still has RRsets in the zone."""

import uuid

import pytest

from minidns.services import shares
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings


@pytest.fixture
async def zone(pool) -> dict:
    s = Store(pool, StoreSettings(), stages=write_stages())
    await s.create_zone("shared.test.", email="h@shared.test", project_id="p1",
                        edits=[Edit("add", "www", "A", 300, ("192.0.2.1",))])  # fmt: skip
    return dict(await pool.fetchrow("SELECT id, name, project_id, action FROM zones WHERE name = 'shared.test.'"))


async def test_a_share_is_made_once_and_seen_by_both_sides(pool, zone):
    s2 = await shares.share(pool, zone, "p2")
    s3 = await shares.share(pool, zone, "p3")
    assert (s2["zone_id"], s2["project_id"], s2["target_project_id"]) == (zone["id"], "p1", "p2")
    with pytest.raises(shares.DuplicateSharedZone):
        await shares.share(pool, zone, "p2")
    with pytest.raises(shares.ShareRefused, match="zone owner"):
        await shares.share(pool, zone, "p1")
    with pytest.raises(shares.ShareRefused, match="deleting"):
        await shares.share(pool, {**zone, "action": "DELETE"}, "p4")
    with pytest.raises(Invalid):
        await shares.share(pool, zone, "")
    assert await shares.targets(pool, zone["id"]) == {"p2", "p3"}
    assert await shares.shared_with(pool, zone["id"], "p2") and not await shares.shared_with(pool, zone["id"], "p4")
    assert [r["id"] for r in (await shares.list_shares(pool, zone["id"], "p1"))[0]] == [s2["id"], s3["id"]]
    assert [r["id"] for r in (await shares.list_shares(pool, zone["id"], "p3"))[0]] == [s3["id"]]
    assert (await shares.list_shares(pool, zone["id"], "p1", marker=s2["id"])) == ([s3], 2)
    with pytest.raises(shares.SharedZoneNotFound):
        await shares.get_share(pool, zone["id"], s2["id"], "p3")
    assert await shares.get_share(pool, zone["id"], s2["id"], "p2") == s2


async def test_an_unshare_waits_for_the_other_projects_rrsets(pool, zone):
    s2 = await shares.share(pool, zone, "p2")
    # p2 made the www RRset in the shared zone.
    await pool.execute("UPDATE rrsets SET project_id = 'p2' WHERE zone_id = $1 AND name = 'www.shared.test.'", zone["id"])
    with pytest.raises(shares.ShareRefused) as e:
        await shares.unshare(pool, zone, s2["id"])
    assert e.value.type == "shared_zone_has_recordsets"
    assert await shares.targets(pool, zone["id"]) == {"p2"}
    await pool.execute("UPDATE rrsets SET project_id = 'p1' WHERE zone_id = $1", zone["id"])
    await shares.unshare(pool, zone, s2["id"])
    assert await shares.targets(pool, zone["id"]) == set()
    with pytest.raises(shares.SharedZoneNotFound):
        await shares.unshare(pool, zone, uuid.uuid4())


async def test_the_visibility_clause_lets_owner_and_targets_see_the_zone(pool, zone):
    await shares.share(pool, zone, "p2")
    sql = f"SELECT name FROM zones z WHERE {shares.visible('z.project_id', 'z.id', '$1')}"
    assert [r["name"] for r in await pool.fetch(sql, "p1")] == ["shared.test."]
    assert [r["name"] for r in await pool.fetch(sql, "p2")] == ["shared.test."]
    assert await pool.fetch(sql, "p3") == []
