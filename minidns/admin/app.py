"""The HTTP server: app factory, middlewares (request ids, auth, errors as JSON), and starting it
beside the DNS listeners in `minidns serve`.

Every route module (zones, recordsets, tasks, tsigkeys, tlds, blacklists, quotas, floatingips,
events, dnssec, transfers, shares, abandon, services, limits, unsupported, ops, openapi) has a
`routes` table; they are all added here, and /openapi.json
describes exactly them.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
import uuid
from functools import partial

from aiohttp import web

from ..store.db import DB_DOWN, DB_FULL, LOST_MIDWAY
from ..store.tokens import find_token
from ..store.recordsets import RecordsetWriter
from ..server.scheduler import Job
from .common import CONFIG, WRITER, DATABASE, EVENTS, METRICS, TOKEN_CACHE, SERVER, ApiError, Ctx, json_response
from .metrics import Metrics
from .ops import unversioned

log = logging.getLogger("minidns.api")

# Paths anyone may read: liveness, readiness, metrics, the API description and version discovery.
PUBLIC = {"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v2", "/v2/"}
BUSY = web.AppKey("busy", list)
TOKEN_CACHE_SECONDS = 10.0
HOUSEKEEPING_EVERY = 3600.0  # seconds between housekeeping passes (stale imports, event retention)
HOUSEKEEPING_RETRY = 60.0  # seconds before trying again when a pass failed (the database away)


ROUTE_MODULES = ("ops", "openapi", "zones", "recordsets", "tasks", "tsigkeys", "tlds", "quotas", "floatingips",
                 "events", "dnssec", "pools", "transfers", "shares", "abandon", "services", "limits", "unsupported")


def route_modules():
    """The route modules that exist (each part of the API lives in its own module)."""
    out = []
    for name in ROUTE_MODULES:
        full = f"{__package__}.{name}"
        try:
            out.append(importlib.import_module(full))
        except ModuleNotFoundError as e:
            if e.name != full:
                raise
    return out


@web.middleware
async def request_id_and_errors(request: web.Request, handler):
    """Give each request an id (returned in X-Openstack-Request-Id and in error bodies, logged), and
    turn every error into Designate's JSON shape: {code, type, message, request_id}."""
    rid = f"req-{uuid.uuid4()}"
    request["request_id"] = rid
    started = time.monotonic()
    busy = request.app[BUSY]
    try:
        # Requests worked on at once are bounded (api_max_requests), and with them the memory their
        # bodies and results hold; the monitoring routes always answer.
        if busy[0] >= busy[1] and request.path not in PUBLIC:
            raise ApiError(503, "service_unavailable", f"{busy[0]} requests are being worked on; try again shortly",
                           {"Retry-After": "1"})  # fmt: skip
        busy[0] += 1
        try:
            response = await handler(request)
        finally:
            busy[0] -= 1
    except ApiError as e:
        response = json_response({"code": e.status, "type": e.type, "message": e.message, "request_id": rid},
                                 e.status, e.headers)  # fmt: skip
    except web.HTTPException as e:
        if e.status < 400:
            raise
        kind = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(e.status, "error")
        response = json_response({"code": e.status, "type": kind, "message": e.reason, "request_id": rid}, e.status)
    except DB_DOWN as e:  # PostgreSQL is away (or too busy to answer): nothing was done; try again (RFC 9110 §15.6.4)
        why = "did not answer in time (busy, or away)" if isinstance(e, asyncio.TimeoutError) else "is not reachable"
        detail = f": {e}" if str(e) else ""
        log.warning("%s %s %s: the database %s%s", rid, request.method, request.path, why, detail)
        message = f"the database {why}{detail}"
        if isinstance(e, LOST_MIDWAY) and request.method != "GET":  # lost at the COMMIT, it may be in
            message += "; the connection was lost during the request, so a write may have been committed: read before sending it again"
        response = json_response({"code": 503, "type": "service_unavailable", "message": message, "request_id": rid}, 503,
                                 {"Retry-After": "5"})  # fmt: skip
    except DB_FULL as e:  # the database cannot write now (disk full): rolled back, nothing was done
        log.warning("%s %s %s: the database cannot take this now: %s", rid, request.method, request.path, e)
        response = json_response({"code": 503, "type": "service_unavailable", "message": f"the database cannot take this now: {e}",
                                  "request_id": rid}, 503, {"Retry-After": "30"})  # fmt: skip
    except Exception:  # noqa: BLE001 - a bug answers 500 with the request id, and is logged with it
        log.exception("%s %s %s failed", rid, request.method, request.path)
        response = json_response({"code": 500, "type": "internal_error", "message": "internal error; see the log",
                                  "request_id": rid}, 500)  # fmt: skip
    response.headers["X-Openstack-Request-Id"] = rid
    took = time.monotonic() - started
    log.info("%s %s %s -> %d in %.1f ms", rid, request.method, request.path_qs, response.status, took * 1000)
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.api_request(request.method, response.status, took)
    return response


@web.middleware
async def authenticate(request: web.Request, handler):
    """X-Auth-Token → project and role. No token (or an unknown one) → 401. An admin may act for
    another project (X-Auth-Sudo-Project-ID) or all (X-Auth-All-Projects: true)."""
    if request.path in PUBLIC:
        return await handler(request)
    token = request.headers.get("X-Auth-Token")
    if not token:
        raise ApiError(401, "unauthorized", "an X-Auth-Token header is needed")
    found = await _lookup(request.app, token)
    if found is None:
        raise ApiError(401, "unauthorized", "the token is not valid")
    project, role = found
    c = Ctx(project, role, acting_project=project)
    sudo = request.headers.get("X-Auth-Sudo-Project-ID")
    all_projects = request.headers.get("X-Auth-All-Projects", "").lower() in ("true", "1", "yes")
    if (sudo or all_projects) and role != "admin":
        raise ApiError(403, "forbidden", "only an admin may act for other projects")
    if sudo:
        c.acting_project = sudo
    c.all_projects = all_projects
    if role == "ingest" and not request.path.startswith("/v1/events"):
        raise ApiError(403, "forbidden", "an ingest token may only post events")
    request["ctx"] = c
    return await handler(request)


async def _lookup(app: web.Application, token: str) -> tuple[str, str] | None:
    configured = {t["token"]: (t["project"], t["role"]) for t in app[CONFIG].api_tokens}
    if token in configured:
        return configured[token]
    cache = app[TOKEN_CACHE]
    hit = cache.get(token)
    now = time.monotonic()
    if hit is not None and now - hit[1] < TOKEN_CACHE_SECONDS:
        return hit[0]
    try:
        found = await find_token(app[DATABASE].pool, token)
    except Exception as e:  # noqa: BLE001 - the database is away: say so, do not guess
        raise ApiError(503, "service_unavailable", f"the database is not reachable: {e}", {"Retry-After": "5"}) from None
    if len(cache) > 10000:
        cache.clear()
    cache[token] = (found, now)
    return found


def make_app(database, server, config) -> web.Application:
    """The API application over `database` (store.database.Database), for `server` (its state,
    engine and notifier) and `config`."""
    app = web.Application(middlewares=[request_id_and_errors, unversioned, authenticate], client_max_size=4 << 20)
    app[DATABASE] = database
    app[SERVER] = server
    app[CONFIG] = config
    app[METRICS] = Metrics(server)
    app[WRITER] = RecordsetWriter(database.store)
    from .events import EventBatcher

    app[EVENTS] = EventBatcher(database.store, getattr(config, "events_max_pending", 10_000))
    app[TOKEN_CACHE] = {}
    app[BUSY] = [0, getattr(config, "api_max_requests", 256)]  # [requests being worked on, the most at once]
    for module in route_modules():
        app.add_routes(module.routes)
    return app


class ApiService:
    """The API as a service of `minidns serve`: started after the DNS listeners and the database."""

    def __init__(self, config):
        self.config = config
        self.runner: web.AppRunner | None = None

    async def start(self, server) -> None:
        if server.database is None:
            log.warning("the API needs the database; it is not started (zone files only)")
            return
        from ..server.config import parse_listen

        family, host, port = parse_listen(self.config.api_listen)
        app = make_app(server.database, server, self.config)
        # A request whose client hangs up is cancelled rather than worked on for nobody: under
        # overload that sheds the queued writes first (store/batch.py). Every write is one
        # transaction, so a cancelled one leaves nothing half-written.
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, reuse_address=True)
        await site.start()
        bound = site._server.sockets[0].getsockname() if site._server and site._server.sockets else (host, port)
        log.info("API listening on http://%s:%d/", host if ":" not in host else f"[{host}]", bound[1])
        server.scheduler.add(Job("housekeeping", HOUSEKEEPING_EVERY, partial(housekeeping, server.database.pool, self.config),
                                 first=0, retry=HOUSEKEEPING_RETRY))  # fmt: skip

    async def stop(self) -> None:
        """Zone imports under way stopped, then the HTTP server (the server's scheduler stops the
        housekeeping job with the others)."""
        from .tasks import stop_imports

        await stop_imports()
        if self.runner is not None:
            await asyncio.wait_for(self.runner.cleanup(), 5)


async def housekeeping(pool, config) -> None:
    """At start, then every hour (a minute after a failure): imports a dead server left PENDING end
    in ERROR; event retention (events_keep_days)."""
    from ..store import events as ev
    from ..store import tasks

    stale = await tasks.fail_stale_imports(pool)
    if stale:
        log.warning("%d zone import(s) left PENDING by a server that stopped: now ERROR", stale)
    keep = config.events_keep_days
    if keep > 0:
        n_events, n_tombstones = await ev.prune(pool, keep)
        if n_events or n_tombstones:
            log.info("events retention: removed %d events and %d tombstones older than %g days",
                     n_events, n_tombstones, keep)  # fmt: skip
