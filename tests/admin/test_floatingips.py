"""/v2/reverse/floatingips: PTR records for the floating IPs a project holds."""

from __future__ import annotations

import uuid

import dns.rcode
import pytest
from conftest import ADMIN, ALICE, BOB, READER
from policyutil import counts, error, make_zone, sql

FIP = str(uuid.uuid4())
KEY = f"RegionOne:{FIP}"


def ptr_is(value):
    def check(r):
        got = {rr.to_text() for rrset in r.answer for rr in rrset if rrset.rdtype == 12}
        return got == ({value} if value else set()) and (value or r.rcode() == dns.rcode.NXDOMAIN)

    return check


@pytest.fixture
def fip(api):
    r = api.post("/v2/reverse/floatingips", json={"region": "RegionOne", "id": FIP, "address": "192.0.2.10",
                                                  "project_id": "alice"})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def test_register_is_admin_only(api):
    before = counts(api)
    reg = {"region": "RegionOne", "id": FIP, "address": "192.0.2.10", "project_id": "alice"}
    error(api.post("/v2/reverse/floatingips", json=reg, token=None), 401)
    error(api.post("/v2/reverse/floatingips", json=reg, token=ALICE), 403)
    for bad in ({**reg, "address": "nope"}, {**reg, "id": "x"}, {**reg, "region": "bad region"},
                {k: v for k, v in reg.items() if k != "project_id"}, {**reg, "extra": 1}):  # fmt: skip
        error(api.post("/v2/reverse/floatingips", json=bad), 400)
    assert counts(api) == before


def test_list_and_show_by_project(api, fip):
    assert fip == {"id": KEY, "ptrdname": None, "description": None, "ttl": None, "address": "192.0.2.10",
                   "action": "NONE", "status": "ACTIVE",
                   "links": {"self": f"{api.url}/v2/reverse/floatingips/{KEY}"}}  # fmt: skip
    assert api.get("/v2/reverse/floatingips", token=ALICE).json()["floatingips"] == [fip]
    assert api.get("/v2/reverse/floatingips", token=READER).json()["floatingips"] == [fip]
    assert api.get("/v2/reverse/floatingips", token=BOB).json()["floatingips"] == []
    assert api.get(f"/v2/reverse/floatingips/{KEY}", token=ALICE).json() == fip
    error(api.get(f"/v2/reverse/floatingips/{KEY}", token=BOB), 404)
    error(api.get(f"/v2/reverse/floatingips/{KEY}", token=None), 401)
    assert api.get("/v2/reverse/floatingips", headers={"X-Auth-Sudo-Project-ID": "alice"}).json()["floatingips"] == [fip]
    assert api.get("/v2/reverse/floatingips", headers={"X-Auth-All-Projects": "true"}).json()["floatingips"] == [fip]
    error(api.get("/v2/reverse/floatingips/nope", token=ALICE), 400, "bad_request")
    error(api.get(f"/v2/reverse/floatingips/RegionOne:{uuid.uuid4()}", token=ALICE), 404)


def test_set_and_unset_ptr(api, fip):
    before = counts(api)
    r = api.patch(f"/v2/reverse/floatingips/{KEY}", json={"ptrdname": "vm.example.com."}, token=ALICE)
    body = error(r, 400, "bad_request")  # no reverse zone yet
    assert "reverse zone" in body["message"]
    assert counts(api) == before
    make_zone(api, "2.0.192.in-addr.arpa.", "admin-project")
    r = api.patch(f"/v2/reverse/floatingips/{KEY}", json={"ptrdname": "vm.example.com.", "ttl": 600,
                                                          "description": "my vm"}, token=ALICE)  # fmt: skip
    assert r.status_code == 202, r.text
    assert r.json()["ptrdname"] == "vm.example.com." and r.json()["ttl"] == 600 and r.json()["status"] == "PENDING"
    reply = api.wait_dns("10.2.0.192.in-addr.arpa.", "PTR", ptr_is("vm.example.com."))
    assert reply.answer[0].ttl == 600
    got = api.get(f"/v2/reverse/floatingips/{KEY}", token=ALICE).json()
    assert (got["ptrdname"], got["ttl"], got["description"]) == ("vm.example.com.", 600, "my vm")
    row = sql(api, "SELECT managed, managed_resource_type, managed_resource_id, managed_tenant_id FROM rrsets"
                   " WHERE name = '10.2.0.192.in-addr.arpa.'")[0]  # fmt: skip
    assert tuple(row) == (True, "ptr:floatingip", KEY, "alice")
    r = api.patch(f"/v2/reverse/floatingips/{KEY}", json={"ptrdname": None}, token=ALICE)
    assert r.status_code == 202 and r.json()["ptrdname"] is None
    api.wait_dns("10.2.0.192.in-addr.arpa.", "PTR", ptr_is(None))


def test_patch_auth_and_validation(api, fip):
    make_zone(api, "2.0.192.in-addr.arpa.")
    before = counts(api)
    serial = sql(api, "SELECT serial FROM zones")[0]["serial"]
    path = f"/v2/reverse/floatingips/{KEY}"
    error(api.patch(path, json={"ptrdname": "a.example."}, token=None), 401)
    error(api.patch(path, json={"ptrdname": "a.example."}, token=READER), 403)
    error(api.patch(path, json={"ptrdname": "a.example."}, token=BOB), 404)
    error(api.patch(path, json={"ptrdname": "a.example."}, token=ADMIN), 404)  # not the admin's own project
    for bad in ({}, {"ptrdname": "relative"}, {"ptrdname": 5}, {"ptrdname": "a.example.", "ttl": "1"},
                {"ptrdname": "a.example.", "ttl": 0}, {"ptrdname": "a.example.", "description": "d" * 161},
                {"ptrdname": "a.example.", "address": "192.0.2.99"}, {"ptrdname": "a" * 300 + "."},
                {"ptrdname": "a.example.", "bogus": True}):  # fmt: skip
        error(api.patch(path, json=bad, token=ALICE), 400)
    error(api.patch("/v2/reverse/floatingips/RegionOne", json={"ptrdname": "a.example."}, token=ALICE), 400)
    assert counts(api) == before
    assert sql(api, "SELECT serial FROM zones")[0]["serial"] == serial
    # an admin acting for the project may
    r = api.patch(path, json={"ptrdname": "a.example."}, headers={"X-Auth-Sudo-Project-ID": "alice"})
    assert r.status_code == 202, r.text


def test_unregister_removes_the_ptr(api, fip):
    make_zone(api, "2.0.192.in-addr.arpa.")
    api.patch(f"/v2/reverse/floatingips/{KEY}", json={"ptrdname": "vm.example.com."}, token=ALICE)
    api.wait_dns("10.2.0.192.in-addr.arpa.", "PTR", ptr_is("vm.example.com."))
    error(api.delete(f"/v2/reverse/floatingips/{KEY}", token=ALICE), 403)
    assert api.delete(f"/v2/reverse/floatingips/{KEY}").status_code == 204
    api.wait_dns("10.2.0.192.in-addr.arpa.", "PTR", ptr_is(None))
    assert api.get("/v2/reverse/floatingips", token=ALICE).json()["floatingips"] == []
    error(api.delete(f"/v2/reverse/floatingips/{KEY}"), 404)


def test_ipv6(api):
    key = f"RegionOne:{uuid.uuid4()}"
    region, fid = key.split(":", 1)
    r = api.post("/v2/reverse/floatingips", json={"region": region, "id": fid, "address": "2001:db8::5",
                                                  "project_id": "bob"})  # fmt: skip
    assert r.status_code == 201, r.text
    make_zone(api, "8.b.d.0.1.0.0.2.ip6.arpa.")
    assert api.patch(f"/v2/reverse/floatingips/{key}", json={"ptrdname": "v6.example."}, token=BOB).status_code == 202
    name = "5." + "0." * 23 + "8.b.d.0.1.0.0.2.ip6.arpa."
    api.wait_dns(name, "PTR", ptr_is("v6.example."))
