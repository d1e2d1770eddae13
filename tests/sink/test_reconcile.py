"""Reconcile without HTTP (minidns/sink/reconcile.py): the resources not in the live list lose their
records and become tombstones; a dry run says so and changes nothing."""

import json
from pathlib import Path

import pytest

from minidns.sink.ingest import ingest_many
from minidns.sink.reconcile import reconcile
from minidns.sink.settings import EventSettings
from minidns.store.records import Invalid

EVENTS = Path(__file__).parent.parent / "admin" / "events"
SETTINGS = EventSettings(zone="cloud.test.")
IID = "3e301a55-fbbe-478d-92d0-eefabf135c38"


async def made(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM rrsets WHERE managed")


async def test_a_gone_instance_loses_its_records(store, pool):
    await ingest_many(store, SETTINGS, [json.loads((EVENTS / "nova_compute.instance.create.end.json").read_text())])
    assert await made(pool) == 4
    assert (await reconcile(store, SETTINGS, "nova", [IID]))["resources"] == []
    dry = await reconcile(store, SETTINGS, "nova", [], dry_run=True)
    assert dry["resources"] == [IID] and len(dry["removed"]) == 4 and dry["dry_run"] is True
    assert await made(pool) == 4
    done = await reconcile(store, SETTINGS, "nova", [])
    assert done == {**dry, "dry_run": False}
    assert await made(pool) == 0
    assert await pool.fetchval("SELECT state FROM event_resources WHERE resource_id = $1", IID) == "deleted"


@pytest.mark.parametrize("source, ids, rtype, error", [
    ("glance", [], None, "unknown source 'glance': give resource_type too"),
    ("nova", "3e301a55", None, "resource ids must be a list of strings"),
    ("nova", [7], None, "resource ids must be a list of strings"),
])  # fmt: skip
async def test_a_bad_request_is_refused(store, source, ids, rtype, error):
    with pytest.raises(Invalid, match=f"^{error}$"):
        await reconcile(store, SETTINGS, source, ids, rtype)
