"""Retention (minidns/sink/retention.py): old events and old tombstones go, in chunks; live
resources stay whatever their age."""

import json
from pathlib import Path

from minidns.sink.ingest import ingest_many
from minidns.sink.retention import prune
from minidns.sink.settings import EventSettings

EVENTS = Path(__file__).parent.parent / "admin" / "events"
SETTINGS = EventSettings(zone="cloud.test.")


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


async def test_old_events_and_tombstones_go_live_resources_stay(store, pool):
    await ingest_many(store, SETTINGS, [load("nova_compute.instance.create.end.json"), load("neutron_floatingip.delete.end.json")])
    assert await prune(pool, 1) == (0, 0)  # nothing a day old yet
    await pool.execute("UPDATE events SET received_at = now() - interval '2 days'")
    await pool.execute("UPDATE event_resources SET updated_at = now() - interval '2 days'")
    assert await prune(pool, 1, chunk=1) == (2, 1)  # both events; the floating IP's tombstone, in chunks of one
    assert await pool.fetchval("SELECT count(*) FROM event_resources WHERE state = 'live'") == 1
