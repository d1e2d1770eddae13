"""Operations endpoints, open without a token: liveness, readiness, Prometheus metrics, the
version documents that OpenStack clients read first, and the redirect of Designate paths given
without /v2."""

from __future__ import annotations

from aiohttp import web

from .common import CONFIG, DATABASE, METRICS, SERVER, base_url, json_response

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers HTTP."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: zones loaded and the database reachable (200); else 503 with the state, e.g. "stale"
    while the database is away and answers come from memory. `bus` gives each message-bus source's
    state; a source that is disconnected makes it "degraded" — still 200, as DNS answers are
    unharmed (events wait in the broker) — unless bus_required is set, then 503."""
    server = request.app[SERVER]
    state = server.state
    db_ok = True
    try:
        async with request.app[DATABASE].pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)
    except Exception:  # noqa: BLE001 - any failure means not reachable
        db_ok = False
    ready = state == "ready" and db_ok
    body = {"status": "ready" if ready else "not ready", "state": state, "database": "ok" if db_ok else "unreachable",
            "zones": len(server.engine.table.zones)}  # fmt: skip
    bus = getattr(server, "bus", None)  # set by server/buses.py when a bus is configured
    if bus is not None:
        body["bus"] = {s.name: bus_state(s) for s in bus.sources.values()}
        if ready and bus.disconnected():
            ready = not request.app[CONFIG].bus_required
            body["status"] = "degraded" if ready else "not ready"
    return json_response(body, 200 if ready else 503)


def bus_state(s) -> dict:
    """A bus source as /readyz shows it: connected, or why not; what its batch waits for."""
    return {"connected": s.connected, "reason": s.reason, "waiting": s.waiting, "lag": s.lag}


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition format (version 0.0.4)."""
    text = await request.app[METRICS].render(request.app)
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip


# Designate's API versions (designate/api/versions.py): v2.1 added shared zones. Every one is
# served at /v2.
VERSIONS = (("v2", "SUPPORTED", "2022-06-29T00:00:00Z"), ("v2.0", "SUPPORTED", "2022-06-29T00:00:00Z"),
            ("v2.1", "CURRENT", "2023-01-25T00:00:00Z"))  # fmt: skip
API_REF = "https://docs.openstack.org/api-ref/dns/"
# Designate's v2 collections: a request for one of them without the /v2 prefix is redirected there.
COLLECTIONS = frozenset({"zones", "recordsets", "tsigkeys", "tlds", "blacklists", "quotas", "limits", "pools",
                         "reverse", "service_statuses", "service_status"})  # fmt: skip


def _version(url: str, vid: str, status: str, updated: str) -> dict:
    return {"id": vid, "status": status, "updated": updated,
            "links": [{"href": f"{url}/v2", "rel": "self"}, {"href": API_REF, "rel": "help"}]}  # fmt: skip


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    """API versions, as Designate lists them: {"versions": [{id, status, updated, links}]}, the
    document keystoneauth's version discovery reads at a catalog endpoint without /v2."""
    url = base_url(request)
    return json_response({"versions": [_version(url, *v) for v in VERSIONS]})


@routes.get("/v2")
@routes.get("/v2/")
async def v2_root(request: web.Request) -> web.Response:
    """The v2 API's own version document, {"version": {...}}: what version discovery reads at an
    endpoint given with /v2."""
    return json_response({"version": _version(base_url(request), *VERSIONS[-1])})


@web.middleware
async def unversioned(request: web.Request, handler):
    """A Designate path given without its /v2 prefix (/zones, /recordsets/…) — what the openstack
    CLI sends when its endpoint (--os-endpoint with admin_token, which does no version discovery)
    lacks /v2 — is redirected to it with 308, which keeps the method and body (RFC 9110 §15.4.9);
    keystoneauth follows it. Only paths no route matched are looked at."""
    if getattr(request.match_info, "http_exception", None) is not None:
        first = request.path.lstrip("/").split("/", 1)[0]
        if first in COLLECTIONS:
            return web.Response(status=308, headers={"Location": f"{base_url(request)}/v2{request.rel_url}"})
    return await handler(request)
