"""/v2/service_statuses: one entry per minidns service of the process, Designate's fields."""

from __future__ import annotations

import uuid

from conftest import ALICE
from v2util import error

FIELDS = {"id", "hostname", "service_name", "status", "stats", "capabilities", "heartbeated_at", "created_at",
          "updated_at", "links"}  # fmt: skip


def test_service_statuses(api):
    body = api.get("/v2/service_statuses").json()
    items = body["service_statuses"]
    assert [s["service_name"] for s in items] == ["api", "central", "mdns", "worker", "producer", "sink"]
    assert all(set(s) == FIELDS and s["status"] == "UP" for s in items), items
    assert body["metadata"]["total_count"] == 6
    mdns = items[2]
    assert mdns["stats"]["state"] == "ready" and mdns["capabilities"]["axfr"] is True
    assert api.get(f"/v2/service_statuses/{mdns['id']}").json()["id"] == mdns["id"]
    assert api.get(f"/v2/service_status/{mdns['id']}").json()["service_name"] == "mdns"  # Designate's old path
    assert api.get("/v2/service_statuses").json()["service_statuses"][2]["id"] == mdns["id"]  # ids are stable

    assert [s["service_name"] for s in api.get("/v2/service_statuses?service_name=mdns").json()["service_statuses"]] == ["mdns"]
    first = api.get("/v2/service_statuses?limit=4").json()
    rest = api.get(first["links"]["next"].split(api.url, 1)[1]).json()["service_statuses"]
    assert [s["id"] for s in first["service_statuses"] + rest] == [s["id"] for s in items]

    error(api.get(f"/v2/service_statuses/{uuid.uuid4()}"), 404, "service_status_not_found")
    error(api.get("/v2/service_statuses/nope"), 400, "invalid_uuid")
    error(api.get("/v2/service_statuses?limit=x"), 400, "invalid_limit")
    error(api.get(f"/v2/service_statuses?marker={uuid.uuid4()}"), 400, "invalid_marker")
    error(api.get("/v2/service_statuses", token=ALICE), 403, "forbidden")
