"""The API works on at most `api_max_requests` requests at once: more are answered 503 with
Retry-After and Designate's error body at once, without waiting, while the monitoring routes
always answer; the requests already taken are finished."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from v2util import error, make_zone, zone_locked


@pytest.fixture
def api_config(api_config):
    with api_config.open("a") as f:
        f.write("api_max_requests = 2\n")
    return api_config


def test_requests_past_the_bound_get_503_and_the_others_finish(api):
    zid = make_zone(api, "bound.test.")["id"]
    bodies = [{"name": f"h{i}.bound.test.", "type": "A", "records": [f"10.0.0.{i}"]} for i in range(2)]
    with ThreadPoolExecutor(2) as pool, zone_locked(api, zid):
        taken = [pool.submit(api.post, f"/v2/zones/{zid}/recordsets", json=b) for b in bodies]
        time.sleep(0.5)  # both wait behind the zone's lock, holding the two places
        r = api.get(f"/v2/zones/{zid}")
        body = error(r, 503, "service_unavailable")
        assert "2 requests are being worked on" in body["message"] and r.headers["Retry-After"] == "1"
        assert api.get("/healthz").status_code == 200 and api.get("/metrics").status_code == 200
        assert not any(f.done() for f in taken)
    assert [f.result().status_code in (201, 202) for f in taken] == [True, True]
    assert api.get(f"/v2/zones/{zid}").status_code == 200  # the places are free again
    names = {x["name"] for x in api.get(f"/v2/zones/{zid}/recordsets").json()["recordsets"]}
    assert {"h0.bound.test.", "h1.bound.test."} <= names
