"""Zone transfers between projects (services/transfers.py) called directly against a real
database: one open request per zone, seen by its parties, changed only by the offering project;
an accept with the right key moves the zone, its RRsets and its shares in one change, once;
every refused accept changes nothing."""

import uuid

import pytest

from minidns.services import policy, shares, transfers
from minidns.services.zones import Forbidden
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings


@pytest.fixture
async def store(pool):
    s = Store(pool, StoreSettings(), stages=write_stages())
    await s.create_zone("moving.test.", email="h@moving.test", project_id="p1",
                        edits=[Edit("add", "www", "A", 300, ("192.0.2.1",))])  # fmt: skip
    return s


async def zone(pool) -> dict:
    return dict(await pool.fetchrow("SELECT id, project_id, serial FROM zones WHERE name = 'moving.test.'"))


async def test_a_request_is_seen_by_its_parties_and_changed_by_its_maker(store, pool):
    z = await zone(pool)
    t = await transfers.create_request(pool, z["id"], "p1", target_project_id="p2", description="to p2")
    assert (t["zone_name"], t["project_id"], t["target_project_id"], t["status"]) == ("moving.test.", "p1", "p2", "ACTIVE")
    assert len(t["key"]) == transfers.KEY_LENGTH and set(t["key"]) <= set(transfers.KEY_CHARS)
    with pytest.raises(transfers.DuplicateTransferRequest):
        await transfers.create_request(pool, z["id"], "p1")
    assert [r["id"] for r in (await transfers.list_requests(pool, "p2"))[0]] == [t["id"]]
    assert (await transfers.list_requests(pool, "p3")) == ([], 0)
    with pytest.raises(transfers.TransferRequestNotFound):
        await transfers.get_request(pool, t["id"], "p3")
    with pytest.raises(Forbidden):
        await transfers.update_request(pool, t["id"], "p2", {"description": "mine now"})
    assert (await transfers.update_request(pool, t["id"], "p1", {"description": "d"}))["description"] == "d"
    with pytest.raises(Forbidden):
        await transfers.delete_request(pool, t["id"], "p2")
    await transfers.delete_request(pool, t["id"], "p1")
    assert await transfers.list_requests(pool, None) == ([], 0)


@pytest.mark.parametrize("target", ["", "   ", "x" * 256, 7])
def test_a_bad_target_project_is_refused(target):
    with pytest.raises(Invalid):
        transfers.check_target(target)


async def test_an_accept_moves_the_zone_its_rrsets_and_shares_once(store, pool):
    z = await zone(pool)
    await shares.share(pool, {**z, "name": "moving.test.", "action": "NONE"}, "p2")
    await shares.share(pool, {**z, "name": "moving.test.", "action": "NONE"}, "p3")
    # p2 made the www RRset in the zone shared with it.
    await pool.execute("UPDATE rrsets SET project_id = 'p2' WHERE zone_id = $1 AND name = 'www.moving.test.'", z["id"])
    t = await transfers.create_request(pool, z["id"], "p1")
    with pytest.raises(transfers.IncorrectKey):
        await transfers.accept(store, t["id"], "WRONGKEY", "p2")
    assert await zone(pool) == z
    a = await transfers.accept(store, t["id"], t["key"], "p2")
    moved = await zone(pool)
    assert moved["project_id"] == "p2" and moved["serial"] > z["serial"]
    # The RRset p2 made as a share target is simply the new owner's now (project_id cleared).
    assert {r["project_id"] for r in await pool.fetch("SELECT project_id FROM rrsets WHERE zone_id = $1"
                                                       " AND name = 'www.moving.test.'", z["id"])} == {None}  # fmt: skip
    assert await shares.targets(pool, z["id"]) == {"p3"}  # the share with the new owner is gone
    assert (await transfers.get_request(pool, t["id"], "p1"))["status"] == "COMPLETE"
    assert (await transfers.get_accept(pool, a["id"], "p2"))["zone_id"] == z["id"]
    with pytest.raises(transfers.TransferAcceptNotFound):
        await transfers.get_accept(pool, a["id"], "p1")
    with pytest.raises(transfers.InvalidTransfer, match="has been used"):
        await transfers.accept(store, t["id"], t["key"], "p3")
    assert (await zone(pool))["project_id"] == "p2"


async def test_an_accept_past_the_zone_quota_or_not_for_the_project_moves_nothing(store, pool):
    z = await zone(pool)
    t = await transfers.create_request(pool, z["id"], "p1", target_project_id="p2")
    with pytest.raises(transfers.TransferRequestNotFound):
        await transfers.accept(store, t["id"], t["key"], "p3")
    await policy.set_quotas(pool, "p2", {"zones": 0})
    with pytest.raises(policy.OverQuota):
        await transfers.accept(store, t["id"], t["key"], "p2")
    assert await zone(pool) == z
    assert (await transfers.get_request(pool, t["id"], None))["status"] == "ACTIVE"
    assert await transfers.list_accepts(pool, None) == ([], 0)
    with pytest.raises(transfers.TransferRequestNotFound):
        await transfers.get_request(pool, uuid.uuid4(), None)
