"""Where event records go (minidns/sink/placement.py), through real events: the template's name,
the `<label>-<address>` fallback beside a person's record, PTRs in the reverse zone (made when
asked), and the per-project zone."""

import json
from pathlib import Path

from minidns.sink.ingest import ingest_many
from minidns.sink.settings import EventSettings
from minidns.store.writer import Edit

EVENTS = Path(__file__).parent.parent / "admin" / "events"
CREATE = json.loads((EVENTS / "nova_compute.instance.create.end.json").read_text())


async def names(pool, zone: str) -> dict:
    rows = await pool.fetch(
        "SELECT r.name, r.type, r.records, r.managed FROM rrsets r JOIN zones z ON z.id = r.zone_id"
        " WHERE z.name = $1 AND r.type NOT IN (2, 6) ORDER BY r.name, r.type", zone,
    )  # fmt: skip
    return {(r["name"], r["type"]): (list(r["records"]), r["managed"]) for r in rows}


async def test_a_persons_name_is_kept_and_the_fallback_used(store, pool):
    await store.change("cloud.test.", [Edit("add", "web1", "TXT", 300, ('"mine"',))], source="test")
    [outcome] = await ingest_many(store, EventSettings(zone="cloud.test."), [CREATE])
    assert outcome.status == "applied"
    assert outcome.reason == ("web1.cloud.test. is taken; 10.0.0.5 is at web1-10-0-0-5.cloud.test.; "
                              "web1.cloud.test. is taken; 2001:db8:10::5 is at web1-2001-db8-10-0-0-0-0-5.cloud.test.")  # fmt: skip
    assert await names(pool, "cloud.test.") == {
        ("web1-10-0-0-5.cloud.test.", 1): (["10.0.0.5"], True),
        ("web1-2001-db8-10-0-0-0-0-5.cloud.test.", 28): (["2001:db8:10::5"], True),
        ("web1.cloud.test.", 16): (['"mine"'], False),
    }  # fmt: skip
    assert await names(pool, "0.0.10.in-addr.arpa.") == {("5.0.0.10.in-addr.arpa.", 12): (["web1-10-0-0-5.cloud.test."], True)}


async def test_a_reverse_zone_is_made_when_asked(store, pool):
    ev = {**CREATE, "payload": {**CREATE["payload"], "fixed_ips": [{"address": "10.9.8.7"}]}}
    settings = EventSettings(zone="cloud.test.", create_ptr_zones=True)
    [outcome] = await ingest_many(store, settings, [ev])
    assert outcome.changes[0] == {"op": "create_zone", "zone": "8.9.10.in-addr.arpa."}
    assert await names(pool, "8.9.10.in-addr.arpa.") == {("7.8.9.10.in-addr.arpa.", 12): (["web1.cloud.test."], True)}


async def test_the_project_zone_comes_first(store, pool):
    project = CREATE["_context_project_id"]
    await store.create_zone(f"{project}.cloud.test.", email="hostmaster@cloud.test")
    settings = EventSettings(zone="cloud.test.", zone_suffix="cloud.test.", ptr=False)
    [outcome] = await ingest_many(store, settings, [CREATE])
    assert {c["zone"] for c in outcome.changes} == {f"{project}.cloud.test."}
    missing = EventSettings(zone="nowhere.test.", zone_suffix="elsewhere.test.")
    [failed] = await ingest_many(store, missing, [{**CREATE, "message_id": "m-2"}])
    assert failed.reason == f"zone {project}.elsewhere.test. nor nowhere.test. does not exist"
