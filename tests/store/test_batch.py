"""Group commit: concurrent writes to one zone share transactions, and each caller still gets its
own outcome — including the one whose edit is bad, or which creates an RRset that exists."""

import asyncio

import pytest

from minidns.store import db
from minidns.store.batch import ZoneBatcher
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Conflict, Edit, Store, StoreSettings


@pytest.fixture
async def store(database_url):
    pool = await db.create_pool(database_url)
    yield Store(pool, StoreSettings(), stages=write_stages())
    await pool.close()


async def test_concurrent_creates_share_serials_and_all_land(store):
    await store.create_zone("b.test.", email="h@b.test")
    start = (await store.zone("b.test."))["serial"]
    batcher = ZoneBatcher(store)
    results = await asyncio.gather(*(batcher.change("b.test.", [Edit("create", f"n{i}", "A", 60, (f"10.0.0.{i}",))], source="t")
                                     for i in range(60)))  # fmt: skip
    serials = {r.serial_to for r in results}
    end = (await store.zone("b.test."))["serial"]
    assert len(serials) < 60 and end == max(serials)  # fewer transactions than writes
    log = await store.pool.fetchval("SELECT count(*) FROM zone_changes WHERE serial_from IS NOT NULL")
    assert log == len(serials) and end - start == len(serials)
    names = {r["name"] for r in await store.pool.fetch("SELECT name FROM rrsets WHERE type = 1")}
    assert names == {f"n{i}.b.test." for i in range(60)}


async def test_a_bad_edit_fails_alone(store):
    await store.create_zone("b.test.", email="h@b.test")
    await store.change("b.test.", [Edit("add", "taken", "A", 60, ("10.0.0.1",))], source="t")
    batcher = ZoneBatcher(store)
    edits = [[Edit("create", f"ok{i}", "A", 60, ("10.1.0.1",))] for i in range(10)]
    edits[3] = [Edit("create", "bad", "A", 60, ("not-an-address",))]
    edits[7] = [Edit("create", "taken", "A", 60, ("10.2.0.1",))]
    results = await asyncio.gather(*(batcher.change("b.test.", e, source="t") for e in edits), return_exceptions=True)
    assert isinstance(results[3], Invalid) and isinstance(results[7], Conflict)
    assert all(not isinstance(r, Exception) for i, r in enumerate(results) if i not in (3, 7))
    names = {r["name"] for r in await store.pool.fetch("SELECT name FROM rrsets WHERE type = 1")}
    assert names == {"taken.b.test."} | {f"ok{i}.b.test." for i in range(10) if i not in (3, 7)}
    rec = await store.pool.fetchval("SELECT records FROM rrsets WHERE name = 'taken.b.test.'")
    assert rec == ["10.0.0.1"]  # the existing RRset was not overwritten
