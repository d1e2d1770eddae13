"""Designate v2 service statuses: GET /v2/service_statuses[/{id}] (and /v2/service_status, the
path Designate's API reference once printed) as `openstack dns service list` reads them.

One minidns process plays the parts Designate runs as separate services; each is listed under
Designate's name for it, for this process (hostname = this host): api (this HTTP API), central
(the write path over PostgreSQL: DOWN while the database does not answer), mdns (the DNS service
with AXFR/IXFR: UP when serving, WARNING while the database is away and answers come from
memory, DOWN while loading), worker (NOTIFY to secondaries and propagation tracking), producer
(periodic jobs: housekeeping, DNSSEC signature refresh and rollovers, heartbeats) and sink
(event ingest, /v1/events). Other minidns hosts on the same database are not listed: they keep
no heartbeat rows. Ids are stable for a host and service name."""

from __future__ import annotations

import datetime
import socket
import uuid

from aiohttp import web

from .common import DATABASE, SERVER, ApiError, base_url, ctx, json_response
from .designate import list_body, path_id
from .openapi import describe

routes = web.RouteTableDef()

_NAMESPACE = uuid.UUID("6c1f3b5e-2a47-4f0e-9d61-7a0b1e5c4d21")
# When this process built its API: the services' created_at.
STARTED = datetime.datetime.now(datetime.timezone.utc)
_SERVICES = {
    "api": {"capabilities": ["designate_v2", "event_ingest", "openapi"]},
    "central": {"capabilities": ["quotas", "tlds", "blacklists", "shared_zones", "zone_transfers"]},
    "mdns": {"capabilities": ["axfr", "ixfr", "notify", "tsig", "dnssec_online_signing"]},
    "worker": {"capabilities": ["notify", "propagation_tracking", "catalog_zones"]},
    "producer": {"capabilities": ["housekeeping", "signature_refresh", "key_rollover", "heartbeat"]},
    "sink": {"capabilities": ["nova", "neutron", "cloudstack"]},
}
FILTERS = ("hostname", "service_name", "status")


def service_id(hostname: str, name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{hostname}/{name}")


async def _database_answers(request: web.Request) -> bool:
    try:
        async with request.app[DATABASE].pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)
        return True
    except Exception:  # noqa: BLE001 - any failure: not answering
        return False


async def statuses(request: web.Request) -> list[dict]:
    """Every service of this process, as Designate's ServiceStatus objects render."""
    server = request.app[SERVER]
    host = socket.gethostname()
    now = datetime.datetime.now(datetime.timezone.utc)
    state = getattr(server, "state", "loading")
    status = {"central": "UP" if await _database_answers(request) else "DOWN",
              "mdns": {"ready": "UP", "stale": "WARNING"}.get(state, "DOWN")}  # fmt: skip
    zones = len(server.engine.table.zones) if getattr(server, "engine", None) is not None else 0
    stats = {"mdns": {"zones": zones, "state": state}}
    out = []
    for name, info in _SERVICES.items():
        sid = service_id(host, name)
        out.append({
            "id": sid, "hostname": host, "service_name": name, "status": status.get(name, "UP"),
            "stats": stats.get(name, {}), "capabilities": {c: True for c in info["capabilities"]},
            "heartbeated_at": now, "created_at": STARTED, "updated_at": now,
            "links": {"self": f"{base_url(request)}/v2/service_statuses/{sid}"},
        })  # fmt: skip
    return out


@routes.get("/v2/service_statuses")
@routes.get("/v2/service_status")
@describe(parameters=[{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                      for n in (*FILTERS, "limit", "marker")])  # fmt: skip
async def list_statuses(request: web.Request) -> web.Response:
    """The status of each minidns service in this process (api, central, mdns, worker, producer,
    sink): UP, WARNING or DOWN (admin, as Designate's policy has it).

    Filters: hostname, service_name, status; limit and marker."""
    ctx(request).need("admin")
    items = [s for s in await statuses(request)
             if all(str(s[k]).lower() == request.query[k].lower() for k in FILTERS if k in request.query)]  # fmt: skip
    total = len(items)
    marker = request.query.get("marker")
    if marker is not None:
        ids = [str(s["id"]) for s in items]
        if marker not in ids:
            raise ApiError(400, "invalid_marker", f"Marker {marker} could not be found")
        items = items[ids.index(marker) + 1 :]
    limit = request.query.get("limit", "1000")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise ApiError(400, "invalid_limit", "'limit' must be a whole number from 1 to 1000")
    page = items[: int(limit)]
    return json_response(list_body(request, "service_statuses", page, total, len(items) > len(page), int(limit)))


@routes.get("/v2/service_statuses/{service_id}")
@routes.get("/v2/service_status/{service_id}")
async def get_status(request: web.Request) -> web.Response:
    """One service's status."""
    ctx(request).need("admin")
    sid = path_id(request, "service_id")
    for s in await statuses(request):
        if s["id"] == sid:
            return json_response(s)
    raise ApiError(404, "service_status_not_found", f"Could not find ServiceStatus {sid}")
