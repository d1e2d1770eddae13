"""The change log as IXFR reads it (RFC 1995 §4): a zone's logged differences, oldest first."""

from __future__ import annotations

import asyncpg

# Every logged difference of one zone (a zone's first row has no serial_from: not a difference).
_HISTORY = ("SELECT c.serial_from, c.serial_to, c.removed, c.added FROM zone_changes c"
            " JOIN zones z ON z.id = c.zone_id WHERE z.name = $1 AND c.serial_from IS NOT NULL ORDER BY c.seq")  # fmt: skip


async def change_history(pool: asyncpg.Pool, zone: str) -> list:
    """(serial_from, serial_to, removed, added) rows of `zone`'s change log, in the order written."""
    async with pool.acquire() as conn:
        return await conn.fetch(_HISTORY, zone.lower())
