"""Real RFC 2136 clients writing to minidns (issue #20): ISC Kea DHCP-DDNS registering and
removing a lease (A, PTR and DHCID, RFC 4701/4703 conflict resolution), lego getting a
certificate from pebble by ACME DNS-01 (RFC 8555 §8.4), octodns syncing a YAML zone through
octodns-bind's Rfc2136Provider. Each runs against BIND too (the reference: same zones, same key),
so a failure against minidns alone is minidns's.

Each test starts its own primary, the client, and a recording proxy between them
(tests/interop/dnsspy.py) through which the test checks what the client really sent: UPDATE,
with TSIG, and the prerequisites Kea's conflict resolution relies on.

What the clients send (seen through the proxy, Kea 2.2.0, lego 4.9.1, octodns 1.22 with
octodns-bind 1.1.0; the same against BIND and minidns):
- Kea D2: UPDATE over UDP only, no SOA query first (the zone is configured), TSIG with the
  configured algorithm (MAC cut to digest-bits when set). Add: prerequisite "name not in use"
  (NONE ANY), adds A and DHCID; when that fails (YXDOMAIN), prerequisites "name in use" (ANY ANY)
  plus "DHCID RR equals mine" (IN DHCID), deletes the A RRset and adds the A. Reverse: no
  prerequisite, deletes the PTR and DHCID RRsets and adds both. Remove: prerequisite DHCID equals
  mine, deletes the A RR (NONE A); then prerequisites DHCID equals mine, no A, no AAAA (NONE A,
  NONE AAAA), deletes every RRset at the name (ANY ANY); reverse: prerequisite PTR equals the
  name, deletes every RRset at the name.
- lego: SOA queries walking up from _acme-challenge.<domain> to find the zone (through
  --dns.resolvers), then UPDATE over UDP without prerequisite: delete the TXT RRset, add the TXT
  (TTL RFC2136_TTL); cleanup deletes that one TXT RR (NONE TXT). pebble asks the TXT over UDP.
- octodns: AXFR over TCP signed with the key (to read the zone), then one UPDATE over TCP per
  1000 changes, no prerequisite: add for a new record, delete RRset + add for a changed one
  (dnspython's Update.replace), delete RR for a removed one. It ignores the apex NS and SOA.

minidns is configured with the key in `tsig_keys`, the grants below as `[[update_grants]]`, and
`allow_transfer = ["key:ddns-key."]` (octodns's AXFR; lego and Kea read nothing by transfer).
Kea's renewal of an unchanged lease deletes and re-adds the same RRsets: NOERROR, the serial kept.
Kea 2.2's D2 logs "DHCP_DDNS_INVALID_NCR ... read beyond end of buffer" every few seconds on its
NCR socket, also when nothing is sent (against BIND too): harmless, the real NCRs are all applied.
"""

from __future__ import annotations

import dns.rcode
import dns.rdata
import pytest
from cryptography import x509
from dnsspy import Spy
from secondaries import TsigKey, zone_records
from update_clients import (
    REVERSE,
    ZONE,
    answers,
    dhcid,
    ncr,
    octodns_sync,
    query,
    run_lego,
    send_ncr,
    start_bind,
    start_kea,
    start_minidns,
    start_pebble,
    wait_answers,
)

SECRET = "a2VhLWFuZC1sZWdvLWFuZC1vY3RvZG5zLXdyaXRlLXRvLW1pbmlkbnM="
KEY = TsigKey("ddns-key.", "hmac-sha256", SECRET)
PRIMARIES = ("bind", "minidns")

# The grants each client needs in minidns ([[update_grants]]): BIND's allow-update gives the key
# the whole zone, these as little as each client writes.
KEA_GRANTS = [  # A/AAAA/DHCID at any name; the removal deletes every RRset at the name (ANY): no types
    {"key": KEY.name, "zone": ZONE, "match": "zone"},
    {"key": KEY.name, "zone": REVERSE, "match": "zone"},
]
ACME_GRANTS = [{"key": KEY.name, "zone": ZONE, "match": "subdomain", "pattern": ZONE, "types": ["TXT"]}]
OCTODNS_GRANTS = [{"key": KEY.name, "zone": ZONE, "match": "zone"}]


@pytest.fixture
def primary(request, tmp_path):
    """primary(kind, grants, digest_bits=None): a started BIND or minidns for ZONE and REVERSE,
    stopped after the test."""
    started = []

    def make(kind: str, grants: list[dict], digest_bits: int | None = None):
        if kind == "bind":
            p = start_bind(tmp_path / "bind", KEY, digest_bits)
        else:
            p = start_minidns(tmp_path / "minidns", request.getfixturevalue("database_url"), KEY, grants)
        started.append(p)
        return p

    yield make
    for p in started:
        p.proc.stop()


def _updates(spy: Spy):
    return [m for m in spy.messages() if m.opcode == "UPDATE"]


def _rrsets(seen, section: str) -> list[str]:
    """An UPDATE's prerequisite ("answer") or update ("authority") section, short."""
    from dnsspy import short
    return [short(r) for r in getattr(seen.msg, section)]


# ------------------------------------------------------------------------------------------------
# Kea DHCP-DDNS


@pytest.mark.parametrize("digest_bits", [None, 128], ids=["full-mac", "mac-128"])
@pytest.mark.parametrize("kind", PRIMARIES)
def test_kea_registers_and_removes_a_lease(kind, digest_bits, primary, tmp_path):
    server = primary(kind, KEA_GRANTS, digest_bits)
    fqdn, ip, ptr = f"host1.{ZONE}", "192.0.2.10", f"10.{REVERSE}"
    mine, other = b"\x01\x00\x11\x22\x33\x44\x55", b"\x01\x00\x66\x77\x88\x99\xaa"
    my_dhcid = dns.rdata.from_wire("IN", "DHCID", dhcid(mine, fqdn), 0, len(dhcid(mine, fqdn))).to_text()
    with Spy(server.addr) as spy:
        kea = start_kea(tmp_path / "kea", ("127.0.0.1", spy.port), KEY, digest_bits)
        try:
            # 1. A new lease: forward A + DHCID, reverse PTR + DHCID.
            send_ncr(kea, ncr("add", fqdn, ip, mine))
            assert "ADD_SUCCEEDED" in kea.wait_done(1), kea.proc.log()
            assert answers(server, fqdn, "A") == {ip}
            assert answers(server, fqdn, "DHCID") == {my_dhcid}
            assert answers(server, ptr, "PTR") == {fqdn}
            assert answers(server, ptr, "DHCID") == {my_dhcid}
            first = _updates(spy)
            assert [u.msg.question[0].name.to_text() for u in first] == [ZONE, REVERSE], [u.describe() for u in first]
            assert _rrsets(first[0], "answer") == [f"{fqdn} NONE ANY 0 []"]  # RFC 2136 §2.4.5 name not in use

            # 2. Another client asks for the same name (RFC 4703 §5.3.1): the name is in use and its
            # DHCID is not the other client's, so both of Kea's attempts fail their prerequisites and
            # nothing changes.
            send_ncr(kea, ncr("add", fqdn, "192.0.2.11", other))
            assert "ADD_FAILED" in kea.wait_done(2), kea.proc.log()
            assert answers(server, fqdn, "A") == {ip}
            assert answers(server, f"11.{REVERSE}", "PTR") == set()
            conflict = _updates(spy)[len(first):]
            assert [u.rcode for u in conflict] == ["YXDOMAIN", "NXRRSET"], [u.describe() for u in conflict]
            assert _rrsets(conflict[0], "answer") == [f"{fqdn} NONE ANY 0 []"]  # §2.4.5 name not in use: YXDOMAIN
            assert f"{fqdn} ANY ANY 0 []" in _rrsets(conflict[1], "answer")  # §2.4.4 name in use, and ...
            assert any(" IN DHCID 0 " in r for r in _rrsets(conflict[1], "answer"))  # ... §2.4.2 this DHCID: NXRRSET

            # 3. The same client again with the same lease: the name is in use by it, so Kea replaces.
            send_ncr(kea, ncr("add", fqdn, ip, mine))
            assert "ADD_SUCCEEDED" in kea.wait_done(3), kea.proc.log()
            assert answers(server, fqdn, "A") == {ip}

            # 4. The lease ends: everything Kea added is gone.
            send_ncr(kea, ncr("remove", fqdn, ip, mine))
            assert "REMOVE_SUCCEEDED" in kea.wait_done(4), kea.proc.log()
            assert query(server, fqdn, "A").rcode() == dns.rcode.NXDOMAIN
            assert query(server, ptr, "PTR").rcode() == dns.rcode.NXDOMAIN
            assert "ADD_FAILED" not in "".join(l for i, l in enumerate(kea.outcomes()) if i != 1)
        finally:
            kea.proc.stop()
        sent = spy.messages()
    # All of it UPDATE over UDP, signed with the key (the MAC cut to digest-bits when set).
    assert sent and {(s.transport, s.opcode, s.tsig_algorithm) for s in sent} == {("udp", "UPDATE", "hmac-sha256.")}, \
        [s.describe() for s in sent]
    assert {s.mac_size for s in sent} == {(digest_bits or 256) // 8}
    # add: forward, reverse; conflict: name in use, not this DHCID; renewal: name in use, then
    # replaced with this DHCID, reverse; removal: the A, the rest of the name, the reverse.
    assert [s.rcode for s in sent] == ["NOERROR", "NOERROR", "YXDOMAIN", "NXRRSET", "YXDOMAIN", "NOERROR", "NOERROR",
                                       "NOERROR", "NOERROR", "NOERROR"], [s.describe() for s in sent]
    assert {s.reply.had_tsig for s in sent} == {True}  # the replies signed too (Kea checks them)
    if kind == "minidns":  # each applied update in the zone's history under the key's name
        for zone in (ZONE, REVERSE):
            sources = server.change_sources(zone)
            assert sources and set(sources) == {f"update:{KEY.name}"}, (zone, sources)



# ------------------------------------------------------------------------------------------------
# ACME DNS-01: lego and pebble


@pytest.mark.parametrize("kind", PRIMARIES)
def test_lego_gets_a_certificate_from_pebble(kind, primary, tmp_path):
    server = primary(kind, ACME_GRANTS)
    domain = f"www.{ZONE}".rstrip(".")
    with Spy(server.addr) as spy:
        pebble = start_pebble(tmp_path / "pebble", server.addr)
        try:
            r = run_lego(tmp_path, pebble, ("127.0.0.1", spy.port), KEY, domain)
        finally:
            pebble.proc.stop()
        sent = spy.messages()
    assert r.returncode == 0, f"lego failed:\n{r.stdout}{r.stderr}\npebble:\n{pebble.proc.log()}\n{server.kind}:\n{server.log()}"
    pem = (tmp_path / "lego" / "certificates" / f"{domain}.crt").read_bytes()
    cert = x509.load_pem_x509_certificates(pem)[0]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == [domain]
    # The challenge TXT was written and taken away again.
    challenge = f"_acme-challenge.{domain}."
    assert answers(server, challenge, "TXT") == set()
    updates = [s for s in sent if s.opcode == "UPDATE"]
    assert [(s.transport, s.tsig_algorithm, s.rcode) for s in updates] == [("udp", "hmac-sha256.", "NOERROR")] * 2, \
        [s.describe() for s in sent]
    assert all(s.msg.question[0].name.to_text() == ZONE for s in updates)
    assert any(s.opcode == "QUERY" and s.msg.question[0].rdtype == 6 for s in sent)  # the zone found by SOA
    if kind == "minidns":  # the challenge written, then removed, under the key's name
        assert server.change_sources(ZONE) == [f"update:{KEY.name}"] * 2


# ------------------------------------------------------------------------------------------------
# octodns


FIRST = {
    "www": {"type": "A", "ttl": 300, "values": ["192.0.2.1", "192.0.2.2"]},
    "v6": {"type": "AAAA", "value": "2001:db8::1"},
    "alias": {"type": "CNAME", "value": f"www.{ZONE}"},
    "mail": [{"type": "MX", "values": [{"exchange": "mx1.example.net.", "preference": 10}]},
             {"type": "TXT", "value": "v=spf1 -all"}],
    "_sip._tcp": {"type": "SRV", "values": [{"priority": 10, "weight": 5, "port": 5060, "target": "sip.example.net."}]},
    "": {"type": "CAA", "values": [{"flags": 0, "tag": "issue", "value": "ca.example.net"}]},
}
SECOND = {
    "www": {"type": "A", "ttl": 600, "values": ["192.0.2.2", "192.0.2.3"]},  # changed
    "v6": {"type": "AAAA", "value": "2001:db8::1"},
    "alias": {"type": "CNAME", "value": f"mail.{ZONE}"},  # changed
    "mail": {"type": "MX", "values": [{"exchange": "mx1.example.net.", "preference": 10},
                                      {"exchange": "mx2.example.net.", "preference": 20}]},  # TXT removed, MX grown
    "new": {"type": "TXT", "values": ["hello", "world"]},  # added
    "": {"type": "CAA", "values": [{"flags": 0, "tag": "issue", "value": "ca.example.net"}]},
}  # _sip._tcp SRV removed


def _zone_data(server) -> set[str]:
    """The zone by signed AXFR, without SOA and apex NS (octodns leaves those alone)."""
    return {r for r in zone_records(server.addr, ZONE, key=KEY) if not (r.startswith(f"{ZONE} ") and (" SOA " in r or " NS " in r))}


def _expect(records: dict) -> set[str]:
    """What octodns's YAML `records` should leave in the zone, in zone_records's text form."""
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    from interop_common import canonical_rdata
    texts = {
        "A": lambda v: v, "AAAA": lambda v: v, "CNAME": lambda v: v, "TXT": lambda v: f'"{v}"',
        "MX": lambda v: f"{v['preference']} {v['exchange']}",
        "SRV": lambda v: f"{v['priority']} {v['weight']} {v['port']} {v['target']}",
        "CAA": lambda v: f"{v['flags']} {v['tag']} \"{v['value']}\"",
    }
    out = set()
    for label, recs in records.items():
        owner = f"{label}.{ZONE}" if label else ZONE
        for rec in recs if isinstance(recs, list) else [recs]:
            values = rec.get("values") or [rec["value"]]
            for v in values:
                rd = dns.rdata.from_text("IN", rec["type"], texts[rec["type"]](v))
                out.add(f"{owner} {rec.get('ttl', 3600)} IN {rec['type']} {canonical_rdata(rd)}")
    return out


@pytest.mark.parametrize("kind", PRIMARIES)
def test_octodns_syncs_a_yaml_zone(kind, primary, tmp_path):
    server = primary(kind, OCTODNS_GRANTS)
    with Spy(server.addr) as spy:
        addr = ("127.0.0.1", spy.port)
        for n, records in enumerate([FIRST, SECOND], 1):
            r = octodns_sync(tmp_path / "octodns", addr, KEY, ZONE, records)
            assert r.returncode == 0, f"sync {n} failed:\n{r.stdout}{r.stderr}\n{server.kind}:\n{server.log()[-4000:]}"
            assert _zone_data(server) == _expect(records), r.stderr[-3000:]
        assert wait_answers(server, f"www.{ZONE}", "A", {"192.0.2.2", "192.0.2.3"}) == {"192.0.2.2", "192.0.2.3"}
        assert answers(server, f"new.{ZONE}", "TXT") == {'"hello"', '"world"'}
        assert query(server, f"_sip._tcp.{ZONE}", "SRV").rcode() == dns.rcode.NXDOMAIN
        synced = len(spy.messages())
        # A third run reads the zone back and finds nothing to do.
        r = octodns_sync(tmp_path / "octodns", addr, KEY, ZONE, SECOND)
        assert r.returncode == 0 and "No changes were planned" in r.stdout + r.stderr, f"{r.stdout}{r.stderr}"
        third = spy.messages()[synced:]
    sent = spy.messages()
    assert [s.opcode for s in third] == ["QUERY"], [s.describe() for s in third]  # one AXFR, no UPDATE
    assert {(s.transport, s.tsig_algorithm) for s in sent} == {("tcp", "hmac-sha256.")}, [s.describe() for s in sent]
    assert [s.rcode for s in sent if s.opcode == "UPDATE"] == ["NOERROR"] * 2, [s.describe() for s in sent]
    if kind == "minidns":  # the two syncs in the zone's history under the key's name
        assert server.change_sources(ZONE) == [f"update:{KEY.name}"] * 2
