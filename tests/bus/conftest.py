"""Fixtures of the bus tests: one private RabbitMQ node for the test session (`rabbit`, restartable),
a Store over an empty database with zones for events to land in, and the database reachable
through a TCP proxy that can be cut (tests/server/pgproxy.py: the database "away")."""

from __future__ import annotations

import pytest
from event_zones import make_zones
from rabbit import Rabbit, installed

from minidns.store import db
from minidns.store.writer import Store
from tests.server.pgproxy import PgProxy, unix_socket_of


@pytest.fixture
async def store(pool):
    return await make_zones(Store(pool))


@pytest.fixture
def db_proxy(database_url):
    """(proxy, url): `url` reaches the test's database through `proxy` (PgProxy: cut(), restore())."""
    proxy = PgProxy(unix_socket_of(database_url))
    yield proxy, proxy.url(database_url)
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
