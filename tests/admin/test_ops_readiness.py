"""Liveness and readiness (admin/ops.py) against a real `minidns serve` whose PostgreSQL is cut
and restored by a TCP proxy (tests/server/pgproxy.py): /healthz answers throughout; /readyz is
503 with state "stale" and the database unreachable while the partition lasts, and 200 again
after it."""

import re
import time

import pytest
import requests
from conftest import free_port

from tests.server.pgproxy import PgProxy, unix_socket_of

STALE = "database connection lost: answering from memory (stale)"
READY = "database: ready"
HEAL = 10.0  # generous bound on the API reconnecting after the partition


@pytest.fixture
def proxy(database_url):
    p = PgProxy(unix_socket_of(database_url))
    try:
        yield p
    finally:
        p.close()


def test_readiness_follows_the_database_and_liveness_stays(serve, database_url, api_config, proxy):
    port = free_port()
    s = serve("--database-url", proxy.url(database_url), "--config", str(api_config), "--api-listen",
              f"127.0.0.1:{port}", "--listen", "127.0.0.1:0")  # fmt: skip
    s.wait_for(r"API listening on", 30)
    url = f"http://127.0.0.1:{port}"
    r = requests.get(f"{url}/readyz", timeout=10)
    assert r.status_code == 200
    ready = r.json()
    assert (ready["status"], ready["state"], ready["database"]) == ("ready", "ready", "ok") and ready["zones"] >= 0
    mark = len(s.lines)
    proxy.cut()
    s.wait_for(re.escape(STALE), 10, after=mark)
    r = requests.get(f"{url}/readyz", timeout=10)
    assert r.status_code == 503
    assert {k: r.json()[k] for k in ("status", "state", "database")} == {
        "status": "not ready", "state": "stale", "database": "unreachable"}
    assert requests.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
    mark = len(s.lines)
    proxy.restore()
    s.wait_for(re.escape(READY), 10, after=mark)
    # The API's pool finds its connections gone and makes new ones: ready again within the bound.
    deadline = time.monotonic() + HEAL
    while (r := requests.get(f"{url}/readyz", timeout=10)).status_code == 503:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    assert r.status_code == 200 and r.json()["state"] == "ready" and r.json()["database"] == "ok"
