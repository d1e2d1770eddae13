"""Recordset writes that arrive together — creates, updates, deletes — are committed together (one
zone lock, one new serial) and each request still gets its own answer: 2xx with its recordset,
409 for a duplicate, 400 for a bad record or a CNAME clash, 404 for a recordset gone, 413 past a
quota — with nothing of the failed ones written. A write whose client hangs up while it waits is
not made."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor


from conftest import ADMIN, ALICE
from v2util import make_rrset, make_zone, post_and_hang_up, sql, zone_locked


def _changes(api, zone: str) -> int:
    """The zone's change-log rows after its creation (one per committed transaction)."""
    return sql(api, "SELECT count(*) AS n FROM zone_changes c JOIN zones z ON z.id = c.zone_id"
                    " WHERE z.name = $1 AND c.serial_from IS NOT NULL", zone)[0]["n"]  # fmt: skip


def test_concurrent_creates_each_get_their_own_outcome(api):
    r = api.post("/v2/zones", json={"name": "batch.test.", "email": "h@batch.test"}, token=ALICE)
    assert r.status_code == 202, r.text
    zid = r.json()["id"]
    for name in ("taken", "host"):
        api.post(f"/v2/zones/{zid}/recordsets", json={"name": f"{name}.batch.test.", "type": "A", "records": ["10.0.0.1"]},
                 token=ALICE)  # fmt: skip
    bodies = [{"name": f"n{i}.batch.test.", "type": "A", "records": [f"10.1.0.{i}"], "ttl": 60} for i in range(80)]
    bodies[10] = {"name": "taken.batch.test.", "type": "A", "records": ["10.2.0.1"]}  # exists
    bodies[20] = {"name": "bad.batch.test.", "type": "A", "records": ["not-an-address"]}
    bodies[30] = {"name": "host.batch.test.", "type": "CNAME", "records": ["x.example."]}  # clashes with host's A
    bodies[40] = {"name": "outside.example.", "type": "A", "records": ["10.3.0.1"]}

    def post(body):
        return api.post(f"/v2/zones/{zid}/recordsets", json=body, token=ALICE)

    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(post, bodies))
    codes = [r.status_code for r in replies]
    assert codes[10] == 409 and replies[10].json()["type"] == "duplicate_recordset"
    assert codes[20] == 400 and "not-an-address" in replies[20].json()["message"]
    assert codes[30] == 400 and codes[40] == 400
    good = [i for i in range(80) if i not in (10, 20, 30, 40)]
    assert all(codes[i] in (201, 202) for i in good), codes
    assert all(replies[i].json()["name"] == bodies[i]["name"] and replies[i].json()["records"] == bodies[i]["records"]
               for i in good)  # fmt: skip
    listed = api.get(f"/v2/zones/{zid}/recordsets?limit=1000", token=ALICE).json()["recordsets"]
    names = {(x["name"], x["type"]) for x in listed}
    assert {(bodies[i]["name"], "A") for i in good} <= names
    assert ("bad.batch.test.", "A") not in names and ("host.batch.test.", "CNAME") not in names
    taken = [x for x in listed if x["name"] == "taken.batch.test."]
    assert len(taken) == 1 and taken[0]["records"] == ["10.0.0.1"]
    api.wait_dns("n79.batch.test.", "A", lambda m: bool(m.answer))  # and served
    assert _changes(api, "batch.test.") < len(good)  # fewer changes (new serials) than creates: they went in together

def test_concurrent_updates_and_deletes_each_get_their_own_outcome(api):
    zid = make_zone(api, "mixed.test.")["id"]
    rids = [make_rrset(api, zid, f"h{i}.mixed.test.", "A", [f"10.0.0.{i}"])["id"] for i in range(60)]
    managed = make_rrset(api, zid, "vm.mixed.test.", "A", ["10.9.9.9"])["id"]
    sql(api, "UPDATE rrsets SET managed = true, managed_source = 'event:nova' WHERE id = $1::uuid", managed)
    before = _changes(api, "mixed.test.")
    # h0..h29 get new addresses and TTLs, h30..h49 are deleted, h50..h59 get new descriptions
    # (h55's taken away); some go wrong: a bad address, a recordset that does not exist, a managed one.
    reqs = [("PUT", rids[i], {"records": [f"10.1.0.{i}"], "ttl": 100 + i}) for i in range(30)]
    reqs += [("DELETE", rids[i], None) for i in range(30, 50)]
    reqs += [("PUT", rids[i], {"description": f"d{i}"}) for i in range(50, 60)]
    reqs[5] = ("PUT", rids[5], {"records": ["not-an-address"]})
    reqs += [("PUT", str(uuid.uuid4()), {"records": ["10.2.0.1"]}), ("DELETE", str(uuid.uuid4()), None),
             ("PUT", managed, {"records": ["10.3.0.1"]}), ("DELETE", managed, None)]  # fmt: skip
    reqs += [("POST", None, {"name": f"new{i}.mixed.test.", "type": "A", "records": [f"10.4.0.{i}"]}) for i in range(20)]

    def send(req):
        verb, rid, body = req
        path = f"/v2/zones/{zid}/recordsets" + (f"/{rid}" if rid else "")
        return api.request(verb, path, json=body, token=ADMIN)

    with ThreadPoolExecutor(len(reqs)) as pool:
        with zone_locked(api, zid):
            futures = [pool.submit(send, req) for req in reqs]
            time.sleep(2.0)  # every request has reached the server and waits
        replies = [f.result() for f in futures]
    codes = [r.status_code for r in replies]
    assert codes[5] == 400 and "not-an-address" in replies[5].json()["message"]
    assert codes[60] == 404 and codes[61] == 404, codes[60:62]
    assert codes[62] == 400 and codes[63] == 400 and "Managed records" in replies[62].json()["message"]
    good = [i for i in range(len(reqs)) if i not in (5, 60, 61, 62, 63)]
    assert all(codes[i] in (200, 201, 202) for i in good), codes
    for i in range(30):
        if i != 5:
            assert replies[i].json()["records"] == [f"10.1.0.{i}"] and replies[i].json()["ttl"] == 100 + i
    assert all(replies[i].json()["action"] == "DELETE" and replies[i].json()["name"] == f"h{i}.mixed.test."
               for i in range(30, 50))  # fmt: skip
    listed = {x["name"]: x for x in api.get(f"/v2/zones/{zid}/recordsets?limit=1000").json()["recordsets"]}
    assert listed["h5.mixed.test."]["records"] == ["10.0.0.5"]  # the bad update wrote nothing
    assert all(f"h{i}.mixed.test." not in listed for i in range(30, 50))
    assert all(listed[f"h{i}.mixed.test."]["description"] == f"d{i}" for i in range(50, 60))
    assert listed["h50.mixed.test."]["records"] == ["10.0.0.50"]
    assert listed["vm.mixed.test."]["records"] == ["10.9.9.9"]
    assert all(f"new{i}.mixed.test." in listed for i in range(20))
    # One transaction for the first write (it took the lock's wait), one for the rest until the
    # managed recordset named twice splits them, one after: not one per write.
    made = _changes(api, "mixed.test.") - before
    assert made <= 4, made
    api.wait_dns("h29.mixed.test.", "A", lambda m: bool(m.answer) and m.answer[0][0].address == "10.1.0.29")
    api.wait_dns("h49.mixed.test.", "A", lambda m: not m.answer)
    # a description taken away and a TTL back to the zone's, both in one burst
    r = api.put(f"/v2/zones/{zid}/recordsets/{rids[55]}", json={"description": None, "ttl": None})
    assert r.status_code in (200, 202) and r.json()["description"] is None and r.json()["ttl"] is None


def test_an_update_and_a_delete_of_one_recordset_together_are_made_one_after_the_other(api):
    zid = make_zone(api, "same.test.")["id"]
    for round_ in range(5):
        rid = make_rrset(api, zid, f"r{round_}.same.test.", "A", ["10.0.0.1"])["id"]
        reqs = [("PUT", {"records": [f"10.0.1.{i}"]}) for i in range(6)] + [("DELETE", None)]
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda q: api.request(q[0], f"/v2/zones/{zid}/recordsets/{rid}", json=q[1]), reqs))
        assert replies[-1].status_code == 202, replies[-1].text
        # each PUT either came before the DELETE (2xx) or after it (404); none is lost in between
        assert all(r.status_code in (200, 202, 404) for r in replies[:-1]), [r.text for r in replies]
        assert api.get(f"/v2/zones/{zid}/recordsets/{rid}").status_code == 404


def test_updates_past_a_zone_quota_are_judged_one_at_a_time(api):
    zid = make_zone(api, "quota.test.", token=ALICE)["id"]
    rids = [make_rrset(api, zid, f"q{i}.quota.test.", "A", ["10.0.0.1"], token=ALICE)["id"] for i in range(10)]
    have = sql(api, "SELECT sum(cardinality(records)) AS n FROM rrsets r JOIN zones z ON z.id = r.zone_id"
                    " WHERE z.name = 'quota.test.' AND r.type <> 6 AND NOT r.managed", )[0]["n"]  # fmt: skip
    r = api.patch("/v2/quotas/alice", json={"zone_records": have + 5})
    assert r.status_code == 200, r.text
    # ten updates each adding two records: five fit in all (ten records), so exactly two get in
    bodies = [{"records": ["10.0.0.1", "10.0.0.2", "10.0.0.3"]} for _ in range(10)]
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda i: api.put(f"/v2/zones/{zid}/recordsets/{rids[i]}", json=bodies[i], token=ALICE),
                                range(10)))  # fmt: skip
    codes = sorted(r.status_code for r in replies)
    assert codes.count(413) == 8 and all(c in (200, 202) for c in codes[:2]), codes
    assert all(r.json()["type"] == "over_quota" for r in replies if r.status_code == 413)
    total = sql(api, "SELECT sum(cardinality(records)) AS n FROM rrsets r JOIN zones z ON z.id = r.zone_id"
                     " WHERE z.name = 'quota.test.' AND r.type <> 6 AND NOT r.managed")[0]["n"]  # fmt: skip
    assert total == have + 4
    # A zone already past its quota (lowered after the fact) still takes updates that add no records.
    assert api.patch("/v2/quotas/alice", json={"zone_records": have}).status_code == 200
    r = api.put(f"/v2/zones/{zid}/recordsets/{rids[9]}", json={"description": "only words"}, token=ALICE)
    assert r.status_code in (200, 202) and r.json()["description"] == "only words", r.text
    r = api.put(f"/v2/zones/{zid}/recordsets/{rids[9]}", json={"records": ["10.0.0.1", "10.0.0.9"]}, token=ALICE)
    assert r.status_code == 413, r.text


def test_a_write_whose_client_hung_up_while_it_waited_is_not_made(api):
    """Writes queue behind the zone's lock; one whose client hangs up meanwhile is dropped from
    the queue (its request cancelled), the others are made."""
    zid = make_zone(api, "gone.test.")["id"]
    with ThreadPoolExecutor(1) as pool, zone_locked(api, zid):
        first = pool.submit(api.post, f"/v2/zones/{zid}/recordsets",
                            json={"name": "kept.gone.test.", "type": "A", "records": ["10.0.0.1"]})  # fmt: skip
        time.sleep(0.5)  # its batch waits for the lock
        post_and_hang_up(api, f"/v2/zones/{zid}/recordsets", {"name": "dropped.gone.test.", "type": "A",
                                                               "records": ["10.0.0.2"]}, ADMIN)  # fmt: skip
        time.sleep(0.3)
        assert not first.done()
    r = first.result()
    assert r.status_code in (201, 202), r.text
    after = make_rrset(api, zid, "after.gone.test.", "A", ["10.0.0.3"])  # the queue has moved on past it
    names = {x["name"] for x in api.get(f"/v2/zones/{zid}/recordsets?limit=100").json()["recordsets"]}
    assert {"kept.gone.test.", after["name"]} <= names
    assert "dropped.gone.test." not in names
