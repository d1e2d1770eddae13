"""The notification handlers (minidns/sink/handlers.py), through real events: a floating IP named
after the instance behind it, renamed when the instance goes; a CloudStack VM's records and its
group's; a port's deletion taking its floating IP's name away."""

import json
from pathlib import Path

from minidns.sink.ingest import ingest_many
from minidns.sink.settings import EventSettings

EVENTS = Path(__file__).parent.parent / "admin" / "events"
SETTINGS = EventSettings(zone="cloud.test.", ptr=False)


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


async def owners(pool, zone: str) -> dict:
    rows = await pool.fetch(
        "SELECT r.name, r.type, r.records FROM rrsets r JOIN zones z ON z.id = r.zone_id"
        " WHERE z.name = $1 AND r.managed ORDER BY r.name, r.type", zone,
    )  # fmt: skip
    return {(r["name"], r["type"]): list(r["records"]) for r in rows}


async def test_a_floating_ip_follows_the_instance_behind_it(store, pool):
    out = await ingest_many(store, SETTINGS, [load("neutron_floatingip.update.end_associate.json")])
    assert out[0].status == "applied"
    assert await owners(pool, "cloud.test.") == {("203-0-113-10.cloud.test.", 1): ["203.0.113.10"]}  # instance not known
    await ingest_many(store, SETTINGS, [load("nova_compute.instance.create.end.json")])
    assert await owners(pool, "cloud.test.") == {("web1.cloud.test.", 1): ["10.0.0.5"], ("web1.cloud.test.", 28): ["2001:db8:10::5"],
                                                 ("web1.fip.cloud.test.", 1): ["203.0.113.10"]}  # fmt: skip
    await ingest_many(store, SETTINGS, [load("nova_compute.instance.delete.end.json")])
    assert await owners(pool, "cloud.test.") == {("203-0-113-10.cloud.test.", 1): ["203.0.113.10"]}
    [gone] = await ingest_many(store, SETTINGS, [load("neutron_port.delete.end.json")])
    assert gone.status == "applied" and await owners(pool, "cloud.test.") == {}


async def test_a_vm_and_its_group(store, pool):
    settings = EventSettings(ptr=False)
    [up] = await ingest_many(store, settings, [load("cloudstack_VM.CREATE.json")])
    assert up.status == "applied"
    assert await owners(pool, "acct.test.") == {
        ("app1.acct.test.", 1): ["10.1.1.21"], ("app1.acct.test.", 28): ["2001:db8:1::21"],
        ("web-servers-e2c7ad16.acct.test.", 1): ["10.1.1.21"], ("web-servers-e2c7ad16.acct.test.", 28): ["2001:db8:1::21"],
    }  # fmt: skip
    [down] = await ingest_many(store, settings, [load("cloudstack_VM.DESTROY.json")])
    assert down.status == "applied" and await owners(pool, "acct.test.") == {}
    [late] = await ingest_many(store, settings, [{**load("cloudstack_VM.CREATE.json"), "eventUuid": "late"}])
    assert late.status == "ignored"
    assert late.reason == "VM 8a1a4f5c-5cf0-4b4f-9d59-5cfb1d1e0a11 was deleted (by 0c9d8e7f-1a2b-4c3d-8e9f-0a1b2c3d4e5f) before this event arrived"
