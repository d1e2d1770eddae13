"""Fixtures of the bus tests: one private RabbitMQ node for the test session (`rabbit`, restartable),
a Store over an empty database with zones for events to land in, and the database reachable
through a TCP proxy that can be cut (the database "away")."""

from __future__ import annotations

import glob
import os
import re

import pytest
from rabbit import Rabbit, installed
from tcp_proxy import TcpProxy

from minidns.store import db
from minidns.store.writer import Edit, Store

ZONES = ("cloud.test.", "acct.test.", "0.0.10.in-addr.arpa.", "0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa.")


async def make_zones(s: Store) -> Store:
    for name in ZONES:
        await s.create_zone(name, email=f"hostmaster@{name.rstrip('.')}", edits=[Edit("add", "@", "NS", 300, ("ns1.example.",))])
    return s


@pytest.fixture
async def store(pool):
    return await make_zones(Store(pool))


def pg_socket(url: str) -> str:
    """The Unix socket of the embedded PostgreSQL at `url` (postgresql://user:@/db?host=<dir>)."""
    sockets = [p for p in glob.glob(os.path.join(re.search(r"host=([^&]+)", url).group(1), ".s.PGSQL.*")) if not p.endswith(".lock")]
    return sockets[0]


@pytest.fixture
def db_proxy(database_url):
    """(proxy, url): `url` reaches the test's database through `proxy` (TcpProxy), over TCP."""
    proxy = TcpProxy(pg_socket(database_url))
    proxy.start()
    name = re.search(r"@/([^?]+)", database_url).group(1)
    yield proxy, f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}"
    proxy.close()


@pytest.fixture
async def proxied_store(db_proxy):
    """(proxy, store): a Store whose pool goes through the proxy, zones made."""
    proxy, url = db_proxy
    pool = await db.create_pool(url, size=4)
    yield proxy, await make_zones(Store(pool))
    await pool.close()


@pytest.fixture(scope="session")
def rabbit(tmp_path_factory):
    """A private RabbitMQ node on loopback for the whole session (rabbit.Rabbit: .url, .restart(),
    .ctl(...)); a test that needs a clean broker declares its own exchanges and queues."""
    if not installed():
        pytest.skip("rabbitmq-server is not installed (Debian package rabbitmq-server; scripts/test.sh installs it)")
    node = Rabbit(tmp_path_factory.mktemp("rabbit"))
    node.start()
    yield node
    node.close()
