"""The `events` table: each event's row — applied, ignored or failed, with the reason and the
records it changed — looked up by message id (an event already recorded changes nothing again)
and read back by the API."""

from __future__ import annotations

from ..store.db import DB_DOWN
from .outcome import Unavailable

RECORD = (
    "INSERT INTO events (message_id, source, event_type, publisher_id, status, reason, changes, event,"
    " event_time, applied_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $5 = 'applied' THEN now() END)"
    " ON CONFLICT (message_id) DO UPDATE SET status = $5, reason = $6, changes = $7, event = $8,"
    " attempts = events.attempts + 1, received_at = now(), applied_at = CASE WHEN $5 = 'applied' THEN now() END"
)


async def recorded(conn, message_ids: list[str], lock: int) -> dict:
    """The advisory lock `lock` taken for the transaction, then: message id → the outcome recorded
    for it, for those of `message_ids` seen before (rows locked). One round trip: the lock is the
    query's one-time filter (an uncorrelated subquery, evaluated before the scan begins)."""
    return {r["message_id"]: dict(r) for r in await conn.fetch(
        "SELECT message_id, source, event_type, status, reason, changes FROM events"
        " WHERE (SELECT pg_advisory_xact_lock($2)) IS NOT NULL AND message_id = ANY($1::text[]) FOR UPDATE",
        message_ids, lock,
    )}  # fmt: skip


async def record(conn, rows: list[tuple]) -> None:
    """Write the events' rows (RECORD's parameters, one tuple per event)."""
    if rows:
        await conn.executemany(RECORD, rows)


async def get_event(pool, message_id: str) -> dict | None:
    try:
        row = await pool.fetchrow(
            "SELECT message_id, source, event_type, publisher_id, status, reason, changes, attempts, event_time,"
            " received_at, applied_at FROM events WHERE message_id = $1", message_id,
        )  # fmt: skip
    except DB_DOWN as e:
        raise Unavailable(f"the database is not reachable: {e}") from None
    return dict(row) if row else None


async def list_events(pool, status: str | None, limit: int) -> list[dict]:
    try:
        rows = await pool.fetch(
            "SELECT message_id, source, event_type, status, reason, received_at, applied_at FROM events"
            " WHERE $1::text IS NULL OR status = $1 ORDER BY received_at DESC LIMIT $2", status, limit,
        )  # fmt: skip
    except DB_DOWN as e:
        raise Unavailable(f"the database is not reachable: {e}") from None
    return [dict(r) for r in rows]
