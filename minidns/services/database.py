"""Opening the database a process uses — the configured one, or the embedded default — with its
schema made current, as `serve` and every command do."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from ..store import db
from ..store.embedded import Embedded, default_data_dir, start_embedded
from ..store.stages import write_stages
from ..store.writer import Store, StoreSettings
from . import pools

log = logging.getLogger("minidns.store")


@dataclass
class Database:
    url: str
    pool: asyncpg.Pool
    store: Store
    embedded: Embedded | None

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), 5)
        except asyncio.TimeoutError:
            self.pool.terminate()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


async def open_database(
    url: str | None,
    data_dir: str | None,
    *,
    upgrade: bool = True,
    settings: StoreSettings = StoreSettings(),
    seed_zone_file: str | None = None,
    master_key=None,
) -> Database:
    """Connect to `url`, or start the embedded PostgreSQL in `data_dir` when it is None; apply
    migrations (or, with upgrade=False, insist they are applied). `master_key` (a callable giving
    the DNSSEC master key or None) is asked once the database is there: the store signs what it
    writes to signed zones with it. Where the schema is upgraded, pools are prepared too: the
    default pool's NS records set and zones without apex NS repaired (services/pools.py). A newly
    created embedded database gets `seed_zone_file` imported, so a first run serves something."""
    embedded = None
    if url is None:
        embedded = await asyncio.to_thread(start_embedded, data_dir or default_data_dir())
        url = embedded.url
    try:
        conn = await db.connect(url)
        try:
            if upgrade:
                await db.upgrade(conn)
            elif not await db.schema_current(conn):
                raise db.DatabaseError("the database schema is not current; run `minidns db upgrade`")
        finally:
            await conn.close()
        pool = await db.create_pool(url)
    except BaseException:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    database = Database(url, pool, Store(pool, settings, stages=write_stages()), embedded)
    try:
        database.store.master = master_key() if master_key is not None else None
        if upgrade:
            await pools.prepare(database.store, settings.pool_nameservers)
    except BaseException:
        await database.close()
        raise
    if embedded is not None and embedded.created and seed_zone_file:
        from .zonefile import import_zone

        change = await import_zone(database.store, seed_zone_file, source="seed")
        log.info("new embedded database: imported the example zone %s", change.zone)
    return database
