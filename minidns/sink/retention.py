"""Retention of the sink's memory: events and tombstones older than events_keep_days removed, in
short chunks so that ingest never waits long."""

from __future__ import annotations

from ..store.db import DB_DOWN
from .outcome import Unavailable

OLD_EVENTS = (
    "DELETE FROM events WHERE message_id IN (SELECT message_id FROM events"
    " WHERE received_at < now() - make_interval(secs => $1) LIMIT $2)"
)
OLD_TOMBSTONES = (
    "DELETE FROM event_resources WHERE (source, resource_type, resource_id) IN (SELECT source, resource_type,"
    " resource_id FROM event_resources WHERE state = 'deleted' AND updated_at < now() - make_interval(secs => $1) LIMIT $2)"
)


async def prune(pool, keep_days: float, chunk: int = 5000) -> tuple[int, int]:
    """Events received more than `keep_days` ago (a message id sent again after that is applied as
    new), and tombstones of resources deleted that long ago (a create arriving that late makes
    records again). Live resources are kept whatever their age. (events, tombstones) removed."""
    return (await delete_in_chunks(pool, OLD_EVENTS, keep_days, chunk),
            await delete_in_chunks(pool, OLD_TOMBSTONES, keep_days, chunk))  # fmt: skip


async def delete_in_chunks(pool, sql: str, keep_days: float, chunk: int) -> int:
    """Run the DELETE (each its own short transaction) until a chunk removes fewer than `chunk` rows."""
    removed = 0
    while True:
        try:
            status = await pool.execute(sql, keep_days * 86400.0, chunk)
        except DB_DOWN as e:
            raise Unavailable(f"the database is not reachable: {e}") from None
        n = int(status.split()[-1])
        removed += n
        if n < chunk:
            return removed
