"""Recordset creates that arrive together are committed together (one zone lock, one new serial)
and each request still gets its own answer: 2xx with its recordset, 409 for a duplicate, 400 for
a bad record or a CNAME clash — with nothing of the failed ones written."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from conftest import ALICE


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
    # Fewer changes (new serials) than creates: they went in together.
    import asyncio

    from minidns.store import db

    async def changes():
        pool = await db.create_pool(api.database_url)
        try:
            return await pool.fetchval("SELECT count(*) FROM zone_changes c JOIN zones z ON z.id = c.zone_id"
                                       " WHERE z.name = 'batch.test.' AND c.serial_from IS NOT NULL")  # fmt: skip
        finally:
            await pool.close()

    assert asyncio.run(changes()) < len(good)
