"""Messages from a bus applied: each body decoded, the unusable ones (poison) recorded as failed,
the others enriched when the source needs it and ingested in one transaction (the group commit of
sink.ingest.ingest_many). `apply_messages` returns only when every message's outcome is committed,
so its caller acknowledges the messages then and not before (at-least-once delivery from the
broker + idempotency by message id = each event takes effect once)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from ..sink import journal
from ..sink.envelope import has_nul, kept, publisher
from ..sink.ingest import ingest_many
from ..sink.outcome import BadEvent, Outcome, Unavailable
from ..store.db import DB_DOWN, DB_FULL
from .backoff import BACKOFF, delay
from .message import Message, Unreachable, message_key
from .status import SourceStatus

log = logging.getLogger("minidns.bus")
KEEP_BODY = 64 << 10  # a poison body larger than this is recorded as its first KEEP_PREVIEW bytes
KEEP_PREVIEW = 1024
Enrich = Callable[[list], Awaitable[list]]


@dataclass(frozen=True, slots=True)
class Poison:
    """A message that cannot be applied: recorded as failed under message_key(msg), and acknowledged."""

    msg: Message
    raw: object  # the decoded body, or None when it is not JSON
    reason: str

    def event_type(self) -> str:
        if isinstance(self.raw, dict):
            for key in ("event_type", "event"):
                if isinstance(self.raw.get(key), str):
                    return self.raw[key][:255]
        return "unknown"

    def stored(self, keep: bool = True) -> dict:
        """What the events row keeps of the message: the JSON object, or the start of the body."""
        if keep and isinstance(self.raw, dict) and len(self.msg.body) <= KEEP_BODY and not has_nul(self.raw):
            return kept(self.raw)
        text = self.msg.body[:KEEP_PREVIEW].decode("utf-8", "replace").replace("\x00", "\ufffd")
        return {"body": text, "bytes": len(self.msg.body), "routing_key": self.msg.routing_key}

    def row(self, keep: bool = True) -> tuple:
        """journal.record's row: the event as received when `keep`, else the start of its body."""
        raw = self.raw if isinstance(self.raw, dict) else {}
        return (message_key(self.msg), self.msg.source, self.event_type(), publisher(raw), "failed", self.reason, [],
                self.stored(keep), None)  # fmt: skip

    def outcome(self) -> Outcome:
        return Outcome(message_key(self.msg), self.msg.source, self.event_type(), "failed", self.reason)


async def apply_messages(store, settings, messages: list[Message], *, enrich: Enrich | None = None,
                         status: SourceStatus | None = None, backoff=BACKOFF) -> list[Outcome]:  # fmt: skip
    """The committed outcome of each message, in order. `enrich(events)` (when given) completes the
    decoded events before they are applied; while it raises Unreachable, or the database is away
    (Unavailable), the batch waits with `backoff` and is tried again, for as long as it takes."""
    if status is not None:
        status.receive(len(messages), sum(m.redelivered for m in messages))
    opened = [decode(m) for m in messages]
    raws = [o for o in opened if not isinstance(o, Poison)]
    if enrich is not None and raws:
        raws = await patiently(lambda: enrich(raws), Unreachable, status, backoff)
    results = iter(await patiently(lambda: ingest_many(store, settings, raws), Unavailable, status, backoff))
    merged = [o if isinstance(o, Poison) else judged(m, o, next(results)) for m, o in zip(messages, opened)]
    poison = [p for p in merged if isinstance(p, Poison)]
    if poison:
        await patiently(lambda: record_failed(store.pool, poison), Unavailable, status, backoff)
    outcomes = [p.outcome() if isinstance(p, Poison) else p for p in merged]
    if status is not None:
        status.count(outcomes)
    return outcomes


def decode(msg: Message):
    """The message's event (a JSON object), or Poison when the body is not one."""
    try:
        raw = orjson.loads(msg.body)
    except orjson.JSONDecodeError as e:
        return Poison(msg, None, f"the message is not JSON: {e}")
    if not isinstance(raw, dict):
        return Poison(msg, raw, f"the message is a JSON {type(raw).__name__}, not an object")
    return with_stable_id(msg, raw)


def with_stable_id(msg: Message, raw: dict) -> dict:
    """A CloudStack event-bus event carries no id at all: it gets message_key(msg) as its
    message_id, the same on every redelivery, so that applying it again changes nothing."""
    if "oslo.message" in raw or isinstance(raw.get("event_type"), str) or not isinstance(raw.get("event"), str):
        return raw
    if raw.get("message_id") or raw.get("eventUuid") or raw.get("uuid"):
        return raw
    return {**raw, "message_id": message_key(msg)}


def judged(msg: Message, raw: dict, result):
    """ingest_many's result for an event: its Outcome, or Poison when it refused the event."""
    if isinstance(result, Outcome):
        return result
    if not isinstance(result, BadEvent):  # the database refused this event alone
        log.error("bus %s: message %s could not be stored: %r", msg.source, message_key(msg), result)
        return Poison(msg, raw, f"the event could not be stored: {result}")
    return Poison(msg, raw, str(result))


async def record_failed(pool, poison: list[Poison]) -> None:
    """The poison messages' rows written (failed, with the reason), in one transaction; should the
    database refuse one, each is written alone — without its body if need be, or not at all (and
    logged) — so that no message can hold up the queue."""
    try:
        await write_rows(pool, [p.row() for p in poison])
    except (*DB_DOWN, *DB_FULL) as e:
        raise Unavailable(f"the database is not reachable: {e}") from None
    except Exception:  # noqa: BLE001 - the rows are written one by one below
        for p in poison:
            await record_alone(pool, p)
    for p in poison:
        log.warning("bus %s: message %s failed: %s", p.msg.source, message_key(p.msg), p.reason)


async def record_alone(pool, p: Poison) -> None:
    for row in (p.row(), p.row(keep=False)):
        try:
            return await write_rows(pool, [row])
        except (*DB_DOWN, *DB_FULL) as e:
            raise Unavailable(f"the database is not reachable: {e}") from None
        except Exception as e:  # noqa: BLE001 - tried without the body, then given up
            log.error("bus %s: message %s not recorded: %r", p.msg.source, message_key(p.msg), e)


async def write_rows(pool, rows: list[tuple]) -> None:
    async with pool.acquire(timeout=10) as conn, conn.transaction():
        await journal.record(conn, rows)


async def patiently(call, transient, status: SourceStatus | None, backoff):
    """`call()`'s result, called again after a pause (0.5, 1, 2, 5, 5 … s) while it raises `transient`."""
    for attempt in itertools.count():
        try:
            result = await call()
        except transient as e:
            wait = delay(attempt + 1, backoff)
            log.warning("bus: waiting %ss and trying again: %s", wait, e)
            if status is not None:
                status.waiting = str(e)
                status.error(str(e))
            await asyncio.sleep(wait)
        else:
            if status is not None:
                status.waiting = None
            return result
