"""A signed zone transferred from minidns to BIND, Knot, NSD and PowerDNS as secondaries: the
transfers carry the whole signed zone (RRSIGs, DNSKEY/CDS/CDNSKEY, the NSEC3 chain kept in the
database rows), each peer serves it so that a validating resolver accepts its answers, and a change
reaches them by IXFR, signed.

Everything real, on loopback: the session's embedded PostgreSQL, the zone put in with `minidns zone
import` and signed with `minidns dnssec enable` (CSK, P-256), `minidns serve --database-url …
--config …` (the TOML holds only what has no flag: the four secondaries it NOTIFYs), the four
secondaries started by secondaries.py, and one validating Unbound per peer (the configuration of
tests/dnssec/test_validation.py: every zone, the root too, stubbed to that peer; the trust anchor
the DS that `minidns dnssec ds` prints).

1. AXFR from minidns: dnssec-verify -z, ldns-verify-zone and kzonecheck -d on accept it.
2. Through each peer's Unbound: AD on a positive answer (A, AAAA, a CNAME), a secure NXDOMAIN
   (the peers deny with the NSEC3 chain they got by transfer: NXDOMAIN with NSEC3 records, asked
   directly), a secure NODATA (also at an empty non-terminal) and a wildcard answer.
3. `minidns record add ZONE new A 300 192.0.2.77`: each peer takes the new serial (BIND, Knot and
   NSD by IXFR, as their logs say, and minidns logs the incremental IXFR it sent) and
   new.example.test. validates through its Unbound. PowerDNS 4.7 takes it by AXFR: it marks a zone
   transferred with RRSIGs PRESIGNED, and asks for IXFR only for zones that are not DNSSEC zones
   (its IXFR metadata is consulted in the `else` branch of `if (dk.isSecuredZone(domain))` in
   its secondary code), so a signed zone is always transferred whole.
4. Each peer's own AXFR equals minidns's and passes ldns-verify-zone, dnssec-verify and kzonecheck
   (PowerDNS keeps NSEC3PARAM as zone metadata and serves it with the zone's negative TTL, which is
   the TTL minidns gives it).

Skipped when Unbound is missing; the checkers' part is skipped when they are missing
(scripts/test.sh installs them); a missing secondary fails, as in test_transfers_interop.py.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from secondaries import (KINDS, Secondary, free_port, soa_serial, start_secondary, stop_secondary, transfer_log,
                         wait_serial, zone_records)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dnssec"))
import test_validation as tv  # noqa: E402  (its Unbound configuration and process helpers)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(tv.UNBOUND is None, reason="unbound is not installed (Debian package unbound)")

ZONE = "example.test."
XFR_TIMEOUT = 20.0  # seconds for a peer to reach a serial (PowerDNS and NSD take about a second)
CHECKERS = {"dnssec-verify": "bind9-utils", "ldns-verify-zone": "ldnsutils", "kzonecheck": "knot-dnssecutils"}

ZONE_TEXT = """$ORIGIN example.test.
$TTL 300
@            SOA   ns1 hostmaster 1 3600 600 86400 60
@            NS    ns1
@            MX    10 mail
ns1          A     192.0.2.53
mail         A     192.0.2.25
www          A     192.0.2.80
www          A     192.0.2.81
www          AAAA  2001:db8::80
alias        CNAME www
*.wild       A     192.0.2.99
*.wild       TXT   "from the wildcard"
a.b.ent      TXT   "below two empty non-terminals"
deleg        NS    ns1.deleg
ns1.deleg    A     192.0.2.71
signed       NS    ns1.signed
signed       DS    12345 13 2 2bb183af5f22588179a53b0a98631fad1a292118a8e1e8eea9a9ea0ae3a1c1ce
ns1.signed   A     192.0.2.72
"""
WWW = {"www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"}


@dataclass
class Setup:
    d: Path
    url: str
    env: dict
    auth: tv.Proc
    secs: dict[str, Secondary]
    resolvers: dict[str, tv.Proc]  # kind -> the Unbound whose stub is that peer
    serial: int

    def logs(self, kind: str) -> str:
        return f"--- minidns\n{self.auth.log()[-3000:]}\n{self.secs[kind].log(3000)}"


def _config(port: int, sec_ports: list[int]) -> str:
    secs = ", ".join(f'{{ address = "127.0.0.1", port = {p} }}' for p in sec_ports)
    return f"secondaries = [{secs}]\nnotify_timeout = 0.5\n"


@pytest.fixture(scope="module")
def setup(pg_server, tmp_path_factory):
    t0 = time.monotonic()
    d = tmp_path_factory.mktemp("signed-secondaries")
    url, drop = tv._database(pg_server.url)
    env = tv.minidns_env(base64.b64encode(os.urandom(32)).decode())
    procs: list[tv.Proc] = []
    secs: dict[str, Secondary] = {}
    try:
        path = d / "example.test.zone"
        path.write_text(ZONE_TEXT)
        tv.minidns(env, url, "zone", "import", path)
        tv.minidns(env, url, "dnssec", "enable", ZONE)
        ds = tv.records_of(tv.minidns(env, url, "dnssec", "ds", ZONE), "DS")
        assert ds, "`minidns dnssec ds` printed no DS"

        port, sec_ports = free_port(), {kind: free_port() for kind in KINDS}
        conf = d / "minidns.toml"
        conf.write_text(_config(port, list(sec_ports.values())))
        auth = tv.start("minidns", [sys.executable, "-m", "minidns", "serve", "--database-url", url, "--config", str(conf),
                                    "--listen", f"127.0.0.1:{port}", "--no-api"], port, d, env)
        procs.append(auth)
        tv.wait_for(auth, lambda: soa_serial(("127.0.0.1", port), ZONE) is not None, f"does not serve {ZONE}")
        serial = soa_serial(("127.0.0.1", port), ZONE)

        for kind in KINDS:
            secs[kind] = start_secondary(kind, d / kind, ("127.0.0.1", port), [ZONE], port=sec_ports[kind])
        for kind, sec in secs.items():
            assert wait_serial(sec, ZONE, serial, XFR_TIMEOUT), \
                f"{kind} does not reach {ZONE} serial {serial} within {XFR_TIMEOUT}s:\n{sec.log()}"

        owner, data = ds[0]
        resolvers = {}
        for kind, sec in secs.items():
            rport = tv.free_port()
            conf_path = tv.write_unbound_conf(d, f"unbound-{kind}", rport, sec.port, f"{owner} DS {data}")
            resolvers[kind] = tv.start(f"unbound-{kind}", [tv.UNBOUND, "-d", "-c", str(conf_path)], rport, d)
            procs.append(resolvers[kind])
        for r in resolvers.values():
            tv.wait_for(r, lambda r=r: tv.ask(r.port, f"ns1.{ZONE}") is not None, "does not answer")
        print(f"set-up took {time.monotonic() - t0:.1f}s")
        yield Setup(d, url, env, auth, secs, resolvers, serial)
    finally:
        for r in reversed(procs[1:]):
            r.stop()
        for sec in secs.values():
            stop_secondary(sec)
        if procs:
            procs[0].stop()
        drop()
        print(f"module took {time.monotonic() - t0:.1f}s")


# --------------------------------------------------------------------------------------------
# helpers


def zone_file(records: set[str], path: Path) -> Path:
    """An AXFR's records (secondaries.zone_records) as a zone file, SOA first."""
    soa = [r for r in records if r.split()[3] == "SOA"]
    assert len(soa) == 1, soa
    path.write_text("\n".join(soa + sorted(records - set(soa))) + "\n")
    return path


def _checkers() -> None:
    missing = [f"{tool} ({pkg})" for tool, pkg in CHECKERS.items() if not shutil.which(tool)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/test.sh installs them)")


def verify(path: Path, tools=tuple(CHECKERS)) -> None:
    """`tools` (of dnssec-verify, ldns-verify-zone, kzonecheck) all accept the signed zone file at `path`."""
    _checkers()
    argvs = {"dnssec-verify": ["dnssec-verify", "-z", "-o", ZONE, str(path)],
             "ldns-verify-zone": ["ldns-verify-zone", str(path)],
             "kzonecheck": ["kzonecheck", "-o", ZONE, "-d", "on", str(path)]}
    for tool in tools:
        r = subprocess.run(argvs[tool], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{' '.join(argvs[tool])} exited {r.returncode}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"


def answer_set(reply: dns.message.Message) -> set[str]:
    return tv.answer_set(reply)


def secure(s: Setup, kind: str, qname: str, qtype: str = "A", rcode: str = "NOERROR") -> dns.message.Message:
    """The reply of `kind`'s Unbound: `rcode` and AD, or the test fails with what the peer itself says."""
    r = tv.ask(s.resolvers[kind].port, qname, qtype)
    if r is None:
        pytest.fail(f"no reply from unbound-{kind} for {qname} {qtype}:\n{s.resolvers[kind].log()}")
    got = dns.rcode.to_text(r.rcode())
    if got != rcode or not r.flags & dns.flags.AD:
        direct = tv.ask(s.secs[kind].port, qname, qtype, rd=False)
        pytest.fail(f"through {kind}: {qname} {qtype}: rcode {got} (want {rcode}), AD "
                    f"{'set' if r.flags & dns.flags.AD else 'CLEAR'}\n--- unbound said:\n{r}\n--- {kind} said "
                    f"(DO=1):\n{direct}\n--- unbound log:\n{s.resolvers[kind].log()[-3000:]}", pytrace=False)
    return r


# --------------------------------------------------------------------------------------------
# 1. the AXFR from minidns


def test_minidns_axfr_passes_the_zone_checkers(setup):
    records = zone_records(("127.0.0.1", setup.auth.port), ZONE)
    types = {r.split()[3] for r in records}
    assert {"RRSIG", "DNSKEY", "CDS", "CDNSKEY", "NSEC3", "NSEC3PARAM"} <= types, types
    assert "NSEC" not in types, "the transferred zone has NSEC records (its chain is NSEC3)"
    verify(zone_file(records, setup.d / "minidns.axfr.zone"))


# --------------------------------------------------------------------------------------------
# 2. each peer's answers validate


@pytest.mark.parametrize("kind", KINDS)
def test_peer_answers_validate(setup, kind):
    assert answer_set(secure(setup, kind, "www.example.test.")) == WWW
    assert answer_set(secure(setup, kind, "www.example.test.", "AAAA")) == {"www.example.test. AAAA 2001:db8::80"}
    assert answer_set(secure(setup, kind, "alias.example.test.")) == {"alias.example.test. CNAME www.example.test.",
                                                                      *WWW}
    # NXDOMAIN, proven by the transferred NSEC3 chain (the peer's own answer carries NSEC3 records)
    direct = tv.ask(setup.secs[kind].port, "nope.example.test.", "A", rd=False)
    assert direct is not None and direct.rcode() == dns.rcode.NXDOMAIN, direct
    assert any(r.rdtype == dns.rdatatype.NSEC3 for r in direct.authority), direct
    assert not any(r.rdtype == dns.rdatatype.NSEC for r in direct.authority), direct
    assert not secure(setup, kind, "nope.example.test.", rcode="NXDOMAIN").answer
    assert not secure(setup, kind, "deeper.nope.example.test.", "TXT", rcode="NXDOMAIN").answer
    # NODATA, at a name and at an empty non-terminal
    assert not secure(setup, kind, "www.example.test.", "MX").answer
    assert not secure(setup, kind, "b.ent.example.test.", "TXT").answer
    # wildcard: an answer, and NODATA for a type the wildcard lacks
    assert answer_set(secure(setup, kind, "x.wild.example.test.")) == {"x.wild.example.test. A 192.0.2.99"}
    assert answer_set(secure(setup, kind, "a.b.wild.example.test.", "TXT")) == {
        'a.b.wild.example.test. TXT "from the wildcard"'}
    assert not secure(setup, kind, "y.wild.example.test.", "AAAA").answer
    # the secure delegation's DS, and the proof that the insecure one has none
    assert {line.split()[1] for line in answer_set(secure(setup, kind, "signed.example.test.", "DS"))} == {"DS"}
    assert not secure(setup, kind, "deleg.example.test.", "DS").answer


# --------------------------------------------------------------------------------------------
# 3. a change reaches the peers by IXFR and validates; 4. the peers' AXFRs pass the checkers


def test_a_change_reaches_the_peers_by_ixfr_and_validates(setup):
    before = {kind: len(transfer_log(sec)) for kind, sec in setup.secs.items()}
    out = tv.minidns(setup.env, setup.url, "record", "add", ZONE, "new", "A", 300, "192.0.2.77")
    assert "->" in out, out
    minidns_addr = ("127.0.0.1", setup.auth.port)
    assert wait_serial(minidns_addr, ZONE, setup.serial + 1, 10), setup.auth.log()
    serial = soa_serial(minidns_addr, ZONE)
    for kind, sec in setup.secs.items():
        assert wait_serial(sec, ZONE, serial, XFR_TIMEOUT), \
            f"{kind} does not reach serial {serial} within {XFR_TIMEOUT}s:\n{setup.logs(kind)}"
        kinds = [k for z, k in transfer_log(sec)[before[kind]:] if z == ZONE]
        assert kinds and kinds[-1] == ("AXFR" if kind == "pdns" else "IXFR"), (kind, kinds, setup.logs(kind))
    ixfrs = [line for line in setup.auth.log_path.read_text(errors="replace").splitlines()
             if f"IXFR of {ZONE} {setup.serial} -> {serial} to 127.0.0.1:" in line]
    assert len(ixfrs) >= 3 and not [line for line in ixfrs if "the whole zone" in line], ixfrs
    for kind in setup.secs:
        assert answer_set(secure(setup, kind, "new.example.test.")) == {"new.example.test. A 192.0.2.77"}
        assert secure(setup, kind, ZONE, "SOA").answer

    want = zone_records(minidns_addr, ZONE)
    assert "new.example.test. 300 IN A 192.0.2.77" in want
    for kind, sec in setup.secs.items():
        raw = got = zone_records(sec, ZONE)
        assert got == want, (f"{kind}'s AXFR differs from minidns's:\nonly at {kind}: {sorted(got - want)[:10]}\n"
                             f"only at minidns: {sorted(want - got)[:10]}")
        verify(zone_file(raw, setup.d / f"{kind}.axfr.zone"), CHECKERS)


