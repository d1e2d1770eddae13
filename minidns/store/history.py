"""The change log as IXFR reads it (RFC 1995 §4): a zone's logged differences, oldest first; and as
an operator reads it: who changed what, when (`minidns zone history`)."""

from __future__ import annotations

import asyncpg

from ..wire import SOA
from ..zones.changes import unpack_rrs

# Every logged difference of one zone (a zone's first row has no serial_from: not a difference).
_HISTORY = ("SELECT c.serial_from, c.serial_to, c.removed, c.added FROM zone_changes c"
            " JOIN zones z ON z.id = c.zone_id WHERE z.name = $1 AND c.serial_from IS NOT NULL ORDER BY c.seq")  # fmt: skip


async def change_history(pool: asyncpg.Pool, zone: str) -> list:
    """(serial_from, serial_to, removed, added) rows of `zone`'s change log, in the order written."""
    async with pool.acquire() as conn:
        return await conn.fetch(_HISTORY, zone.lower())


# The newest rows of one zone's change log, newest first, with what made each (api, cli, event:…,
# update:<TSIG key>…) and how many records it removed and added (the SOA's own change aside).
_RECENT = ("SELECT c.seq, c.serial_from, c.serial_to, c.source, c.created_at, c.removed, c.added FROM zone_changes c"
           " JOIN zones z ON z.id = c.zone_id WHERE z.name = $1 ORDER BY c.seq DESC LIMIT $2")  # fmt: skip


async def recent_changes(pool: asyncpg.Pool, zone: str, limit: int = 20) -> list[dict]:
    """The last `limit` changes of `zone`, newest first: serial_from, serial_to, source, created_at,
    and the counts of records removed and added besides the SOA."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(_RECENT, zone.lower(), limit)
    return [{"serial_from": r["serial_from"], "serial_to": r["serial_to"], "source": r["source"],
             "created_at": r["created_at"], "removed": _counted(unpack_rrs(r["removed"])),
             "added": _counted(unpack_rrs(r["added"]))} for r in rows]  # fmt: skip


def _counted(rrs: list) -> int:
    return sum(1 for rr in rrs if rr[1] != SOA)  # the SOA of each serial is in every change
