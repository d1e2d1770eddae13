"""Zones made the Designate way, served by real secondaries: one made through the API (`POST
/v2/zones`, what `openstack zone create` does, with recordsets added through the API), the zone
the event sink writes into (made through the API too: the sink makes no forward zone) and the
reverse zones the sink makes by itself for a Nova compute.instance.create.end notification
(events_create_ptr_zones). BIND 9, Knot, NSD and PowerDNS configured with these zones transfer
them from a real `minidns serve` (API, sink and embedded PostgreSQL on loopback) and serve them;
BIND as an RFC 9432 catalog-zone consumer adds them by itself from `minidns catalog create`'s
catalog.

What is checked (issue 17 part 2): every one of these zones has at its apex the NS RRset of its
pool — the default pool, whose NS names come from the configuration (pool_nameservers) — and its
SOA MNAME is the first of them (RFC 1034 §4.2.1; BIND 9.18 refuses on transfer a zone without
NS: "has no NS records"); `/v2/zones/{id}/nameservers` lists them; each secondary holds the same
data as minidns (AXFR compared) and answers SOA, NS and every RRset as minidns does; a change made
through the API reaches every secondary.

Everything is started once for the module (`world`) in this order: minidns, the catalog, the
catalog consumer, the zones, the four secondaries configured with them. The tests run in file
order; the last one changes a zone.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import pytest

from interop_common import canonical_rdata
from secondaries import KINDS, Secondary, free_port, rectify, soa_serial, wait_serial
from test_transfers_interop import ME, XFR_TIMEOUT, Setup, cli
from tests.admin.conftest import INGEST, TOKENS, Api

POOL_NS = ("ns1.pool.example.net.", "ns2.pool.example.org.")  # the default pool's NS, in priority order
API_ZONE = "api.test."
EVENTS_ZONE = "cloud.test."  # events_zone: where the sink writes Nova's records
# The reverse zones the sink makes for the instance's 10.0.0.5 and 2001:db8:10::5: a /24 and a /64.
REVERSE_ZONES = ("0.0.10.in-addr.arpa.", "0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa.")
ZONES = (API_ZONE, EVENTS_ZONE, *REVERSE_ZONES)
CATALOG = "catalog.invalid."
CONSUMER = "bind-catalog"  # BIND consuming CATALOG (the other secondaries are named by their kind)
NOVA_CREATE = Path(__file__).resolve().parents[1] / "admin" / "events" / "nova_compute.instance.create.end.json"

API_RECORDSETS = [  # (name, type, records) added to API_ZONE through the API
    ("www.api.test.", "A", ["192.0.2.10", "192.0.2.11"]),
    ("www.api.test.", "AAAA", ["2001:db8::10"]),
    ("api.test.", "MX", ["10 mail.example.net."]),
    ("api.test.", "TXT", ['"v=spf1 -all"']),
    ("ftp.api.test.", "CNAME", ["www.api.test."]),
]


@dataclasses.dataclass
class World:
    setup: Setup
    api: Api
    ids: dict[str, str]  # zone name -> zone id (API)

    @property
    def minidns(self) -> tuple[str, int]:
        return self.setup.minidns.addr


def _config(api_port: int) -> str:
    """What the module's minidns adds to test_transfers_interop's configuration: the API and its
    tokens, the sink's zone and reverse zones, the default pool's NS names."""
    tokens = ", ".join(f'{{ token = "{t["token"]}", project = "{t["project"]}", role = "{t["role"]}" }}'
                       for t in TOKENS)
    text = (f'api_listen = "127.0.0.1:{api_port}"\n'
            f"api_tokens = [{tokens}]\n"
            f'events_zone = "{EVENTS_ZONE}"\n'
            "events_create_ptr_zones = true\n")
    return text + "pool_nameservers = [" + ", ".join(f'"{n}"' for n in POOL_NS) + "]\n"


def _make_zone(api: Api, name: str) -> str:
    r = api.post("/v2/zones", json={"name": name, "email": f"hostmaster@{name.rstrip('.')}", "ttl": 600})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _zone_id(api: Api, name: str) -> str:
    r = api.get(f"/v2/zones?name={name}", headers={"X-Auth-All-Projects": "true"})
    assert r.status_code == 200, r.text
    zones = r.json()["zones"]
    assert len(zones) == 1, (name, zones)
    return zones[0]["id"]


def _post_event(api: Api, event: dict) -> None:
    r = api.post("/v1/events", json=event, token=INGEST)
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text


@pytest.fixture(scope="module")
def world(tmp_path_factory, new_database) -> World:
    with new_database() as url:
        setup = Setup(tmp_path_factory.mktemp("api-zones"), url)
        with setup.stack:
            yield _start_world(setup)


def _start_world(setup: Setup) -> World:
    sec_ports = {name: free_port() for name in (*KINDS, CONSUMER)}
    api_port = free_port()
    m = setup.serve(free_port(), [(p, None) for p in sec_ports.values()], extra=_config(api_port))
    m.wait_for(r"API listening on", 30)
    api = Api(f"http://127.0.0.1:{api_port}", m, setup.url)

    # The catalog first, with its consumer: the zones made next join it and the consumer adds them.
    p = cli("catalog", "create", CATALOG, "--config", m.conf)
    assert p.returncode == 0 and f"created catalog zone {CATALOG}" in p.stdout, p.stdout + p.stderr
    consumer = setup.secondary(CONSUMER, "bind", sec_ports[CONSUMER], [], catalog=CATALOG)
    assert wait_serial(consumer, CATALOG, soa_serial(m.addr, CATALOG), XFR_TIMEOUT), setup.logs(CONSUMER)

    ids = {API_ZONE: _make_zone(api, API_ZONE), EVENTS_ZONE: _make_zone(api, EVENTS_ZONE)}
    for name, rtype, records in API_RECORDSETS:
        r = api.post(f"/v2/zones/{ids[API_ZONE]}/recordsets", json={"name": name, "type": rtype, "records": records})
        assert r.status_code == 202, r.text
    for zone in REVERSE_ZONES:
        assert soa_serial(m.addr, zone) is None, f"{zone} exists before the event"
    _post_event(api, json.loads(NOVA_CREATE.read_text()))
    for zone in REVERSE_ZONES:
        assert wait_serial(m.addr, zone, None, 5), f"the sink made no zone {zone}:\n{m.log()[-4000:]}"
        ids[zone] = _zone_id(api, zone)

    for kind in KINDS:
        setup.secondary(kind, kind, sec_ports[kind], list(ZONES))
    return World(setup, api, ids)


# ------------------------------------------------------------------------------------------------
# what a server answers


def _answer(addr: tuple[str, int], name: str, rdtype: str) -> tuple[str, bool, frozenset[str]]:
    """(rcode, AA, {"ttl TYPE rdata"}) of `addr`'s answer to `name` `rdtype`, records of that
    name and type only, names in rdata lowercased."""
    t = dns.rdatatype.from_text(rdtype)
    r = dns.query.udp(dns.message.make_query(name, t), addr[0], port=addr[1], timeout=2, source=ME)
    owner = dns.name.from_text(name)
    records = frozenset(f"{rrset.ttl} {rdtype} {canonical_rdata(rd)}" for rrset in r.answer
                        if rrset.rdtype == t and rrset.name == owner for rd in rrset)
    return dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AA), records


def _apex(addr: tuple[str, int], zone: str) -> tuple[set[str], str]:
    """(the NS names, the SOA MNAME) `addr` answers for `zone`."""
    _, _, ns = _answer(addr, zone, "NS")
    _, _, soa = _answer(addr, zone, "SOA")
    assert len(soa) == 1, (addr, zone, soa)
    return {r.split()[-1] for r in ns}, next(iter(soa)).split()[2]


def _canonical(rtype: str, text: str) -> str:
    return canonical_rdata(dns.rdata.from_text(dns.rdataclass.IN, rtype, text))


def _rrsets(records: set[str]) -> set[tuple[str, str]]:
    """(owner, type) of every RRset in a zone_records() set."""
    return {(r.split()[0], r.split()[3]) for r in records}


def _bind_refusal(sec: Secondary, zone: str) -> str | None:
    """The line of a BIND secondary's log refusing the content of `zone` as transferred (no NS at
    the apex, an in-zone NS without address records), if there is one."""
    if sec.kind != "bind" or not sec.log_path.exists():
        return None
    rx = rf"error: zone {re.escape(zone.rstrip('.'))}/IN: (has no NS records|NS '\S+' has no address records).*"
    m = re.search(rx, sec.log_path.read_text(errors="replace"))
    return m.group(0) if m else None


def _wait_transferred(world: World, zone: str, serial: int, names) -> set[str]:
    """Setup.wait_all(zone, serial, names) — but failing at once, with BIND's reason, when a BIND
    secondary refuses the zone instead of waiting XFR_TIMEOUT for it."""
    deadline = time.monotonic() + XFR_TIMEOUT
    for name in names:
        sec = world.setup.secs[name]
        while not wait_serial(sec, zone, serial, 0.5) and time.monotonic() < deadline:
            refused = _bind_refusal(sec, zone)
            assert refused is None, f"{name} ({sec.kind}) refuses {zone} serial {serial}: {refused}"
    return world.setup.wait_all(zone, serial, names=names)


def _check_serves(world: World, name: str) -> None:
    """Secondary `name` holds each zone as minidns does (AXFR compared, at minidns's serial) and
    answers SOA, NS and every RRset of it as minidns does."""
    sec = world.setup.secs[name]
    for zone in ZONES:
        want = _wait_transferred(world, zone, soa_serial(world.minidns, zone), [name])
        for owner, rdtype in sorted(_rrsets(want)):
            theirs, ours = _answer((sec.host, sec.port), owner, rdtype), _answer(world.minidns, owner, rdtype)
            assert theirs == ours and ours[1] and ours[2], (name, owner, rdtype, theirs, ours)
        assert _apex((sec.host, sec.port), zone) == (set(POOL_NS), POOL_NS[0]), (name, zone)


# ------------------------------------------------------------------------------------------------
# the tests


def _hostnames(api: Api, path: str, key: str) -> list[str]:
    """The hostnames of the list `key` of what the API answers at `path`, by priority."""
    r = api.get(path, headers={"X-Auth-All-Projects": "true"})
    assert r.status_code == 200, r.text
    return [n["hostname"] for n in sorted(r.json()[key], key=lambda n: n["priority"])]


def test_minidns_writes_the_pool_ns_at_each_apex(world):
    """Each zone's apex NS is its pool's NS set and its SOA MNAME the first of them; the API
    says so too: /v2/zones/{id}/nameservers, and the zone's pool in /v2/pools/{pool_id}."""
    for zone in ZONES:
        ns, mname = _apex(world.minidns, zone)
        assert ns == set(POOL_NS), f"{zone}: apex NS {sorted(ns)}, not the pool's {list(POOL_NS)}"
        assert mname == POOL_NS[0], f"{zone}: SOA MNAME {mname}, not the pool's first NS {POOL_NS[0]}"
        zid = world.ids[zone]
        assert _hostnames(world.api, f"/v2/zones/{zid}/nameservers", "nameservers") == list(POOL_NS), zone
        pool_id = world.api.get(f"/v2/zones/{zid}", headers={"X-Auth-All-Projects": "true"}).json()["pool_id"]
        assert _hostnames(world.api, f"/v2/pools/{pool_id}", "ns_records") == list(POOL_NS), zone


def test_the_api_zone_and_the_sink_zones_hold_what_was_made(world):
    """The data the secondaries are compared on is the data made: the API's recordsets, the
    sink's A/AAAA and PTRs (so an empty or wrong zone cannot pass the comparisons below)."""
    for name, rtype, records in API_RECORDSETS:
        _, aa, got = _answer(world.minidns, name, rtype)
        assert aa and {r.split(" ", 2)[2] for r in got} == {_canonical(rtype, v) for v in records}, (name, got)
    for address in ("10.0.0.5", "2001:db8:10::5"):  # the instance's, in Nova's notification
        forward = _answer(world.minidns, "web1.cloud.test.", "A" if "." in address else "AAAA")[2]
        assert {r.split()[-1] for r in forward} == {address}, forward
        reverse = _answer(world.minidns, dns.reversename.from_address(address).to_text(), "PTR")[2]
        assert {r.split()[-1] for r in reverse} == {"web1.cloud.test."}, (address, reverse)


@pytest.mark.parametrize("kind", KINDS)
def test_secondary_transfers_and_serves_the_zones(world, kind):
    _check_serves(world, kind)


def test_bind_catalog_consumer_adds_and_serves_the_zones(world):
    _check_serves(world, CONSUMER)


def test_a_change_through_the_api_reaches_every_secondary(world):
    """A recordset added and one replaced through the API: every secondary, the catalog consumer
    too, is NOTIFYed, reaches minidns's new serial, holds the same data and answers the change."""
    zone_id = world.ids[API_ZONE]
    before = soa_serial(world.minidns, API_ZONE)
    r = world.api.post(f"/v2/zones/{zone_id}/recordsets",
                       json={"name": "new.api.test.", "type": "A", "records": ["192.0.2.99"]})
    assert r.status_code == 202, r.text
    r = world.api.get(f"/v2/zones/{zone_id}/recordsets?name=www.api.test.&type=A")
    (www_a,) = r.json()["recordsets"]
    r = world.api.put(f"/v2/zones/{zone_id}/recordsets/{www_a['id']}", json={"records": ["192.0.2.12"]})
    assert r.status_code == 202, r.text
    assert wait_serial(world.minidns, API_ZONE, before + 2, 5)
    serial = soa_serial(world.minidns, API_ZONE)
    _wait_transferred(world, API_ZONE, serial, list(world.setup.secs))  # serials and AXFR compared
    new, www = _answer(world.minidns, "new.api.test.", "A"), _answer(world.minidns, "www.api.test.", "A")
    assert {r.split()[-1] for r in new[2]} == {"192.0.2.99"} and {r.split()[-1] for r in www[2]} == {"192.0.2.12"}
    for name, sec in world.setup.secs.items():
        rectify(sec, API_ZONE)  # PowerDNS answers what its IXFR added only then (see secondaries.py)
        addr = (sec.host, sec.port)
        assert _answer(addr, "new.api.test.", "A") == new and _answer(addr, "www.api.test.", "A") == www, name
        assert _apex(addr, API_ZONE) == (set(POOL_NS), POOL_NS[0]), name
