"""The routes operators reach with the openstack CLI — zone transfers, shares, abandon, service
statuses, limits, and an endpoint given with or without /v2 — driven by the real CLI against a
real `minidns serve`, the outcome checked over DNS where it shows there."""

from __future__ import annotations

import uuid

import dns.rcode

from conftest import ADMIN, ALICE, BOB
from osc import openstack_process, osc, osc_json, refused
from v2util import answers, wait_active


def soa_serial(api, zone: str) -> int:
    return next(iter(api.dig(zone, "SOA").answer[0])).serial


def create_zone(api, token: str, name: str, v2: bool = True) -> dict:
    z = osc_json(api, token, "zone", "create", name, "--email", f"hostmaster@{name.rstrip('.')}", v2=v2)
    wait_active(api, z["id"], token)
    return z


def test_the_endpoint_works_with_and_without_v2(api):
    z = create_zone(api, ALICE, "cli.test.", v2=False)
    for v2 in (True, False):  # the installed command, a process of its own
        p = openstack_process(api, ALICE, "zone", "list", "-f", "value", "-c", "name", v2=v2)
        assert p.returncode == 0 and p.stdout.split() == ["cli.test."], (p.stdout, p.stderr)
    for v2 in (True, False):
        assert [x["name"] for x in osc_json(api, ALICE, "zone", "list", v2=v2)] == ["cli.test."]
    # A POST sent unversioned (the body goes along with the 308 to /v2) makes a served record.
    osc(api, ALICE, "recordset", "create", z["id"], "www", "--type", "A", "--record", "192.0.2.10", v2=False)
    api.wait_dns("www.cli.test.", "A", answers("www.cli.test.", "A", {"192.0.2.10"}))

    assert api.patch("/v2/quotas/alice", json={"zones": 7}).status_code == 200
    for v2 in (True, False):
        limits = {row["Limit"]: row["Value"] for row in osc_json(api, ALICE, "dns", "limit", "list", v2=v2)}
        assert limits == {"max_zones": 7, "max_zone_recordsets": 500, "max_zone_records": 500,
                          "max_recordset_records": 20, "min_ttl": 1, "max_zone_name_length": 254,
                          "max_recordset_name_length": 254, "max_page_limit": 1000}  # fmt: skip

    for v2 in (True, False):
        services = osc_json(api, ADMIN, "dns", "service", "list", v2=v2)
        assert {s["service_name"] for s in services} == {"api", "central", "mdns", "worker", "producer", "sink"}
        assert {s["status"] for s in services} == {"UP"}
    mdns = next(s for s in services if s["service_name"] == "mdns")
    shown = osc_json(api, ADMIN, "dns", "service", "show", mdns["id"])
    assert shown["service_name"] == "mdns" and shown["hostname"] == mdns["hostname"] and shown["heartbeated_at"]
    assert "admin role" in refused(api, ALICE, "dns", "service", "list")


def test_a_zone_transfer_moves_the_zone_to_the_accepting_project(api):
    z = create_zone(api, ALICE, "moving.test.")
    osc(api, ALICE, "recordset", "create", z["id"], "www", "--type", "A", "--record", "192.0.2.20")
    api.wait_dns("www.moving.test.", "A", answers("www.moving.test.", "A", {"192.0.2.20"}))
    before = soa_serial(api, "moving.test.")

    t = osc_json(api, ALICE, "zone", "transfer", "request", "create", z["id"], "--target-project-id", "bob",
                 "--description", "to bob")  # fmt: skip
    assert t["status"] == "ACTIVE" and t["target_project_id"] == "bob" and t["project_id"] == "alice"
    assert len(t["key"]) == 8 and t["zone_name"] == "moving.test."
    listed = osc_json(api, ALICE, "zone", "transfer", "request", "list")
    assert [(r["id"], r["key"]) for r in listed] == [(t["id"], t["key"])]
    seen_by_bob = osc_json(api, BOB, "zone", "transfer", "request", "show", t["id"])
    assert seen_by_bob["zone_name"] == "moving.test." and "key" not in seen_by_bob and "project_id" not in seen_by_bob
    assert osc_json(api, ALICE, "zone", "transfer", "request", "set", t["id"], "--description", "for bob")["description"] == "for bob"

    assert "Key does not match" in refused(api, BOB, "zone", "transfer", "accept", "request", "--transfer-id", t["id"],
                                           "--key", "WRONGKEY")  # fmt: skip
    assert [x["name"] for x in osc_json(api, ALICE, "zone", "list")] == ["moving.test."]  # nothing moved

    a = osc_json(api, BOB, "zone", "transfer", "accept", "request", "--transfer-id", t["id"], "--key", t["key"], v2=False)
    assert a["status"] == "COMPLETE" and a["zone_id"] == z["id"] and a["project_id"] == "bob"
    assert [x["id"] for x in osc_json(api, BOB, "zone", "transfer", "accept", "list")] == [a["id"]]
    assert osc_json(api, BOB, "zone", "transfer", "accept", "show", a["id"])["zone_transfer_request_id"] == t["id"]
    assert osc_json(api, ALICE, "zone", "transfer", "request", "show", t["id"])["status"] == "COMPLETE"
    assert "has been used" in refused(api, BOB, "zone", "transfer", "accept", "request", "--transfer-id", t["id"],
                                      "--key", t["key"])  # fmt: skip

    assert [x["name"] for x in osc_json(api, BOB, "zone", "list")] == ["moving.test."]
    assert osc_json(api, ALICE, "zone", "list") == []
    assert "Could not find" in refused(api, ALICE, "zone", "show", z["id"])
    api.wait_dns("moving.test.", "SOA", lambda r: next(iter(r.answer[0])).serial > before)  # one change, served
    assert answers("www.moving.test.", "A", {"192.0.2.20"})(api.dig("www.moving.test.", "A"))

    # The new owner offers it to anyone holding the key, then withdraws the offer.
    t2 = osc_json(api, BOB, "zone", "transfer", "request", "create", z["id"])
    assert t2["target_project_id"] is None
    osc(api, BOB, "zone", "transfer", "request", "delete", t2["id"])
    assert t2["id"] not in {r["id"] for r in osc_json(api, BOB, "zone", "transfer", "request", "list")}
    assert "Could not find" in refused(api, BOB, "zone", "transfer", "request", "show", t2["id"])


def test_a_shared_zone_is_seen_and_written_by_the_project_it_is_shared_with(api):
    z = create_zone(api, ALICE, "shared.test.")
    s = osc_json(api, ALICE, "zone", "share", "create", "shared.test.", "bob")
    assert s["zone_id"] == z["id"] and s["target_project_id"] == "bob" and s["project_id"] == "alice"
    assert [x["id"] for x in osc_json(api, ALICE, "zone", "share", "list", "shared.test.")] == [s["id"]]
    assert osc_json(api, ALICE, "zone", "share", "show", z["id"], s["id"])["target_project_id"] == "bob"
    assert "already shared" in refused(api, ALICE, "zone", "share", "create", "shared.test.", "bob")

    shown = osc_json(api, BOB, "zone", "show", z["id"])
    assert shown["shared"] is True and shown["project_id"] == "alice"
    r = osc_json(api, BOB, "recordset", "create", z["id"], "bobhost", "--type", "A", "--record", "192.0.2.30")
    assert r["project_id"] == "bob"
    api.wait_dns("bobhost.shared.test.", "A", answers("bobhost.shared.test.", "A", {"192.0.2.30"}))
    assert "recordsets owned by project bob" in refused(api, ALICE, "zone", "share", "delete", z["id"], s["id"])
    assert "delete-shares" in refused(api, ALICE, "zone", "delete", z["id"])

    osc(api, BOB, "recordset", "delete", z["id"], r["id"])
    osc(api, ALICE, "zone", "share", "delete", z["id"], s["id"])
    assert "Could not find" in refused(api, BOB, "zone", "show", z["id"])

    osc(api, ALICE, "zone", "share", "create", z["id"], "bob")
    osc(api, ALICE, "zone", "delete", z["id"], "--delete-shares")
    api.wait_dns("shared.test.", "SOA", lambda reply: reply.rcode() == dns.rcode.REFUSED)


def test_abandon_stops_serving_the_zone_at_once(api):
    z = create_zone(api, ADMIN, "abandoned.test.")
    assert api.dig("abandoned.test.", "SOA").rcode() == dns.rcode.NOERROR
    assert "admin role" in refused(api, ALICE, "zone", "abandon", z["id"])
    osc(api, ADMIN, "zone", "abandon", z["id"])
    api.wait_dns("abandoned.test.", "SOA", lambda reply: reply.rcode() == dns.rcode.REFUSED)
    assert osc_json(api, ADMIN, "zone", "list") == []


def test_an_unsupported_route_names_the_feature_and_a_missing_zone_stays_not_found(api):
    z = create_zone(api, ALICE, "primary.test.")
    assert "is not supported by minidns" in refused(api, ALICE, "zone", "axfr", z["id"])
    assert "Could not find Zone" in refused(api, ALICE, "zone", "axfr", str(uuid.uuid4()))
