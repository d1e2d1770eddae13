"""Event ingest end to end: notifications shaped as Nova, Neutron and CloudStack publish them
(tests/admin/events/*.json) posted to a real `minidns serve`, the records checked over DNS."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from pathlib import Path

import dns.rcode
import dns.rdatatype
import orjson
import pytest
import requests

from minidns.store import db
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store

from conftest import ADMIN, ALICE, BOB, INGEST, Api, free_port

EVENTS = Path(__file__).resolve().parent / "events"
TENANT = "33a88272e06a49c1a0f653abc374b56b"
ZONES = ["cloud.test.", "0.0.10.in-addr.arpa.", "0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "acct.test.", "dom.test.",
         "common.test.", "1.1.10.in-addr.arpa."]  # fmt: skip
CONFIG = """
events_zone = "cloud.test."
cloudstack_common_zone = "common.test."
"""


def load(name: str, **changes) -> dict:
    ev = json.loads((EVENTS / name).read_text())
    ev.update(changes)
    return ev


def fresh(ev: dict, **changes) -> dict:
    """The same event with a new message id (and other top-level changes)."""
    ev = copy.deepcopy(ev)
    key = "eventUuid" if "eventUuid" in ev else "message_id"
    ev[key] = str(uuid.uuid4())
    ev.update(changes)
    return ev


def db_run(url: str, fn):
    async def go():
        pool = await db.create_pool(url)
        try:
            return await fn(Store(pool, stages=write_stages()))
        finally:
            await pool.close()

    return asyncio.run(go())


def make_zones(url: str, names=ZONES):
    async def fn(store):
        for n in names:
            await store.create_zone(n, email=f"hostmaster@{n.rstrip('.')}", edits=[Edit("add", "@", "NS", 300, ("ns1.example.",))])

    db_run(url, fn)


def add_record(url: str, zone: str, name: str, rtype: str, data: str):
    db_run(url, lambda s: s.change(zone, [Edit("add", name, rtype, 300, (data,))], source="test"))


def rrset_rows(url: str, zone: str):
    async def fn(store):
        async with store.pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(
                "SELECT r.name, r.type, r.records, r.managed, r.managed_source, r.managed_resource_type,"
                " r.managed_resource_id, r.managed_tenant_id FROM rrsets r JOIN zones z ON z.id = r.zone_id"
                " WHERE z.name = $1 AND r.type <> 6 ORDER BY r.name, r.type", zone)]  # fmt: skip

    return db_run(url, fn)


def answers(reply, rdtype: str) -> set[str]:
    t = dns.rdatatype.from_text(rdtype)
    return {rd.to_text() for rrset in reply.answer if rrset.rdtype == t for rd in rrset}


def has(api: Api, name: str, rdtype: str, expected: set[str]):
    api.wait_dns(name, rdtype, lambda r: answers(r, rdtype) == expected)


def gone(api: Api, name: str, rdtype: str = "A"):
    api.wait_dns(name, rdtype, lambda r: r.rcode() == dns.rcode.NXDOMAIN or not answers(r, rdtype))


def serial(api: Api, zone: str) -> int:
    return next(iter(api.dig(zone, "SOA").answer[0])).serial


def post(api: Api, body, token=INGEST, status=200) -> dict:
    r = api.post("/v1/events", json=body, token=token)
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
def sink(api_config, database_url, request):
    with open(api_config, "a") as f:
        f.write(CONFIG)
    make_zones(database_url)
    return request.getfixturevalue("api")


def test_nova_create_makes_a_aaaa_ptr_and_delete_removes_exactly_those(sink):
    add_record(sink.database_url, "cloud.test.", "www", "A", "192.0.2.80")
    create = load("nova_compute.instance.create.end.json")
    out = post(sink, create)
    assert out["status"] == "applied" and not out["duplicate"], out
    has(sink, "web1.cloud.test", "A", {"10.0.0.5"})
    has(sink, "web1.cloud.test", "AAAA", {"2001:db8:10::5"})
    has(sink, "5.0.0.10.in-addr.arpa", "PTR", {"web1.cloud.test."})
    has(sink, "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR", {"web1.cloud.test."})
    rows = [r for r in rrset_rows(sink.database_url, "cloud.test.") if r["name"] == "web1.cloud.test."]
    assert {(r["managed_source"], r["managed_resource_type"], r["managed_resource_id"], r["managed_tenant_id"]) for r in rows} \
        == {("nova", "instance", "3e301a55-fbbe-478d-92d0-eefabf135c38", TENANT)}
    got = sink.get(f"/v1/events/{create['message_id']}", token=INGEST).json()
    assert got["status"] == "applied" and got["event_type"] == "compute.instance.create.end"
    assert {(c["op"], c["name"], c["type"]) for c in got["changes"]} >= {
        ("add", "web1.cloud.test.", "A"), ("add", "web1.cloud.test.", "AAAA"), ("add", "5.0.0.10.in-addr.arpa.", "PTR")}

    out = post(sink, load("nova_compute.instance.delete.end.json"))
    assert out["status"] == "applied" and {c["op"] for c in out["changes"]} == {"remove"} and len(out["changes"]) == 4
    gone(sink, "web1.cloud.test", "A")
    gone(sink, "web1.cloud.test", "AAAA")
    gone(sink, "5.0.0.10.in-addr.arpa", "PTR")
    has(sink, "www.cloud.test", "A", {"192.0.2.80"})
    assert [r["name"] for r in rrset_rows(sink.database_url, "cloud.test.")] == ["cloud.test.", "www.cloud.test."]
    assert rrset_rows(sink.database_url, "0.0.10.in-addr.arpa.") == [
        r for r in rrset_rows(sink.database_url, "0.0.10.in-addr.arpa.") if r["type"] == 2]


def test_the_same_message_id_twice_changes_nothing(sink):
    create = load("nova_compute.instance.create.end.json")
    post(sink, create)
    has(sink, "web1.cloud.test", "A", {"10.0.0.5"})
    before = serial(sink, "cloud.test.")
    again = post(sink, create)
    assert again["duplicate"] is True and again["status"] == "applied"
    assert serial(sink, "cloud.test.") == before
    metrics = sink.get("/metrics", token=None).text
    assert 'minidns_events_total{outcome="duplicate"} 1' in metrics


def test_delete_before_create_leaves_nothing(sink):
    out = post(sink, load("nova_compute.instance.delete.end.json"))
    assert out["status"] == "applied"
    late = post(sink, load("nova_compute.instance.create.end.json"))
    assert late["status"] == "ignored" and "deleted" in late["reason"], late
    gone(sink, "web1.cloud.test", "A")
    assert [r["name"] for r in rrset_rows(sink.database_url, "cloud.test.")] == ["cloud.test."]


def test_a_human_record_on_the_name_is_kept_and_the_fallback_name_used(sink):
    add_record(sink.database_url, "cloud.test.", "web1", "A", "192.0.2.1")
    add_record(sink.database_url, "0.0.10.in-addr.arpa.", "5", "PTR", "mail.example.")
    out = post(sink, load("nova_compute.instance.create.end.json"))
    assert out["status"] == "applied" and "taken" in out["reason"], out
    has(sink, "web1-10-0-0-5.cloud.test", "A", {"10.0.0.5"})
    has(sink, "web1-2001-db8-10-0-0-0-0-5.cloud.test", "AAAA", {"2001:db8:10::5"})
    has(sink, "web1.cloud.test", "A", {"192.0.2.1"})
    has(sink, "5.0.0.10.in-addr.arpa", "PTR", {"mail.example."})  # the person's PTR stays
    has(sink, "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR",
        {"web1-2001-db8-10-0-0-0-0-5.cloud.test."})
    post(sink, load("nova_compute.instance.delete.end.json"))
    gone(sink, "web1-10-0-0-5.cloud.test", "A")
    has(sink, "web1.cloud.test", "A", {"192.0.2.1"})
    has(sink, "5.0.0.10.in-addr.arpa", "PTR", {"mail.example."})
    human = [r for r in rrset_rows(sink.database_url, "cloud.test.") if r["name"] == "web1.cloud.test."]
    assert human == [{"name": "web1.cloud.test.", "type": 1, "records": ["192.0.2.1"], "managed": False,
                      "managed_source": None, "managed_resource_type": None, "managed_resource_id": None,
                      "managed_tenant_id": None}]  # fmt: skip


def test_floating_ip_association_and_disassociation(sink):
    post(sink, load("nova_compute.instance.create.end.json"))
    assoc = load("neutron_floatingip.update.end_associate.json")
    out = post(sink, assoc)
    assert out["status"] == "applied", out
    has(sink, "web1.fip.cloud.test", "A", {"203.0.113.10"})
    rows = [r for r in rrset_rows(sink.database_url, "cloud.test.") if r["name"] == "web1.fip.cloud.test."]
    assert rows[0]["managed_resource_type"] == "floatingip" and rows[0]["managed_resource_id"] == "f38ff2b6-cd4d-433e-8a9c-9e00dfc05b1e"
    post(sink, load("neutron_floatingip.update.end_disassociate.json"))
    gone(sink, "web1.fip.cloud.test", "A")
    has(sink, "web1.cloud.test", "A", {"10.0.0.5"})  # the instance's own record stays
    # Associated again (a later event), then the floating IP deleted.
    post(sink, fresh(assoc, timestamp="2024-03-05 10:36:00.000000"))
    has(sink, "web1.fip.cloud.test", "A", {"203.0.113.10"})
    out = post(sink, load("neutron_floatingip.delete.end.json"))
    assert [c["name"] for c in out["changes"]] == ["web1.fip.cloud.test."]
    gone(sink, "web1.fip.cloud.test", "A")
    # A fixed IP no Nova event told of: an address-based name.
    other = fresh(assoc)
    other["payload"]["floatingip"].update(id=str(uuid.uuid4()), floating_ip_address="203.0.113.11", fixed_ip_address="10.0.0.99")
    post(sink, other)
    has(sink, "203-0-113-11.cloud.test", "A", {"203.0.113.11"})


def test_an_old_disassociation_after_a_newer_association_is_ignored(sink):
    post(sink, load("nova_compute.instance.create.end.json"))
    post(sink, fresh(load("neutron_floatingip.update.end_associate.json"), timestamp="2024-03-05 10:50:00.000000"))
    out = post(sink, load("neutron_floatingip.update.end_disassociate.json"))  # stamped 10:35
    assert out["status"] == "ignored" and "newer" in out["reason"]
    has(sink, "web1.fip.cloud.test", "A", {"203.0.113.10"})


def test_port_delete_removes_what_the_port_made(sink):
    post(sink, load("nova_compute.instance.create.end.json"))
    assoc = load("neutron_floatingip.update.end_associate.json")
    post(sink, assoc)
    has(sink, "web1.fip.cloud.test", "A", {"203.0.113.10"})
    out = post(sink, load("neutron_port.delete.end.json"))
    assert out["status"] == "applied" and [c["name"] for c in out["changes"]] == ["web1.fip.cloud.test."]
    gone(sink, "web1.fip.cloud.test", "A")
    has(sink, "web1.cloud.test", "A", {"10.0.0.5"})
    late = post(sink, fresh(assoc, timestamp="2024-03-05 10:31:00.000000"))  # associates with the deleted port
    assert late["status"] == "ignored" and "port" in late["reason"]
    gone(sink, "web1.fip.cloud.test", "A")


def test_cloudstack_zone_choice_and_group_records(sink):
    acct8 = "e2c7ad16"
    vm1 = load("cloudstack_VM.CREATE.json")
    out = post(sink, vm1)
    assert out["status"] == "applied", out
    has(sink, "app1.acct.test", "A", {"10.1.1.21"})
    has(sink, "app1.acct.test", "AAAA", {"2001:db8:1::21"})
    has(sink, "21.1.1.10.in-addr.arpa", "PTR", {"app1.acct.test."})
    has(sink, f"web-servers-{acct8}.acct.test", "A", {"10.1.1.21"})
    # A second VM of the group: the group record holds both.
    vm2 = fresh(vm1)
    vm2["vm"].update(id=str(uuid.uuid4()), name="app2", nic=[{"ipaddress": "10.1.1.22", "isdefault": True}])
    post(sink, vm2)
    has(sink, f"web-servers-{acct8}.acct.test", "A", {"10.1.1.21", "10.1.1.22"})
    has(sink, f"web-servers-{acct8}.acct.test", "AAAA", {"2001:db8:1::21"})
    # No account network domain: the domain's; neither: the common zone. A non-ASCII group is IDNA-encoded.
    vm3 = fresh(vm1, account_details={**vm1["account_details"], "networkdomain": None})
    vm3["vm"].update(id=str(uuid.uuid4()), name="db1", group="Bücher", nic=[{"ipaddress": "10.1.1.23"}])
    post(sink, vm3)
    has(sink, "db1.dom.test", "A", {"10.1.1.23"})
    has(sink, f"xn--bcher-{acct8}-gsb.dom.test", "A", {"10.1.1.23"})
    vm4 = fresh(vm1, account_details={"id": vm1["account"], "name": "shop"}, domain_details={"id": "d", "name": "customers"})
    vm4["vm"].update(id=str(uuid.uuid4()), name="batch1", group=None, nic=[{"ipaddress": "10.1.1.24"}])
    post(sink, vm4)
    has(sink, "batch1.common.test", "A", {"10.1.1.24"})
    # VM.START of an existing VM changes nothing; destroying vm1 leaves vm2 in the group.
    before = serial(sink, "acct.test.")
    post(sink, fresh(vm1, event="VM.START", eventDateTime="2024-03-05 10:05:00 +0000"))
    assert serial(sink, "acct.test.") == before
    out = post(sink, load("cloudstack_VM.DESTROY.json"))
    assert out["status"] == "applied"
    gone(sink, "app1.acct.test", "A")
    gone(sink, "21.1.1.10.in-addr.arpa", "PTR")
    has(sink, f"web-servers-{acct8}.acct.test", "A", {"10.1.1.22"})
    gone(sink, f"web-servers-{acct8}.acct.test", "AAAA")
    # Events in other states are not acted on.
    assert post(sink, fresh(vm2, status="Started"))["status"] == "ignored"


def test_oslo_message_wrapping_and_batches(sink):
    create = load("nova_compute.instance.create.end.json")
    wrapped = {"oslo.version": "2.0", "oslo.message": orjson.dumps(create).decode()}
    second = fresh(create)
    second["payload"] = {**second["payload"], "instance_id": str(uuid.uuid4()), "hostname": "web2",
                         "fixed_ips": [{"address": "10.0.0.6", "version": 4, "type": "fixed", "label": "private"}]}
    ignored = fresh(create, event_type="compute.instance.update")
    out = post(sink, [wrapped, {"oslo.version": "2.0", "oslo.message": orjson.dumps(second).decode()}, ignored])
    assert [e["status"] for e in out["events"]] == ["applied", "applied", "ignored"], out
    has(sink, "web1.cloud.test", "A", {"10.0.0.5"})
    has(sink, "web2.cloud.test", "A", {"10.0.0.6"})
    out = post(sink, {"events": [wrapped]})
    assert out["events"][0]["duplicate"] is True


def test_a_bad_event_is_refused_with_its_reason_and_writes_nothing(sink):
    bad = load("nova_compute.instance.create.end.json")
    bad["payload"]["fixed_ips"][0]["address"] = "10.0.0.300"
    before = serial(sink, "cloud.test.")
    out = post(sink, bad, status=422)
    assert out["status"] == "failed" and "10.0.0.300" in out["reason"] and out["changes"] == []
    got = sink.get(f"/v1/events/{bad['message_id']}", token=INGEST).json()
    assert got["status"] == "failed" and "not an IP address" in got["reason"]
    assert serial(sink, "cloud.test.") == before
    gone(sink, "web1.cloud.test", "A")
    # Sent again once fixed (the same message id): a failed event is tried again.
    out = post(sink, load("nova_compute.instance.create.end.json"))
    assert out["status"] == "applied" and not out["duplicate"]
    assert sink.get(f"/v1/events/{bad['message_id']}", token=INGEST).json()["attempts"] == 2
    # In a batch, an event that cannot even be recorded (no message id) is rejected; the others apply.
    other = fresh(load("neutron_floatingip.update.end_associate.json"))
    out = post(sink, [other, {"event_type": "compute.instance.create.end"}], status=422)
    assert [e["status"] for e in out["events"]] == ["applied", "rejected"]
    r = sink.post("/v1/events", data=b"{not json", token=INGEST)
    assert r.status_code == 400 and r.json()["type"] == "invalid_json"
    r = sink.post("/v1/events", json={"event_type": "compute.instance.create.end", "payload": {}}, token=INGEST)
    assert r.status_code == 400 and "message_id" in r.json()["message"]
    r = sink.post("/v1/events", json={"oslo.version": "2.0", "oslo.message": "{broken"}, token=INGEST)
    assert r.status_code == 400 and "oslo.message" in r.json()["message"]
    metrics = sink.get("/metrics", token=None).text
    assert 'minidns_events_total{outcome="failed"} 1' in metrics
    assert sink.get("/v1/events?status=failed", token=INGEST).json()["events"] == []  # applied on retry


def test_a_missing_zone_fails_the_event(api_config, database_url, request):
    with open(api_config, "a") as f:
        f.write('events_zone_suffix = "projects.test."\n')
    make_zones(database_url, ["projects.test."])
    api = request.getfixturevalue("api")
    out = post(api, load("nova_compute.instance.create.end.json"), status=422)
    assert out["status"] == "failed" and f"{TENANT}.projects.test." in out["reason"]
    make_zones(database_url, [f"{TENANT}.projects.test."])
    assert post(api, load("nova_compute.instance.create.end.json"))["status"] == "applied"
    has(api, f"web1.{TENANT}.projects.test", "A", {"10.0.0.5"})


def test_auth(sink):
    create = load("nova_compute.instance.create.end.json")
    assert sink.post("/v1/events", json=create, token=ALICE).status_code == 403
    assert sink.post("/v1/events", json=create, token=None).status_code == 401
    assert sink.post("/v1/reconcile", json={"source": "nova", "resource_ids": []}, token=INGEST).status_code == 403
    assert sink.get("/v1/events/nope", token=INGEST).status_code == 404
    assert post(sink, create)["status"] == "applied"
    assert sink.get(f"/v1/events/{create['message_id']}").json()["status"] == "applied"  # admin


def test_reconcile_removes_records_of_resources_that_are_gone(sink, cli):
    create = load("nova_compute.instance.create.end.json")
    keep_id, gone_id, cli_id = (str(uuid.uuid4()) for _ in range(3))
    for iid, host, addr in ((keep_id, "keep", "10.0.0.7"), (gone_id, "old", "10.0.0.8"), (cli_id, "cli", "10.0.0.9")):
        ev = fresh(create)
        ev["payload"] = {**ev["payload"], "instance_id": iid, "hostname": host,
                         "fixed_ips": [{"address": addr, "version": 4, "type": "fixed", "label": "private"}]}
        post(sink, ev)
    add_record(sink.database_url, "cloud.test.", "manual", "A", "192.0.2.9")
    has(sink, "old.cloud.test", "A", {"10.0.0.8"})
    dry = sink.post("/v1/reconcile", json={"source": "nova", "resource_ids": [keep_id, cli_id], "dry_run": True}).json()
    assert dry["resources"] == [gone_id] and len(dry["removed"]) == 2
    has(sink, "old.cloud.test", "A", {"10.0.0.8"})
    r = sink.post("/v1/reconcile", json={"source": "nova", "resource_ids": [keep_id, cli_id]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["resources"] == [gone_id]
    assert {(c["name"], c["type"]) for c in out["removed"]} == {("old.cloud.test.", "A"), ("8.0.0.10.in-addr.arpa.", "PTR")}
    gone(sink, "old.cloud.test", "A")
    has(sink, "keep.cloud.test", "A", {"10.0.0.7"})
    has(sink, "manual.cloud.test", "A", {"192.0.2.9"})
    # From a shell: the same, printing what it removed.
    done = cli("reconcile", "nova", keep_id, "--database-url", sink.database_url)
    assert done.returncode == 0, done.stderr
    assert "cli.cloud.test." in done.stdout and "1 resource(s) gone" in done.stdout
    gone(sink, "cli.cloud.test", "A")
    has(sink, "keep.cloud.test", "A", {"10.0.0.7"})
    # A late create of a reconciled instance is ignored (it is a tombstone now).
    late = fresh(create)
    late["payload"] = {**late["payload"], "instance_id": gone_id, "hostname": "old"}
    assert post(sink, late)["status"] == "ignored"
    gone(sink, "old.cloud.test", "A")
    assert sink.post("/v1/reconcile", json={"source": "nova"}).status_code == 400


# -- the database away --------------------------------------------------------------------------------


@pytest.fixture
def own_pg(tmp_path):
    from tests.server.test_database import OwnPostgres

    pg = OwnPostgres(tmp_path / "own")
    try:
        yield pg
    finally:
        pg.close()


def test_database_outage_answers_503_with_retry_after_and_loses_nothing(serve, own_pg, api_config):
    with open(api_config, "a") as f:
        f.write(CONFIG)
    make_zones(own_pg.url, ["cloud.test."])
    port = free_port()
    served = serve("--database-url", own_pg.url, "--config", str(api_config), "--api-listen", f"127.0.0.1:{port}",
                   "--listen", "127.0.0.1:0")  # fmt: skip
    served.wait_for(r"API listening on", 30)
    api = Api(f"http://127.0.0.1:{port}", served, own_pg.url)
    create = load("nova_compute.instance.create.end.json")
    own_pg.stop()
    for _ in range(2):  # the pool's old connection, then a new one that cannot connect
        r = api.post("/v1/events", json=create, token=INGEST)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "5"
    assert api.get(f"/v1/events/{create['message_id']}", token=INGEST).status_code == 503
    # The rest of the API says the same (a JSON body, Retry-After), and writes nothing.
    for method, path, body in (("POST", "/v2/zones", {"name": "new.test.", "email": "h@new.test"}), ("GET", "/v2/zones", None)):
        r = api.request(method, path, json=body, token=ADMIN)
        assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
        assert r.json()["type"] == "service_unavailable" and r.json()["request_id"]
    own_pg.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            r = api.post("/v1/events", json=create, token=INGEST)
        except requests.RequestException:
            r = None
        if r is not None and r.status_code == 200:
            break
        assert time.monotonic() < deadline, r.text if r is not None else "no reply"
        time.sleep(0.2)
    assert r.json()["status"] == "applied" and not r.json()["duplicate"]
    has(api, "web1.cloud.test", "A", {"10.0.0.5"})
    metrics = api.get("/metrics", token=None).text
    assert 'minidns_events_total{outcome="unavailable"}' in metrics
    assert [z["name"] for z in api.get("/v2/zones", token=ADMIN, headers={"X-Auth-All-Projects": "true"}).json()["zones"]] \
        == ["cloud.test."]  # fmt: skip


def test_retention_removes_old_events_and_tombstones(api_config, database_url, request):
    """events_keep_days: at start (then hourly) events received longer ago and tombstones of
    resources deleted longer ago go; newer ones and live resources, however old, stay."""
    with open(api_config, "a") as f:
        f.write(CONFIG + "events_keep_days = 2\n")
    make_zones(database_url)
    db_run(database_url, lambda s: s.pool.execute("""
        INSERT INTO events (message_id, source, event_type, status, received_at) VALUES
          ('old', 'nova', 'x', 'applied', now() - interval '3 days'),
          ('new', 'nova', 'x', 'applied', now() - interval '1 day');
        INSERT INTO event_resources (source, resource_type, resource_id, state, updated_at) VALUES
          ('nova', 'instance', 'gone-old', 'deleted', now() - interval '3 days'),
          ('nova', 'instance', 'gone-new', 'deleted', now() - interval '1 day'),
          ('nova', 'instance', 'live-old', 'live', now() - interval '30 days');
    """))  # fmt: skip
    sink = request.getfixturevalue("api")
    sink.served.wait_for(r"events retention: removed 1 events and 1 tombstones older than 2 days", 10)
    events = db_run(database_url, lambda s: s.pool.fetch("SELECT message_id FROM events"))
    assert {r[0] for r in events} == {"new"}
    resources = db_run(database_url, lambda s: s.pool.fetch("SELECT resource_id FROM event_resources"))
    assert {r[0] for r in resources} == {"gone-new", "live-old"}
    # The pruned tombstone no longer stops a create for that id: a create that late is applied.
    late = load("nova_compute.instance.create.end.json")
    late["payload"]["instance_id"] = "gone-old"
    assert post(sink, late)["status"] == "applied"
    has(sink, "web1.cloud.test", "A", {"10.0.0.5"})


def test_neutron_floating_ips_are_offered_for_reverse_dns(sink):
    """A floating IP Neutron says a project holds appears in that project's
    /v2/reverse/floatingips (region events_region), where the project sets its PTR — which wins
    over the PTR the event made — and the floating IP's delete takes both away."""
    make_zones(sink.database_url, ["113.0.203.in-addr.arpa."])
    assoc = load("neutron_floatingip.update.end_associate.json")
    assoc["payload"]["floatingip"].update(tenant_id="alice", project_id="alice")
    fid = assoc["payload"]["floatingip"]["id"]
    assert post(sink, assoc)["status"] == "applied"
    has(sink, "10.113.0.203.in-addr.arpa", "PTR", {"203-0-113-10.cloud.test."})  # the event's own PTR
    listed = sink.get("/v2/reverse/floatingips", token=ALICE).json()["floatingips"]
    assert [(f["id"], f["address"], f["ptrdname"]) for f in listed] == [(f"RegionOne:{fid}", "203.0.113.10", None)]
    assert sink.get("/v2/reverse/floatingips", token=BOB).json()["floatingips"] == []
    r = sink.patch(f"/v2/reverse/floatingips/RegionOne:{fid}", json={"ptrdname": "www.alice.example."}, token=ALICE)
    assert r.status_code == 202, r.text
    has(sink, "10.113.0.203.in-addr.arpa", "PTR", {"www.alice.example."})
    # A later update of the floating IP keeps the project's PTR (a person's choice is never overwritten).
    post(sink, fresh(assoc, timestamp="2024-03-05 10:40:00.000000"))
    has(sink, "10.113.0.203.in-addr.arpa", "PTR", {"www.alice.example."})
    assert sink.get(f"/v2/reverse/floatingips/RegionOne:{fid}", token=ALICE).json()["ptrdname"] == "www.alice.example."
    out = post(sink, load("neutron_floatingip.delete.end.json"))
    assert out["status"] == "applied", out
    gone(sink, "10.113.0.203.in-addr.arpa", "PTR")
    assert sink.get("/v2/reverse/floatingips", token=ALICE).json()["floatingips"] == []
