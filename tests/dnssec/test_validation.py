"""Unbound, validating, in front of a signed minidns: every answer of a signed zone is secure (AD),
denial by RFC 9824 compact answers included, and a wrong trust anchor makes it bogus.

All real processes on loopback: a database on the session's embedded PostgreSQL, the zones put in
with `minidns zone import`, `minidns dnssec enable` (CSK, P-256) on the parent example.test. and on
its child secure.example.test. (whose DS, from `minidns dnssec ds`, goes into the parent with
`minidns record add`), an unsigned child insecure.example.test., then `minidns serve
--database-url … --listen 127.0.0.1:PORT`. Three Unbounds (module-config "validator iterator",
stub zones to minidns, nothing sent off loopback) differ only in their trust anchor for
example.test.: the DS that `minidns dnssec ds` prints, the DNSKEY it prints, and that DS with its
digest changed (the negative control: validation is on, so everything under it is SERVFAIL).

Unbound 1.17 does not know the NXNAME type: a compact NXDOMAIN (NOERROR, NSEC at the query name
with bitmap RRSIG NSEC NXNAME) is, to it, a proven NODATA, so it answers NOERROR with no answer and
AD. Either rcode is accepted for a missing name; what must hold is AD and never SERVFAIL.

Skipped only when Unbound is not installed (scripts/test.sh installs it).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from minidns.store import db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
from interop_common import unbound_server  # noqa: E402  (the Unbound settings every test shares)

ROOT = Path(__file__).resolve().parents[2]
UNBOUND = shutil.which("unbound") or ("/usr/sbin/unbound" if os.path.exists("/usr/sbin/unbound") else None)
pytestmark = pytest.mark.skipif(UNBOUND is None, reason="unbound is not installed (Debian package unbound)")

PARENT, SECURE, INSECURE = "example.test.", "secure.example.test.", "insecure.example.test."
QUERY_TIMEOUT = 3.0
READY_TIMEOUT = 20.0
_dbs = itertools.count()

ZONES = {
    PARENT: """$ORIGIN example.test.
$TTL 300
@            SOA   ns1 hostmaster 2026120101 3600 600 86400 60
@            NS    ns1
ns1          A     192.0.2.53
www          A     192.0.2.80
www          A     192.0.2.81
www          AAAA  2001:db8::80
mail         MX    10 www
chain1       CNAME chain2
chain2       CNAME chain3
chain3       CNAME www
dangling     CNAME nothere
*.wild       A     192.0.2.99
*.wild       TXT   "from the wildcard"
a.b.ent      TXT   "below two empty non-terminals"
secure       NS    ns1.secure
ns1.secure   A     192.0.2.71
insecure     NS    ns1.insecure
ns1.insecure A     192.0.2.72
""",
    SECURE: """$ORIGIN secure.example.test.
$TTL 300
@            SOA   ns1 hostmaster 7 3600 600 86400 60
@            NS    ns1
ns1          A     192.0.2.71
www          A     192.0.2.171
alias        CNAME www.example.test.
""",
    INSECURE: """$ORIGIN insecure.example.test.
$TTL 300
@            SOA   ns1 hostmaster 9 3600 600 86400 60
@            NS    ns1
ns1          A     192.0.2.72
www          A     192.0.2.172
""",
}

# Every address outside 127/8: Unbound must not send anything off loopback.
# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port on 127.0.0.1")


@dataclass
class Proc:
    name: str
    port: int
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start(name: str, argv: list[str], port: int, d: Path, env=None) -> Proc:
    log_path = d / f"{name}.log"
    with open(log_path, "wb") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=ROOT, env=env)
    return Proc(name, port, p, log_path)


def wait_for(server: Proc, ready, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"{server.name} exited with {server.proc.returncode}; log:\n{server.log()}")
        if ready():
            return
        time.sleep(0.1)
    pytest.fail(f"{server.name} {what} within {READY_TIMEOUT:.0f}s; log:\n{server.log()}")


def ask(port: int, qname: str, qtype: str = "A", rd: bool = True) -> dns.message.Message | None:
    """One DO=1 query to 127.0.0.1:port (TCP again when truncated); None when nothing came back."""
    q = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, want_dnssec=True)
    if not rd:
        q.flags &= ~dns.flags.RD
    for _ in range(2):
        try:
            return dns.query.udp_with_fallback(q, "127.0.0.1", port=port, timeout=QUERY_TIMEOUT)[0]
        except (dns.exception.Timeout, OSError):
            continue
    return None


def minidns_env(master_key: str) -> dict:
    env = dict(os.environ, MINIDNS_MASTER_KEY=master_key)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("MINIDNS_DATABASE_URL", None)
    return env


def minidns(env: dict, url: str, *args) -> str:
    """Run one `minidns` command (this checkout's) against `url`; its stdout. Fails the test with
    its stderr when it fails."""
    argv = [sys.executable, "-m", "minidns", *map(str, args), "--database-url", url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    if r.returncode != 0:
        pytest.fail(f"`minidns {' '.join(map(str, args))}` exited with {r.returncode}:\n{r.stdout}{r.stderr}")
    return r.stdout


def records_of(ds_output: str, rdtype: str) -> list[str]:
    """The `rdtype` lines of `minidns dnssec ds` output, as (owner, data) text."""
    out = []
    for line in ds_output.splitlines():
        tokens = line.split()
        if rdtype in tokens:
            i = tokens.index(rdtype)
            out.append((tokens[0], " ".join(tokens[i + 1:])))
    return out


def write_unbound_conf(d: Path, name: str, port: int, auth_port: int, anchor: str) -> Path:
    """A validating Unbound on 127.0.0.1:port whose only trust anchor is `anchor` (one RR in zone
    file form), with every zone (the root too) stubbed to minidns, so nothing leaves loopback."""
    wd = d / name
    wd.mkdir(exist_ok=True)
    lines = [
        *unbound_server(wd, port, "127.0.0.1", verbosity=1),
        "  val-log-level: 2",  # why an answer is bogus, in the log the failure message shows
        '  module-config: "validator iterator"',
        f'  trust-anchor: "{anchor}"',
        "  prefetch: no",
        '  local-zone: "test." nodefault',  # RFC 6761 name: Unbound answers it locally unless told not to
        "remote-control:",
        "  control-enable: no",
    ]
    for zone in (PARENT, SECURE, INSECURE, "."):
        lines += ["stub-zone:", f'  name: "{zone}"', "  stub-prime: no", f"  stub-addr: 127.0.0.1@{auth_port}"]
    path = wd / "unbound.conf"
    path.write_text("\n".join(lines) + "\n")
    check = shutil.which("unbound-checkconf") or "/usr/sbin/unbound-checkconf"
    if os.path.exists(check):
        r = subprocess.run([check, str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"unbound-checkconf {path}:\n{r.stdout}{r.stderr}")
    return path


# --------------------------------------------------------------------------------------------
# The setup: database, zones, keys, minidns, three Unbounds
# --------------------------------------------------------------------------------------------


@dataclass
class Setup:
    auth: Proc
    resolvers: dict[str, Proc]  # "ds", "dnskey", "wrong"
    env: dict
    url: str
    parent_ds: list


def _database(pg_url: str):
    """A fresh database with the current schema on the session's PostgreSQL: (url, drop)."""
    name = f"dnssecval{next(_dbs)}"
    url = pg_url.replace("/postgres?", f"/{name}?", 1)

    async def create():
        conn = await db.connect(pg_url)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()
        conn = await db.connect(url)
        await db.upgrade(conn)
        await conn.close()

    async def drop():
        conn = await db.connect(pg_url)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()

    asyncio.run(create())
    return url, lambda: asyncio.run(drop())


def _wrong(ds: str) -> str:
    """The same DS with the last hex digit of its digest changed."""
    head, last = ds[:-1], ds[-1]
    return head + ("0" if last.upper() != "0" else "1")


@pytest.fixture(scope="module")
def setup(pg_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("dnssec-validation")
    url, drop = _database(pg_server.url)
    env = minidns_env(base64.b64encode(os.urandom(32)).decode())
    started: list[Proc] = []
    try:
        for origin, text in ZONES.items():
            path = d / f"{origin}zone"
            path.write_text(text)
            minidns(env, url, "zone", "import", path)
        minidns(env, url, "dnssec", "enable", SECURE)
        child_ds = records_of(minidns(env, url, "dnssec", "ds", SECURE), "DS")
        assert child_ds, "`minidns dnssec ds` printed no DS for the child"
        for _owner, data in child_ds:
            minidns(env, url, "record", "add", PARENT, "secure", "DS", 300, *data.split())
        minidns(env, url, "dnssec", "enable", PARENT)
        out = minidns(env, url, "dnssec", "ds", PARENT)
        parent_ds, parent_dnskey = records_of(out, "DS"), records_of(out, "DNSKEY")
        assert parent_ds and parent_dnskey, f"`minidns dnssec ds {PARENT}` printed:\n{out}"

        port = free_port()
        auth = start("minidns", [sys.executable, "-m", "minidns", "serve", "--database-url", url,
                                 "--listen", f"127.0.0.1:{port}", "--no-api", "--no-notify"], port, d, env)
        started.append(auth)

        def signed() -> bool:
            r = ask(port, PARENT, "DNSKEY", rd=False)
            return r is not None and any(s.rdtype == dns.rdatatype.RRSIG for s in r.answer)

        wait_for(auth, signed, f"does not answer a signed DNSKEY for {PARENT} on 127.0.0.1:{port}")

        (owner, ds), (kowner, dnskey) = parent_ds[0], parent_dnskey[0]
        anchors = {"ds": f"{owner} DS {ds}", "dnskey": f"{kowner} DNSKEY {dnskey}", "wrong": f"{owner} DS {_wrong(ds)}"}
        resolvers = {}
        for kind, anchor in anchors.items():
            rport = free_port()
            conf = write_unbound_conf(d, f"unbound-{kind}", rport, port, anchor)
            resolvers[kind] = start(f"unbound-{kind}", [UNBOUND, "-d", "-c", str(conf)], rport, d)
            started.append(resolvers[kind])
        for r in resolvers.values():
            wait_for(r, lambda r=r: ask(r.port, f"ns1.{PARENT}") is not None, "does not answer")
        yield Setup(auth, resolvers, env, url, parent_ds)
    finally:
        for p in reversed(started):
            p.stop()
        drop()


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def answer_set(reply: dns.message.Message) -> set[str]:
    """The answer section without RRSIGs, as "owner TYPE rdata" lines."""
    return {f"{rrset.name.to_text().lower()} {dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text()}"
            for rrset in reply.answer if rrset.rdtype != dns.rdatatype.RRSIG for rd in rrset}


def resolve(setup: Setup, qname: str, qtype: str = "A", resolver: str = "ds") -> dns.message.Message:
    """Ask a resolver; fail with its reply, minidns's own answer and the resolver's log unless the
    reply came back."""
    r = ask(setup.resolvers[resolver].port, qname, qtype)
    if r is None:
        pytest.fail(f"no reply from unbound-{resolver} for {qname} {qtype}; its log:\n{setup.resolvers[resolver].log()}")
    return r


def explain(setup: Setup, reply, qname: str, qtype: str, resolver: str = "ds") -> str:
    direct = ask(setup.auth.port, qname, qtype, rd=False)
    return (f"\n--- unbound-{resolver} said:\n{reply}\n--- minidns said (RD clear, DO set):\n"
            f"{direct if direct is not None else 'NO REPLY'}\n--- unbound-{resolver} log:\n"
            f"{setup.resolvers[resolver].log()[-3000:]}")


def secure(setup: Setup, qname: str, qtype: str = "A", rcodes=("NOERROR",), resolver: str = "ds"):
    """The resolver's reply: validated (AD) and with one of `rcodes`."""
    r = resolve(setup, qname, qtype, resolver)
    rcode = dns.rcode.to_text(r.rcode())
    if rcode not in rcodes or not r.flags & dns.flags.AD:
        pytest.fail(f"{qname} {qtype}: rcode {rcode} (want {'/'.join(rcodes)}), AD "
                    f"{'set' if r.flags & dns.flags.AD else 'CLEAR'}" + explain(setup, r, qname, qtype, resolver),
                    pytrace=False)
    return r


WWW = {"www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"}


@pytest.mark.parametrize("resolver", ["ds", "dnskey"])
def test_positive_answers_are_secure_with_either_trust_anchor(setup, resolver):
    assert answer_set(secure(setup, "www.example.test.", "A", resolver=resolver)) == WWW
    assert answer_set(secure(setup, "www.example.test.", "AAAA", resolver=resolver)) == {
        "www.example.test. AAAA 2001:db8::80"}


def test_apex_and_other_types_are_secure(setup):
    for qname, qtype in ((PARENT, "SOA"), (PARENT, "NS"), (PARENT, "DNSKEY"), ("mail.example.test.", "MX")):
        assert secure(setup, qname, qtype).answer, (qname, qtype)


def test_cname_chain_is_secure(setup):
    r = secure(setup, "chain1.example.test.")
    assert answer_set(r) == {"chain1.example.test. CNAME chain2.example.test.",
                             "chain2.example.test. CNAME chain3.example.test.",
                             "chain3.example.test. CNAME www.example.test.", *WWW}


def test_cname_to_a_missing_name_is_secure(setup):
    r = secure(setup, "dangling.example.test.", rcodes=("NXDOMAIN", "NOERROR"))
    assert answer_set(r) == {"dangling.example.test. CNAME nothere.example.test."}


def test_wildcard_answers_are_secure(setup):
    r = secure(setup, "x.wild.example.test.")
    assert answer_set(r) == {"x.wild.example.test. A 192.0.2.99"}
    r = secure(setup, "a.b.wild.example.test.", "TXT")
    assert answer_set(r) == {'a.b.wild.example.test. TXT "from the wildcard"'}


def test_wildcard_nodata_is_secure(setup):
    r = secure(setup, "y.wild.example.test.", "AAAA")
    assert not r.answer


def test_missing_name_is_securely_denied(setup):
    """Compact denial: minidns says NOERROR with an NSEC (… NXNAME) at the name; Unbound 1.17
    takes it as a proven NODATA."""
    direct = ask(setup.auth.port, "nope.example.test.", "A", rd=False)
    assert direct is not None and direct.rcode() == dns.rcode.NOERROR
    assert any(s.rdtype == dns.rdatatype.NSEC and s.name == dns.name.from_text("nope.example.test.")
               for s in direct.authority), direct
    r = secure(setup, "nope.example.test.", rcodes=("NXDOMAIN", "NOERROR"))
    assert not r.answer
    r = secure(setup, "deeper.nope.example.test.", "TXT", rcodes=("NXDOMAIN", "NOERROR"))
    assert not r.answer


def test_nodata_is_secure(setup):
    r = secure(setup, "www.example.test.", "MX")
    assert not r.answer
    r = secure(setup, "www.example.test.", "TXT")
    assert not r.answer


def test_empty_non_terminals_are_secure(setup):
    for name in ("ent.example.test.", "b.ent.example.test."):
        r = secure(setup, name, "A")
        assert not r.answer, name
    r = secure(setup, "a.b.ent.example.test.", "TXT")
    assert answer_set(r) == {'a.b.ent.example.test. TXT "below two empty non-terminals"'}


def test_secure_delegation_validates(setup):
    r = secure(setup, "secure.example.test.", "DS")
    assert {line.split()[1] for line in answer_set(r)} == {"DS"}
    r = secure(setup, "www.secure.example.test.")
    assert answer_set(r) == {"www.secure.example.test. A 192.0.2.171"}
    r = secure(setup, "nope.secure.example.test.", rcodes=("NXDOMAIN", "NOERROR"))
    assert not r.answer
    r = secure(setup, "alias.secure.example.test.")
    assert answer_set(r) == {"alias.secure.example.test. CNAME www.example.test.", *WWW}


def test_insecure_delegation_is_answered_insecure(setup):
    """No DS at the cut, proven by the parent: the child's answers come back, without AD."""
    secure(setup, "insecure.example.test.", "DS")  # the proof that there is no DS is itself secure
    for qname, want in (("www.insecure.example.test.", {"www.insecure.example.test. A 192.0.2.172"}),
                        ("nope.insecure.example.test.", set())):
        r = resolve(setup, qname)
        rcode = dns.rcode.to_text(r.rcode())
        assert rcode in ("NOERROR", "NXDOMAIN") and answer_set(r) == want and not r.flags & dns.flags.AD, \
            f"{qname}: rcode {rcode}, AD {bool(r.flags & dns.flags.AD)}" + explain(setup, r, qname, "A")


def test_a_change_to_the_zone_validates(setup):
    out = minidns(setup.env, setup.url, "record", "add", PARENT, "new", "A", 300, "192.0.2.123")
    assert "->" in out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        direct = ask(setup.auth.port, "new.example.test.", "A", rd=False)
        if direct is not None and direct.answer:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"minidns does not serve new.example.test. A 10 s after the change; log:\n{setup.auth.log()}")
    r = secure(setup, "new.example.test.")
    assert answer_set(r) == {"new.example.test. A 192.0.2.123"}
    # The changed SOA (new serial) validates too, through the other resolver (nothing cached there).
    r = secure(setup, PARENT, "SOA", resolver="dnskey")
    assert r.answer


def test_wrong_trust_anchor_makes_answers_bogus(setup):
    """The negative control: the same setup with the DS digest changed gives SERVFAIL, so the AD
    bits above are the validator's."""
    for qname, qtype in (("www.example.test.", "A"), ("nope.example.test.", "A"), ("www.secure.example.test.", "A")):
        r = resolve(setup, qname, qtype, "wrong")
        assert r.rcode() == dns.rcode.SERVFAIL and not r.flags & dns.flags.AD, \
            f"{qname} {qtype} with a wrong trust anchor:\n{r}"
