"""DNSViz (`pip install dnsviz pygraphviz`, both in the `test` extra) probing minidns directly
for signed zones finds no errors.

The zones, all put in with `minidns zone import`, signed with `minidns dnssec enable` and served by
one `minidns serve --database-url … --listen 127.0.0.1:PORT`:
- test.: unsigned, the parent, holding the delegation of example.test. and its DS (from `minidns
  dnssec ds`), so DNSViz checks the DS against the DNSKEYs and CDS/CDNSKEY against the DS;
- example.test.: signed (P-256 CSK): A, AAAA, MX, TXT, a CNAME, a wildcard, empty non-terminals,
  a secure and an insecure delegation;
- secure.example.test.: signed (Ed25519, KSK and ZSK), its DS in example.test.;
- insecure.example.test.: unsigned, no DS.
Every NS name has the address 127.0.0.1, so the servers DNSViz finds by following referrals are
the ones it is told to use.

`dnsviz probe -A -E -4 -b 127.0.0.1` (authoritative analysis, EDNS diagnostics, IPv4 from
127.0.0.1 only: a query to an address off loopback could not even leave) with
`-x test+:ns1.test=127.0.0.1:PORT` (the `+`: stop there, nothing above test. is asked) and
`-x ZONE:ns1.ZONE=127.0.0.1:PORT` for the three others. Its only non-loopback system call is a
connect() of a UDP socket towards a root server address, to learn the local address (it sends
nothing; `strace -e connect,sendto` shows every other one to 127.0.0.1). DNSViz's own way to give a
DS (-N/-D) starts a BIND named of its own on the fixed port 50053 that outlives a killed probe, so
the parent is served by minidns instead.

`dnsviz grok -P -t TRUSTED` (the DNSKEY `minidns dnssec ds example.test.` prints as the trust
anchor; -P: private addresses such as 127.0.0.1 allowed for authoritative servers):
- at `-l warning` over every name probed: every "errors" entry anywhere in its JSON fails the test;
  the "warnings" are printed;
- at the default level over the names of the signed zones: the statuses (SECURE delegations,
  nothing BOGUS), so a probe that reached nothing cannot pass for a clean one. The insecure zone's
  names are left out here: DNSViz 0.11.2's grok with trust anchors raises KeyError (RRset for
  insecure.example.test/SOA) at that level for any zone without a DNSKEY RRset (the SOA of its
  DNSKEY NODATA gets no status); Knot serving the same unsigned zone does the same.

Skipped only when dnsviz is not installed (scripts/test.sh installs the test extra).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dns.rdatatype
import pytest

from test_validation import _database, ask, free_port, minidns, minidns_env, records_of, start, wait_for

_BIN = os.path.join(os.path.dirname(sys.executable), "dnsviz")
DNSVIZ = _BIN if os.access(_BIN, os.X_OK) else shutil.which("dnsviz")


def _importable(module: str) -> bool:
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(DNSVIZ is None or not _importable("pygraphviz"),
                                reason="dnsviz and pygraphviz are not installed (pip install -e '.[test]')")

TOP, PARENT, SECURE, INSECURE = "test.", "example.test.", "secure.example.test.", "insecure.example.test."
PROBE_TIMEOUT = 120

ZONES = {
    PARENT: """$ORIGIN example.test.
$TTL 300
@            SOA   ns1 hostmaster 2026120101 3600 600 86400 60
@            NS    ns1
@            MX    10 mail
@            TXT   "v=spf1 -all"
ns1          A     127.0.0.1
mail         A     192.0.2.25
www          A     192.0.2.80
www          A     192.0.2.81
www          AAAA  2001:db8::80
alias        CNAME www
*.wild       A     192.0.2.99
*.wild       TXT   "from the wildcard"
a.b.ent      TXT   "below two empty non-terminals"
secure       NS    ns1.secure
ns1.secure   A     127.0.0.1
insecure     NS    ns1.insecure
ns1.insecure A     127.0.0.1
""",
    SECURE: """$ORIGIN secure.example.test.
$TTL 300
@            SOA   ns1 hostmaster 7 3600 600 86400 60
@            NS    ns1
ns1          A     127.0.0.1
www          A     192.0.2.171
""",
    INSECURE: """$ORIGIN insecure.example.test.
$TTL 300
@            SOA   ns1 hostmaster 9 3600 600 86400 60
@            NS    ns1
ns1          A     127.0.0.1
www          A     192.0.2.172
""",
}

TOP_ZONE = """$ORIGIN test.
$TTL 300
@            SOA   ns1 hostmaster 1 3600 600 86400 60
@            NS    ns1
ns1          A     127.0.0.1
example      NS    ns1.example
ns1.example  A     127.0.0.1
"""

SIGNED_NAMES = [PARENT, "www.example.test.", "alias.example.test.", "x.wild.example.test.", "a.b.ent.example.test.",
                "b.ent.example.test.", "nope.example.test.", SECURE, "www.secure.example.test."]
NAMES = SIGNED_NAMES + [INSECURE, "www.insecure.example.test."]


def findings(node, path=()):
    """Every (path, level, item) for the "errors" and "warnings" lists anywhere in grok's JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("errors", "warnings") and isinstance(value, list):
                for item in value:
                    yield "/".join(path), key[:-1], item
            else:
                yield from findings(value, path + (str(key),))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from findings(value, path + (str(i),))


def statuses(node, path=()):
    """Every (path, status) in grok's JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "status" and isinstance(value, str):
                yield "/".join(path), value
            else:
                yield from statuses(value, path + (str(key),))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from statuses(value, path + (str(i),))


def run(argv: list[str], d: Path, what: str) -> subprocess.CompletedProcess:
    """Run a dnsviz command in its own session; on a time-out the whole group is killed."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                         cwd=d, start_new_session=True)
    try:
        out, err = p.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"{what} did not finish within {PROBE_TIMEOUT}s:\n{' '.join(argv)}\n{out[-4000:]}{err[-4000:]}")
    if p.returncode != 0:
        pytest.fail(f"{what} exited with {p.returncode}:\n{' '.join(argv)}\n{out[-4000:]}{err[-4000:]}")
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def grok(d: Path, trusted: Path, out: Path, *args: str) -> dict:
    run([DNSVIZ, "grok", "-P", "-t", str(trusted), "-r", str(d / "probe.json"), "-o", str(out), *args], d,
        "dnsviz grok")
    text = out.read_text()
    return json.loads(text) if text.strip() else {}  # nothing at all to report: an empty file


@pytest.fixture(scope="module")
def probed(pg_server, tmp_path_factory):
    """(grok at warning level over every name, grok at the default level over the signed zones'
    names, the probe's stderr, the directory) for the zones as minidns serves them."""
    d = tmp_path_factory.mktemp("dnsviz")
    url, drop = _database(pg_server.url)
    env = minidns_env(base64.b64encode(os.urandom(32)).decode())
    auth = None
    try:
        for origin, text in ZONES.items():
            path = d / f"{origin}zone"
            path.write_text(text)
            minidns(env, url, "zone", "import", path)
        minidns(env, url, "dnssec", "enable", SECURE, "--algorithm", "ed25519", "--ksk-zsk")
        for _owner, data in records_of(minidns(env, url, "dnssec", "ds", SECURE), "DS"):
            minidns(env, url, "record", "add", PARENT, "secure", "DS", 300, *data.split())
        minidns(env, url, "dnssec", "enable", PARENT)
        out = minidns(env, url, "dnssec", "ds", PARENT)
        ds, dnskeys = records_of(out, "DS"), records_of(out, "DNSKEY")
        assert ds and dnskeys, out
        top = d / "test.zone"
        top.write_text(TOP_ZONE + "".join(f"example      DS    {data}\n" for _owner, data in ds))
        minidns(env, url, "zone", "import", top)

        port = free_port()
        auth = start("minidns", [sys.executable, "-m", "minidns", "serve", "--database-url", url,
                                 "--listen", f"127.0.0.1:{port}", "--no-api", "--no-notify"], port, d, env)

        def signed() -> bool:
            r = ask(port, PARENT, "DNSKEY", rd=False)
            return r is not None and any(s.rdtype == dns.rdatatype.RRSIG for s in r.answer)

        wait_for(auth, signed, f"does not answer a signed DNSKEY for {PARENT} on 127.0.0.1:{port}")

        trusted = d / "trusted-keys"
        trusted.write_text("".join(f"{owner} 300 IN DNSKEY {data}\n" for owner, data in dnskeys))
        servers = ["-x", f"{TOP.rstrip('.')}+:ns1.{TOP}=127.0.0.1:{port}"]
        servers += [arg for zone in (PARENT, SECURE, INSECURE)
                    for arg in ("-x", f"{zone.rstrip('.')}:ns1.{zone}=127.0.0.1:{port}")]
        probe = run([DNSVIZ, "probe", "-A", "-E", "-4", "-b", "127.0.0.1", *servers,
                     "-o", str(d / "probe.json"), "-p", *NAMES], d, "dnsviz probe")
        warned = grok(d, trusted, d / "grok-warnings.json", "-l", "warning")
        full = grok(d, trusted, d / "grok.json", *SIGNED_NAMES)
        yield warned, full, probe.stderr, d
    finally:
        if auth is not None:
            auth.stop()
        drop()


def _report(probed):
    warned, full, probe_log, d = probed
    found = list(findings(warned))
    found += [f for f in findings(full) if f not in found]
    warnings = [(p, i) for p, level, i in found if level == "warning"]
    errors = [(p, i) for p, level, i in found if level == "error"]
    return warnings, errors


def test_dnsviz_finds_no_errors(probed):
    _, _, probe_log, d = probed
    warnings, errors = _report(probed)
    print(f"dnsviz probe said: {probe_log.strip() or '(nothing)'}")
    print(f"{len(warnings)} warnings, {len(errors)} errors (grok output in {d})")
    for p, i in warnings:
        print(f"WARNING {p}: {i.get('code')}: {i.get('description')} {i.get('servers', '')}")
    for p, i in errors:
        print(f"ERROR {p}: {i.get('code')}: {i.get('description')} {i.get('servers', '')}")
    assert not errors, "DNSViz reports errors:\n" + "\n".join(
        f"{p}: {i.get('code')}: {i.get('description')} {i.get('servers', '')}" for p, i in errors)


def test_cds_and_cdnskey_of_a_ksk_zsk_zone_are_signed_by_the_ksk(probed):
    """RFC 7344 §4.1: signed by a key the parent's DS names (DNSViz: CDS_SIGNER_INVALID otherwise)."""
    _, errors = _report(probed)
    assert not [(p, i) for p, i in errors if i.get("code") in ("CDS_SIGNER_INVALID", "CDNSKEY_SIGNER_INVALID")]


def test_dnsviz_finds_the_zones_secure(probed):
    """Every name probed is there, the signed zones' delegations are SECURE (DNSViz followed the
    chain from the trust anchor, the DS from test. included) and nothing is bogus, so the clean
    report above comes from a real analysis."""
    _, full, _, _ = probed
    for name in SIGNED_NAMES:
        assert name in full, f"{name} is missing from grok's output: {sorted(full)}"
        assert full[name].get("status") == "NOERROR", (name, full[name].get("status"))
    for zone in (PARENT, SECURE):
        delegation = full[zone].get("delegation", {})
        assert delegation.get("status") == "SECURE", (zone, delegation)
    st = dict(statuses(full))
    secure_answers = [p for p, s in st.items() if s == "SECURE" and "/answer/" in p]
    for q in ("www.example.test./IN/A", "www.example.test./IN/AAAA", "x.wild.example.test./IN/A",
              "alias.example.test./IN/A", "www.secure.example.test./IN/A", "example.test./IN/CDS"):
        assert any(f"/{q}/answer/" in p for p in secure_answers), (q, sorted(secure_answers)[:40])
    # Denials (compact answers: NOERROR and an NSEC at the name, taken by DNSViz as a proven
    # NODATA, also for the random names of its own NXDOMAIN probe) and the wildcard's proof.
    for q in ("nope.example.test./IN/A", "b.ent.example.test./IN/A", "secure.example.test./IN/MX",
              "x.wild.example.test./IN/AAAA"):
        name = q.split("/")[0]
        assert st.get(f"{name}/queries/{q}/nodata/0") == "SECURE", (q, {p: s for p, s in st.items() if q in p})
    assert any("/wildcard_proof/*.wild.example.test./" in p and s == "VALID" for p, s in st.items()), \
        "no valid wildcard proof for x.wild.example.test."
    bad = {p: s for p, s in st.items() if s in ("BOGUS", "INVALID", "INDETERMINATE", "LAME", "INCOMPLETE")}
    assert not bad, bad
