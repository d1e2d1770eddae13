"""/v2/tlds and /v2/blacklists, and the rules they make for new zones (services/policy.check_new_zone)."""

from __future__ import annotations

import uuid

import pytest
from conftest import ALICE, READER
from policyutil import counts, error, run

from minidns.services import policy
from minidns.store.records import Invalid


def test_tld_crud(api):
    r = api.post("/v2/tlds", json={"name": "com", "description": "commercial"})
    assert r.status_code == 201, r.text
    tld = r.json()
    assert set(tld) == {"id", "name", "description", "created_at", "updated_at", "links"}
    assert tld["name"] == "com" and r.headers["Location"] == tld["links"]["self"]
    # anyone authenticated may list and show
    for token in (ALICE, READER):
        assert api.get("/v2/tlds", token=token).json()["tlds"] == [tld]
        assert api.get(f"/v2/tlds/{tld['id']}", token=token).json() == tld
    assert api.get("/v2/tlds?name=com").json()["tlds"] == [tld]
    r = api.patch(f"/v2/tlds/{tld['id']}", json={"description": None})
    assert r.status_code == 200 and r.json()["description"] is None and r.json()["updated_at"]
    error(api.post("/v2/tlds", json={"name": "COM"}), 409, "duplicate_tld")
    assert api.delete(f"/v2/tlds/{tld['id']}").status_code == 204
    error(api.get(f"/v2/tlds/{tld['id']}"), 404, "tld_not_found")


def test_tld_auth_and_validation(api):
    tld = api.post("/v2/tlds", json={"name": "org"}).json()
    before = counts(api)
    error(api.get("/v2/tlds", token=None), 401)
    for method, path, js in [("POST", "/v2/tlds", {"name": "net"}), ("PATCH", f"/v2/tlds/{tld['id']}", {"name": "x"}),
                             ("DELETE", f"/v2/tlds/{tld['id']}", None)]:  # fmt: skip
        error(api.request(method, path, token=None, json=js), 401)
        error(api.request(method, path, token=ALICE, json=js), 403, "forbidden")
        error(api.request(method, path, token=READER, json=js), 403, "forbidden")
    for bad in ({}, {"name": "com."}, {"name": "-com"}, {"name": 7}, {"name": "a" * 300}, {"name": "ok", "x": 1},
                {"name": "ok", "description": "d" * 161}, {"name": "ok", "id": str(uuid.uuid4())}):  # fmt: skip
        error(api.post("/v2/tlds", json=bad), 400)
    error(api.post("/v2/tlds", json=["com"]), 400, "invalid_object")
    error(api.get("/v2/tlds/nope"), 400, "invalid_uuid")
    error(api.patch(f"/v2/tlds/{uuid.uuid4()}", json={"description": "x"}), 404, "tld_not_found")
    assert counts(api) == before


def test_blacklist_crud_admin_only(api):
    r = api.post("/v2/blacklists", json={"pattern": r"^bad\.", "description": "no"})
    assert r.status_code == 201, r.text
    bl = r.json()
    assert set(bl) == {"id", "pattern", "description", "created_at", "updated_at", "links"}
    assert api.get("/v2/blacklists").json()["blacklists"] == [bl]
    assert api.get(f"/v2/blacklists/{bl['id']}").json() == bl
    r = api.patch(f"/v2/blacklists/{bl['id']}", json={"pattern": r"^worse\."})
    assert r.status_code == 200 and r.json()["pattern"] == r"^worse\."
    before = counts(api)
    for token, status in ((None, 401), (ALICE, 403), (READER, 403)):
        error(api.get("/v2/blacklists", token=token), status)
        error(api.get(f"/v2/blacklists/{bl['id']}", token=token), status)
        error(api.post("/v2/blacklists", json={"pattern": "x"}, token=token), status)
        error(api.patch(f"/v2/blacklists/{bl['id']}", json={"description": "x"}, token=token), status)
        error(api.delete(f"/v2/blacklists/{bl['id']}", token=token), status)
    for bad in ({}, {"pattern": "("}, {"pattern": ""}, {"pattern": 1}, {"pattern": "a" * 256}, {"pattern": "a", "z": 1}):
        error(api.post("/v2/blacklists", json=bad), 400)
    error(api.post("/v2/blacklists", json={"pattern": r"^worse\."}), 409, "duplicate_blacklist")
    assert counts(api) == before
    assert api.delete(f"/v2/blacklists/{bl['id']}").status_code == 204
    error(api.delete(f"/v2/blacklists/{bl['id']}"), 404, "blacklist_not_found")


@pytest.mark.parametrize("table, key", [("tlds", "name"), ("blacklists", "pattern")])
def test_paging_counts_every_page(api, table, key):
    ids = [api.post(f"/v2/{table}", json={key: f"t{i}"}).json()["id"] for i in range(3)]
    page = api.get(f"/v2/{table}?limit=2").json()
    assert [t["id"] for t in page[table]] == ids[:2] and "next" in page["links"]
    assert page["metadata"]["total_count"] == 3
    rest = api.get(f"/v2/{table}?limit=2&marker={ids[1]}").json()
    assert [t["id"] for t in rest[table]] == ids[2:] and rest["metadata"]["total_count"] == 3 and "next" not in rest["links"]
    assert api.get(f"/v2/{table}?{key}=t1").json()["metadata"]["total_count"] == 1


def check(api, name, project="alice", admin=False):
    return run(api, lambda conn: policy.check_new_zone(conn, name, project, admin))


def test_check_new_zone_tld_rule(api):
    check(api, "anything.example.")  # no TLDs: anything goes
    api.post("/v2/tlds", json={"name": "com"})
    api.post("/v2/tlds", json={"name": "co.uk"})
    check(api, "example.com.")
    check(api, "Deep.Example.COM")
    check(api, "example.co.uk.")
    for name, why in (("example.org.", "Invalid TLD"), ("example.uk.", "Invalid TLD"), ("com.", "same as a TLD"),
                      ("co.uk.", "same as a TLD")):  # fmt: skip
        with pytest.raises(policy.ZoneNameRefused, match=why) as e:
            check(api, name, admin=True)
        assert e.value.status == 400 and e.value.type == "invalid_zone_name"
        assert isinstance(e.value, Invalid)
    with pytest.raises(Invalid):
        check(api, "bad..name.")


def test_check_new_zone_blacklist_rule(api):
    api.post("/v2/blacklists", json={"pattern": r"^(www\.)?bank\.example\.$"})
    api.post("/v2/blacklists", json={"pattern": "forbidden"})
    for name in ("bank.example.", "www.bank.example.", "a.forbidden.test."):
        with pytest.raises(policy.ZoneNameRefused, match="Blacklisted"):
            check(api, name)
        check(api, name, admin=True)  # admins may
    check(api, "notbank.example.")
    check(api, "bank.example.org.")


def test_blacklisted_is_a_search():
    assert policy.blacklisted("bank", "www.bank.example.") is True
    assert policy.blacklisted("^bank", "www.bank.example.") is False
    assert policy.blacklisted("(", "x.") is False  # a pattern that does not compile matches nothing
