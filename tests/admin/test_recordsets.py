"""Designate v2 recordsets over real HTTP against a real `minidns serve`: every write checked
over DNS, Designate's rules and error codes, validation that writes nothing, managed records,
per-project visibility, filters and paging over hundreds of recordsets."""

from __future__ import annotations

from conftest import ADMIN, ALICE, BOB, READER
from v2util import answers, error, make_rrset, make_zone, nxdomain, sql, wait_active

RRSET_FIELDS = {"id", "zone_id", "project_id", "name", "zone_name", "type", "records", "ttl", "status", "action",
                "description", "version", "created_at", "updated_at", "links"}  # fmt: skip


def test_create_update_delete_checked_over_dns(api):
    z = make_zone(api, "example.org.", ALICE, ttl=1200)
    zid = z["id"]
    r = api.post(f"/v2/zones/{zid}/recordsets", token=ALICE,
                 json={"name": "www.example.org.", "type": "A", "records": ["192.0.2.1", "192.0.2.2"],
                       "description": "web"})  # fmt: skip
    assert r.status_code == 202, r.text  # PENDING until the zone's change is out, as Designate answers
    rs = r.json()
    assert set(rs) == RRSET_FIELDS
    assert rs["status"] == "PENDING" and rs["action"] == "CREATE" and rs["ttl"] is None  # not given: the zone's
    assert rs["zone_name"] == "example.org." and rs["project_id"] == "alice" and rs["type"] == "A"
    assert rs["links"]["self"] == f"{api.url}/v2/zones/{zid}/recordsets/{rs['id']}" == r.headers["Location"]
    reply = api.wait_dns("www.example.org.", "A", answers("www.example.org.", "A", {"192.0.2.1", "192.0.2.2"}))
    assert reply.answer[0].ttl == 1200
    wait_active(api, zid, ALICE)
    got = api.get(f"/v2/zones/{zid}/recordsets/{rs['id']}", token=ALICE).json()
    assert got["status"] == "ACTIVE" and got["action"] == "NONE" and got["description"] == "web"

    # PUT: records replaced, a TTL set; name and type stay.
    r = api.put(f"/v2/zones/{zid}/recordsets/{rs['id']}", token=ALICE, json={"records": ["192.0.2.3"], "ttl": 60})
    assert r.status_code == 202, r.text
    up = r.json()
    assert up["id"] == rs["id"] and up["records"] == ["192.0.2.3"] and up["ttl"] == 60 and up["action"] == "UPDATE"
    assert up["version"] > got["version"] and up["description"] == "web"
    reply = api.wait_dns("www.example.org.", "A", answers("www.example.org.", "A", {"192.0.2.3"}))
    assert reply.answer[0].ttl == 60
    # ttl null: back to the zone's default, which it then follows.
    r = api.put(f"/v2/zones/{zid}/recordsets/{rs['id']}", token=ALICE, json={"ttl": None, "description": None})
    assert r.json()["ttl"] is None and r.json()["description"] is None
    api.wait_dns("www.example.org.", "A", lambda m: m.answer and m.answer[0].ttl == 1200)
    assert api.patch(f"/v2/zones/{zid}", token=ALICE, json={"ttl": 7200}).status_code == 202
    api.wait_dns("www.example.org.", "A", lambda m: m.answer and m.answer[0].ttl == 7200)
    assert api.get(f"/v2/zones/{zid}/recordsets/{rs['id']}", token=ALICE).json()["ttl"] is None

    # Other types, relative names in data taken from the zone as dnspython reads them.
    mx = make_rrset(api, zid, "example.org.", "MX", ["10 mail.example.org."], ALICE, ttl=300)
    assert mx["ttl"] == 300
    api.wait_dns("example.org.", "MX", answers("example.org.", "MX", {"10 mail.example.org."}))
    make_rrset(api, zid, "_sip._tcp.example.org.", "SRV", ["10 5 5060 sip.example.org."], ALICE)
    make_rrset(api, zid, "*.apps.example.org.", "TXT", ['"hello world"'], ALICE)
    api.wait_dns("x.apps.example.org.", "TXT", answers("x.apps.example.org.", "TXT", {'"hello world"'}))
    make_rrset(api, zid, "alias.example.org.", "CNAME", ["www.example.org."], ALICE)
    api.wait_dns("alias.example.org.", "CNAME", answers("alias.example.org.", "CNAME", {"www.example.org."}))

    r = api.delete(f"/v2/zones/{zid}/recordsets/{rs['id']}", token=ALICE)
    assert r.status_code == 202 and r.json()["action"] == "DELETE" and r.json()["status"] == "PENDING"
    api.wait_dns("www.example.org.", "A", nxdomain)
    error(api.get(f"/v2/zones/{zid}/recordsets/{rs['id']}", token=ALICE), 404, "recordset_not_found")
    error(api.delete(f"/v2/zones/{zid}/recordsets/{rs['id']}", token=ALICE), 404, "recordset_not_found")


def test_designate_rules_and_validation_write_nothing(api):
    z = make_zone(api, "example.org.", ALICE)
    zid = z["id"]
    www = make_rrset(api, zid, "www.example.org.", "A", ["192.0.2.1"], ALICE)
    make_rrset(api, zid, "alias.example.org.", "CNAME", ["www.example.org."], ALICE)
    serial = wait_active(api, zid, ALICE)["serial"]
    url = f"/v2/zones/{zid}/recordsets"
    cases = [
        ({"name": "www.example.org.", "type": "A", "records": ["192.0.2.9"]}, 409, "duplicate_recordset"),
        ({"name": "WWW.example.org.", "type": "a", "records": ["192.0.2.9"]}, 409, "duplicate_recordset"),
        ({"name": "www.example.com.", "type": "A", "records": ["192.0.2.9"]}, 400, "invalid_recordset_location"),
        ({"name": "example.org.", "type": "CNAME", "records": ["www.example.org."]}, 400, "invalid_recordset_location"),
        ({"name": "www.example.org.", "type": "CNAME", "records": ["x.example.org."]}, 400, "invalid_recordset_location"),
        ({"name": "alias.example.org.", "type": "TXT", "records": ['"x"']}, 400, "invalid_recordset_location"),
        ({"name": "c.example.org.", "type": "CNAME", "records": ["a.example.", "b.example."]}, 400, "invalid_object"),
        ({"name": "www", "type": "A", "records": ["192.0.2.9"]}, 400, "invalid_object"),
        ({"name": "bad name.example.org.", "type": "A", "records": ["192.0.2.9"]}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": ["192.0.2.300"]}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": ["192.0.2.1", "nope"]}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "MX", "records": ["mail.example.org."]}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "BOGUS", "records": ["x"]}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": []}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": "192.0.2.1"}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": [1]}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": ["192.0.2.1"], "ttl": 0}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": ["192.0.2.1"], "ttl": "60"}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": ["192.0.2.1"], "id": "x"}, 400, "invalid_object"),
        ({"name": "n.example.org.", "type": "A", "records": ["192.0.2.1"], "colour": 1}, 400, "invalid_object"),
        ({"type": "A", "records": ["192.0.2.1"]}, 400, "invalid_object"),
        ({"name": "example.org.", "type": "SOA", "records": ["a. b. 1 2 3 4 5"]}, 400, "bad_request"),
        ({"name": "n.example.org.", "type": "RRSIG", "records": ["x"]}, 400, "bad_request"),
    ]
    for body, status, kind in cases:
        e = error(api.post(url, json=body, token=ALICE), status, kind)
        assert e["message"]
    assert "192.0.2.300" in error(api.post(url, token=ALICE, json={"name": "n.example.org.", "type": "A",
                                                                   "records": ["192.0.2.300"]}), 400)["message"]  # fmt: skip
    # The SOA recordset is read-only; PUT may not rename or retype.
    soa = api.get(f"{url}?type=SOA", token=ALICE).json()["recordsets"][0]
    assert soa["name"] == "example.org." and soa["records"][0].startswith("ns1.pool.test. hostmaster.example.org.")
    error(api.put(f"{url}/{soa['id']}", json={"records": ["a. b. 1 2 3 4 5"]}, token=ALICE), 400, "bad_request")
    error(api.delete(f"{url}/{soa['id']}", token=ALICE), 400, "bad_request")
    for body in ({"name": "other.example.org."}, {"type": "AAAA"}, {"records": ["::1"]}, {"records": None},
                 {"ttl": -5}, {"zone_id": zid}):
        r = api.put(f"{url}/{www['id']}", json=body, token=ALICE)
        assert r.status_code == 400, (body, r.text)
    # Nothing above was written: same serial, same data.
    assert api.get(f"/v2/zones/{zid}", token=ALICE).json()["serial"] == serial
    assert api.get(url, token=ALICE).json()["metadata"]["total_count"] == 4  # SOA, the pool's NS, www, alias
    assert nxdomain(api.dig("n.example.org.", "A"))
    error(api.get(f"{url}/not-a-uuid", token=ALICE), 400, "invalid_uuid")
    error(api.post("/v2/zones/9b2a6c8e-0000-4000-8000-000000000000/recordsets", token=ALICE,
                   json={"name": "a.example.org.", "type": "A", "records": ["192.0.2.1"]}), 404, "zone_not_found")  # fmt: skip
    # Apex NS: the pool's (managed), as Designate has them: a member may not write them, an admin
    # asking to edit managed records may.
    error(api.post(url, json={"name": "example.org.", "type": "NS", "records": ["ns1.example.org."]}, token=ALICE),
          409, "duplicate_recordset")  # fmt: skip
    ns = api.get(f"{url}?type=NS", token=ALICE).json()["recordsets"][0]
    error(api.put(f"{url}/{ns['id']}", json={"records": ["ns1.example.org."]}, token=ALICE), 400, "bad_request")
    r = api.put(f"{url}/{ns['id']}", json={"records": ["ns1.example.org.", "ns2.example.org."]},
                headers={"X-Designate-Edit-Managed-Records": "true", "X-Auth-Sudo-Project-ID": "alice"})  # fmt: skip
    assert r.status_code == 202, r.text
    api.wait_dns("example.org.", "NS", answers("example.org.", "NS", {"ns1.example.org.", "ns2.example.org."}))


def test_managed_recordsets_need_the_header_and_an_admin(api):
    z = make_zone(api, "example.org.", ALICE)
    rs = make_rrset(api, z["id"], "vm1.example.org.", "A", ["192.0.2.10"], ALICE)
    sql(api, "UPDATE rrsets SET managed = true, managed_source = 'event:nova' WHERE id = $1::uuid", rs["id"])
    url = f"/v2/zones/{z['id']}/recordsets/{rs['id']}"
    # Designate answers BadRequest (400) "Managed records may not be updated/deleted".
    e = error(api.put(url, json={"records": ["192.0.2.11"]}, token=ALICE), 400, "bad_request")
    assert "Managed records may not be updated" in e["message"]
    error(api.delete(url, token=ALICE), 400, "bad_request")
    error(api.put(url, json={"records": ["192.0.2.11"]}, headers={"X-Auth-All-Projects": "true"}), 400, "bad_request")
    # The header is for admins only.
    edit = {"X-Designate-Edit-Managed-Records": "true"}
    error(api.put(url, json={"records": ["192.0.2.11"]}, token=ALICE, headers=edit), 403, "forbidden")
    error(api.delete(url, token=ALICE, headers=edit), 403, "forbidden")
    assert api.get(url, token=ALICE).json()["records"] == ["192.0.2.10"]
    r = api.put(url, json={"records": ["192.0.2.11"]}, headers={**edit, "X-Auth-Sudo-Project-ID": "alice"})
    assert r.status_code == 202 and r.json()["records"] == ["192.0.2.11"], r.text
    api.wait_dns("vm1.example.org.", "A", answers("vm1.example.org.", "A", {"192.0.2.11"}))
    assert sql(api, "SELECT managed FROM rrsets WHERE id = $1::uuid", rs["id"])[0]["managed"] is True
    assert api.delete(url, headers={**edit, "X-Auth-All-Projects": "true"}).status_code == 202
    api.wait_dns("vm1.example.org.", "A", nxdomain)


def test_projects_and_roles(api):
    a = make_zone(api, "alice.test.", ALICE)
    b = make_zone(api, "bob.test.", BOB)
    ra = make_rrset(api, a["id"], "www.alice.test.", "A", ["192.0.2.1"], ALICE)
    rb = make_rrset(api, b["id"], "www.bob.test.", "A", ["192.0.2.2"], BOB)
    a_url = f"/v2/zones/{a['id']}/recordsets"
    # Bob: alice's zone and recordsets do not exist for him.
    error(api.get(a_url, token=BOB), 404, "zone_not_found")
    error(api.get(f"{a_url}/{ra['id']}", token=BOB), 404, "zone_not_found")
    error(api.post(a_url, json={"name": "x.alice.test.", "type": "A", "records": ["192.0.2.9"]}, token=BOB), 404)
    error(api.put(f"{a_url}/{ra['id']}", json={"records": ["192.0.2.9"]}, token=BOB), 404)
    error(api.delete(f"{a_url}/{ra['id']}", token=BOB), 404)
    # A recordset id under the wrong zone is not found either.
    error(api.get(f"/v2/zones/{b['id']}/recordsets/{ra['id']}", token=BOB), 404, "recordset_not_found")
    error(api.get(f"/v2/recordsets/{ra['id']}", token=BOB, allow_redirects=False), 404, "recordset_not_found")
    assert {r["name"] for r in api.get("/v2/recordsets", token=BOB).json()["recordsets"]} == {"bob.test.",
                                                                                             "www.bob.test."}
    assert api.get(f"/v2/recordsets?zone_id={a['id']}", token=BOB).json()["recordsets"] == []
    # The reader reads alice's, writes nothing.
    assert api.get(f"{a_url}/{ra['id']}", token=READER).json()["records"] == ["192.0.2.1"]
    error(api.post(a_url, json={"name": "x.alice.test.", "type": "A", "records": ["192.0.2.9"]}, token=READER), 403)
    error(api.put(f"{a_url}/{ra['id']}", json={"records": ["192.0.2.9"]}, token=READER), 403, "forbidden")
    error(api.delete(f"{a_url}/{ra['id']}", token=READER), 403, "forbidden")
    assert nxdomain(api.dig("x.alice.test.", "A"))
    # /v2/recordsets/{id}: 301 to the canonical place, as Designate answers.
    r = api.get(f"/v2/recordsets/{ra['id']}", token=ALICE, allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"] == ra["links"]["self"]
    assert api.get(f"/v2/recordsets/{ra['id']}", token=ALICE).json()["id"] == ra["id"]
    # Admin: all projects, or one by sudo.
    everything = api.get("/v2/recordsets?type=A", headers={"X-Auth-All-Projects": "true"}).json()
    assert {r["id"] for r in everything["recordsets"]} == {ra["id"], rb["id"]}
    assert api.get("/v2/recordsets?type=A").json()["recordsets"] == []
    r = api.post(a_url, json={"name": "adm.alice.test.", "type": "A", "records": ["192.0.2.7"]},
                 headers={"X-Auth-Sudo-Project-ID": "alice"})  # fmt: skip
    assert r.status_code == 202 and r.json()["project_id"] == "alice"
    api.wait_dns("adm.alice.test.", "A", answers("adm.alice.test.", "A", {"192.0.2.7"}))


def test_filters_and_paging_over_250_recordsets(api):
    lines = ["$ORIGIN big.test.", "@ 3600 IN SOA ns1 hostmaster 1 3600 600 1209600 300", "@ 3600 IN NS ns1"]
    lines += [f"h{i:03d} 300 IN A 10.0.{i // 256}.{i % 256}" for i in range(250)]
    r = api.request("POST", "/v2/zones/tasks/imports", token=ALICE, data="\n".join(lines) + "\n",
                    headers={"Content-Type": "text/dns"})  # fmt: skip
    assert r.status_code == 202 and r.json()["status"] == "COMPLETE", r.text
    zid = r.json()["zone_id"]
    url = f"/v2/zones/{zid}/recordsets"
    seen, nxt, pages = [], f"{url}?type=A&limit=100", 0
    while nxt:
        body = api.get(nxt, token=ALICE).json()
        assert body["metadata"]["total_count"] == 250
        seen += body["recordsets"]
        pages += 1
        nxt = body["links"].get("next", "").replace(api.url, "")
    assert pages == 3 and len(seen) == 250 and len({r["id"] for r in seen}) == 250
    assert api.get(url, token=ALICE).json()["metadata"]["total_count"] == 252  # SOA and NS too
    assert len(api.get(url, token=ALICE).json()["recordsets"]) == 20  # Designate's default page
    by_name = api.get(f"{url}?sort_key=name&sort_dir=desc&limit=3&type=A", token=ALICE).json()["recordsets"]
    assert [r["name"] for r in by_name] == ["h249.big.test.", "h248.big.test.", "h247.big.test."]
    # Filters: name (exact and wildcard), data (any record), ttl, type, description, status.
    assert [r["records"] for r in api.get(f"{url}?name=h007.big.test.", token=ALICE).json()["recordsets"]] == [["10.0.0.7"]]
    assert api.get(f"{url}?name=h1*", token=ALICE).json()["metadata"]["total_count"] == 100
    assert [r["name"] for r in api.get(f"{url}?data=10.0.0.42", token=ALICE).json()["recordsets"]] == ["h042.big.test."]
    assert api.get(f"{url}?data=10.0.0.4*", token=ALICE).json()["metadata"]["total_count"] == 11  # 4, 40-49
    assert api.get(f"{url}?ttl=3600", token=ALICE).json()["metadata"]["total_count"] == 2
    assert [r["type"] for r in api.get(f"{url}?type=NS", token=ALICE).json()["recordsets"]] == ["NS"]
    make_rrset(api, zid, "d.big.test.", "TXT", ['"t"'], ALICE, description="marked one")
    assert [r["name"] for r in api.get(f"{url}?description=marked*", token=ALICE).json()["recordsets"]] == ["d.big.test."]
    wait_active(api, zid, ALICE)
    assert api.get(f"{url}?status=ACTIVE", token=ALICE).json()["metadata"]["total_count"] == 253
    assert api.get(f"{url}?status=PENDING", token=ALICE).json()["metadata"]["total_count"] == 0
    # Across zones, with zone_id, and paging there too.
    make_zone(api, "small.test.", ALICE)  # its SOA and its pool's NS
    everything = api.get("/v2/recordsets?limit=1000", token=ALICE).json()
    assert everything["metadata"]["total_count"] == 255 and len(everything["recordsets"]) == 255
    assert api.get(f"/v2/recordsets?zone_id={zid}&limit=5", token=ALICE).json()["metadata"]["total_count"] == 253
    page = api.get("/v2/recordsets?limit=200", token=ALICE).json()
    rest = api.get(page["links"]["next"].replace(api.url, ""), token=ALICE).json()
    assert len(page["recordsets"]) + len(rest["recordsets"]) == 255 and "next" not in rest["links"]
    error(api.get(f"{url}?ttl=x", token=ALICE), 400)
    error(api.get(f"{url}?type=NOPE", token=ALICE), 400)
    error(api.get("/v2/recordsets?zone_id=nope", token=ALICE), 400)
