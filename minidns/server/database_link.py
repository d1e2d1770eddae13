"""A server process's PostgreSQL, from opening to closing: the database opened (the main process
makes its schema current and seeds the example zone), its zones followed into the served set
(store/follow.py), the change log read for IXFR on connections of its own, so transfers never
queue behind API writes."""

from __future__ import annotations

import asyncio
import logging
import os

from ..dnssec.keys import BadKey
from ..store import db
from ..services.database import open_database
from ..store.keys import KEY_FILE
from ..store.embedded import default_data_dir
from ..store.follow import Follower
from ..store.history import change_history
from .config import Config
from .served_zones import example_zone_path

log = logging.getLogger("minidns")

XFR_POOL_SIZE = 2  # connections for IXFR's change-log reads


def master_key(config: Config, role: str) -> bytes | None:
    """The DNSSEC master key, or None (logged) when it is configured but unusable: signed zones
    are then served unsigned (store/follow.py says which). With the embedded database the main
    process makes master.key in its data directory when there is none yet, so that a later
    `minidns dnssec enable` seals the zone's keys under the key this server holds."""
    try:
        return config.master_key(create=role == "main" and config.database_url is None)
    except BadKey as e:
        log.error("DNSSEC: %s", e)
        return None


def embedded_master_key_file(config: Config) -> str:
    """master.key in the embedded database's data directory (where the main process finds it)."""
    return os.path.join(os.path.expanduser(config.data_dir or default_data_dir()), KEY_FILE)


class DatabaseLink:
    """The database (store.Database), the IXFR pool and the follower of one process."""

    def __init__(self, config: Config, role: str):
        self.config = config
        self.role = role
        self.database = None  # a store.Database once connected
        self.xfr_pool = None  # IXFR's change-log reads: connections of their own, not behind API writes
        self.follower: Follower | None = None
        self.following: asyncio.Task | None = None

    async def open(self, sink) -> None:
        """Open the database and start following its zones into `sink` (store/follow.ZoneSink)."""
        c, main = self.config, self.role == "main"
        self.database = await open_database(
            c.database_url, c.data_dir, upgrade=c.db_upgrade and main, settings=c.store_settings(),
            seed_zone_file=example_zone_path() if main else None,
            master_key=lambda: master_key(self.config, self.role),  # the API's writes to signed zones sign
        )  # fmt: skip
        self.xfr_pool = await db.create_pool(self.database.url, size=XFR_POOL_SIZE)
        await self._follow(sink)

    async def _follow(self, sink) -> None:
        """Load every zone into `sink`, then keep it current from the change log."""
        c = self.config
        self.follower = Follower(self.database.url, sink, listen=c.db_listen, check_interval=c.db_check_interval,
                                 master_key=self.database.store.master)  # fmt: skip
        await self.follower.start()
        self.database.store.committed = self._take
        self.following = asyncio.ensure_future(self.follower.run())

    def _take(self, changes: list) -> None:
        """Changes this process committed (the API, the sink, UPDATE): served at once when each
        follows on from what the follower holds (store/follow.py take_committed)."""
        for c in changes:
            self.follower.take_committed(c.zone_id, c.serial_from, c.serial_to, c.logged)

    async def history(self, zone: str) -> list | None:
        """The change log of a database zone, for IXFR; None when it cannot be read (the transfer
        then sends the whole zone)."""
        try:
            return await change_history(self.xfr_pool or self.database.pool, zone)
        except Exception as e:  # noqa: BLE001 - the database away, asyncpg's errors: the transfer falls back to AXFR
            log.warning("change log of %s not readable (%s): sending the whole zone", zone, e)
            return None

    async def close(self) -> None:
        """Stop following, close the IXFR pool (terminated after 5 s) and the database."""
        if self.following is not None:
            self.following.cancel()
            await asyncio.gather(self.following, return_exceptions=True)
        if self.follower is not None:
            await self.follower.stop()
        if self.xfr_pool is not None:
            pool, self.xfr_pool = self.xfr_pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (asyncio.TimeoutError, OSError):
                pool.terminate()
        if self.database is not None:
            await self.database.close()
