"""The one write path, as the rest of minidns meets it: `Store`, over an asyncpg pool. Every change
to a zone — records, zone fields, creation, deletion — is one transaction through the unit of work
(store/change.py: `async with store.change(zone, source=...) as w`), which locks the zone row,
applies validated values, runs the signing stage the Store was handed, bumps the SOA serial once
(RFC 1982), appends one change-log row (RFC 1995 §4 form) and NOTIFYs on commit. The names the
write path's callers use are here too."""

from __future__ import annotations

import logging
import time
import uuid

import asyncpg

from .change import ZONE_FIELDS, Change, SigningStage, Stages, StoreSettings, ZoneChange, find_zone
from .creation import DEFAULT_POOL_ID, POOL_SOURCE, create_zone, delete_zone, pool_nameservers, pool_ns_edit
from .edits import Edit, RRsetEdits
from .records import Conflict, Invalid, NotFound, Unsignable
from .rows import soa_rdata
from .serial import POLICIES, SERIAL_MOD, initial_serial, next_serial, serial_gt
from .zonelog import ZoneLog

__all__ = [
    "DEFAULT_POOL_ID", "POLICIES", "POOL_SOURCE", "SERIAL_MOD", "ZONE_FIELDS", "Change", "Conflict", "Edit", "Invalid",
    "NotFound", "RRsetEdits", "SigningStage", "Stages", "Store", "StoreSettings", "Unsignable", "ZoneChange",
    "ZoneLog", "find_zone", "initial_serial", "next_serial", "pool_nameservers", "pool_ns_edit", "serial_gt",
    "soa_rdata",
]  # fmt: skip


class Store:
    """The write path and the reads the commands need, over an asyncpg pool. `stages` are what
    each change runs besides writing rows — signing a signed zone's changes, the heartbeat
    record — handed in by whoever composes the store (store/stages.py)."""

    def __init__(self, pool: asyncpg.Pool, settings: StoreSettings = StoreSettings(), clock=time.time,
                 master: bytes | None = None, stages: Stages = Stages(), committed=None):  # fmt: skip
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.master = master  # the DNSSEC master key: writes to a signed zone sign what they change
        self.stages = stages
        # (changes) → called once they are committed, so that this process serves them at once
        # (server/database_link.py hands them to store/follow.py take_committed); None: nothing.
        self.committed = committed

    def bound(self, pool) -> Store:
        """This store (settings, clock, master key, stages, hook) over another pool or a held connection."""
        return Store(pool, self.settings, self.clock, self.master, self.stages, self.committed)

    def taken(self, changes: list) -> None:
        """Hand committed `changes` to the `committed` hook; its failure is logged, never raised
        (the changes are committed: the follower brings them anyway)."""
        if self.committed is None:
            return
        try:
            self.committed([c for c in changes if c is not None and c.logged is not None])
        except Exception:  # noqa: BLE001 - see above
            logging.getLogger("minidns.store").exception("handing committed changes over")

    # -- reads --------------------------------------------------------------------------------
    async def zone(self, zone: str | uuid.UUID) -> asyncpg.Record:
        async with self.pool.acquire() as conn:
            return await find_zone(conn, zone, lock=False)

    async def zones(self) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch("SELECT * FROM zones ORDER BY name")

    async def changes(self, zone: str | uuid.UUID) -> list[asyncpg.Record]:
        """The zone's change-log rows, oldest first."""
        async with self.pool.acquire() as conn:
            z = await find_zone(conn, zone, lock=False)
            return await conn.fetch("SELECT * FROM zone_changes WHERE zone_id = $1 ORDER BY seq", z["id"])

    # -- writes -------------------------------------------------------------------------------
    def change(self, zone: str | uuid.UUID, edits: list[Edit] = (), *, source: str, fields: dict | None = None,
               conn=None, key_records: bool = False, resign: bool = False, bump: bool = False,
               serial: int | None = None) -> ZoneChange:  # fmt: skip
        """One change with one new serial (store/change.py ZoneChange): `async with` it to queue
        edits, or await it to apply `edits` (and new zone `fields`: email, ttl, SOA timers,
        description…). With `conn` it joins that connection's open transaction. A write that
        changes nothing commits nothing. `serial`: the new serial the writer set (an UPDATE's SOA,
        RFC 2136 §3.6), used when it is ahead of the zone's; otherwise the serial policy's."""
        return ZoneChange(self, zone, edits, source=source, fields=fields, conn=conn, key_records=key_records,
                          resign=resign, bump=bump, serial=serial)  # fmt: skip

    async def create_zone(self, name: str, **kw) -> Change:
        """Create a zone with its records in one transaction (with `conn=`, that connection's).
        `rrsets` come checked already (a zone file import); `edits` are checked here. The zone is
        added to every catalog zone whose member patterns match it. With `catalog_members` (name
        patterns) the zone is itself a catalog zone (RFC 9432): NS invalid., version "2", and a
        member entry for each existing zone that matches. A zone of `pool_id` that brings no apex
        NS RRset gets its pool's NS records (RFC 1034 §4.2.1; store/pools.py), and its SOA MNAME
        is then the pool's first NS unless `mname` is given. Keywords: store/creation.create_zone."""
        return await create_zone(self, name, **kw)

    async def delete_zone(self, zone: str | uuid.UUID, source: str = "api", *, catalogs: bool = True) -> Change:
        """Delete the zone; every server stops serving it. It leaves the catalog zones (RFC 9432
        §5.5: their consumers drop it) unless `catalogs` is false — an abandoned zone, which the
        secondaries are to keep (admin/abandon.py)."""
        return await delete_zone(self, zone, source, catalogs_too=catalogs)

    async def refresh_signatures(self, zone: str | uuid.UUID) -> Change:
        """Re-sign what in a signed zone is nearing expiry (store/signing.REFRESH_LEFT of the
        validity left), as one change with a new serial so secondaries take it by IXFR before any
        signature they serve expires; a no-op (no new serial) when nothing is due."""
        return await self.change(zone, source="dnssec", resign=True)
