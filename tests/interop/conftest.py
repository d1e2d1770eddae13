"""Start NSD, Knot DNS and minidns on free loopback ports, all serving the same test zones.

The three servers live for the whole test session. NSD and Knot are reference servers: if either
is not installed, every test that needs them FAILS (the suite is about comparing against them,
so a silent skip would hide that nothing was compared). Config files and zone copies go to a
temporary directory; nothing is sent anywhere but 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

ZONES_DIR = Path(__file__).resolve().parent.parent / "zones"
ZONE_FILES = {
    "example.com.": "example.com.zone",
    "child.example.com.": "child.example.com.zone",
    "2.0.192.in-addr.arpa.": "2.0.192.in-addr.arpa.zone",
}

# Identity strings configured identically on all three servers, so CH TXT and NSID replies compare.
NSID = "interop-ns"
VERSION = "interop-version"
IDENTITY = "interop-identity"

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


def _missing(name: str, package: str, what: str) -> str:
    override = os.environ.get("INTEROP_" + name.upper())
    if override is not None:
        return f"INTEROP_{name.upper()}={override} is not an executable {what} binary"
    return (f"{what} (`{name}`) is not installed: the interop suite compares minidns against NSD and Knot "
            f"and cannot run without them (Debian: apt-get install {package})")


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


def _free_port(taken: set[int]) -> int:
    """A loopback port free for both UDP and TCP right now (bounded number of tries)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            if port in taken:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        taken.add(port)
        return port
    raise RuntimeError("no free loopback port for UDP+TCP after 50 tries")


def _write_nsd_conf(d: Path, port: int, zones: dict[str, Path]) -> Path:
    (d / "nsd").mkdir(exist_ok=True)
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
    conf = d / "nsd" / "nsd.conf"
    conf.write_text(text)
    return conf


def _write_knot_conf(d: Path, port: int, zones: dict[str, Path]) -> Path:
    (d / "knot").mkdir(exist_ok=True)
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
    conf = d / "knot" / "knot.conf"
    conf.write_text(text)
    return conf


def _soa_ok(server: Server, origin: str) -> bool:
    try:
        r = dns.query.udp(dns.message.make_query(origin, "SOA"), server.host, port=server.port, timeout=0.3)
    except Exception:
        return False
    return r.rcode() == dns.rcode.NOERROR and bool(r.flags & dns.flags.AA) and bool(r.answer)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(ZONE_FILES)
    for _ in range(200):  # bounded in count as well as in time
        if server.proc.poll() is not None:
            pytest.fail(f"{server.name} exited with {server.proc.returncode} while starting; log:\n{server.log()}")
        pending = [o for o in pending if not _soa_ok(server, o)]
        if not pending:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    pytest.fail(f"{server.name} on 127.0.0.1:{server.port} does not answer SOA for {pending} "
                f"within {READY_TIMEOUT:.0f}s; log:\n{server.log()}")


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


@pytest.fixture(scope="session")
def interop_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("interop")
    for name in ZONE_FILES.values():
        shutil.copy(ZONES_DIR / name, d / name)
    return d


@pytest.fixture(scope="session")
def zone_copies(interop_dir) -> dict[str, Path]:
    return {origin: interop_dir / name for origin, name in ZONE_FILES.items()}


_ports: set[int] = set()


REPO = Path(__file__).resolve().parents[2]


def _start(name: str, argv: list[str], d: Path, port: int) -> Server:
    log_path = d / f"{name}.out"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=REPO)
    return Server(name, port, proc=proc, log_path=log_path)


@pytest.fixture(scope="session")
def nsd(interop_dir, zone_copies):
    binary = _find_binary("nsd")
    if binary is None:
        pytest.fail(_missing("nsd", "nsd", "NSD"))
    port = _free_port(_ports)
    conf = _write_nsd_conf(interop_dir, port, zone_copies)
    check = subprocess.run([_find_binary("nsd-checkconf") or "nsd-checkconf", str(conf)],
                           capture_output=True, text=True, timeout=30) if _find_binary("nsd-checkconf") else None
    if check is not None and check.returncode != 0:
        pytest.fail(f"nsd-checkconf rejects the generated config:\n{check.stdout}{check.stderr}")
    server = _start("nsd", [binary, "-d", "-c", str(conf)], interop_dir, port)
    server.log_path = interop_dir / "nsd" / "nsd.log"
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def knot(interop_dir, zone_copies):
    binary = _find_binary("knotd")
    if binary is None:
        pytest.fail(_missing("knotd", "knot", "Knot DNS"))
    port = _free_port(_ports)
    conf = _write_knot_conf(interop_dir, port, zone_copies)
    server = _start("knot", [binary, "-c", str(conf)], interop_dir, port)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def minidns(interop_dir, zone_copies):
    port = _free_port(_ports)
    argv = [sys.executable, "-m", "minidns", "serve"]
    for path in zone_copies.values():
        argv += ["--zone-file", str(path)]
    argv += ["--listen", f"127.0.0.1:{port}", "--nsid", NSID, "--version-string", VERSION,
             "--identity", IDENTITY]
    server = _start("minidns", argv, interop_dir, port)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def servers(nsd, knot, minidns) -> dict[str, Server]:
    return {"nsd": nsd, "knot": knot, "minidns": minidns}
