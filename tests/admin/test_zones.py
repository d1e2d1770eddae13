"""Designate v2 zones over real HTTP against a real `minidns serve`: fields and status codes as
Designate's, the zone served over DNS, per-project visibility and roles, validation that writes
nothing, filters and paging."""

from __future__ import annotations

import dns.message
import dns.query

from conftest import ADMIN, ALICE, BOB, POOL_NS_NAMES, READER
from v2util import answers, error, make_rrset, make_zone, nxdomain, wait_active

ZONE_FIELDS = {"id", "pool_id", "project_id", "name", "email", "ttl", "serial", "status", "action", "description",
               "masters", "type", "transferred_at", "version", "created_at", "updated_at", "attributes", "shared",
               "links"}  # fmt: skip


def test_create_get_update_delete_a_zone_served_over_dns(api):
    r = api.post("/v2/zones", token=ALICE, json={"name": "example.org.", "email": "hostmaster@example.org", "ttl": 600,
                                                 "description": "first"})  # fmt: skip
    assert r.status_code == 202, r.text
    z = r.json()
    assert set(z) == ZONE_FIELDS
    assert z["status"] == "PENDING" and z["action"] == "CREATE" and z["type"] == "PRIMARY"
    assert z["project_id"] == "alice" and z["name"] == "example.org." and z["ttl"] == 600 and z["masters"] == []
    assert z["pool_id"] == "794ccc2c-d751-44fe-b57f-8894c9f5c842" and z["shared"] is False and z["attributes"] == {}
    assert z["transferred_at"] is None and z["links"]["self"] == f"{api.url}/v2/zones/{z['id']}"
    assert r.headers["Location"] == z["links"]["self"]
    zid = z["id"]
    # No secondaries: ACTIVE as soon as the server has it, and the SOA is served.
    z = wait_active(api, zid, ALICE)
    assert z["action"] == "NONE"
    soa = api.wait_dns("example.org.", "SOA", lambda m: bool(m.answer))
    assert soa.answer[0][0].serial == z["serial"] and soa.answer[0].ttl == 600
    assert soa.answer[0][0].rname.to_text() == "hostmaster.example.org."

    r = api.patch(f"/v2/zones/{zid}", token=ALICE, json={"email": "dns@example.org", "ttl": 900, "description": None})
    assert r.status_code == 202, r.text
    z2 = r.json()
    assert z2["email"] == "dns@example.org" and z2["ttl"] == 900 and z2["description"] is None
    assert z2["serial"] > z["serial"] and z2["status"] == "PENDING" and z2["action"] == "UPDATE"
    assert z2["version"] > z["version"] and z2["updated_at"] is not None
    api.wait_dns("example.org.", "SOA", lambda m: m.answer and m.answer[0][0].rname.to_text() == "dns.example.org.")
    assert api.get(f"/v2/zones/{zid}", token=ALICE).json()["email"] == "dns@example.org"
    # A PATCH that changes nothing commits nothing: 200, same serial.
    wait_active(api, zid, ALICE)
    r = api.patch(f"/v2/zones/{zid}", token=ALICE, json={"ttl": 900})
    assert r.status_code == 200 and r.json()["serial"] == z2["serial"]

    r = api.delete(f"/v2/zones/{zid}", token=ALICE)
    assert r.status_code == 202 and r.json()["action"] == "DELETE" and r.json()["status"] == "PENDING"
    error(api.get(f"/v2/zones/{zid}", token=ALICE), 404, "zone_not_found")
    api.wait_dns("example.org.", "SOA", lambda m: m.rcode() == 5)  # REFUSED: no longer served
    error(api.delete(f"/v2/zones/{zid}", token=ALICE), 404, "zone_not_found")


def test_validation_errors_write_nothing(api):
    bad = [
        ({"email": "h@example.org"}, "invalid_object"),  # no name
        ({"name": "example.org."}, "invalid_object"),  # no email
        ({"name": "example.org", "email": "h@example.org"}, "invalid_object"),  # not absolute
        ({"name": "org.", "email": "h@example.org"}, "invalid_object"),  # one label
        ({"name": "exa mple.org.", "email": "h@example.org"}, "invalid_object"),
        ({"name": "example.org.", "email": "not-an-email"}, "invalid_object"),
        ({"name": "example.org.", "email": "h@example.org", "ttl": 0}, "invalid_object"),
        ({"name": "example.org.", "email": "h@example.org", "ttl": "300"}, "invalid_object"),
        ({"name": "example.org.", "email": "h@example.org", "description": "x" * 161}, "invalid_object"),
        ({"name": "example.org.", "email": "h@example.org", "colour": "blue"}, "invalid_object"),
        ({"name": "example.org.", "email": "h@example.org", "serial": 5}, "invalid_object"),
        ({"name": "example.org.", "email": "h@example.org", "type": "FORWARD"}, "invalid_object"),
    ]
    for body, kind in bad:
        error(api.post("/v2/zones", json=body, token=ALICE), 400, kind)
    # SECONDARY: a clear refusal.
    msg = error(api.post("/v2/zones", token=ALICE, json={"name": "example.org.", "type": "SECONDARY",
                                                          "masters": ["192.0.2.1"]}), 400)["message"]  # fmt: skip
    assert "SECONDARY" in msg and "not supported" in msg
    error(api.request("POST", "/v2/zones", data=b"{not json", token=ALICE), 400, "invalid_json")
    error(api.request("POST", "/v2/zones", data=b"[1]", token=ALICE), 400)
    all_zones = api.get("/v2/zones", headers={"X-Auth-All-Projects": "true"}).json()
    assert all_zones["zones"] == [] and all_zones["metadata"]["total_count"] == 0
    assert nxdomain(api.dig("example.org.", "SOA")) or api.dig("example.org.", "SOA").rcode() == 5

    z = make_zone(api, "example.org.", ALICE)
    error(api.post("/v2/zones", json={"name": "example.org.", "email": "h@example.org"}, token=ALICE), 409, "duplicate_zone")
    error(api.post("/v2/zones", json={"name": "EXAMPLE.org.", "email": "h@example.org"}, token=BOB), 409, "duplicate_zone")
    serial = api.get(f"/v2/zones/{z['id']}", token=ALICE).json()["serial"]
    for body in ({"ttl": -1}, {"email": "nope"}, {"name": "other.org."}, {"serial": 9}, {"type": "SECONDARY"},
                 {"ttl": None}, {"description": 5}):
        error(api.patch(f"/v2/zones/{z['id']}", json=body, token=ALICE), 400, "invalid_object")
    assert api.get(f"/v2/zones/{z['id']}", token=ALICE).json()["serial"] == serial
    # Ids that are not UUIDs: 400 invalid_uuid, as Designate's validate_uuid answers.
    error(api.get("/v2/zones/not-a-uuid", token=ALICE), 400, "invalid_uuid")
    error(api.delete("/v2/zones/12345", token=ALICE), 400, "invalid_uuid")


def test_projects_see_only_their_zones_and_readers_only_read(api):
    a = make_zone(api, "alice.test.", ALICE)
    b = make_zone(api, "bob.test.", BOB)
    assert [z["name"] for z in api.get("/v2/zones", token=ALICE).json()["zones"]] == ["alice.test."]
    assert [z["name"] for z in api.get("/v2/zones", token=BOB).json()["zones"]] == ["bob.test."]
    # Another project's zone is 404, exactly as a missing one: nothing leaks.
    for method, body in (("GET", None), ("PATCH", {"ttl": 60}), ("DELETE", None)):
        e = error(api.request(method, f"/v2/zones/{a['id']}", token=BOB, json=body), 404, "zone_not_found")
        assert "alice" not in e["message"]
    error(api.get(f"/v2/zones/{a['id']}/nameservers", token=BOB), 404, "zone_not_found")
    assert api.get("/v2/zones?name=alice.test.", token=BOB).json()["zones"] == []
    # The reader of project alice reads alice's zones and writes nothing.
    assert api.get(f"/v2/zones/{a['id']}", token=READER).status_code == 200
    assert [z["id"] for z in api.get("/v2/zones", token=READER).json()["zones"]] == [a["id"]]
    error(api.post("/v2/zones", json={"name": "r.test.", "email": "h@r.test"}, token=READER), 403, "forbidden")
    error(api.patch(f"/v2/zones/{a['id']}", json={"ttl": 60}, token=READER), 403, "forbidden")
    error(api.delete(f"/v2/zones/{a['id']}", token=READER), 403, "forbidden")
    # An admin sees its own project by default, every project with all-projects, and acts for one
    # with sudo.
    assert api.get("/v2/zones").json()["zones"] == []
    names = {z["name"] for z in api.get("/v2/zones", headers={"X-Auth-All-Projects": "true"}).json()["zones"]}
    assert names == {"alice.test.", "bob.test."}
    sudo = {"X-Auth-Sudo-Project-ID": "bob"}
    assert [z["id"] for z in api.get("/v2/zones", headers=sudo).json()["zones"]] == [b["id"]]
    r = api.post("/v2/zones", json={"name": "bob2.test.", "email": "h@bob2.test"}, headers=sudo)
    assert r.status_code == 202 and r.json()["project_id"] == "bob"
    assert {z["name"] for z in api.get("/v2/zones", token=BOB).json()["zones"]} == {"bob.test.", "bob2.test."}
    assert api.patch(f"/v2/zones/{a['id']}", json={"ttl": 60}, headers={"X-Auth-All-Projects": "true"}).status_code == 202
    error(api.get(f"/v2/zones/{a['id']}", headers=sudo), 404, "zone_not_found")
    # Members may not use the admin headers.
    error(api.get("/v2/zones", token=ALICE, headers={"X-Auth-All-Projects": "true"}), 403, "forbidden")
    # No subzone in another project's zone, no superzone over one (Designate's rules).
    error(api.post("/v2/zones", json={"name": "sub.alice.test.", "email": "h@b.test"}, token=BOB), 403, "forbidden")
    error(api.post("/v2/zones", json={"name": "test.", "email": "h@b.test"}, token=BOB), 400)  # one label
    make_zone(api, "x.example.net.", ALICE)
    error(api.post("/v2/zones", json={"name": "example.net.", "email": "h@b.test"}, token=BOB), 403, "forbidden")
    assert api.post("/v2/zones", json={"name": "sub.alice.test.", "email": "h@a.test"}, token=ALICE).status_code == 202


def test_list_filters_sorting_and_paging(api):
    names = [f"z{i:02d}.example." for i in range(9)]
    ids = [make_zone(api, n, ALICE, ttl=300 + i, description=f"zone {i}")["id"] for i, n in enumerate(names)]
    make_zone(api, "other.test.", ALICE, ttl=300)
    # Paging: limit and marker, links.next until the end, total_count of all matches.
    seen, url, pages = [], "/v2/zones?limit=4&name=z*", 0
    while url:
        body = api.get(url, token=ALICE).json()
        assert body["metadata"]["total_count"] == 9
        seen += [z["id"] for z in body["zones"]]
        pages += 1
        url = body["links"].get("next", "").replace(api.url, "")
        if url:
            assert "marker=" in url and "limit=4" in url and "name=z" in url
    assert seen == ids and pages == 3  # created_at then id order; no link after the last page
    body = api.get(f"/v2/zones?limit=2&marker={ids[6]}&name=z*", token=ALICE).json()
    assert [z["id"] for z in body["zones"]] == ids[7:9] and "next" not in body["links"]
    error(api.get("/v2/zones?marker=9b2a6c8e-0000-4000-8000-000000000000", token=ALICE), 400, "invalid_marker")
    error(api.get("/v2/zones?marker=nope", token=ALICE), 400, "invalid_marker")
    error(api.get("/v2/zones?limit=0", token=ALICE), 400, "invalid_limit")
    error(api.get("/v2/zones?limit=x", token=ALICE), 400, "invalid_limit")
    assert len(api.get("/v2/zones?limit=max", token=ALICE).json()["zones"]) == 10
    # Sorting.
    body = api.get("/v2/zones?sort_key=name&sort_dir=desc&limit=3", token=ALICE).json()
    assert [z["name"] for z in body["zones"]] == ["z08.example.", "z07.example.", "z06.example."]
    nxt = api.get(body["links"]["next"].replace(api.url, ""), token=ALICE).json()
    assert [z["name"] for z in nxt["zones"]] == ["z05.example.", "z04.example.", "z03.example."]
    error(api.get("/v2/zones?sort_key=colour", token=ALICE), 400)
    # Filters: exact, wildcards, ttl, description, email, status, type.
    assert [z["name"] for z in api.get("/v2/zones?name=z03.example.", token=ALICE).json()["zones"]] == ["z03.example."]
    assert len(api.get("/v2/zones?name=*.example.", token=ALICE).json()["zones"]) == 9
    assert [z["name"] for z in api.get("/v2/zones?ttl=305", token=ALICE).json()["zones"]] == ["z05.example."]
    assert [z["name"] for z in api.get("/v2/zones?description=*6", token=ALICE).json()["zones"]] == ["z06.example."]
    assert len(api.get("/v2/zones?email=hostmaster@z0*", token=ALICE).json()["zones"]) == 9
    assert len(api.get("/v2/zones?type=PRIMARY&limit=50", token=ALICE).json()["zones"]) == 10
    for z in ids:
        wait_active(api, z, ALICE)
    assert api.get("/v2/zones?status=ACTIVE", token=ALICE).json()["metadata"]["total_count"] == 10
    assert api.get("/v2/zones?status=PENDING", token=ALICE).json()["zones"] == []
    error(api.get("/v2/zones?ttl=abc", token=ALICE), 400)


def test_a_new_zone_has_its_pools_ns_records_at_the_apex(api):
    """RFC 1034 §4.2.1: NS at every zone's apex. A zone made by the API gets the pool's NS records
    (pool_nameservers) as a managed RRset, and its SOA MNAME is the pool's first NS."""
    z = make_zone(api, "ns.test.", ALICE)
    ns = api.get(f"/v2/zones/{z['id']}/nameservers", token=READER).json()["nameservers"]
    assert ns == [{"hostname": "ns1.pool.test.", "priority": 1}, {"hostname": "ns2.pool.test.", "priority": 2}]
    api.wait_dns("ns.test.", "NS", answers("ns.test.", "NS", POOL_NS_NAMES))
    soa = dns.query.udp(dns.message.make_query("ns.test.", "SOA"), "127.0.0.1", port=api.dns_port, timeout=2)
    assert soa.answer[0][0].mname.to_text() == "ns1.pool.test."
    listed = api.get(f"/v2/zones/{z['id']}/recordsets?type=NS", token=ALICE).json()["recordsets"]
    assert [(r["name"], sorted(r["records"])) for r in listed] == [("ns.test.", sorted(POOL_NS_NAMES))]
    # The apex NS RRset is the pool's: a member may not change or delete it (Designate's managed records).
    rid = listed[0]["id"]
    error(api.put(f"/v2/zones/{z['id']}/recordsets/{rid}", json={"records": ["ns.evil.example."]}, token=ALICE), 400)
    error(api.delete(f"/v2/zones/{z['id']}/recordsets/{rid}", token=ALICE), 400)
    r = api.post(f"/v2/zones/{z['id']}/recordsets", json={"name": "ns.test.", "type": "NS", "records": ["x.example."]},
                 token=ALICE)  # fmt: skip
    assert r.status_code == 409, r.text
    # A delegation below the apex is the user's to make.
    make_rrset(api, z["id"], "sub.ns.test.", "NS", ["ns1.sub.ns.test."], ALICE)
    make_rrset(api, z["id"], "ns1.sub.ns.test.", "A", ["192.0.2.53"], ALICE)
    api.wait_dns("sub.ns.test.", "NS", lambda m: m.authority and m.authority[0].name.to_text() == "sub.ns.test.")
    assert api.get(f"/v2/zones/{z['id']}/nameservers", token=READER).json()["nameservers"] == ns


def test_pools_as_designate_lists_them(api):
    pools = api.get("/v2/pools").json()
    assert pools["metadata"]["total_count"] == 1
    (p,) = pools["pools"]
    assert p["id"] == "794ccc2c-d751-44fe-b57f-8894c9f5c842" and p["name"] == "default"
    assert p["ns_records"] == [{"hostname": "ns1.pool.test.", "priority": 1}, {"hostname": "ns2.pool.test.", "priority": 2}]
    assert api.get(f"/v2/pools/{p['id']}").json()["ns_records"] == p["ns_records"]
    error(api.get("/v2/pools", token=ALICE), 403)
    r = api.get("/v2/pools/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.json()["type"] == "pool_not_found"
    z = make_zone(api, "pooled.test.", ALICE)
    assert z["pool_id"] == p["id"]
    # Only an admin chooses a pool, and only one that exists.
    error(api.post("/v2/zones", json={"name": "p2.test.", "email": "a@p2.test", "attributes": {"pool_id": p["id"]}},
                   token=ALICE), 403)  # fmt: skip
    error(api.post("/v2/zones", json={"name": "p2.test.", "email": "a@p2.test",
                                      "attributes": {"pool_id": "00000000-0000-0000-0000-000000000000"}}), 400)  # fmt: skip
    assert make_zone(api, "p3.test.", ADMIN, attributes={"pool_id": p["id"]})["pool_id"] == p["id"]
