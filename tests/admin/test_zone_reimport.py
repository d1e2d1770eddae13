"""Zone files on every import door — `minidns zone import`, POST /v2/zones/tasks/imports (text/dns
and JSON), zone files served read-only — refuse a record outside the zone, naming the file and the
line, and store nothing. A zone deleted and made again (imported, or created through the API)
gets a serial above the one it had, so a client holding the old zone sees a newer one over SOA
and IXFR (RFC 1995 §2, RFC 1996 §4.7)."""

from __future__ import annotations

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from conftest import ALICE

E6 = """$ORIGIN e6.example.
$TTL 300
@   IN SOA ns1 hostmaster 2026120702 3600 600 86400 300
@   IN NS  ns1
ns1 IN A   192.0.2.53
www.other.example. IN A 192.0.2.66
www IN A   192.0.2.80
"""
OUT_OF_ZONE = "6: www.other.example. is outside the zone e6.example."
GOOD = E6.replace("www.other.example. IN A 192.0.2.66\n", "")


def post_import(api, text: str, ctype: str = "text/dns"):
    if ctype == "application/json":
        return api.post("/v2/zones/tasks/imports", json={"zonefile": text}, token=ALICE)
    return api.request("POST", "/v2/zones/tasks/imports", token=ALICE, data=text.encode(), headers={"Content-Type": ctype})


def zones(api) -> list[str]:
    return [z["name"] for z in api.get("/v2/zones", headers={"X-Auth-All-Projects": "true"}).json()["zones"]]


def soa_serial(api, name: str = "e6.example.") -> int | None:
    r = api.dig(name, "SOA")
    return next((rr.serial for rrset in r.answer if rrset.rdtype == dns.rdatatype.SOA for rr in rrset), None)


def wait_serial(api, serial: int | None, name: str = "e6.example.") -> None:
    """Until the server answers the zone with `serial` (None: it answers REFUSED, the zone gone)."""
    if serial is None:
        api.wait_dns(name, "SOA", lambda r: r.rcode() == dns.rcode.REFUSED)
    else:
        api.wait_dns(name, "SOA", lambda r: any(rrset.rdtype == dns.rdatatype.SOA and rrset[0].serial == serial
                                                for rrset in r.answer))  # fmt: skip


def test_an_out_of_zone_line_is_refused_by_every_import_door_and_nothing_is_stored(api, cli, tmp_path):
    path = tmp_path / "e6.example.zone"
    path.write_text(E6)
    p = cli("zone", "import", path, "--database-url", api.database_url)
    assert p.returncode != 0 and f"{path}:{OUT_OF_ZONE}" in p.stderr, (p.returncode, p.stdout, p.stderr)
    assert "imported" not in p.stdout
    for ctype in ("text/dns", "application/json"):
        r = post_import(api, E6, ctype)
        assert r.status_code == 202, r.text
        t = r.json()
        assert (t["status"], t["message"], t["zone_id"]) == ("ERROR", f"zonefile:{OUT_OF_ZONE}", None), t
    assert zones(api) == []
    assert api.dig("www.other.example.", "A").rcode() == dns.rcode.REFUSED
    assert api.dig("www.e6.example.", "A").rcode() == dns.rcode.REFUSED


def test_a_zone_file_served_read_only_with_an_out_of_zone_line_is_not_loaded(serve, tmp_path):
    path = tmp_path / "e6.example.zone"
    path.write_text(E6)
    good = tmp_path / "good.zone"
    good.write_text(GOOD.replace("e6.example.", "e7.example."))
    s = serve("--zone-file", str(path), "--zone-file", str(good), "--no-api")
    s.wait_for(rf"zone not loaded: {path}:{OUT_OF_ZONE}")
    q = dns.message.make_query("www.e6.example.", "A")
    assert dns.query.udp(q, "127.0.0.1", port=s.port, timeout=2).rcode() == dns.rcode.REFUSED
    q = dns.message.make_query("www.e7.example.", "A")
    assert dns.query.udp(q, "127.0.0.1", port=s.port, timeout=2).answer[0][0].to_text() == "192.0.2.80"


def ixfr_from(api, serial: int) -> list:
    """An IXFR from `serial`, as a secondary holding that serial asks: the records of the reply."""
    msgs = dns.query.xfr("127.0.0.1", "e6.example.", port=api.dns_port, rdtype=dns.rdatatype.IXFR, serial=serial,
                         relativize=False, timeout=5, lifetime=20)  # fmt: skip
    return [(rrset.name.to_text(), rrset.rdtype, rd) for m in msgs for rrset in m.answer for rd in rrset]


def test_a_zone_deleted_and_made_again_gets_a_greater_serial_on_every_door(api, cli, tmp_path):
    path = tmp_path / "e6.example.zone"
    path.write_text(GOOD)
    t = post_import(api, GOOD).json()
    assert t["status"] == "COMPLETE", t
    wait_serial(api, 2026120702)
    assert api.delete(f"/v2/zones/{t['zone_id']}", token=ALICE).status_code == 202
    wait_serial(api, None)

    # The same file through the API again: the serial moves on from the deleted zone's.
    t = post_import(api, GOOD).json()
    assert t["status"] == "COMPLETE", t
    assert t["message"].endswith("serial 2026120702 is not above 2026120702, the last serial of the deleted zone: "
                                 "using 2026120703"), t  # fmt: skip
    assert api.get(f"/v2/zones/{t['zone_id']}", token=ALICE).json()["serial"] == 2026120703
    wait_serial(api, 2026120703)
    # A secondary holding the old zone asks for what changed since its serial: it gets the new zone.
    got = ixfr_from(api, 2026120702)
    assert got[0][1] == dns.rdatatype.SOA and got[0][2].serial == 2026120703 and got[-1][2].serial == 2026120703
    assert ("www.e6.example.", dns.rdatatype.A, "192.0.2.80") in {(n, t, rd.to_text()) for n, t, rd in got}

    # The CLI: deleted, imported again.
    p = cli("zone", "delete", "e6.example.", "--database-url", api.database_url)
    assert p.returncode == 0, p.stderr
    wait_serial(api, None)
    p = cli("zone", "import", path, "--database-url", api.database_url)
    assert p.returncode == 0, p.stderr
    assert "imported e6.example. serial 2026120704" in p.stdout and "using 2026120704" in p.stdout, p.stdout
    wait_serial(api, 2026120704)

    # Created through the API (its own first serial would be 1): above too.
    p = cli("zone", "delete", "e6.example.", "--database-url", api.database_url)
    assert p.returncode == 0, p.stderr
    r = api.post("/v2/zones", json={"name": "e6.example.", "email": "hostmaster@e6.example"}, token=ALICE)
    assert r.status_code == 202 and r.json()["serial"] == 2026120705, r.text
    wait_serial(api, 2026120705)

