"""Propagation status: per secondary of a zone the serial last seen there and its state, per zone
PENDING, ACTIVE or ERROR, as the server records them (server/notify.py tracks them) and reads them
back at start."""

from __future__ import annotations

import asyncpg

_SECONDARY = ("INSERT INTO secondary_status (zone_id, secondary, target, serial, state, seen_at, updated_at)"
              " VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (zone_id, secondary) DO UPDATE SET"
              " target = EXCLUDED.target, serial = EXCLUDED.serial, state = EXCLUDED.state,"
              " seen_at = EXCLUDED.seen_at, updated_at = now()")  # fmt: skip
# A zone's status follows its propagation only while the zone is still at the serial measured.
_ZONE = ("UPDATE zones SET status = $3, action = CASE WHEN $3 = 'ACTIVE' THEN 'NONE' ELSE action END"
         " WHERE id = $1 AND serial = $2 AND status <> $3")  # fmt: skip


async def record_status(pool: asyncpg.Pool, zone: str, target: int, rows: list[tuple], status: str | None) -> None:
    """Record a zone's propagation: `rows` are (secondary, serial seen, state, seen_at); `status`
    (ACTIVE / ERROR / PENDING) is written to the zone when it is still at serial `target`."""
    async with pool.acquire() as conn, conn.transaction():
        zid = await conn.fetchval("SELECT id FROM zones WHERE name = $1", zone)
        if zid is None:
            return
        if rows:
            await conn.executemany(_SECONDARY, [(zid, sec, target, serial, state, seen_at) for sec, serial, state, seen_at in rows])
        if status is not None:
            await conn.execute(_ZONE, zid, target, status)


async def unsettled_zones(pool: asyncpg.Pool) -> list[str]:
    """Zones left PENDING or in ERROR (changed while no server watched, or before a restart)."""
    return [r["name"] for r in await pool.fetch("SELECT name FROM zones WHERE status <> 'ACTIVE'")]
