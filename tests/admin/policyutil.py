"""Helpers of the TSIG key, TLD, blacklist, quota, floating IP, metrics and OpenAPI tests: direct
database access (to make zones through the store, independent of the zones API, and to check that
refused requests wrote nothing) and the error-shape check."""

from __future__ import annotations

import asyncio

from minidns.store import db
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store

TABLES = ("zones", "rrsets", "tsig_keys", "tlds", "blacklists", "quotas", "floatingips", "update_grants")


def run(api, fn):
    """Run `fn(conn)` (a coroutine function) on a connection to the test's database."""

    async def go():
        conn = await db.connect(api.database_url)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def sql(api, query: str, *args):
    return run(api, lambda conn: conn.fetch(query, *args))


def counts(api) -> dict:
    async def go(conn):
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}

    return run(api, go)


def make_zone(api, name: str, project_id: str = "", records: list[tuple] = ()) -> None:
    """Create a zone through the store (records: (name, type, ttl, data...))."""

    async def go():
        pool = await db.create_pool(api.database_url, size=1)
        try:
            edits = [Edit("add", n, t, ttl, tuple(data)) for n, t, ttl, *data in records]
            edits.append(Edit("add", "@", "NS", 3600, (f"ns1.{name}",)))
            await Store(pool, stages=write_stages()).create_zone(name, email=f"hostmaster@{name.rstrip('.')}", project_id=project_id,
                                          edits=edits)  # fmt: skip
        finally:
            await pool.close()

    asyncio.run(go())


def error(r, status: int, kind: str | None = None) -> dict:
    """A Designate-shaped error reply: {code, type, message, request_id}."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"code", "type", "message", "request_id"} and body["code"] == status, body
    if kind is not None:
        assert body["type"] == kind, body
    return body
