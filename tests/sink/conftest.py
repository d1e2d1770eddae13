"""Fixtures of the sink tests that need the database: a Store over an empty database
with the schema (`pool`, tests/conftest.py), and zones for events to land in."""

import pytest

from minidns.store.writer import Edit, Store

ZONES = ("cloud.test.", "acct.test.", "0.0.10.in-addr.arpa.", "0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa.")


@pytest.fixture
async def store(pool):
    s = Store(pool)
    for name in ZONES:
        await s.create_zone(name, email=f"hostmaster@{name.rstrip('.')}", edits=[Edit("add", "@", "NS", 300, ("ns1.example.",))])
    return s
