"""Events posted at the same moment are committed together, and each request still gets exactly
its own outcomes: a duplicate sent concurrently is applied once, a bad one fails alone."""

from __future__ import annotations

import copy
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
