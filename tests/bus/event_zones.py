"""The zones the bus tests' events land in (forward, the reverse zones of their addresses)."""

from __future__ import annotations

import asyncio

from minidns.store import db
from minidns.store.writer import Edit, Store

ZONES = ("cloud.test.", "acct.test.", "0.0.10.in-addr.arpa.", "0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "113.0.203.in-addr.arpa.")


async def make_zones(s: Store) -> Store:
    for name in ZONES:
        await s.create_zone(name, email=f"hostmaster@{name.rstrip('.')}", edits=[Edit("add", "@", "NS", 300, ("ns1.example.",))])
    return s


def create_zones(url: str) -> None:
    """The zones made in the database at `url` (from a test that runs no event loop)."""

    async def go():
        pool = await db.create_pool(url, size=1)
        try:
            await make_zones(Store(pool))
        finally:
            await pool.close()

    asyncio.run(go())
