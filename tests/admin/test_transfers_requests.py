"""Zone transfers between projects over HTTP: Designate's shapes and error codes, who sees which
request, the accept as one all-or-nothing change, and records the sink made staying managed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dns.rcode

from conftest import ADMIN, ALICE, BOB, INGEST, READER
from v2util import answers, error, make_zone, wait_active

EVENTS = Path(__file__).resolve().parent / "events"
CAROL = {"X-Auth-Sudo-Project-ID": "carol"}  # an admin acting for a third project
REQUESTS = "/v2/zones/tasks/transfer_requests"
ACCEPTS = "/v2/zones/tasks/transfer_accepts"


def offer(api, zone_id: str, token=ALICE, **body) -> dict:
    r = api.post(f"/v2/zones/{zone_id}/tasks/transfer_requests", json=body, token=token)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == r.json()["links"]["self"]
    return r.json()


def accept(api, t: dict, token=BOB, key=None, **kw):
    return api.post(ACCEPTS, json={"zone_transfer_request_id": t["id"], "key": key or t["key"]}, token=token, **kw)


def test_who_sees_a_request_and_who_may_change_it(api):
    z = make_zone(api, "offer.test.", token=ALICE)
    t = offer(api, z["id"], target_project_id="bob", description="to bob")
    assert set(t) == {"id", "zone_id", "zone_name", "project_id", "target_project_id", "description", "key", "status",
                      "created_at", "updated_at", "links"}  # fmt: skip
    assert (t["status"], t["project_id"], t["target_project_id"], t["zone_name"]) == ("ACTIVE", "alice", "bob", "offer.test.")

    brief = api.get(f"{REQUESTS}/{t['id']}", token=BOB).json()
    assert set(brief) == {"id", "zone_id", "zone_name", "description", "status", "links"}
    assert [x["id"] for x in api.get(REQUESTS, token=BOB).json()["transfer_requests"]] == [t["id"]]
    error(api.get(f"{REQUESTS}/{t['id']}", headers=CAROL), 404, "zone_transfer_request_not_found")
    assert api.get(REQUESTS, headers=CAROL).json()["transfer_requests"] == []
    error(api.get(f"{REQUESTS}/{uuid.uuid4()}", token=ALICE), 404, "zone_transfer_request_not_found")
    error(api.get(f"{REQUESTS}/nope", token=ALICE), 400, "invalid_uuid")

    error(api.patch(f"{REQUESTS}/{t['id']}", json={"description": "mine"}, token=BOB), 403, "forbidden")
    error(api.delete(f"{REQUESTS}/{t['id']}", token=BOB), 403, "forbidden")
    error(api.patch(f"{REQUESTS}/{t['id']}", json={"target_project_id": "carol"}, token=ALICE), 400, "invalid_object")
    error(api.patch(f"{REQUESTS}/{t['id']}", json={"key": "ABCDEFGH"}, token=ALICE), 400, "invalid_object")
    up = api.patch(f"{REQUESTS}/{t['id']}", json={"description": None}, token=ALICE)
    assert up.status_code == 200 and up.json()["description"] is None and up.json()["key"] == t["key"]

    error(api.post(f"/v2/zones/{z['id']}/tasks/transfer_requests", json={}, token=ALICE), 409,
          "duplicate_zone_transfer_request")  # fmt: skip
    error(api.post(f"/v2/zones/{z['id']}/tasks/transfer_requests", json={}, token=BOB), 404, "zone_not_found")
    error(api.post(f"/v2/zones/{z['id']}/tasks/transfer_requests", json={}, token=READER), 403, "forbidden")
    error(api.post(f"/v2/zones/{z['id']}/tasks/transfer_requests", json={"zone_id": 5, "color": "red"}, token=ALICE),
          400, "invalid_object")  # fmt: skip

    assert api.delete(f"{REQUESTS}/{t['id']}", token=ALICE).status_code == 204
    error(api.get(f"{REQUESTS}/{t['id']}", token=ALICE), 404, "zone_transfer_request_not_found")
    # No body at all is an empty one: an offer to any project.
    r = api.request("POST", f"/v2/zones/{z['id']}/tasks/transfer_requests", token=ALICE)
    assert r.status_code == 201 and r.json()["target_project_id"] is None


def test_a_wrong_key_is_403_and_the_right_one_moves_the_zone_once(api):
    z = make_zone(api, "move.test.", token=ALICE)
    wait_active(api, z["id"], ALICE)
    serial = api.get(f"/v2/zones/{z['id']}", token=ALICE).json()["serial"]
    t = offer(api, z["id"], target_project_id="bob")

    error(accept(api, t, key="AAAAAAAA"), 403, "invalid_key")
    error(accept(api, t, headers=CAROL, token=ADMIN), 404, "zone_transfer_request_not_found")
    error(api.post(ACCEPTS, json={"key": t["key"]}, token=BOB), 400, "invalid_object")
    error(api.post(ACCEPTS, json={"key": t["key"], "zone_transfer_request_id": "x"}, token=BOB), 400, "invalid_object")
    error(api.post(ACCEPTS, json={"key": t["key"], "zone_transfer_request_id": t["id"], "status": "COMPLETE"}, token=BOB),
          400, "invalid_object")  # fmt: skip
    assert api.get(f"/v2/zones/{z['id']}", token=ALICE).json()["project_id"] == "alice"
    assert api.get(f"{REQUESTS}/{t['id']}", token=ALICE).json()["status"] == "ACTIVE"
    assert api.get(ACCEPTS, token=BOB).json()["transfer_accepts"] == []

    r = accept(api, t)
    assert r.status_code == 201, r.text
    a = r.json()
    assert r.headers["Location"] == a["links"]["self"] and a["links"]["zone"].endswith(f"/v2/zones/{z['id']}")
    assert (a["status"], a["project_id"], a["zone_id"], a["zone_transfer_request_id"]) == ("COMPLETE", "bob", z["id"], t["id"])
    assert api.get(f"{ACCEPTS}/{a['id']}", token=BOB).json()["id"] == a["id"]
    error(api.get(f"{ACCEPTS}/{a['id']}", token=ALICE), 404, "zone_transfer_accept_not_found")

    moved = api.get(f"/v2/zones/{z['id']}", token=BOB).json()
    assert moved["project_id"] == "bob" and moved["serial"] > serial
    error(api.get(f"/v2/zones/{z['id']}", token=ALICE), 404, "zone_not_found")
    assert [x["name"] for x in api.get("/v2/zones", token=BOB).json()["zones"]] == ["move.test."]
    assert api.get("/v2/zones", token=ALICE).json()["zones"] == []
    assert api.get(f"{REQUESTS}/{t['id']}", token=ALICE).json()["status"] == "COMPLETE"
    error(accept(api, t), 400, "invalid_zone_transfer_request")
    api.wait_dns("move.test.", "SOA", lambda reply: next(iter(reply.answer[0])).serial == moved["serial"])


def test_an_offer_naming_no_project_is_taken_by_id_and_key(api):
    z = make_zone(api, "anyone.test.", token=ALICE)
    t = offer(api, z["id"])
    assert api.get(REQUESTS, token=BOB).json()["transfer_requests"] == []  # not listed to others…
    assert api.get(f"{REQUESTS}/{t['id']}", token=BOB).json()["zone_name"] == "anyone.test."  # …but found by id
    assert accept(api, t).status_code == 201
    assert api.get(f"/v2/zones/{z['id']}", token=BOB).json()["project_id"] == "bob"


def test_the_accepting_projects_zone_quota_holds_and_nothing_moves(api):
    z = make_zone(api, "full.test.", token=ALICE)
    t = offer(api, z["id"], target_project_id="bob")
    assert api.patch("/v2/quotas/bob", json={"zones": 0}).status_code == 200
    error(accept(api, t), 413, "over_quota")
    assert api.get(f"/v2/zones/{z['id']}", token=ALICE).json()["project_id"] == "alice"
    assert api.get(f"{REQUESTS}/{t['id']}", token=ALICE).json()["status"] == "ACTIVE"
    assert api.get(ACCEPTS, token=BOB).json()["transfer_accepts"] == []


def test_records_made_by_events_stay_managed_after_the_move(api_config, database_url, request):
    with open(api_config, "a") as f:
        f.write('events_zone = "cloud.test."\n')
    api = request.getfixturevalue("api")
    z = make_zone(api, "cloud.test.", token=ALICE)
    for reverse in ("0.0.10.in-addr.arpa.", "0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa."):
        make_zone(api, reverse, token=ADMIN)
    create = json.loads((EVENTS / "nova_compute.instance.create.end.json").read_text())
    assert api.post("/v1/events", json=create, token=INGEST).json()["status"] == "applied"
    api.wait_dns("web1.cloud.test.", "A", answers("web1.cloud.test.", "A", {"10.0.0.5"}))

    t = offer(api, z["id"], target_project_id="bob")
    assert accept(api, t).status_code == 201
    rrsets = api.get(f"/v2/zones/{z['id']}/recordsets?name=web1.cloud.test.&type=A", token=BOB).json()["recordsets"]
    assert [r["records"] for r in rrsets] == [["10.0.0.5"]]
    error(api.put(f"/v2/zones/{z['id']}/recordsets/{rrsets[0]['id']}", json={"records": ["10.9.9.9"]}, token=BOB),
          400, "bad_request")  # fmt: skip
    delete = json.loads((EVENTS / "nova_compute.instance.delete.end.json").read_text())
    assert api.post("/v1/events", json=delete, token=INGEST).json()["status"] == "applied"
    api.wait_dns("web1.cloud.test.", "A", lambda reply: reply.rcode() == dns.rcode.NXDOMAIN)


def test_shares_follow_the_zone_to_its_new_owner(api):
    z = make_zone(api, "both.test.", token=ALICE)
    for target in ("bob", "carol"):
        assert api.post(f"/v2/zones/{z['id']}/shares", json={"target_project_id": target}, token=ALICE).status_code == 201
    made = api.post(f"/v2/zones/{z['id']}/recordsets", json={"name": "b.both.test.", "type": "A", "records": ["192.0.2.5"]},
                    token=BOB).json()  # fmt: skip
    assert made["project_id"] == "bob"
    assert accept(api, offer(api, z["id"], target_project_id="bob")).status_code == 201

    shares = api.get(f"/v2/zones/{z['id']}/shares", token=BOB).json()["shared_zones"]
    assert [(s["project_id"], s["target_project_id"]) for s in shares] == [("bob", "carol")]  # none with bob itself
    assert api.get(f"/v2/zones/{z['id']}/recordsets/{made['id']}", token=BOB).json()["project_id"] == "bob"
    error(api.get(f"/v2/zones/{z['id']}", token=ALICE), 404, "zone_not_found")
    assert api.get(f"/v2/zones/{z['id']}", headers=CAROL).json()["shared"] is True
    assert api.delete(f"/v2/zones/{z['id']}/shares/{shares[0]['id']}", token=BOB).status_code == 204
