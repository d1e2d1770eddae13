"""Start NSD, Knot DNS and minidns on free loopback ports, all serving the same test zones.

The three servers live for the whole test session. NSD and Knot are reference servers: if either
is not installed, every test that needs them FAILS (the suite is about comparing against them,
so a silent skip would hide that nothing was compared). Config files and zone copies go to a
temporary directory; nothing is sent anywhere but 127.0.0.1.

The second half starts the recursive resolvers (Unbound, BIND named) and the extra minidns
processes that tests/interop/test_resolvers.py resolves through; see the comment there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

# NSID, version and identity strings (the same on every server), the resolver setups' addresses
# and configs, and the query-log parser live in interop_common.py beside this file (pytest puts
# this directory on sys.path), so test modules and scripts can import them by name.
from secondaries import free_port as _free_port  # noqa: E402
from interop_common import (CHILD_NS_ADDR, GLUE_ADDR, IDENTITY, NSID, SOURCE_ADDR, VERSION, write_conf,
                            write_named_conf, write_unbound_conf)

ZONES_DIR = Path(__file__).resolve().parent.parent / "zones"
ZONE_FILES = {
    "example.com.": "example.com.zone",
    "child.example.com.": "child.example.com.zone",
    "2.0.192.in-addr.arpa.": "2.0.192.in-addr.arpa.zone",
}

READY_TIMEOUT = 10.0  # seconds for a server to answer SOA for every zone
STOP_TIMEOUT = 10.0


@dataclass
class Server:
    name: str
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""
        except OSError:
            return ""


def _find_binary(name: str) -> str | None:
    """The reference server binary; INTEROP_NSD / INTEROP_KNOTD name another one."""
    override = os.environ.get("INTEROP_" + name.upper())
    if override is not None:
        return override if os.access(override, os.X_OK) else None
    path = shutil.which(name)
    if path:
        return path
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


NEEDED_BY_PEERS = "the interop suite compares minidns against NSD and Knot and cannot run without them"


def _need_binary(name: str, package: str, what: str, why: str = NEEDED_BY_PEERS) -> str:
    """The binary (see _find_binary); the test FAILS if it is missing, saying `why` it is needed."""
    binary = _find_binary(name)
    if binary is None:
        override = os.environ.get("INTEROP_" + name.upper())
        if override is not None:
            pytest.fail(f"INTEROP_{name.upper()}={override} is not an executable {what} binary")
        pytest.fail(f"{what} (`{name}`) is not installed: {why} (Debian: apt-get install {package})")
    return binary


def _checkconf(checker: str, conf: Path) -> None:
    """Fail the test if `checker` (when installed) rejects the generated config `conf`."""
    binary = _find_binary(checker)
    if binary:
        check = subprocess.run([binary, str(conf)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            pytest.fail(f"{checker} rejects the generated config:\n{check.stdout}{check.stderr}")


def _write_nsd_conf(d: Path, port: int, zones: dict[str, Path]) -> Path:
    text = (
        "server:\n"
        f"  ip-address: 127.0.0.1@{port}\n"
        "  server-count: 1\n"
        '  username: ""\n'
        '  database: ""\n'
        f'  pidfile: "{d}/nsd/nsd.pid"\n'
        f'  xfrdfile: "{d}/nsd/xfrd.state"\n'
        f'  zonelistfile: "{d}/nsd/zone.list"\n'
        f'  logfile: "{d}/nsd/nsd.log"\n'
        "  verbosity: 1\n"
        "  rrl-ratelimit: 0\n"
        "  rrl-whitelist-ratelimit: 0\n"
        f'  identity: "{IDENTITY}"\n'
        f'  version: "{VERSION}"\n'
        f'  nsid: "ascii_{NSID}"\n'
        "remote-control:\n"
        "  control-enable: no\n"
    )
    for origin, path in zones.items():
        text += f'zone:\n  name: "{origin}"\n  zonefile: "{path}"\n'
    return write_conf(d / "nsd" / "nsd.conf", text)


def _write_knot_conf(d: Path, port: int, zones: dict[str, Path]) -> Path:
    text = (
        "server:\n"
        f"  listen: 127.0.0.1@{port}\n"
        "  udp-workers: 1\n"
        "  tcp-workers: 1\n"
        "  background-workers: 1\n"
        f'  rundir: "{d}/knot"\n'
        "  user: root\n"
        f'  identity: "{IDENTITY}"\n'
        f'  version: "{VERSION}"\n'
        f'  nsid: "{NSID}"\n'
        "log:\n"
        "  - target: stderr\n"
        "    any: info\n"
        "database:\n"
        f'  storage: "{d}/knot"\n'
        "template:\n"
        "  - id: default\n"
        f'    storage: "{d}"\n'
        "    zonefile-sync: -1\n"
        "    journal-content: none\n"
        "zone:\n"
    )
    for origin, path in zones.items():
        text += f'  - domain: "{origin}"\n    file: "{path}"\n'
    return write_conf(d / "knot" / "knot.conf", text)


def _soa_ok(server: Server, origin: str) -> bool:
    try:
        r = dns.query.udp(dns.message.make_query(origin, "SOA"), server.host, port=server.port, timeout=0.3)
    except Exception:
        return False
    return r.rcode() == dns.rcode.NOERROR and bool(r.flags & dns.flags.AA) and bool(r.answer)


def _poll_until(server: Server, ready, timeout: float, rounds: int, not_ready) -> None:
    """Call `ready()` every 0.1 s until it is true (at most `rounds` times and `timeout` seconds).
    The test fails if the server exits first, or with `not_ready()` and the log when time runs out."""
    deadline = time.monotonic() + timeout
    for _ in range(rounds):  # bounded in count as well as in time
        if server.proc.poll() is not None:
            pytest.fail(f"{server.name} exited with {server.proc.returncode} while starting; log:\n{server.log()}")
        if ready():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    pytest.fail(f"{server.name} {not_ready()}; log:\n{server.log()}")


def _wait_ready(server: Server, origins: list[str] | None = None) -> None:
    """The server answers SOA (authoritatively) for every one of `origins` (default: all zones)."""
    pending = list(ZONE_FILES if origins is None else origins)

    def ready() -> bool:
        pending[:] = [o for o in pending if not _soa_ok(server, o)]
        return not pending

    _poll_until(server, ready, READY_TIMEOUT, 200,
                lambda: f"on {server.host}:{server.port} does not answer SOA for {pending} "
                        f"within {READY_TIMEOUT:.0f}s")


def _stop(server: Server) -> None:
    p = server.proc
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)  # its own session: NSD forks helpers into the same group
    except ProcessLookupError:
        return
    try:
        p.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(STOP_TIMEOUT)


@contextmanager
def _serving(server: Server, ready=_wait_ready):
    """`server` (just started) once `ready(server)` returns; stopped on the way out, whatever happens."""
    try:
        ready(server)
        yield server
    finally:
        _stop(server)


def _copy_zones(d: Path) -> dict[str, Path]:
    """The test zones copied into `d`, by origin."""
    for name in ZONE_FILES.values():
        shutil.copy(ZONES_DIR / name, d / name)
    return {origin: d / name for origin, name in ZONE_FILES.items()}


@pytest.fixture(scope="session")
def interop_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("interop")


@pytest.fixture(scope="session")
def zone_copies(interop_dir) -> dict[str, Path]:
    return _copy_zones(interop_dir)


_ports: set[int] = set()


REPO = Path(__file__).resolve().parents[2]


def _start(name: str, argv: list[str], d: Path, port: int) -> Server:
    log_path = d / f"{name}.out"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=REPO)
    return Server(name, port, proc=proc, log_path=log_path)


def _start_nsd(d: Path, port: int, zones: dict[str, Path]) -> Server:
    """NSD serving `zones` on 127.0.0.1:port (started, not yet answering)."""
    binary = _need_binary("nsd", "nsd", "NSD")
    conf = _write_nsd_conf(d, port, zones)
    _checkconf("nsd-checkconf", conf)
    server = _start("nsd", [binary, "-d", "-c", str(conf)], d, port)
    server.log_path = d / "nsd" / "nsd.log"
    return server


def _start_knot(d: Path, port: int, zones: dict[str, Path]) -> Server:
    """Knot DNS serving `zones` on 127.0.0.1:port (started, not yet answering)."""
    binary = _need_binary("knotd", "knot", "Knot DNS")
    conf = _write_knot_conf(d, port, zones)
    return _start("knot", [binary, "-c", str(conf)], d, port)


def _start_minidns(name: str, d: Path, zones: list[Path], listens: list[tuple[str, int]],
                   query_log: bool = False) -> Server:
    """minidns serving `zones` on every one of `listens` (started, not yet answering)."""
    argv = [sys.executable, "-m", "minidns", "serve"] + (["--query-log"] if query_log else [])
    for path in zones:
        argv += ["--zone-file", str(path)]
    for host, port in listens:
        argv += ["--listen", f"{host}:{port}"]
    argv += ["--nsid", NSID, "--version-string", VERSION, "--identity", IDENTITY]
    # NSD and Knot here are configured with no transfer access, so minidns is too: transfers are
    # compared as refusals (tests/server/test_transfers.py and the secondaries tests serve them).
    conf = d / f"{name}.toml"
    conf.write_text("allow_transfer = []\n")
    argv += ["--config", str(conf)]
    server = _start(name, argv, d, listens[0][1])
    server.host = listens[0][0]
    return server


@pytest.fixture(scope="session")
def nsd(interop_dir, zone_copies):
    with _serving(_start_nsd(interop_dir, _free_port(_ports), zone_copies)) as server:
        yield server


@pytest.fixture(scope="session")
def knot(interop_dir, zone_copies):
    with _serving(_start_knot(interop_dir, _free_port(_ports), zone_copies)) as server:
        yield server


@pytest.fixture(scope="session")
def minidns(interop_dir, zone_copies):
    listen = ("127.0.0.1", _free_port(_ports))
    with _serving(_start_minidns("minidns", interop_dir, list(zone_copies.values()), [listen])) as server:
        yield server


@pytest.fixture(scope="session")
def servers(nsd, knot, minidns) -> dict[str, Server]:
    return {"nsd": nsd, "knot": knot, "minidns": minidns}


# --------------------------------------------------------------------------------------------
# Recursive resolvers in front of minidns (tests/interop/test_resolvers.py)
# --------------------------------------------------------------------------------------------
#
# Two setups, each its own minidns process(es) with the query log on, so the tests can see what
# the resolvers actually sent (transport, letter case):
#
# 1. "stub": one minidns serving the three zones on 127.0.0.1:P. Unbound (UDP upstream), Unbound
#    (TCP-only upstream) and BIND named use it through stub zones for example.com,
#    child.example.com and 2.0.192.in-addr.arpa. Because minidns serves the child zone itself, a
#    resolver asking it never sees the child.example.com referral: it gets the child's answers
#    directly, as from NSD or Knot serving both zones.
# 2. "referral": a parent minidns serving only example.com on 127.0.0.1:P2 and a child minidns
#    serving only child.example.com on CHILD_NS_ADDR (port 53 for Unbound, which always queries
#    delegated servers on 53; port P2 for named, whose `port` option sets the port it queries).
#    The zone copies put the child's name server at CHILD_NS_ADDR instead of 192.0.2.71, so a
#    resolver that follows the referral from the parent reaches the child on loopback.
#
# Nothing leaves loopback: the resolvers send from 127.0.0.x, Unbound is told not to query any
# address outside 127/8 and named marks every server outside 127/8 bogus; the root is stubbed to
# minidns too (which REFUSES it), so a name outside the zones is a quick SERVFAIL.

RESOLVER_READY_TIMEOUT = 15.0
RESOLVER_PROBE = "www.example.com."  # a resolver is ready once it resolves this (A) through minidns
NEEDED_BY_RESOLVERS = "tests/interop/test_resolvers.py resolves the test zones through it and cannot run without it"


def _bindable(host: str, port: int) -> bool:
    """Whether UDP and TCP `host:port` can be bound right now (port 53 needs root)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind((host, port))
            t.bind((host, port))
        return True
    except OSError:
        return False


def _free_port_on(hosts: list[str], taken: set[int]) -> int:
    """A port free for UDP and TCP on every one of `hosts` (bounded number of tries)."""
    for _ in range(50):
        port = _free_port(taken)
        if all(_bindable(h, port) for h in hosts):
            return port
    raise RuntimeError(f"no port free on all of {hosts} after 50 tries")


def _zone_copies_for_referral(d: Path) -> dict[str, Path]:
    """example.com and child.example.com with ns1.child.example.com moved to CHILD_NS_ADDR."""
    out = {}
    for origin in ("example.com.", "child.example.com."):
        text = (ZONES_DIR / ZONE_FILES[origin]).read_text()
        owner = r"ns1\.child" if origin == "example.com." else r"ns1"
        new, n = re.subn(rf"(?m)^({owner}\s+A\s+){re.escape(GLUE_ADDR)}\s*$", rf"\g<1>{CHILD_NS_ADDR}", text)
        if n != 1:
            pytest.fail(f"{ZONE_FILES[origin]}: expected one `{owner} A {GLUE_ADDR}` line to rewrite, found {n}")
        path = d / ("ref-" + ZONE_FILES[origin])
        path.write_text(new)
        out[origin] = path
    return out


def _resolver_probe(server: Server, name: str) -> bool:
    """The resolver answers `name` A with NOERROR, RA and an answer."""
    try:
        q = dns.message.make_query(name, "A")
        r = dns.query.udp(q, server.host, port=server.port, timeout=1.0)
    except Exception:
        return False
    return r.rcode() == dns.rcode.NOERROR and bool(r.flags & dns.flags.RA) and bool(r.answer)


def _wait_resolver(server: Server, probe: str = RESOLVER_PROBE) -> None:
    """Started and answering through minidns within RESOLVER_READY_TIMEOUT, or the test fails."""
    _poll_until(server, lambda: _resolver_probe(server, probe), RESOLVER_READY_TIMEOUT, 300,
                lambda: f"on 127.0.0.1:{server.port} does not resolve {probe} A through minidns "
                        f"within {RESOLVER_READY_TIMEOUT:.0f}s")


def _start_unbound(d: Path, name: str, stubs, tcp_upstream: bool) -> Server:
    binary = _need_binary("unbound", "unbound", "Unbound", NEEDED_BY_RESOLVERS)
    port = _free_port(_ports)
    conf = write_unbound_conf(d, name, port, stubs, SOURCE_ADDR[name], tcp_upstream)
    _checkconf("unbound-checkconf", conf)
    return _start(name, [binary, "-d", "-c", str(conf)], d, port)


def _start_named(d: Path, name: str, upstream_port: int, stubs) -> Server:
    binary = _need_binary("named", "bind9", "BIND", NEEDED_BY_RESOLVERS)
    port = _free_port(_ports)
    conf = write_named_conf(d, name, port, upstream_port, stubs, SOURCE_ADDR[name])
    _checkconf("named-checkconf", conf)
    return _start(name, [binary, "-g", "-4", "-n", "1", "-c", str(conf)], d, port)


@pytest.fixture(scope="session")
def stub_auth(interop_dir, zone_copies):
    """minidns with the three zones and the query log, for the resolvers of setup 1."""
    listen = ("127.0.0.1", _free_port(_ports))
    with _serving(_start_minidns("minidns-stub", interop_dir, list(zone_copies.values()), [listen],
                                 query_log=True)) as server:
        yield server


STUB_ZONES = ("example.com.", "child.example.com.", "2.0.192.in-addr.arpa.", ".")


def _unbound_stubs(port: int, zones) -> dict[str, list[tuple[str, int]]]:
    return {z: [("127.0.0.1", port)] for z in zones}


@pytest.fixture(scope="session")
def unbound(interop_dir, stub_auth):
    stubs = _unbound_stubs(stub_auth.port, STUB_ZONES)
    with _serving(_start_unbound(interop_dir, "unbound", stubs, False), _wait_resolver) as server:
        yield server


@pytest.fixture(scope="session")
def unbound_tcp(interop_dir, stub_auth):
    stubs = _unbound_stubs(stub_auth.port, STUB_ZONES)
    with _serving(_start_unbound(interop_dir, "unbound-tcp", stubs, True), _wait_resolver) as server:
        yield server


@pytest.fixture(scope="session")
def named(interop_dir, stub_auth):
    stubs = {z: ["127.0.0.1"] for z in STUB_ZONES if z != "."}
    with _serving(_start_named(interop_dir, "named", stub_auth.port, stubs), _wait_resolver) as server:
        yield server


@dataclass
class SplitAuth:
    parent: Server
    child: Server
    port: int            # parent on 127.0.0.1:port, child on CHILD_NS_ADDR:port
    child_on_53: bool    # child also on CHILD_NS_ADDR:53 (needed by Unbound)


@pytest.fixture(scope="session")
def split_auth(interop_dir):
    """Setup 2: parent-only and child-only minidns, glue pointing at the child's loopback address."""
    if not _bindable(CHILD_NS_ADDR, 0):
        pytest.fail(f"cannot bind {CHILD_NS_ADDR}: the referral tests need 127/8 routed to loopback")
    copies = _zone_copies_for_referral(interop_dir)
    port = _free_port_on(["127.0.0.1", CHILD_NS_ADDR], _ports)
    on_53 = _bindable(CHILD_NS_ADDR, 53)
    child_listens = [(CHILD_NS_ADDR, port)] + ([(CHILD_NS_ADDR, 53)] if on_53 else [])
    with _serving(_start_minidns("minidns-parent", interop_dir, [copies["example.com."]], [("127.0.0.1", port)],
                                 query_log=True),
                  lambda s: _wait_ready(s, ["example.com."])) as parent, \
            _serving(_start_minidns("minidns-child", interop_dir, [copies["child.example.com."]], child_listens,
                                    query_log=True),
                     lambda s: _wait_ready(s, ["child.example.com."])) as child:
        yield SplitAuth(parent, child, port, on_53)


@pytest.fixture(scope="session")
def unbound_ref(interop_dir, split_auth):
    if not split_auth.child_on_53:
        pytest.skip(f"{CHILD_NS_ADDR}:53 cannot be bound (not root, or in use): Unbound queries a "
                    "delegated server on port 53 only, so its referral test cannot run here")
    stubs = _unbound_stubs(split_auth.port, ("example.com.", "."))
    with _serving(_start_unbound(interop_dir, "unbound-ref", stubs, False), _wait_resolver) as server:
        yield server


@pytest.fixture(scope="session")
def named_ref(interop_dir, split_auth):
    stubs = {"example.com.": ["127.0.0.1"]}
    with _serving(_start_named(interop_dir, "named-ref", split_auth.port, stubs), _wait_resolver) as server:
        yield server
