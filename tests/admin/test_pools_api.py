"""Pools end to end on a real `minidns serve`: zones the API and the event sink make carry the
pool's NS records at the apex (RFC 1034 §4.2.1), and `minidns pool set-ns` moves every zone of the
pool to a new NS set — served, listed by /v2/pools and /nameservers — through the write path."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dns.rdatatype

from conftest import ADMIN, ALICE, INGEST, POOL_NS_NAMES, free_port
from v2util import answers, make_zone, wait_active

EVENTS = Path(__file__).resolve().parent / "events"


def ns_of(api, zone: str) -> set[str]:
    r = api.dig(zone, "NS")
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.NS for rd in rrset}


def mname_of(api, zone: str) -> str:
    return api.dig(zone, "SOA").answer[0][0].mname.to_text()


def test_zones_the_sink_makes_have_the_pools_ns_records(api_config, request):
    with open(api_config, "a") as f:
        f.write('events_zone = "cloud.test."\nevents_create_ptr_zones = true\n')
    api = request.getfixturevalue("api")
    make_zone(api, "cloud.test.", ADMIN)
    event = json.loads((EVENTS / "nova_compute.instance.create.end.json").read_text())
    r = api.post("/v1/events", json=event, token=INGEST)
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    api.wait_dns("5.0.0.10.in-addr.arpa.", "PTR", answers("5.0.0.10.in-addr.arpa.", "PTR", {"web1.cloud.test."}))
    made = {c["zone"] for c in r.json()["changes"] if c["op"] == "create_zone"}
    assert "0.0.10.in-addr.arpa." in made, r.json()
    for zone in ["cloud.test.", *made]:
        assert ns_of(api, zone) == POOL_NS_NAMES, zone
        assert mname_of(api, zone) == "ns1.pool.test.", zone


def test_pool_set_ns_moves_every_zone_of_the_pool(api, cli):
    zones = [make_zone(api, f"move{i}.test.", ALICE)["name"] for i in range(3)]
    for z in zones:
        api.wait_dns(z, "NS", answers(z, "NS", POOL_NS_NAMES))
    serials = {z: api.dig(z, "SOA").answer[0][0].serial for z in zones}
    out = cli("pool", "set-ns", "default", "ns-b.pool.test.:2", "ns-a.pool.test.:1", "--database-url", api.database_url)
    assert out.returncode == 0, out.stderr
    assert sorted(line.split()[0] for line in out.stdout.splitlines()) == sorted(zones)
    for z in zones:
        api.wait_dns(z, "NS", answers(z, "NS", {"ns-a.pool.test.", "ns-b.pool.test."}))
        soa = api.dig(z, "SOA").answer[0][0]
        assert soa.mname.to_text() == "ns-a.pool.test." and soa.serial == serials[z] + 1
    zid = api.get("/v2/zones?name=move0.test.", token=ALICE).json()["zones"][0]["id"]
    assert api.get(f"/v2/zones/{zid}/nameservers", token=ALICE).json()["nameservers"] == [
        {"hostname": "ns-a.pool.test.", "priority": 1}, {"hostname": "ns-b.pool.test.", "priority": 2}]
    assert api.get("/v2/pools").json()["pools"][0]["ns_records"][0]["hostname"] == "ns-a.pool.test."
    listed = cli("pool", "list", "--database-url", api.database_url)
    assert "ns-a.pool.test.:1 ns-b.pool.test.:2" in listed.stdout and "3 zone(s)" in listed.stdout, listed.stdout
    bad = cli("pool", "set-ns", "default", "relative", "--database-url", api.database_url)
    assert bad.returncode == 1 and "absolute" in bad.stderr
    assert ns_of(api, zones[0]) == {"ns-a.pool.test.", "ns-b.pool.test."}  # nothing changed by the refusal


def test_a_zone_moves_to_another_pool(api, cli):
    made = cli("pool", "create", "edge", "ns1.edge.test.", "ns2.edge.test.", "--database-url", api.database_url)
    assert made.returncode == 0, made.stderr
    edge = next(p for p in api.get("/v2/pools").json()["pools"] if p["name"] == "edge")
    z = make_zone(api, "mover.test.", ALICE)
    api.wait_dns("mover.test.", "NS", answers("mover.test.", "NS", POOL_NS_NAMES))
    url = f"/v2/zones/{z['id']}/tasks/pool_move"
    assert api.post(url, json={"pool_id": edge["id"]}, token=ALICE).status_code == 403
    r = api.post(url, json={"pool_id": "00000000-0000-0000-0000-000000000000"}, headers={"X-Auth-All-Projects": "true"})
    assert r.status_code == 404 and r.json()["type"] == "pool_not_found", r.text
    r = api.post(url, json={"pool_id": edge["id"]}, headers={"X-Auth-All-Projects": "true"})
    assert r.status_code == 202 and r.json()["pool_id"] == edge["id"], r.text
    api.wait_dns("mover.test.", "NS", answers("mover.test.", "NS", {"ns1.edge.test.", "ns2.edge.test."}))
    assert mname_of(api, "mover.test.") == "ns1.edge.test."
    # Back by the CLI; a pool with zones is not deleted.
    back = cli("pool", "move-zone", "default", "mover.test.", "--database-url", api.database_url)
    assert back.returncode == 0, back.stderr
    api.wait_dns("mover.test.", "NS", answers("mover.test.", "NS", POOL_NS_NAMES))
    assert cli("pool", "delete", "edge", "--database-url", api.database_url).returncode == 0


def test_a_pools_targets_are_watched_for_each_of_its_zones(api_config, request, cli):
    """A pool's target is a secondary of every zone of the pool: NOTIFYed and watched, so a target
    that never takes the zone leaves it in ERROR, while a zone of a pool without targets is ACTIVE."""
    with open(api_config, "a") as f:
        f.write("propagation_timeout = 2.0\nnotify_timeout = 0.2\nnotify_retries = 2\n")
    api = request.getfixturevalue("api")
    silent = free_port()  # nothing answers there
    out = cli("pool", "target-add", "default", "127.0.0.1", "--port", silent, "--database-url", api.database_url)
    assert out.returncode == 0, out.stderr
    assert cli("pool", "create", "quiet", "ns1.quiet.test.", "--database-url", api.database_url).returncode == 0
    quiet = next(p["id"] for p in api.get("/v2/pools").json()["pools"] if p["name"] == "quiet")
    watched = make_zone(api, "watched.test.", ALICE)
    alone = make_zone(api, "alone.test.", ADMIN, attributes={"pool_id": quiet})
    wait_active(api, alone["id"], ADMIN)
    deadline = time.monotonic() + 15
    while api.get(f"/v2/zones/{watched['id']}", token=ALICE).json()["status"] != "ERROR":
        assert time.monotonic() < deadline, api.get(f"/v2/zones/{watched['id']}", token=ALICE).json()
        time.sleep(0.1)
    status = cli("zone", "status", "watched.test.", "--database-url", api.database_url)
    assert f"127.0.0.1#{silent}" in status.stdout, status.stdout
    assert cli("pool", "target-delete", "default", "127.0.0.1", "--port", silent,
               "--database-url", api.database_url).returncode == 0  # fmt: skip
