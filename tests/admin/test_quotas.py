"""/v2/quotas and the quota checks of services/policy (Designate's defaults and OverQuota)."""

from __future__ import annotations

import uuid

import pytest
from conftest import ADMIN, ALICE, BOB, READER
from policyutil import counts, error, make_zone, run, sql

from minidns.services import policy

DEFAULTS = {"zones": 10, "zone_recordsets": 500, "zone_records": 500, "recordset_records": 20, "api_export_size": 1000}


def test_defaults_and_own_project(api):
    assert api.get("/v2/quotas/alice", token=ALICE).json() == DEFAULTS
    assert api.get("/v2/quotas", token=ALICE).json() == DEFAULTS
    assert api.get("/v2/quotas/alice", token=READER).json() == DEFAULTS
    assert api.get("/v2/quotas/anyone", token=ADMIN).json() == DEFAULTS


def test_set_and_reset(api):
    r = api.patch("/v2/quotas/alice", json={"zones": 2, "recordset_records": -1})
    assert r.status_code == 200, r.text
    assert r.json() == {**DEFAULTS, "zones": 2, "recordset_records": -1}
    assert api.get("/v2/quotas", token=ALICE).json()["zones"] == 2
    assert api.get("/v2/quotas/bob", token=BOB).json() == DEFAULTS
    assert api.patch("/v2/quotas/alice", json={"zones": 3}).json()["zones"] == 3
    assert api.delete("/v2/quotas/alice").status_code == 204
    assert api.get("/v2/quotas/alice", token=ALICE).json() == DEFAULTS
    assert api.delete("/v2/quotas/never-set").status_code == 204  # as Designate: a reset is idempotent


def test_auth(api):
    api.patch("/v2/quotas/bob", json={"zones": 5})
    before = counts(api)
    error(api.get("/v2/quotas/alice", token=None), 401)
    error(api.get("/v2/quotas", token=None), 401)
    error(api.get("/v2/quotas/bob", token=ALICE), 403, "forbidden")
    for token, status in ((None, 401), (ALICE, 403), (READER, 403), (BOB, 403)):
        error(api.patch("/v2/quotas/bob", json={"zones": 50}, token=token), status)
        error(api.delete("/v2/quotas/bob", token=token), status)
    assert counts(api) == before
    assert api.get("/v2/quotas/bob", token=BOB).json()["zones"] == 5


@pytest.mark.parametrize("bad", [{}, {"zones": "5"}, {"zones": -2}, {"zones": True}, {"zones": 1.5}, {"domains": 5},
                                 {"zones": 5, "nope": 1}, {"zones": 2**31}, {"zones": None}])  # fmt: skip
def test_invalid_patch_writes_nothing(api, bad):
    before = counts(api)
    error(api.patch("/v2/quotas/alice", json=bad), 400)
    assert counts(api) == before
    assert api.get("/v2/quotas/alice", token=ALICE).json() == DEFAULTS


def test_invalid_body_shapes(api):
    error(api.patch("/v2/quotas/alice", json=[1]), 400)
    error(api.patch("/v2/quotas/alice", data=b"zones=1", headers={"Content-Type": "application/json"}), 400)
    error(api.get("/v2/quotas/" + "p" * 300), 400)


def check(api, *args, **kw):
    return run(api, lambda conn: policy.check_quota(conn, *args, **kw))


def test_check_quota(api):
    api.patch("/v2/quotas/alice", json={"zones": 2, "zone_recordsets": 4, "zone_records": 4, "recordset_records": 2})
    check(api, "alice", "zones")
    make_zone(api, "one.test.", "alice", [("a", "A", 300, "192.0.2.1", "192.0.2.2")])
    check(api, "alice", "zones")
    make_zone(api, "two.test.", "alice")
    with pytest.raises(policy.OverQuota) as e:
        check(api, "alice", "zones")
    assert e.value.status == 413 and e.value.type == "over_quota"
    check(api, "bob", "zones")  # another project's count
    zid = sql(api, "SELECT id FROM zones WHERE name = 'one.test.'")[0]["id"]
    rrset = sql(api, "SELECT id FROM rrsets WHERE zone_id = $1 AND type = 1", zid)[0]["id"]
    # one.test. holds SOA, NS, a/A: one more RRset is the fourth
    check(api, "alice", "zone_recordsets", zone_id=zid)
    with pytest.raises(policy.OverQuota):
        check(api, "alice", "zone_recordsets", zone_id=zid, count=2)
    # records: NS (1) + A (2) = 3, the SOA not counted; replacing the A RRset by 3 records makes 4
    check(api, "alice", "zone_records", zone_id=zid, count=1)
    check(api, "alice", "zone_records", zone_id=zid, rrset_id=rrset, count=3)
    with pytest.raises(policy.OverQuota):
        check(api, "alice", "zone_records", zone_id=zid, count=2)
    check(api, "alice", "recordset_records", count=2)
    with pytest.raises(policy.OverQuota):
        check(api, "alice", "recordset_records", count=3)
    api.patch("/v2/quotas/alice", json={"zones": -1})
    check(api, "alice", "zones", count=1000)  # -1: unlimited
    with pytest.raises(ValueError):
        check(api, "alice", "bogus")
    assert uuid.UUID(str(zid))
