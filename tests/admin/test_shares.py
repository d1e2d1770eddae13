"""Shared zones over HTTP: who sees a shared zone and its recordsets, who may change which, and
the owner's unshare and delete held back by what the other project made."""

from __future__ import annotations

import uuid

import dns.rcode

from conftest import ADMIN, ALICE, BOB
from v2util import answers, error, make_rrset, make_zone

CAROL = {"X-Auth-Sudo-Project-ID": "carol"}


def share(api, zone_id: str, target: str, token=ALICE) -> dict:
    r = api.post(f"/v2/zones/{zone_id}/shares", json={"target_project_id": target}, token=token)
    assert r.status_code == 201, r.text
    return r.json()


def test_sharing_tenancy_and_errors(api):
    z = make_zone(api, "share.test.", token=ALICE)
    shares = f"/v2/zones/{z['id']}/shares"
    error(api.post(shares, json={"target_project_id": "alice"}, token=ALICE), 400, "bad_request")
    error(api.post(shares, json={}, token=ALICE), 400, "invalid_object")
    error(api.post(shares, json={"target_project_id": 7}, token=ALICE), 400, "invalid_object")
    error(api.post(shares, json={"target_project_id": "carol"}, token=BOB), 404, "zone_not_found")
    s = share(api, z["id"], "bob")
    assert set(s) == {"id", "zone_id", "project_id", "target_project_id", "created_at", "updated_at", "links"}
    assert s["links"]["self"].endswith(f"{shares}/{s['id']}")
    error(api.post(shares, json={"target_project_id": "bob"}, token=ALICE), 409, "duplicate_shared_zone")

    assert [(x["id"], x["shared"]) for x in api.get("/v2/zones", token=BOB).json()["zones"]] == [(z["id"], True)]
    assert api.get(f"/v2/zones/{z['id']}", token=ALICE).json()["shared"] is True
    assert [x["id"] for x in api.get(shares, token=BOB).json()["shared_zones"]] == [s["id"]]
    assert api.get(f"{shares}/{s['id']}", token=BOB).json()["target_project_id"] == "bob"
    error(api.get(shares, headers=CAROL), 404, "zone_not_found")
    error(api.get(f"{shares}/{s['id']}", headers=CAROL), 404, "zone_not_found")
    error(api.get(f"{shares}/{uuid.uuid4()}", token=ALICE), 404, "shared_zone_not_found")
    assert api.get(f"{shares}?target_project_id=carol", token=ALICE).json()["shared_zones"] == []

    # The zone itself stays its owner's.
    error(api.patch(f"/v2/zones/{z['id']}", json={"ttl": 60}, token=BOB), 403, "forbidden")
    error(api.delete(f"/v2/zones/{z['id']}", token=BOB), 403, "forbidden")
    error(api.post(shares, json={"target_project_id": "carol"}, token=BOB), 403, "forbidden")
    error(api.post(f"/v2/zones/{z['id']}/tasks/transfer_requests", json={}, token=BOB), 403, "forbidden")
    error(api.delete(f"{shares}/{s['id']}", token=BOB), 403, "forbidden")


def test_the_other_project_manages_only_the_recordsets_it_made(api):
    z = make_zone(api, "rs.test.", token=ALICE)
    s = share(api, z["id"], "bob")
    mine = make_rrset(api, z["id"], "alice.rs.test.", "A", ["192.0.2.1"], token=ALICE)
    theirs = make_rrset(api, z["id"], "bob.rs.test.", "A", ["192.0.2.2"], token=BOB)
    assert (mine["project_id"], theirs["project_id"]) == ("alice", "bob")
    api.wait_dns("bob.rs.test.", "A", answers("bob.rs.test.", "A", {"192.0.2.2"}))
    names = {r["name"] for r in api.get("/v2/recordsets", token=BOB).json()["recordsets"]}
    assert {"alice.rs.test.", "bob.rs.test."} <= names

    rsets = f"/v2/zones/{z['id']}/recordsets"
    error(api.put(f"{rsets}/{mine['id']}", json={"records": ["192.0.2.9"]}, token=BOB), 403, "forbidden")
    error(api.delete(f"{rsets}/{mine['id']}", token=BOB), 403, "forbidden")
    assert api.put(f"{rsets}/{theirs['id']}", json={"records": ["192.0.2.3"]}, token=BOB).status_code == 202
    assert api.put(f"{rsets}/{theirs['id']}", json={"ttl": 120}, token=ALICE).status_code == 202  # the owner may
    api.wait_dns("bob.rs.test.", "A", answers("bob.rs.test.", "A", {"192.0.2.3"}))
    assert api.get(f"{rsets}/{theirs['id']}", token=ALICE).json()["project_id"] == "bob"

    error(api.delete(f"/v2/zones/{z['id']}/shares/{s['id']}", token=ALICE), 400, "shared_zone_has_recordsets")
    assert api.delete(f"{rsets}/{theirs['id']}", token=BOB).status_code == 202
    assert api.delete(f"/v2/zones/{z['id']}/shares/{s['id']}", token=ALICE).status_code == 204
    error(api.get(f"/v2/zones/{z['id']}", token=BOB), 404, "zone_not_found")
    error(api.post(rsets, json={"name": "late.rs.test.", "type": "A", "records": ["192.0.2.4"]}, token=BOB), 404,
          "zone_not_found")  # fmt: skip
    assert not any(r["zone_id"] == z["id"] for r in api.get("/v2/recordsets", token=BOB).json()["recordsets"])
    assert api.get(f"/v2/zones/{z['id']}", token=ALICE).json()["shared"] is False
    error(api.delete(f"/v2/zones/{z['id']}/shares/{s['id']}", token=ALICE), 404, "shared_zone_not_found")


def test_a_shared_zone_is_deleted_only_with_delete_shares(api):
    z = make_zone(api, "keep.test.", token=ALICE)
    share(api, z["id"], "bob")
    error(api.delete(f"/v2/zones/{z['id']}", token=ALICE), 400, "zone_is_shared")
    assert api.dig("keep.test.", "SOA").rcode() == dns.rcode.NOERROR
    error(api.post(f"/v2/zones/{z['id']}/tasks/abandon", token=ADMIN), 400, "zone_is_shared")
    assert api.delete(f"/v2/zones/{z['id']}?delete_shares=true", token=ALICE).status_code == 202
    api.wait_dns("keep.test.", "SOA", lambda reply: reply.rcode() == dns.rcode.REFUSED)
    error(api.get(f"/v2/zones/{z['id']}", token=BOB), 404, "zone_not_found")
