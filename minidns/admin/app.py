"""The HTTP server: app factory, middlewares (request ids and errors as JSON: admin/errors.py;
auth), and starting it beside the DNS listeners in `minidns serve`.

Every route module (zones, recordsets, tasks, tsigkeys, update_grants, tlds, blacklists, quotas,
floatingips, events, dnssec, transfers, shares, abandon, services, limits, unsupported, ops, openapi) has a
`routes` table; they are all added here, and /openapi.json
describes exactly them.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from functools import partial

from aiohttp import web

from ..server.scheduler import Job
from ..services.recordsets import RecordsetWriter
from ..services.tokens import find_token
from .common import CONFIG, WRITER, DATABASE, EVENTS, METRICS, TOKEN_CACHE, SERVER, ApiError, Ctx
from .errors import BUSY, PUBLIC, request_id_and_errors
from .metrics import Metrics
from .ops import unversioned

log = logging.getLogger("minidns.api")

TOKEN_CACHE_SECONDS = 10.0
HOUSEKEEPING_EVERY = 3600.0  # seconds between housekeeping passes (stale imports, event retention)
HOUSEKEEPING_RETRY = 60.0  # seconds before trying again when a pass failed (the database away)


ROUTE_MODULES = ("ops", "openapi", "zones", "recordsets", "tasks", "tsigkeys", "update_grants", "tlds", "quotas",
                 "floatingips", "events", "dnssec", "pools", "transfers", "shares", "abandon", "services", "limits",
                 "unsupported")  # fmt: skip


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
async def authenticate(request: web.Request, handler):
    """X-Auth-Token → project and role. No token (or an unknown one) → 401. An admin may act for
    another project (X-Auth-Sudo-Project-ID) or all (X-Auth-All-Projects: true)."""
    if request.path not in PUBLIC:
        request["ctx"] = await _context(request)
    return await handler(request)


async def _context(request: web.Request) -> Ctx:
    token = request.headers.get("X-Auth-Token")
    if not token:
        raise ApiError(401, "unauthorized", "an X-Auth-Token header is needed")
    found = await _lookup(request.app, token)
    if found is None:
        raise ApiError(401, "unauthorized", "the token is not valid")
    c = _acting(request, *found)
    if c.role == "ingest" and not request.path.startswith("/v1/events"):
        raise ApiError(403, "forbidden", "an ingest token may only post events")
    return c


def _acting(request: web.Request, project: str, role: str) -> Ctx:
    """The token's context, acting for the project an admin names (or all)."""
    sudo = request.headers.get("X-Auth-Sudo-Project-ID")
    all_projects = request.headers.get("X-Auth-All-Projects", "").lower() in ("true", "1", "yes")
    if (sudo or all_projects) and role != "admin":
        raise ApiError(403, "forbidden", "only an admin may act for other projects")
    return Ctx(project, role, all_projects=all_projects, acting_project=sudo or project)


async def _lookup(app: web.Application, token: str) -> tuple[str, str] | None:
    configured = {t["token"]: (t["project"], t["role"]) for t in app[CONFIG].api_tokens}
    if token in configured:
        return configured[token]
    hit = app[TOKEN_CACHE].get(token)
    now = time.monotonic()
    if hit is not None and now - hit[1] < TOKEN_CACHE_SECONDS:
        return hit[0]
    return await _stored_token(app, token, now)


async def _stored_token(app: web.Application, token: str, now: float) -> tuple[str, str] | None:
    """The token's project and role from the database (None: unknown), remembered a while."""
    try:
        found = await find_token(app[DATABASE].pool, token)
    except Exception as e:  # noqa: BLE001 - the database is away: say so, do not guess
        raise ApiError(503, "service_unavailable", f"the database is not reachable: {e}", {"Retry-After": "5"}) from None
    cache = app[TOKEN_CACHE]
    if len(cache) > 10000:
        cache.clear()
    cache[token] = (found, now)
    return found


def make_app(database, server, config) -> web.Application:
    """The API application over `database` (store.database.Database), for `server` (its state,
    engine and notifier) and `config`."""
    app = web.Application(middlewares=[request_id_and_errors, unversioned, authenticate], client_max_size=4 << 20)
    _set_state(app, database, server, config)
    for module in route_modules():
        app.add_routes(module.routes)
    return app


def _set_state(app: web.Application, database, server, config) -> None:
    app[DATABASE], app[SERVER], app[CONFIG] = database, server, config
    app[METRICS] = Metrics(server)
    app[WRITER] = RecordsetWriter(database.store)
    from .events import EventBatcher

    app[EVENTS] = EventBatcher(database.store, getattr(config, "events_max_pending", 10_000))
    app[TOKEN_CACHE] = {}
    app[BUSY] = [0, getattr(config, "api_max_requests", 256)]  # [requests being worked on, the most at once]


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
    from ..services import tasks
    from ..sink.retention import prune

    stale = await tasks.fail_stale_imports(pool)
    if stale:
        log.warning("%d zone import(s) left PENDING by a server that stopped: now ERROR", stale)
    keep = config.events_keep_days
    if keep > 0:
        n_events, n_tombstones = await prune(pool, keep)
        if n_events or n_tombstones:
            log.info("events retention: removed %d events and %d tombstones older than %g days",
                     n_events, n_tombstones, keep)  # fmt: skip
