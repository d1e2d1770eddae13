"""Fixtures of the store tests; `database_url` (an empty database with the schema) is in tests/conftest.py."""

import pytest

from minidns.store import db


@pytest.fixture
async def pool(database_url):
    p = await db.create_pool(database_url, size=8)
    yield p
    await p.close()
