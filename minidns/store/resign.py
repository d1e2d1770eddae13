"""Signatures nearing expiry made again in every signed zone, one change each, so secondaries
take them by IXFR before any signature they serve expires (RFC 4035 §5.3.1)."""

from __future__ import annotations

import asyncpg


async def signed_zones(pool: asyncpg.Pool) -> list[tuple]:
    """(id, name) of every zone served signed."""
    return [(r["id"], r["name"]) for r in await pool.fetch("SELECT id, name FROM zones WHERE dnssec")]


async def refresh_all(store) -> list[tuple[str, int]]:
    """Refresh the signatures of every signed zone (store.writer.Store.refresh_signatures); the
    (zone, new serial) of each zone that needed it."""
    out = []
    for zone_id, name in await signed_zones(store.pool):
        change = await store.refresh_signatures(zone_id)
        if change.serial_to != change.serial_from:
            out.append((name, change.serial_to))
    return out
