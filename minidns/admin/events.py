"""Event ingest over HTTP (the logic is the minidns/sink package).

POST /v1/events             one event, a JSON array of events, or {"events": [...]}; role ingest or admin.
                            Each event is applied and recorded in its own transaction before the reply:
                            200 when every event was applied, ignored or seen before (duplicate);
                            422 when one failed (each event's outcome is in the body, the failed ones
                            with their reason; nothing of a failed event is written but its row);
                            400 for a body that is not JSON or an event with no message id;
                            503 with Retry-After when the database is away (events answered before
                            that in a batch are committed; sending the batch again is safe).
GET  /v1/events             recent events (?status=failed&limit=N); role ingest or admin.
GET  /v1/events/{id}        one event: status applied / ignored / failed, reason, the records it changed;
                            role ingest (the sender checking on what it sent) or admin.
POST /v1/reconcile          {"source": "nova"|"neutron"|"cloudstack", "resource_ids": [live ids],
                            "resource_type": optional, "dry_run": false}: removes the records of every
                            resource of that source not in the list; admin only.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..sink import ingest, journal
from ..sink import reconcile as sink_reconcile
from ..sink.envelope import body_events
from ..sink.outcome import BadEvent, Unavailable
from ..sink.settings import EventSettings
from ..store.batch import GroupCommit
from .common import CONFIG, DATABASE, EVENTS, METRICS, ApiError, ctx, json_response, parse_json, read_body, read_json

log = logging.getLogger("minidns.events")
routes = web.RouteTableDef()
MAX_BODY = 4 << 20
MAX_BATCH = 1000


def _settings(request: web.Request) -> EventSettings:
    s = request.app.get("event_settings")
    if s is None:
        s = EventSettings.from_config(request.app[CONFIG])
    return s


def _count(request: web.Request, outcome: str) -> None:
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.events[outcome] += 1


def _need_ingest(request: web.Request) -> None:
    if ctx(request).role not in ("ingest", "admin"):
        raise ApiError(403, "forbidden", f"this needs the ingest or admin role; the token has {ctx(request).role}")


class EventBatcher:
    """Group commit for events (store/batch.py): the events of requests that arrive while the
    previous batch commits are applied together — one transaction, one events lock, one commit —
    each in its own savepoint and in arrival order, and every request gets its own outcomes once
    its events are committed (sink/ingest.py ingest_many)."""

    def __init__(self, store, max_pending: int = 10_000):
        self.store = store
        self.group = GroupCommit(self._apply, max_batch=100)  # requests (of up to MAX_BATCH events each)
        self.max_pending = max_pending  # events queued or being applied, at most (events_max_pending)
        self.pending = 0

    async def submit(self, items: list, settings) -> list:
        """The outcomes of `items`; Unavailable when `max_pending` events already wait, so that
        a flood of requests is told to come back (503) instead of queueing without bound."""
        if self.pending and self.pending + len(items) > self.max_pending:
            raise Unavailable(f"{self.pending} events are waiting to be applied; try again shortly")
        self.pending += len(items)
        try:
            return await self.group.submit(None, (items, settings))
        finally:
            self.pending -= len(items)

    async def _apply(self, _key, batch: list[tuple[list, object]]) -> list:
        results = await ingest.ingest_many(self.store, batch[0][1], [item for items, _ in batch for item in items])
        out, at = [], 0
        for items, _ in batch:
            out.append(results[at : at + len(items)])
            at += len(items)
        return out


@routes.post("/v1/events")
async def post_events(request: web.Request) -> web.Response:
    """Ingest events (Nova, Neutron, CloudStack)
    One event, a JSON array of them, or {"events": [...]}; oslo.messaging envelopes plain or wrapped
    in {"oslo.version": "2.0", "oslo.message": "..."}. Each is applied and recorded (with the events
    of other requests arriving at the same moment, in one transaction, each in its own savepoint)
    before the reply: 200 when none failed, 422 when one did (each outcome in the body; an event
    that cannot be used at all is "rejected"), 500 when the database refused to store one (that
    one "error", the others stored), 503 with Retry-After when the database is away. Role ingest
    or admin."""
    _need_ingest(request)
    raw = await read_body(request, MAX_BODY)
    try:
        body = parse_json(raw)
    except ApiError:
        _count(request, "rejected")
        raise
    items, batch = body_events(body)
    if not items or len(items) > MAX_BATCH:
        raise ApiError(400, "invalid_batch", f"a batch holds 1 to {MAX_BATCH} events")
    try:
        outcomes = await request.app[EVENTS].submit(items, _settings(request))
    except Unavailable:
        _count(request, "unavailable")
        raise
    results, failed, errors = [], False, False
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Exception) and not isinstance(outcome, BadEvent):
            # The database refused this event alone (the others are in): a 500 for it.
            if not batch:
                raise outcome
            log.error("%s event %d of the batch not stored: %s", request["request_id"], i, outcome)
            errors = True
            results.append({"index": i, "status": "error", "reason": f"the event could not be stored: {outcome}"})
            continue
        if isinstance(outcome, BadEvent):
            _count(request, "rejected")
            if not batch:
                raise outcome  # 400 invalid_event
            failed = True
            results.append({"index": i, "status": "rejected", "reason": str(outcome)})
            continue
        _count(request, "duplicate" if outcome.duplicate else outcome.status)
        if outcome.status == "failed":
            log.warning("%s event %s (%s) failed: %s", request["request_id"], outcome.message_id, outcome.event_type,
                        outcome.reason)  # fmt: skip
        failed |= outcome.status == "failed"
        results.append({"index": i, **outcome.to_json()} if batch else outcome.to_json())
    status = 500 if errors else 422 if failed else 200
    if batch:
        return json_response({"events": results}, status)
    return json_response(results[0], status)


@routes.get("/v1/events")
async def list_events(request: web.Request) -> web.Response:
    """Recent events, newest first
    ?status=applied|ignored|failed, ?limit=N (default 100). Role ingest or admin."""
    _need_ingest(request)
    status = request.query.get("status")
    if status not in (None, "applied", "ignored", "failed"):
        raise ApiError(400, "invalid_status", "status must be applied, ignored or failed")
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise ApiError(400, "invalid_limit", "limit must be a whole number") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_limit", "limit must be between 1 and 1000")
    try:
        rows = await journal.list_events(request.app[DATABASE].pool, status, limit)
    except Unavailable:
        _count(request, "unavailable")
        raise
    return json_response({"events": rows})


@routes.get("/v1/events/{message_id}")
async def get_event(request: web.Request) -> web.Response:
    """One event's outcome
    status applied / ignored / failed, the reason, the records it changed, attempts and times.
    Role ingest (the sender checking on what it sent) or admin."""
    _need_ingest(request)
    mid = request.match_info["message_id"]
    try:
        row = await journal.get_event(request.app[DATABASE].pool, mid)
    except Unavailable:
        _count(request, "unavailable")
        raise
    if row is None:
        raise ApiError(404, "event_not_found", f"no event {mid!r} was received")
    return json_response(row)


@routes.post("/v1/reconcile")
async def reconcile(request: web.Request) -> web.Response:
    """Remove event-made records of resources that are gone
    {"source": "nova"|"neutron"|"cloudstack", "resource_ids": [ids that exist], "resource_type":
    optional, "dry_run": false}: every resource of that source not listed loses its records and is
    remembered as deleted. Returns the resources and the RRsets removed. Admin only."""
    ctx(request).need("admin")
    body = await read_json(request, MAX_BODY)
    source = body.get("source")
    ids = body.get("resource_ids")
    if not isinstance(source, str) or not isinstance(ids, list):
        raise ApiError(400, "invalid_object", "give source and resource_ids (the ids of the resources that exist)")
    rtype = body.get("resource_type")
    if rtype is not None and not isinstance(rtype, str):
        raise ApiError(400, "invalid_object", "resource_type must be a string")
    try:
        result = await sink_reconcile.reconcile(request.app[DATABASE].store, _settings(request), source, ids, rtype,
                                    bool(body.get("dry_run", False)))  # fmt: skip
    except Unavailable:
        _count(request, "unavailable")
        raise
    return json_response(result)
