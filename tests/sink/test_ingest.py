"""Event ingest without HTTP (minidns/sink/ingest.py): a batch of real events applied in one
transaction — each applied, ignored, failed or refused, idempotent by message id — and the
records they leave."""

import copy
import json
from pathlib import Path

from minidns.sink import journal
from minidns.sink.ingest import ingest_many
from minidns.sink.outcome import BadEvent, Outcome
from minidns.sink.settings import EventSettings

EVENTS = Path(__file__).parent.parent / "admin" / "events"
SETTINGS = EventSettings(zone="cloud.test.")
IID = "3e301a55-fbbe-478d-92d0-eefabf135c38"


def load(name: str, **changes) -> dict:
    ev = json.loads((EVENTS / name).read_text())
    ev.update(changes)
    return ev


async def rrsets(pool, zone: str) -> dict:
    rows = await pool.fetch(
        "SELECT r.name, r.type, r.records FROM rrsets r JOIN zones z ON z.id = r.zone_id"
        " WHERE z.name = $1 AND r.managed ORDER BY r.name, r.type", zone,
    )  # fmt: skip
    return {(r["name"], r["type"]): list(r["records"]) for r in rows}


async def test_a_create_makes_a_aaaa_and_ptr_records(store, pool):
    [outcome] = await ingest_many(store, SETTINGS, [load("nova_compute.instance.create.end.json")])
    assert (outcome.status, outcome.reason, outcome.duplicate) == ("applied", None, False)
    assert await rrsets(pool, "cloud.test.") == {("web1.cloud.test.", 1): ["10.0.0.5"], ("web1.cloud.test.", 28): ["2001:db8:10::5"]}
    assert await rrsets(pool, "0.0.10.in-addr.arpa.") == {("5.0.0.10.in-addr.arpa.", 12): ["web1.cloud.test."]}
    assert {c["op"] for c in outcome.changes} == {"add"} and len(outcome.changes) == 4
    row = await journal.get_event(pool, outcome.message_id)
    assert row["status"] == "applied" and row["attempts"] == 1


async def test_a_batch_applies_in_order_and_a_repeat_changes_nothing(store, pool):
    create, delete = load("nova_compute.instance.create.end.json"), load("nova_compute.instance.delete.end.json")
    out = await ingest_many(store, SETTINGS, [create, copy.deepcopy(create), delete, create])
    assert [(o.status, o.duplicate) for o in out] == [("applied", False), ("applied", True), ("applied", False), ("applied", True)]
    assert await rrsets(pool, "cloud.test.") == {}
    again = await ingest_many(store, SETTINGS, [delete])
    assert again == [Outcome(delete["message_id"], "nova", "compute.instance.delete.end", "applied", None, out[2].changes, True)]


async def test_each_event_ends_applied_ignored_failed_or_refused(store, pool):
    create = load("nova_compute.instance.create.end.json")
    late = load("nova_compute.instance.create.end.json", message_id="late-create")
    broken = load("nova_compute.instance.create.end.json", message_id="broken")
    broken["payload"]["instance_id"] = "another"
    broken["payload"]["fixed_ips"] = [{"address": "10.0.0.300"}]
    out = await ingest_many(store, SETTINGS, [create, load("nova_compute.instance.delete.end.json"), late, broken,
                                              {"event_type": "compute.instance.create.end"}])  # fmt: skip
    assert [o.status if isinstance(o, Outcome) else type(o) for o in out] == ["applied", "applied", "ignored", "failed", BadEvent]
    assert out[2].reason == f"instance {IID} was deleted (by bc6841d3-73fc-4f17-aede-20802b9e388d) before this event arrived"
    assert out[3].reason == "payload.fixed_ips: '10.0.0.300' is not an IP address" and out[3].changes == []
    assert str(out[4]) == "the event has no message_id (nor eventUuid)"
    assert [r["status"] for r in await journal.list_events(pool, None, 10)].count("failed") == 1


async def test_an_event_of_another_service_is_recorded_as_ignored(store, pool):
    ev = json.loads((Path(__file__).parent / "payloads" / "nova_versioned_instance-create-end.json").read_text())
    [outcome] = await ingest_many(store, SETTINGS, [{**ev, "message_id": "versioned-1"}])
    assert (outcome.source, outcome.status, outcome.reason) == ("openstack", "ignored", "instance.create.end: no handler for this source")


async def test_a_batch_hands_its_committed_zone_changes_to_the_store_hook(store, pool):
    handed = []
    store.committed = handed.extend
    await ingest_many(store, SETTINGS, [load("nova_compute.instance.create.end.json")])
    serials = {r["name"]: r["serial"] for r in await pool.fetch("SELECT name, serial FROM zones")}
    assert sorted(c.zone for c in handed) == sorted(n for n, s in serials.items() if s > 1)  # one per zone it changed
    assert "cloud.test." in serials and len(handed) == len({c.zone for c in handed}) >= 2
    assert all(c.serial_to == serials[c.zone] and c.logged is not None for c in handed)
    handed.clear()
    await ingest_many(store, SETTINGS, [load("nova_compute.instance.create.end.json")])  # a repeat: nothing committed
    assert handed == []
