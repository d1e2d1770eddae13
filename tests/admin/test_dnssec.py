"""/v2/zones/{zone_id}/dnssec: a zone's DNSSEC status, enable and disable, key rollovers and the
parent's DS confirmed, through a real `minidns serve` (its master key from dnssec_master_key_file):
the zone routes' rules (another project's zone 404, a reader 403), JSON errors, bad bodies refused
with nothing written, and no private key in any reply."""

from __future__ import annotations

import base64
import uuid

import dns.dnssec
import dns.rdatatype
import pytest
from conftest import ADMIN, ALICE, BOB, READER
from policyutil import error, make_zone, run, sql

MASTER = bytes(range(32))
ZONE = "signed-api.test."


@pytest.fixture
def api_config(api_config, tmp_path):
    """The server's configuration with a DNSSEC master key file."""
    key = tmp_path / "master.key"
    key.write_text(base64.b64encode(MASTER).decode() + "\n")
    key.chmod(0o600)
    with open(api_config, "a") as f:
        f.write(f'dnssec_master_key_file = "{key}"\n')
    return api_config


def zone_id(api, name=ZONE) -> str:
    return str(run(api, lambda conn: conn.fetchval("SELECT id FROM zones WHERE name = $1", name)))


def written(api) -> tuple:
    """What a refused request must not change: the zones' serials, the keys, the rollovers."""

    async def go(conn):
        return (tuple(await conn.fetch("SELECT name, serial FROM zones ORDER BY name")),
                await conn.fetchval("SELECT count(*) FROM dnssec_keys"),
                await conn.fetchval("SELECT count(*) FROM dnssec_rollovers"))  # fmt: skip

    return run(api, go)


def dnskeys(api, name=ZONE) -> set[int]:
    r = api.dig(name, "DNSKEY")
    return {dns.dnssec.key_id(k) for rr in r.answer if rr.rdtype == dns.rdatatype.DNSKEY for k in rr}


def test_enable_rollovers_ds_seen_disable(api):
    make_zone(api, ZONE, "alice", [("www", "A", 300, "192.0.2.1")])
    zid = zone_id(api)
    path = f"/v2/zones/{zid}/dnssec"
    st = api.get(path, token=ALICE).json()
    assert st["enabled"] is False and st["keys"] == st["ds"] == st["rollovers"] == []
    assert st["zone_name"] == ZONE and st["links"]["self"] == f"{api.url}{path}"

    r = api.post(path, json={"algorithm": "ed25519", "split": True, "nsec3_opt_out": True}, token=ALICE)
    assert r.status_code == 201, r.text
    st = r.json()
    assert st["enabled"] is True and sorted(k["role"] for k in st["keys"]) == ["ksk", "zsk"]
    assert st["nsec3_opt_out"] is True
    flags = sql(api, "SELECT substring(wire from 10 for 1) AS f FROM rrsets WHERE type = 50")
    assert flags and all(r["f"] == b"\x01" for r in flags)  # every NSEC3 with the Opt-Out flag
    assert all(k["algorithm"] == "ed25519" and k["state"] == "active" for k in st["keys"])
    ksk = next(k for k in st["keys"] if k["role"] == "ksk")
    assert ksk["flags"] == 257 and ksk["ds"].startswith(f"{ksk['key_tag']} 15 2 ")
    assert st["ds"] == [f"{ZONE} IN DS {ksk['ds']}"]
    assert not any("private" in key for k in st["keys"] for key in k)
    api.wait_dns(ZONE, "DNSKEY", lambda m: len(m.answer) == 1 and len(m.answer[0]) == 2)
    error(api.post(path, json={}, token=ALICE), 409, "dnssec_enabled")

    # ZSK rollover: the new ZSK published, automatic from here on.
    r = api.post(f"{path}/rollover", json={"key": "zsk"}, token=ALICE)
    assert r.status_code == 202, r.text
    st = r.json()
    (roll,) = st["rollovers"]
    assert roll["key"] == "zsk" and roll["phase"] == "published" and not roll["waiting_for_ds"] and roll["next_step_due"]
    new_zsk = next(k for k in st["keys"] if k["state"] == "published")
    assert new_zsk["role"] == "zsk" and new_zsk["key_tag"] == roll["new_key_tag"]
    api.wait_dns(ZONE, "DNSKEY", lambda m: len(m.answer) == 1 and len(m.answer[0]) == 3)
    error(api.post(f"{path}/rollover", json={"key": "zsk"}, token=ALICE), 409, "rollover_in_progress")
    error(api.post(f"{path}/ds-seen", token=ALICE), 400)  # no KSK rollover waits for it

    # KSK rollover: the new KSK published, DS for both keys, waiting for ds-seen.
    r = api.post(f"{path}/rollover", json={"key": "ksk"}, token=ALICE)
    assert r.status_code == 202, r.text
    st = r.json()
    assert len(st["ds"]) == 2 and len(st["keys"]) == 4
    roll = next(x for x in st["rollovers"] if x["key"] == "ksk")
    assert roll["waiting_for_ds"] is True and roll["ds_seen_at"] is None
    api.wait_dns(ZONE, "CDS", lambda m: len(m.answer) == 1 and len(m.answer[0]) == 2)
    r = api.post(f"{path}/ds-seen", json={}, token=ALICE)
    assert r.status_code == 200, r.text
    roll = next(x for x in r.json()["rollovers"] if x["key"] == "ksk")
    assert roll["waiting_for_ds"] is False and roll["ds_seen_at"] and roll["phase"] == "published"  # the DNSKEY TTL has not passed
    assert api.get(path, token=READER).json() == r.json()
    assert MASTER.hex() not in api.served.log and base64.b64encode(MASTER).decode() not in api.served.log

    r = api.delete(path, token=ALICE)
    assert r.status_code == 204, r.text
    assert api.get(path, token=ALICE).json()["enabled"] is False
    assert written(api)[1:] == (0, 0)
    api.wait_dns(ZONE, "DNSKEY", lambda m: not m.answer)
    error(api.delete(path, token=ALICE), 404, "dnssec_not_enabled")


def test_a_csk_zone_rolls_its_csk(api):
    make_zone(api, ZONE, "alice")
    path = f"/v2/zones/{zone_id(api)}/dnssec"
    assert api.post(path, token=ALICE).status_code == 201  # no body: the defaults (one CSK, P-256)
    before = written(api)
    e = error(api.post(f"{path}/rollover", json={"key": "zsk"}, token=ALICE), 400)
    assert "CSK" in e["message"] and "ksk" in e["message"]
    assert written(api) == before
    r = api.post(f"{path}/rollover", json={"key": "ksk"}, token=ALICE)
    assert r.status_code == 202, r.text
    st = r.json()
    assert [(k["role"], k["state"]) for k in st["keys"]] == [("csk", "active"), ("csk", "published")]
    assert st["rollovers"][0]["role"] == "csk" and "CSK" in st["rollovers"][0]["next_step"]
    assert len(st["ds"]) == 2


def test_who_may(api):
    make_zone(api, ZONE, "alice")
    path = f"/v2/zones/{zone_id(api)}/dnssec"
    before = written(api)
    # Another project's member: as if the zone did not exist.
    for method, sub, body in (("GET", "", None), ("POST", "", {}), ("DELETE", "", None), ("POST", "/rollover", {"key": "ksk"}),
                              ("POST", "/ds-seen", {})):  # fmt: skip
        error(api.request(method, path + sub, token=BOB, json=body), 404, "zone_not_found")
        if method != "GET":  # a reader of the zone's own project reads, never writes
            error(api.request(method, path + sub, token=READER, json=body), 403, "forbidden")
        error(api.request(method, path + sub, token=None, json=body), 401, "unauthorized")
    assert written(api) == before
    assert api.get(path, token=READER).status_code == 200
    # An admin acts for the zone's project, or all projects.
    error(api.get(path, token=ADMIN), 404, "zone_not_found")
    r = api.post(path, json={"split": True}, token=ADMIN, headers={"X-Auth-Sudo-Project-ID": "alice"})
    assert r.status_code == 201, r.text
    r = api.post(f"{path}/rollover", json={"key": "ksk"}, token=ADMIN, headers={"X-Auth-All-Projects": "true"})
    assert r.status_code == 202, r.text
    error(api.get(f"/v2/zones/{uuid.uuid4()}/dnssec", token=ALICE), 404, "zone_not_found")
    error(api.get("/v2/zones/nope/dnssec", token=ALICE), 400, "invalid_uuid")


def test_bad_bodies_write_nothing(api):
    make_zone(api, ZONE, "alice")
    path = f"/v2/zones/{zone_id(api)}/dnssec"
    before = written(api)
    for body in ({"algorithm": "md5"}, {"algorithm": 13}, {"algorithm": None}, {"split": "yes"}, {"split": 1},
                 {"split": None}, {"bogus": 1}, {"algorithm": "x" * 100_000}, [1], "text"):  # fmt: skip
        e = error(api.post(path, json=body, token=ALICE), 400)
        assert len(e["message"]) < 300
    for raw in (b"{not json", b"\xff\xfe"):
        error(api.post(path, data=raw, token=ALICE, headers={"Content-Type": "application/json"}), 400, "invalid_json")
    assert written(api) == before
    assert api.post(path, token=ALICE).status_code == 201
    before = written(api)
    for body in ({}, {"key": "big"}, {"key": 1}, {"key": None}, {"key": "zsk", "x": 1}, {"key": ["ksk"]}):
        error(api.post(f"{path}/rollover", json=body, token=ALICE), 400)
    for body in ({"x": 1}, [1]):
        error(api.post(f"{path}/ds-seen", json=body, token=ALICE), 400)
    assert written(api) == before
