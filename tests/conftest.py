"""Fixtures shared by every test package: one embedded PostgreSQL for the session (the same wheel
`minidns serve` starts by default) and a fresh database per test; `serve` starts a real
`minidns serve` process on loopback, `cli` runs one `minidns` command."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

# oslo.messaging (tests/bus publish with its Notifier) imports eventlet, whose green socket module
# replaces dnspython's modules with patched copies of its own (eventlet.support.greendns) in the
# whole process: every later test would then meet two RdataType enums and a dns.query.udp that
# binds sockets eventlet's way. This keeps eventlet's hands off dnspython.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")
from pathlib import Path

import pytest

from minidns.store import db
from minidns.store.writer import DEFAULT_POOL_ID
from minidns.store.embedded import start_embedded

_count = itertools.count()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A private PostgreSQL for the test session, with fsync off (test data need not survive a
    power cut)."""
    emb = start_embedded(str(tmp_path_factory.mktemp("pg")))

    async def tune():
        conn = await db.connect(emb.url)
        await conn.execute("ALTER SYSTEM SET fsync = off")
        await conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        await conn.execute("SELECT pg_reload_conf()")
        await conn.close()

    asyncio.run(tune())
    yield emb
    emb.stop()


DEFAULT_POOL_NS = "ns1.pool.test."  # the default pool's NS record in a test database


def database_url_for(base_url: str, name: str) -> str:
    return re.sub(r"/postgres\?", f"/{name}?", base_url, count=1)


@contextmanager
def fresh_database(pg_server):
    """The URL of an empty database with the current schema, dropped on the way out."""
    name = f"t{next(_count)}"

    async def create():
        conn = await db.connect(pg_server.url)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()
        conn = await db.connect(database_url_for(pg_server.url, name))
        await db.upgrade(conn)
        # What a server's start does (services/pools.py prepare): the default pool gets its NS records.
        await conn.execute("INSERT INTO pool_ns_records (pool_id, hostname, priority) VALUES ($1, $2, 1)",
                           DEFAULT_POOL_ID, DEFAULT_POOL_NS)  # fmt: skip
        await conn.close()

    async def drop():
        conn = await db.connect(pg_server.url)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()

    asyncio.run(create())
    try:
        yield database_url_for(pg_server.url, name)
    finally:
        asyncio.run(drop())


@pytest.fixture
def database_url(pg_server):
    """The URL of an empty database with the current schema, dropped after the test."""
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture
async def pool(database_url):
    """A connection pool on `database_url` (for the store and services tests)."""
    p = await db.create_pool(database_url, size=8)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def new_database(pg_server):
    """For fixtures of a wider scope than one test: `with new_database() as url:` an empty
    database with the current schema, dropped on the way out."""
    return lambda: fresh_database(pg_server)


# -- a real `minidns serve` and the `minidns` command ---------------------------------------------


class Served:
    """A running `minidns serve`: its process, port and collected log lines."""

    def __init__(self, args, env=None):
        env = dict(env or os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))  # this checkout
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "minidns", "serve", *args],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
        )
        self.lines: list[str] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = None
        self.wait_for(r"serving \d+ zone", 30)
        m = re.search(r"port (\d+)", self.log)
        self.port = int(m.group(1)) if m else None

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    @property
    def log(self) -> str:
        with self.cond:
            return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10, after: int = 0) -> str:
        """Wait until a log line (from line number `after` on) matches `pattern`."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self.cond:
            while True:
                for line in self.lines[after:]:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no log line matching {pattern!r}; log:\n{''.join(self.lines)}")
                self.cond.wait(min(left, 0.2))

    def signal(self, sig) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def serve():
    """serve(*args) starts a server (listening on a free loopback port unless --listen is given)."""
    yield from _serving()


@pytest.fixture(scope="module")
def module_serve():
    """`serve` for the servers a whole test module shares: stopped after its last test."""
    yield from _serving()


def _serving():
    started = []

    def start(*args, env=None):
        args = list(args)
        if "--listen" not in args and not any(a.startswith("--config") for a in args):
            args += ["--listen", "127.0.0.1:0"]
        if "--api-listen" not in args and "--no-api" not in args:
            args += ["--api-listen", "127.0.0.1:0"]  # several servers at once: no fixed API port
        s = Served(args, env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()




@pytest.fixture
def cli():
    """cli(*args, env=None, timeout=60) runs one `minidns` command (this checkout's) to its end
    and returns the CompletedProcess, stdout and stderr as text."""

    def run(*args, env=None, timeout=60):
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        return subprocess.run(
            [sys.executable, "-m", "minidns", *map(str, args)],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
        )

    return run


def pytest_make_parametrize_id(config, val, argname):
    """Bytes parameters (query messages, often with a random ID) are named by their length, so
    every process collecting the suite (pytest-xdist workers) names the tests alike."""
    if isinstance(val, (bytes, bytearray)):
        return f"{argname}{len(val)}"
    return None
