"""A server without the DNSSEC master key cannot sign, so writes to a signed zone are refused with
503 and Retry-After (a setting of the server, not a fault of the request), events to it too, and
nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ALICE, INGEST

from minidns.services import dnssec
from minidns.store.writer import Edit

EVENTS = Path(__file__).resolve().parent / "events"
MASTER = bytes(range(32))


def test_writes_to_a_signed_zone_need_the_master_key(api_config, database_url, request):
    from test_events import db_run

    async def make(store):
        store.master = MASTER
        await store.create_zone("signed.test.", email="h@signed.test", project_id="alice",
                                edits=[Edit("add", "@", "NS", None, ("ns1.example.",))])  # fmt: skip
        await dnssec.enable(store, "signed.test.", MASTER)
        return (await store.zone("signed.test."))["id"], (await store.zone("signed.test."))["serial"]

    zid, serial = db_run(database_url, make)
    with open(api_config, "a") as f:
        f.write('events_zone = "signed.test."\n')
    api = request.getfixturevalue("api")  # a server with no master key
    r = api.post(f"/v2/zones/{zid}/recordsets", json={"name": "www.signed.test.", "type": "A", "records": ["192.0.2.1"]},
                 token=ALICE)  # fmt: skip
    assert r.status_code == 503 and r.headers["Retry-After"] == "60", r.text
    assert r.json()["type"] == "service_unavailable" and "master key" in r.json()["message"]
    event = json.loads((EVENTS / "nova_compute.instance.create.end.json").read_text())
    r = api.post("/v1/events", json=event, token=INGEST)
    assert r.status_code == 503 and "Retry-After" in r.headers, r.text
    rows = db_run(database_url, lambda s: s.pool.fetch("SELECT serial FROM zones WHERE id = $1", zid))
    assert rows[0]["serial"] == serial  # nothing written
    assert not db_run(database_url, lambda s: s.pool.fetch("SELECT 1 FROM events"))  # not recorded: to be sent again
