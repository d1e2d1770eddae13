"""Messages from a bus applied (minidns/bus/apply.py): good events applied once in one batch, poison
recorded as failed (visible, idempotent) without holding the others back, a CloudStack event with
no id given a stable one, and the batch waiting — not failing — while the database or the
CloudStack API is away."""

import asyncio
import json
from pathlib import Path

import orjson

from minidns.bus.apply import apply_messages
from minidns.bus.message import Message, Unreachable, message_key
from minidns.bus.status import SourceStatus
from minidns.sink import journal
from minidns.sink.settings import EventSettings

EVENTS = Path(__file__).parent.parent / "admin" / "events"
SETTINGS = EventSettings(zone="cloud.test.")
FAST = (0.05, 0.1)


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def oslo(ev: dict) -> bytes:
    """As oslo.messaging's messagingv2 driver sends a notification."""
    return orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(ev).decode()})


def msg(body: bytes, source="openstack", rk="notifications.info", redelivered=False) -> Message:
    return Message(body, source, None, rk, redelivered)


async def names(pool, zone: str) -> set:
    rows = await pool.fetch("SELECT r.name, r.type FROM rrsets r JOIN zones z ON z.id = r.zone_id WHERE z.name = $1 AND r.managed", zone)
    return {(r["name"], r["type"]) for r in rows}


def cloudstack_bus_event() -> dict:
    """As CloudStack's RabbitMQ plugin publishes it: no id of any kind (the VM details as an
    enrich step adds them)."""
    ev = event("cloudstack_VM.CREATE.json")
    del ev["eventUuid"]
    return ev


async def test_good_events_apply_once_and_poison_is_recorded_failed(store, pool):
    create = event("nova_compute.instance.create.end.json")
    no_id = dict(create, message_id=None)
    cs = cloudstack_bus_event()
    batch = [msg(b"not json {"), msg(oslo(create)), msg(b"[1, 2]"), msg(b'{"hello": "world"}'), msg(oslo(no_id)),
             msg(b'{"x": "' + b"a" * (1 << 20) + b'"}'), msg(orjson.dumps(cs), "cloudstack", "management-server.ActionEvent.VM-CREATE.VirtualMachine.8a1a")]  # fmt: skip
    status = SourceStatus("openstack", "amqp")
    out = await apply_messages(store, SETTINGS, batch, status=status, backoff=FAST)
    assert [o.status for o in out] == ["failed", "applied", "failed", "failed", "failed", "failed", "applied"]
    assert "not JSON" in out[0].reason and "list, not an object" in out[2].reason and "neither" in out[3].reason
    assert "no message_id" in out[4].reason
    assert out[6].message_id == message_key(batch[6]) and out[6].source == "cloudstack"
    assert ("web1.cloud.test.", 1) in await names(pool, "cloud.test.") and await names(pool, "acct.test.")
    rows = {r["message_id"]: r for r in await pool.fetch("SELECT message_id, status, reason, event, attempts FROM events")}
    assert len(rows) == 7 and {rows[o.message_id]["status"] for o in out} == {"failed", "applied"}
    big = rows[message_key(batch[5])]["event"]
    assert big["bytes"] > 1 << 20 and len(big["body"]) == 1024
    assert (status.received, status.applied, status.failed, status.redelivered) == (7, 2, 5, 0)

    again = await apply_messages(store, SETTINGS, [msg(m.body, m.source, m.routing_key, True) for m in batch], status=status)
    assert [o.duplicate for o in again] == [False, True, False, False, False, False, True]
    assert await pool.fetchval("SELECT count(*) FROM events") == 7
    assert await pool.fetchval("SELECT max(attempts) FROM events WHERE status = 'failed'") == 2
    assert (status.duplicates, status.redelivered) == (2, 7)
    assert (await journal.get_event(pool, message_key(batch[0])))["event_type"] == "unknown"


async def test_a_batch_waits_while_the_database_is_away(proxied_store, pool):
    proxy, store = proxied_store
    status = SourceStatus("openstack", "amqp")
    proxy.cut()
    task = asyncio.ensure_future(apply_messages(store, SETTINGS, [msg(oslo(event("nova_compute.instance.create.end.json")))],
                                                status=status, backoff=FAST))  # fmt: skip
    while status.waiting is None:
        await asyncio.sleep(0.05)
    assert not task.done() and "not reachable" in status.waiting
    proxy.restore()
    [outcome] = await asyncio.wait_for(task, 30)
    assert outcome.status == "applied" and status.waiting is None and status.applied == 1
    assert await pool.fetchval("SELECT count(*) FROM events WHERE status = 'applied'") == 1


async def test_a_batch_waits_while_enrich_cannot_reach_its_api(store, pool):
    calls = []

    async def enrich(events):
        calls.append(len(events))
        if len(calls) < 3:
            raise Unreachable("the CloudStack API answered 503")
        return events

    status = SourceStatus("cloudstack", "amqp")
    batch = [msg(orjson.dumps(cloudstack_bus_event()), "cloudstack", "rk"), msg(b"poison", "cloudstack", "rk")]
    out = await apply_messages(store, SETTINGS, batch, enrich=enrich, status=status, backoff=FAST)
    assert calls == [1, 1, 1] and [o.status for o in out] == ["applied", "failed"]
    assert status.last_error == "the CloudStack API answered 503" and status.waiting is None
