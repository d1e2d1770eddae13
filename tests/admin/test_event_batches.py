"""Events posted at the same moment are committed together, and each request still gets exactly
its own outcomes: a duplicate sent concurrently is applied once, a bad one fails alone."""

from __future__ import annotations

import copy
import time
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import INGEST

EVENTS = Path(__file__).resolve().parent / "events"


@pytest.fixture
def sink(api_config, database_url, request):
    from test_events import make_zones

    with open(api_config, "a") as f:
        f.write('events_zone = "cloud.test."\n')
    make_zones(database_url, ["cloud.test."])
    return request.getfixturevalue("api")


def nova(i: int) -> dict:
    ev = json.loads((EVENTS / "nova_compute.instance.create.end.json").read_text())
    ev = copy.deepcopy(ev)
    ev["message_id"] = str(uuid.uuid4())
    p = ev["payload"]
    p["instance_id"] = str(uuid.uuid4())
    p["hostname"] = p["display_name"] = f"vm{i}"
    p["fixed_ips"] = [{**p["fixed_ips"][0], "address": f"10.0.0.{i + 1}", "version": 4}]
    return ev


def test_concurrent_posts_each_get_their_outcome(sink):
    events = [nova(i) for i in range(40)]
    events[5]["payload"]["fixed_ips"][0]["address"] = "not-an-address"  # fails alone
    twice = events[7]

    def post(ev):
        return sink.post("/v1/events", json=ev, token=INGEST)

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(post, events + [twice, twice]))
    outs = [r.json() for r in replies]
    assert replies[5].status_code == 422 and outs[5]["status"] == "failed", outs[5]
    ok = [i for i in range(40) if i != 5]
    assert all(replies[i].status_code == 200 and outs[i]["status"] == "applied" for i in ok if i != 7)
    sevens = [outs[7], outs[40], outs[41]]
    assert sorted(o["duplicate"] for o in sevens) == [False, True, True]  # applied once, twice a no-op
    for i in (0, 17, 39):
        sink.wait_dns(f"vm{i}.cloud.test", "A", lambda m, i=i: bool(m.answer) and m.answer[0][0].address == f"10.0.0.{i + 1}")
    assert sink.dig("vm5.cloud.test", "A").rcode() == 3  # NXDOMAIN: the failed one wrote nothing


LONG_ZONE = ".".join(c * 50 for c in "abc") + "." + "d" * 40 + ".test."  # 200 octets: room for short names only


def db_fetch(url: str, sql: str, *args):
    from test_events import db_run

    return db_run(url, lambda store: store.pool.fetch(sql, *args))


def zone_log(url: str, zone: str) -> tuple[int, int]:
    """(serial, change-log rows) of a zone, from the database."""
    row = db_fetch(url, "SELECT serial, (SELECT count(*) FROM zone_changes c WHERE c.zone_id = z.id) AS n"
                        " FROM zones z WHERE name = $1", zone)[0]  # fmt: skip
    return row["serial"], row["n"]


def test_one_batch_is_one_change_per_zone(sink, database_url):
    """A batch's events are logged as one change per zone with their net effect: an instance
    created and deleted in the same batch leaves nothing, the others are all there."""
    before = zone_log(database_url, "cloud.test.")
    events = [nova(i) for i in range(10)]
    gone_ev = nova(10)
    delete = copy.deepcopy(gone_ev)
    delete.update(message_id=str(uuid.uuid4()), event_type="compute.instance.delete.end")
    r = sink.post("/v1/events", json=events[:5] + [gone_ev, delete] + events[5:], token=INGEST)
    assert r.status_code == 200, r.text
    assert [o["status"] for o in r.json()["events"]] == ["applied"] * 12
    after = zone_log(database_url, "cloud.test.")
    assert after == (before[0] + 1, before[1] + 1)  # one new serial, one change-log row
    for i in range(10):
        sink.wait_dns(f"vm{i}.cloud.test", "A", lambda m, i=i: bool(m.answer) and m.answer[0][0].address == f"10.0.0.{i + 1}")
    assert sink.dig("vm10.cloud.test", "A").rcode() == 3  # created and deleted in the batch: never there
    assert not db_fetch(database_url, "SELECT 1 FROM rrsets WHERE name = 'vm10.cloud.test.'")


def test_event_failing_after_its_first_write_logs_nothing(sink, database_url):
    """A CloudStack VM whose own records fit the zone but whose group name is too long: the event
    fails after writing the VM's records; they are rolled back and the batch's change log (which
    the servers apply) must not carry them, while the batch's other events go in."""
    from test_events import make_zones

    make_zones(database_url, [LONG_ZONE])
    vm = json.loads((EVENTS / "cloudstack_VM.CREATE.json").read_text())
    vm["account_details"]["networkdomain"] = LONG_ZONE
    vm["vm"]["group"] = "g" * 63
    before = zone_log(database_url, LONG_ZONE)
    r = sink.post("/v1/events", json=[vm, nova(1)], token=INGEST)
    assert r.status_code == 422, r.text
    outs = r.json()["events"]
    assert outs[0]["status"] == "failed" and "usable name" in outs[0]["reason"], outs[0]
    assert outs[1]["status"] == "applied"
    sink.wait_dns("vm1.cloud.test", "A", lambda m: bool(m.answer))
    assert zone_log(database_url, LONG_ZONE) == before
    assert sink.dig(f"app1.{LONG_ZONE}", "A").rcode() == 3
    assert not db_fetch(database_url, "SELECT 1 FROM rrsets WHERE name = $1", f"app1.{LONG_ZONE}")


def test_event_with_nul_is_rejected_alone(sink):
    bad = nova(3)
    bad["payload"]["display_name"] = "a\u0000b"
    r = sink.post("/v1/events", json=[nova(2), bad], token=INGEST)
    assert r.status_code == 422, r.text
    outs = r.json()["events"]
    assert outs[0]["status"] == "applied"
    assert outs[1]["status"] == "rejected" and "NUL" in outs[1]["reason"]
    r = sink.post("/v1/events", json=bad, token=INGEST)
    assert r.status_code == 400 and r.json()["type"] == "invalid_event"


def test_event_the_database_refuses_fails_alone(sink, database_url):
    """An event the database will not store (here a trigger refuses its message id) spoils the
    batch's transaction: the batch is applied again one event at a time, so the events posted with
    it go in and only its own request gets the error (a JSON 500)."""
    from test_events import db_run

    db_run(database_url, lambda store: store.pool.execute("""
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.message_id LIKE 'poison%' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF;
        RETURN NEW; END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_poison();
    """))  # fmt: skip
    events = [nova(20 + i) for i in range(12)]
    events[4]["message_id"] = "poison-1"

    def post(ev):
        return sink.post("/v1/events", json=ev, token=INGEST)

    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(post, events))
    assert replies[4].status_code == 500 and "request_id" in replies[4].json(), replies[4].text
    assert all(r.status_code == 200 and r.json()["status"] == "applied" for i, r in enumerate(replies) if i != 4)
    for i in (0, 11):
        sink.wait_dns(f"vm{20 + i}.cloud.test", "A", lambda m: bool(m.answer))
    assert sink.dig("vm24.cloud.test", "A").rcode() == 3
    # In one request: the others are stored and say so, the poisoned one says it was not.
    batch = [nova(40), nova(41), nova(42)]
    batch[1]["message_id"] = "poison-2"
    r = sink.post("/v1/events", json=batch, token=INGEST)
    assert r.status_code == 500, r.text
    assert [o["status"] for o in r.json()["events"]] == ["applied", "error", "applied"]
    assert "refused by the test trigger" in r.json()["events"][1]["reason"]
    sink.wait_dns("vm42.cloud.test", "A", lambda m: bool(m.answer))
    assert sink.dig("vm41.cloud.test", "A").rcode() == 3
    assert not db_fetch(database_url, "SELECT 1 FROM events WHERE message_id LIKE 'poison%'")


def test_an_event_whose_sender_hung_up_while_it_waited_is_not_applied(sink, database_url):
    """Events queue behind the events lock; one whose sender hangs up meanwhile is neither applied
    nor recorded, so the sender's retry applies it as new (nothing accepted and lost)."""
    from minidns.sink.ingest import EVENTS_LOCK
    from v2util import holding, post_and_hang_up

    kept, dropped = nova(1), nova(2)
    with ThreadPoolExecutor(1) as pool, holding(sink, "SELECT pg_advisory_xact_lock($1)", EVENTS_LOCK):
        first = pool.submit(sink.post, "/v1/events", json=kept, token=INGEST)
        time.sleep(0.5)  # its batch waits for the lock
        post_and_hang_up(sink, "/v1/events", dropped, INGEST)
        time.sleep(0.3)
        assert not first.done()
    r = first.result()
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    after = sink.post("/v1/events", json=nova(3), token=INGEST)  # the queue has moved on past it
    assert after.status_code == 200, after.text
    ids = {r["message_id"] for r in db_fetch(database_url, "SELECT message_id FROM events")}
    assert kept["message_id"] in ids and dropped["message_id"] not in ids
    assert sink.dig("vm2.cloud.test", "A").rcode() == 3  # NXDOMAIN: not applied
    again = sink.post("/v1/events", json=dropped, token=INGEST)
    assert again.status_code == 200 and again.json()["status"] == "applied" and not again.json()["duplicate"], again.text
    sink.wait_dns("vm2.cloud.test", "A", lambda m: bool(m.answer))
