"""A real `minidns serve` with its HTTP API on loopback, on a fresh PostgreSQL database, and a
small HTTP client for the tests. Tokens come from the configuration (api_tokens):

    ADMIN   project "admin-project", role admin
    ALICE   project "alice", role member        BOB  project "bob", role member
    READER  project "alice", role reader        INGEST project "sink", role ingest
"""

from __future__ import annotations

import socket
import sys
import time

import dns.message
import dns.query
import orjson
import pytest
import requests

ADMIN, ALICE, BOB, READER, INGEST = ("admin-token-0123456789", "alice-token-0123456789", "bob-token-0123456789",
                                     "reader-token-0123456789", "ingest-token-0123456789")  # fmt: skip
TOKENS = [
    {"token": ADMIN, "project": "admin-project", "role": "admin"},
    {"token": ALICE, "project": "alice", "role": "member"},
    {"token": BOB, "project": "bob", "role": "member"},
    {"token": READER, "project": "alice", "role": "reader"},
    {"token": INGEST, "project": "sink", "role": "ingest"},
]


# The default pool's NS records (pool_nameservers): the apex NS of every zone the API or the sink makes.
POOL_NS = ["ns1.pool.test.", "ns2.pool.test.:2"]
POOL_NS_NAMES = {"ns1.pool.test.", "ns2.pool.test."}

_THIS = sys.modules[__name__]


def pytest_pycollect_makemodule(module_path, parent):
    """The tests here import their tokens with `from conftest import ADMIN`. When pytest has loaded
    another conftest.py since this one (tests/server's, collected in the same run), the module name
    `conftest` is that one; point it back here before each test module of this directory is imported."""
    sys.modules["conftest"] = _THIS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """The running server: `url`, `dns_port`, `served` (tests/server/conftest.Served: its log), and
    request helpers that send a token and return requests.Response objects."""

    def __init__(self, url: str, served, database_url: str):
        self.url = url
        self.served = served
        self.dns_port = served.port
        self.database_url = database_url
        self.http = requests.Session()

    def request(self, method: str, path: str, token: str | None = ADMIN, json=None, data=None, headers=None, **kw):
        h = dict(headers or {})
        if token is not None:
            h["X-Auth-Token"] = token
        if json is not None:
            data = orjson.dumps(json)
            h.setdefault("Content-Type", "application/json")
        return self.http.request(method, self.url + path, data=data, headers=h, timeout=30, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def dig(self, name: str, rdtype: str = "A") -> dns.message.Message:
        return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=self.dns_port, timeout=2)

    def wait_dns(self, name: str, rdtype: str, check, timeout: float = 5.0) -> dns.message.Message:
        """Query until `check(reply)` is true (a committed change reaches the server in ms)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.dig(name, rdtype)
            if check(r):
                return r
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} {rdtype}: not as expected within {timeout}s: {r}")
            time.sleep(0.02)


@pytest.fixture
def api_config(tmp_path):
    """The TOML the server starts with; a test may append to it before using `api`."""
    path = tmp_path / "minidns.toml"
    lines = ["api_tokens = ["] + [
        f'  {{ token = "{t["token"]}", project = "{t["project"]}", role = "{t["role"]}" }},' for t in TOKENS
    ] + ["]", f"pool_nameservers = {POOL_NS!r}".replace("'", '"'), ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def api(serve, database_url, api_config):
    """Start the server (DNS on a free port, API on another) and wait for the API to answer."""
    port = free_port()
    served = serve("--database-url", database_url, "--config", str(api_config), "--api-listen", f"127.0.0.1:{port}",
                   "--listen", "127.0.0.1:0")  # fmt: skip
    served.wait_for(r"API listening on", 30)
    return Api(f"http://127.0.0.1:{port}", served, database_url)
