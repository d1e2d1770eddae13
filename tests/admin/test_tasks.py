"""Designate v2 zone import and export tasks over real HTTP against a real `minidns serve`."""

from __future__ import annotations

from conftest import ALICE, BOB, READER
from v2util import answers, error, make_rrset, make_zone

ZONE = """$ORIGIN imported.test.
$TTL 600
@       IN SOA ns1 hostmaster 2024010101 3600 600 1209600 300
@       IN NS  ns1
ns1     IN A   192.0.2.53
www 300 IN A   192.0.2.80
mail    IN MX  10 ns1
"""


def post_import(api, text: str, token=ALICE, ctype="text/dns"):
    return api.request("POST", "/v2/zones/tasks/imports", token=token, data=text.encode(),
                       headers={"Content-Type": ctype})  # fmt: skip


def test_import_creates_the_zone_and_the_task_says_so(api):
    r = post_import(api, ZONE)
    assert r.status_code == 202, r.text
    t = r.json()
    assert t["status"] == "COMPLETE" and t["project_id"] == "alice" and t["zone_id"], t
    assert t["links"] == {"self": f"{api.url}/v2/zones/tasks/imports/{t['id']}",
                          "zone": f"{api.url}/v2/zones/{t['zone_id']}"}  # fmt: skip
    assert r.headers["Location"] == t["links"]["self"]
    z = api.get(f"/v2/zones/{t['zone_id']}", token=ALICE).json()
    assert z["name"] == "imported.test." and z["email"] == "hostmaster@imported.test" and z["serial"] == 2024010101
    api.wait_dns("www.imported.test.", "A", answers("www.imported.test.", "A", {"192.0.2.80"}))
    api.wait_dns("mail.imported.test.", "MX", answers("mail.imported.test.", "MX", {"10 ns1.imported.test."}))
    assert api.get(f"/v2/zones/tasks/imports/{t['id']}", token=READER).json()["status"] == "COMPLETE"
    listed = api.get("/v2/zones/tasks/imports", token=ALICE).json()
    assert [i["id"] for i in listed["imports"]] == [t["id"]] and listed["metadata"]["total_count"] == 1
    assert api.get("/v2/zones/tasks/imports?status=ERROR", token=ALICE).json()["imports"] == []
    # Other projects see nothing; readers may not import or delete.
    error(api.get(f"/v2/zones/tasks/imports/{t['id']}", token=BOB), 404, "zone_import_not_found")
    assert api.get("/v2/zones/tasks/imports", token=BOB).json()["imports"] == []
    error(post_import(api, ZONE.replace("imported", "r"), token=READER), 403, "forbidden")
    error(api.delete(f"/v2/zones/tasks/imports/{t['id']}", token=BOB), 404, "zone_import_not_found")
    error(api.delete(f"/v2/zones/tasks/imports/{t['id']}", token=READER), 403, "forbidden")
    assert api.delete(f"/v2/zones/tasks/imports/{t['id']}", token=ALICE).status_code == 204
    error(api.get(f"/v2/zones/tasks/imports/{t['id']}", token=ALICE), 404, "zone_import_not_found")
    assert api.get(f"/v2/zones/{t['zone_id']}", token=ALICE).status_code == 200  # the zone stays
    # JSON {"zonefile": ...} as newer clients send it.
    r = api.post("/v2/zones/tasks/imports", token=ALICE, json={"zonefile": ZONE.replace("imported", "json")})
    assert r.status_code == 202 and r.json()["status"] == "COMPLETE", r.text


def test_bad_imports_end_in_error_and_write_nothing(api):
    bad = {
        "no SOA": "$ORIGIN a.test.\nwww 300 IN A 192.0.2.1\n",
        "bad data": ZONE.replace("192.0.2.80", "192.0.2.800"),
        "cname": ZONE + "www IN CNAME ns1\n",
        "no origin": "www 300 IN A 192.0.2.1\n",
        "one label": ZONE.replace("$ORIGIN imported.test.", "$ORIGIN test."),
    }
    for why, text in bad.items():
        r = post_import(api, text)
        assert r.status_code == 202, (why, r.text)
        t = r.json()
        assert t["status"] == "ERROR" and t["message"] and t["zone_id"] is None, (why, t)
    msg = post_import(api, bad["bad data"]).json()["message"]
    assert msg.startswith("zonefile:6:") and "/tmp" not in msg  # the line is named
    assert api.get("/v2/zones", token=ALICE).json()["zones"] == []
    assert api.get("/v2/zones/tasks/imports?status=ERROR", token=ALICE).json()["metadata"]["total_count"] == 6
    # A zone that exists: ERROR, the existing zone untouched.
    z = make_zone(api, "imported.test.", BOB)
    t = post_import(api, ZONE).json()
    assert t["status"] == "ERROR" and "Duplicate" in t["message"]
    assert api.get(f"/v2/zones/{z['id']}", token=BOB).json()["serial"] == z["serial"]
    error(post_import(api, ZONE, ctype="application/xml"), 415, "unsupported_content_type")
    error(api.post("/v2/zones/tasks/imports", token=ALICE, json={"file": "x"}), 400)


def test_export_gives_a_zone_file_that_imports_back_the_same(api):
    z = make_zone(api, "exp.test.", ALICE, ttl=900)
    make_rrset(api, z["id"], "www.exp.test.", "A", ["192.0.2.1", "192.0.2.2"], ALICE)
    make_rrset(api, z["id"], "exp.test.", "TXT", ['"v=spf1 -all"'], ALICE, ttl=60)
    r = api.post(f"/v2/zones/{z['id']}/tasks/export", token=ALICE)
    assert r.status_code == 202, r.text
    t = r.json()
    assert t["status"] == "COMPLETE" and t["zone_id"] == z["id"]
    assert t["location"] == f"designate://v2/zones/tasks/exports/{t['id']}/export"
    assert t["links"]["export"] == f"{api.url}/v2/zones/tasks/exports/{t['id']}/export"
    assert api.get(f"/v2/zones/tasks/exports/{t['id']}", token=ALICE).json()["id"] == t["id"]
    assert [e["id"] for e in api.get("/v2/zones/tasks/exports", token=ALICE).json()["exports"]] == [t["id"]]
    assert api.get(f"/v2/zones/tasks/exports?zone_id={z['id']}", token=ALICE).json()["metadata"]["total_count"] == 1
    r = api.get(f"/v2/zones/tasks/exports/{t['id']}/export", token=ALICE, headers={"Accept": "text/dns"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/dns")
    text = r.text
    assert "www.exp.test. 900 IN A 192.0.2.1" in text and 'exp.test. 60 IN TXT "v=spf1 -all"' in text
    before = {(x["name"], x["type"], x["ttl"], tuple(sorted(x["records"])))
              for x in api.get(f"/v2/zones/{z['id']}/recordsets", token=ALICE).json()["recordsets"]}  # fmt: skip
    # Auth: others do not see it; the reader may read but not create.
    error(api.get(f"/v2/zones/tasks/exports/{t['id']}", token=BOB), 404, "zone_export_not_found")
    error(api.get(f"/v2/zones/tasks/exports/{t['id']}/export", token=BOB), 404, "zone_export_not_found")
    error(api.post(f"/v2/zones/{z['id']}/tasks/export", token=BOB), 404, "zone_not_found")
    error(api.post(f"/v2/zones/{z['id']}/tasks/export", token=READER), 403, "forbidden")
    assert api.get(f"/v2/zones/tasks/exports/{t['id']}/export", token=READER).status_code == 200
    # Delete the zone, import the export: the same data.
    assert api.delete(f"/v2/zones/{z['id']}", token=ALICE).status_code == 202
    error(api.get(f"/v2/zones/tasks/exports/{t['id']}/export", token=ALICE), 404, "zone_not_found")
    imp = post_import(api, text).json()
    assert imp["status"] == "COMPLETE", imp
    after = {(x["name"], x["type"], x["ttl"] or 900, tuple(sorted(x["records"])))
             for x in api.get(f"/v2/zones/{imp['zone_id']}/recordsets", token=ALICE).json()["recordsets"]}  # fmt: skip
    # The same data, but for the serial: a zone made again starts above the deleted one's.
    assert {b[:2] + b[3:] for b in before if b[1] != "SOA"} == {a[:2] + a[3:] for a in after if a[1] != "SOA"}
    old_serial = next(int(b[3][0].split()[2]) for b in before if b[1] == "SOA")
    assert api.get(f"/v2/zones/{imp['zone_id']}", token=ALICE).json()["serial"] == old_serial + 1
    api.wait_dns("www.exp.test.", "A", answers("www.exp.test.", "A", {"192.0.2.1", "192.0.2.2"}))
    assert api.delete(f"/v2/zones/tasks/exports/{t['id']}", token=ALICE).status_code == 204
    error(api.get(f"/v2/zones/tasks/exports/{t['id']}", token=ALICE), 404, "zone_export_not_found")


def test_an_import_cut_short_by_a_stop_ends_in_error_and_writes_nothing(api):
    """The server stops while a large import is still being read: its task ends in ERROR saying
    so (not PENDING for ever) and no zone is left half-made."""
    import threading
    import time

    from policyutil import sql

    head = "$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 h 1 3600 600 1209600 300\n@ IN NS ns1\n"
    text = head + "".join(f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n" for i in range(120_000))
    t = threading.Thread(target=lambda: _quietly(post_import, api, text), daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not sql(api, "SELECT 1 FROM zone_tasks WHERE kind = 'IMPORT'"):
        assert time.monotonic() < deadline, "the import task never appeared"
        time.sleep(0.02)
    assert api.served.stop() == 0
    t.join(10)
    rows = sql(api, "SELECT status, message FROM zone_tasks WHERE kind = 'IMPORT'")
    assert [r["status"] for r in rows] == ["ERROR"] and rows[0]["message"].startswith("Interrupted"), rows
    assert not sql(api, "SELECT 1 FROM zones WHERE name = 'big.test.'")


def _quietly(fn, *args):
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - the server stops under this request
        pass


def test_imports_a_dead_server_left_pending_end_in_error_at_start(database_url, request):
    """An import whose server was killed stays PENDING in the database; a server starting finds it
    (older than an hour) and ends it in ERROR."""
    from test_events import db_run

    db_run(database_url, lambda s: s.pool.execute(
        "INSERT INTO zone_tasks (id, kind, project_id, status, created_at) VALUES"
        " (gen_random_uuid(), 'IMPORT', 'alice', 'PENDING', now() - interval '2 hours'),"
        " (gen_random_uuid(), 'IMPORT', 'alice', 'PENDING', now())"))  # fmt: skip
    api = request.getfixturevalue("api")
    api.served.wait_for(r"1 zone import\(s\) left PENDING", 10)
    listed = api.get("/v2/zones/tasks/imports", token=ALICE).json()["imports"]
    assert sorted(i["status"] for i in listed) == ["ERROR", "PENDING"]
    assert any(i["status"] == "ERROR" and i["message"].startswith("Interrupted") for i in listed)
