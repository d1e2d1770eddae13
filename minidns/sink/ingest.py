"""Event ingest: events applied in batches (group commit), one transaction each, idempotent by
message id; each event ends applied, ignored or failed, and recorded.

A batch is the events that arrive while the previous batch commits (it may be a single event). Its
transaction takes the events lock (events are applied one at a time, in the order they commit),
looks the batch's message ids up (an event already applied or ignored changes nothing again), runs
each event's handler (inside its own savepoint once one has failed), and writes each event's row in
`events` — applied, ignored or failed, with the reason and the records it changed. A handler that
fails rolls back to its savepoint, so a failed event leaves no records behind, only its row (the
batch runs without savepoints until one of its events fails, and is then rolled back and run again
with them). The record changes of the batch's events are logged once per zone (writer.ZoneLog): one
new serial and change-log row per zone per batch, holding their net effect. Without savepoints,
what the handlers will read is read for the whole batch first (sink/lookahead.py) and the
resources' new states are written together at its end (sink/resources.py). When the transaction
commits the events and all their effects are there; when the database is away none is, and the
caller is told so (`Unavailable` → 503). An event the database refuses to store spoils its batch's
transaction: the batch is then applied again an event at a time, so that only that event fails.
"""

from __future__ import annotations

from ..store.db import DB_DOWN, DB_FULL, LOST_MIDWAY
from ..store.records import Invalid
from ..store.writer import Conflict, NotFound, Store, Unsignable, ZoneLog
from . import journal
from .envelope import Header, kept, open_event, publisher
from .handlers import HANDLERS
from .outcome import BadEvent, Outcome, Unavailable
from .settings import EventSettings
from .lookahead import read_ahead
from .sync import Run, Scope

EVENTS_LOCK = 0x6D696E65  # advisory lock key ("mine"): events and reconciles apply one at a time
REFUSED = (BadEvent, Invalid, NotFound, Conflict, KeyError, TypeError, ValueError)  # a handler's "failed"
MIDWAY = "; the connection was lost during the request, so they may have been stored: sending them again is safe"


class Failed(Exception):
    """An event's handler failed in a batch applied without savepoints."""


async def ingest_many(store: Store, settings: EventSettings, raws: list) -> list:
    """Apply several events in one transaction (group commit: one lock, one commit), each handler
    in its own savepoint, in order; an Outcome or a BadEvent per event. Their record changes are
    logged once per zone for the whole batch (writer.ZoneLog). Unavailable (for all of them) when
    the database is away: then none is committed. When the batch fails for another reason (an
    event the database will not store), each event is tried on its own so that only that one
    fails: its result is the error."""
    results, ready = open_all(raws)
    if not ready:
        return results
    try:
        outcomes = await apply(store, settings, [r[1:] for r in ready])
    except (*DB_DOWN, *DB_FULL, Unsignable) as e:
        raise unavailable(e) from None
    except Exception as e:  # noqa: BLE001 - an event the database will not store: that event's result
        outcomes = [e] if len(ready) == 1 else await one_by_one(store, settings, ready)
    for (i, *_), outcome in zip(ready, outcomes):
        results[i] = outcome
    return results


def open_all(raws: list) -> tuple[list, list]:
    """A result per event (BadEvent for those that cannot be used, else None yet), and the usable
    ones as (index, event, header)."""
    results: list = [None] * len(raws)
    ready = []
    for i, raw in enumerate(raws):
        try:
            ready.append((i, *open_event(raw)))
        except BadEvent as e:
            results[i] = e
    return results, ready


def unavailable(e: Exception) -> Unavailable:
    """The database away (or full: rolled back, none is stored), or a signed zone and no master key
    here: the sender tries again later."""
    if isinstance(e, DB_DOWN):
        return Unavailable(f"the database is not reachable: {e}{MIDWAY if isinstance(e, LOST_MIDWAY) else ''}")
    if isinstance(e, DB_FULL):
        return Unavailable(f"the database cannot store events now: {e}")
    return Unavailable(str(e))


async def one_by_one(store: Store, settings: EventSettings, ready: list) -> list:
    """Each event in its own transaction; an event's error is its outcome."""
    out: list = []
    for _, ev, header in ready:
        try:
            out.append((await apply(store, settings, [(ev, header)]))[0])
        except DB_DOWN as e:
            raise Unavailable(f"the database is not reachable: {e}") from None
        except DB_FULL as e:
            raise Unavailable(f"the database cannot store events now: {e}") from None
        except Exception as e:  # noqa: BLE001 - handed to this event's caller
            out.append(e)
    return out


async def apply(store: Store, settings: EventSettings, ready: list) -> list:
    """A batch's outcomes. Savepoints cost two round trips per event and are needed only when an
    event fails: so the batch runs without them, and when one of its events fails, it is rolled
    back and run again with a savepoint around each event."""
    try:
        return await transaction(store, settings, ready, savepoints=False)
    except Failed:
        return await transaction(store, settings, ready, savepoints=True)


async def transaction(store: Store, settings: EventSettings, ready: list, savepoints: bool) -> list:
    """The transaction of a batch: the events lock, the batch's message ids looked up at once, each
    event applied, one change per zone logged, the events' rows written."""
    async with store.pool.acquire(timeout=10) as conn, conn.transaction():
        known = await journal.recorded(conn, [h.message_id for _, h in ready], EVENTS_LOCK)  # the events lock first
        batch = Batch(conn, store, settings, known, savepoints)
        if not savepoints:
            await read_ahead(batch.scope, [(ev, h) for ev, h in ready if not seen(known.get(h.message_id))])
        out = [await batch.apply(ev, header) for ev, header in ready]
        await batch.scope.resources.flush()
        changes = await batch.log.flush(conn)
        await journal.record(conn, batch.rows)
    store.taken(changes)  # committed: served by this process at once
    return out


def seen(old: dict | None) -> bool:
    """An event recorded before as applied or ignored: it changes nothing again."""
    return old is not None and old["status"] != "failed"


class Batch:
    """A batch's work inside its transaction (which holds the events lock): `known` holds the
    outcomes recorded before, by message id; `rows` the events' rows to record. Without
    `savepoints`, a failing handler raises Failed."""

    def __init__(self, conn, store: Store, settings: EventSettings, known: dict, savepoints: bool):
        self.conn, self.store, self.settings, self.known, self.savepoints = conn, store, settings, known, savepoints
        self.log = ZoneLog(store, "event", hold_writes=not savepoints)
        self.scope = Scope.of(conn, store, settings, self.log, batched=not savepoints)
        self.rows: list[tuple] = []

    async def apply(self, ev: dict, header: Header) -> Outcome:
        """One event: its outcome (the one recorded before, for a message id seen), its row added."""
        source, _, mid, ts = header
        old = self.known.get(mid)
        if seen(old):
            return Outcome(mid, old["source"], old["event_type"], old["status"], old["reason"], old["changes"], True)
        run = Run(self.scope, source, mid, ts)
        status, reason = await self.handle(run, ev, header)
        run.keep(f"event:{source}")  # the savepoint holds: the batch's change-log takes its writes
        if run.notes:
            reason = "; ".join(filter(None, [reason, *run.notes]))
        return self.record(ev, header, status, reason, run.changes)

    def record(self, ev: dict, header: Header, status: str, reason: str | None, changes: list) -> Outcome:
        """The event's row added to the batch's, its outcome known for a repeat in the batch."""
        source, et, mid, ts = header
        self.rows.append((mid, source, et, publisher(ev), status, reason, changes, kept(ev), ts))
        self.known[mid] = {"source": source, "event_type": et, "status": status, "reason": reason, "changes": changes}
        return Outcome(mid, source, et, status, reason, changes)

    async def handle(self, run: Run, ev: dict, header: Header) -> tuple[str, str | None]:
        """The handler's (status, reason); "failed" and why when it refuses the event."""
        handler = HANDLERS.get(header.source)
        if handler is None:
            return "ignored", f"{header.event_type}: no handler for this source"
        try:
            return await self.call(handler, run, ev)
        except REFUSED as e:
            if not self.savepoints:
                raise Failed from e  # its writes are in the transaction: the batch again, with savepoints
            run.forget()
            self.scope.forget()  # what was read inside the rolled-back savepoint may be gone again
            return "failed", why(e)

    async def call(self, handler, run: Run, ev: dict) -> tuple[str, str | None]:
        """The handler run, in its own savepoint when the batch has them."""
        if not self.savepoints:
            return await handler(run, ev)
        async with self.conn.transaction():
            return await handler(run, ev)


def why(e: Exception) -> str:
    """The reason recorded for a failed event."""
    if isinstance(e, KeyError):
        return f"malformed event: missing {e.args[0]!r}"
    if isinstance(e, (BadEvent, Invalid, NotFound, Conflict)):
        return str(e)
    return f"malformed event: {e}"
