"""/v2/tsigkeys: Designate's TSIG key resource, admin only, over the keys transfers use."""

from __future__ import annotations

import base64
import time
import uuid

import dns.message
import dns.query
import dns.tsigkeyring
import pytest
from conftest import ADMIN, ALICE, READER
from policyutil import counts, error, make_zone, run

from minidns.services import access

POOL = "794ccc2c-d751-44fe-b57f-8894c9f5c842"  # Designate's default pool id
SECRET = base64.b64encode(b"k" * 32).decode()


def body(**kw):
    return {"name": "xfr-key", "algorithm": "hmac-sha256", "secret": SECRET, "scope": "POOL", "resource_id": POOL, **kw}


def test_crud_in_designate_shape(api):
    r = api.post("/v2/tsigkeys", json=body())
    assert r.status_code == 201, r.text
    key = r.json()
    assert set(key) == {"id", "name", "algorithm", "secret", "scope", "resource_id", "created_at", "updated_at", "links"}
    assert key["name"] == "xfr-key." and key["algorithm"] == "hmac-sha256" and key["secret"] == SECRET
    assert key["scope"] == "POOL" and key["resource_id"] == POOL and key["updated_at"] is None
    assert r.headers["Location"] == key["links"]["self"] == f"{api.url}/v2/tsigkeys/{key['id']}"
    assert api.get(f"/v2/tsigkeys/{key['id']}").json() == key
    listed = api.get("/v2/tsigkeys").json()
    assert listed["tsigkeys"] == [key] and listed["links"]["self"].endswith("/v2/tsigkeys")
    assert api.get("/v2/tsigkeys?name=xfr-key").json()["tsigkeys"] == [key]
    assert api.get("/v2/tsigkeys?name=other").json()["tsigkeys"] == []
    new_secret = base64.b64encode(b"z" * 64).decode()
    r = api.patch(f"/v2/tsigkeys/{key['id']}", json={"secret": new_secret, "algorithm": "hmac-sha512", "name": "k2"})
    assert r.status_code == 200, r.text
    assert r.json()["secret"] == new_secret and r.json()["name"] == "k2." and r.json()["updated_at"]
    assert api.delete(f"/v2/tsigkeys/{key['id']}").status_code == 204
    error(api.get(f"/v2/tsigkeys/{key['id']}"), 404, "tsigkey_not_found")
    error(api.delete(f"/v2/tsigkeys/{key['id']}"), 404, "tsigkey_not_found")
    # the secret never reaches the log
    assert SECRET not in api.served.log and new_secret not in api.served.log


def test_paging(api):
    ids = [api.post("/v2/tsigkeys", json=body(name=f"k{i}")).json()["id"] for i in range(3)]
    page = api.get("/v2/tsigkeys?limit=2").json()
    assert [k["id"] for k in page["tsigkeys"]] == ids[:2] and "next" in page["links"]
    assert page["metadata"]["total_count"] == 3  # every page says how many there are in all
    rest = api.get(f"/v2/tsigkeys?limit=2&marker={ids[1]}").json()
    assert [k["id"] for k in rest["tsigkeys"]] == ids[2:] and rest["metadata"]["total_count"] == 3
    assert api.get("/v2/tsigkeys?limit=2&name=k1").json()["metadata"]["total_count"] == 1
    error(api.get("/v2/tsigkeys?limit=x"), 400, "invalid_limit")


def test_auth(api):
    key = api.post("/v2/tsigkeys", json=body()).json()
    before = counts(api)
    for method, path, js in [("GET", "/v2/tsigkeys", None), ("POST", "/v2/tsigkeys", body(name="other")),
                             ("GET", f"/v2/tsigkeys/{key['id']}", None),
                             ("PATCH", f"/v2/tsigkeys/{key['id']}", {"secret": SECRET}),
                             ("DELETE", f"/v2/tsigkeys/{key['id']}", None)]:  # fmt: skip
        error(api.request(method, path, token=None, json=js), 401)
        error(api.request(method, path, token=ALICE, json=js), 403, "forbidden")
        error(api.request(method, path, token=READER, json=js), 403, "forbidden")
    assert counts(api) == before


@pytest.mark.parametrize("bad", [
    {"name": None}, {"algorithm": "hmac-sha3"}, {"secret": "not base64!"}, {"scope": "ZONES"},
    {"resource_id": "nope"}, {"name": 12}, {"secret": "a" * 200}, {"name": "x" * 161}, {"id": str(uuid.uuid4())},
    {"extra": 1}, {"name": "bad..name"},
])  # fmt: skip
def test_invalid_create_writes_nothing(api, bad):
    before = counts(api)
    b = body(**bad)
    if bad.get("name", 0) is None:
        del b["name"]
    error(api.post("/v2/tsigkeys", json=b), 400)
    assert counts(api) == before


def test_other_errors(api):
    key = api.post("/v2/tsigkeys", json=body()).json()
    before = counts(api)
    error(api.post("/v2/tsigkeys", json=body()), 409, "duplicate_tsigkey")
    error(api.post("/v2/tsigkeys", data=b"{nope", headers={"Content-Type": "application/json"}), 400, "invalid_json")
    error(api.get("/v2/tsigkeys/not-a-uuid"), 400, "invalid_uuid")
    error(api.patch(f"/v2/tsigkeys/{uuid.uuid4()}", json={"secret": SECRET}), 404, "tsigkey_not_found")
    error(api.patch(f"/v2/tsigkeys/{key['id']}", json={"secret": "%%%"}), 400)
    error(api.patch(f"/v2/tsigkeys/{key['id']}", json={"created_at": "now"}), 400, "invalid_object")
    assert counts(api) == before
    assert api.get(f"/v2/tsigkeys/{key['id']}").json() == key


def test_key_in_use_by_a_secondary_is_kept(api):
    make_zone(api, "used.test.")
    key = api.post("/v2/tsigkeys", json=body()).json()

    async def add(conn):
        await conn.execute("INSERT INTO zone_secondaries (zone_id, address, port, key_name)"
                           " SELECT id, '192.0.2.53', 53, 'xfr-key.' FROM zones WHERE name = 'used.test.'")  # fmt: skip

    run(api, add)
    error(api.delete(f"/v2/tsigkeys/{key['id']}"), 409)
    error(api.patch(f"/v2/tsigkeys/{key['id']}", json={"name": "renamed"}), 409)
    assert api.get(f"/v2/tsigkeys/{key['id']}").json()["name"] == "xfr-key."


def test_the_server_signs_transfers_with_an_api_key(api):
    """A key made through the API is the one transfers are checked with, at once."""
    make_zone(api, "signed.test.", records=[("www", "A", 300, "192.0.2.1")])
    key = api.post("/v2/tsigkeys", json=body()).json()

    async def only_key(conn):
        await conn.execute("UPDATE zones SET allow_transfer = ARRAY['key:xfr-key.'] WHERE name = 'signed.test.'")
        await conn.execute("SELECT pg_notify($1, 'acl')", access.CONFIG_CHANNEL)

    run(api, only_key)
    ring = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
    deadline = time.monotonic() + 5
    while True:
        q = dns.message.make_query("signed.test.", "AXFR")
        q.use_tsig(ring, "xfr-key.", algorithm="hmac-sha256")
        try:
            r = dns.query.tcp(q, "127.0.0.1", port=api.dns_port, timeout=2)
            if r.rcode() == 0 and r.answer:
                break
        except Exception:  # noqa: BLE001 - not loaded yet: BADKEY / refused
            pass
        assert time.monotonic() < deadline, "the API's key was not accepted for a transfer"
        time.sleep(0.05)
    assert api.delete(f"/v2/tsigkeys/{key['id']}").status_code == 204
