"""Operations endpoints, open without a token: liveness, readiness, Prometheus metrics, and the
version documents that OpenStack clients read first."""

from __future__ import annotations

from aiohttp import web

from .common import DATABASE, METRICS, SERVER, base_url, json_response

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers HTTP."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: zones loaded and the database reachable (200); else 503 with the state, e.g. "stale"
    while the database is away and answers come from memory."""
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
    return json_response(body, 200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition format (version 0.0.4)."""
    text = await request.app[METRICS].render(request.app)
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip


def _versions(request: web.Request) -> dict:
    url = base_url(request)
    return {"versions": {"values": [{"id": "v2", "status": "CURRENT", "links": [{"href": f"{url}/v2/", "rel": "self"}]}]}}


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    """API versions (as Designate lists them), for version discovery."""
    return json_response(_versions(request))


@routes.get("/v2")
@routes.get("/v2/")
async def v2_root(request: web.Request) -> web.Response:
    """The v2 API's own version document."""
    url = base_url(request)
    return json_response({"version": {"id": "v2", "status": "CURRENT", "links": [{"href": f"{url}/v2/", "rel": "self"}]}})
