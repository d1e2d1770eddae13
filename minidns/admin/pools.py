"""/v2/pools, as Designate has them: the pools zones are served by — their NS records (written at
each zone's apex) and targets. Readable by an admin (Designate's find_pools/get_pool rules);
pools are changed with `minidns pool` (as Designate's with `designate-manage pool update`), since
changing one rewrites the apex NS of all its zones."""

from __future__ import annotations

from aiohttp import web

from ..services import pools
from ..services import zones
from .common import DATABASE, ApiError, ctx, json_response, parse_uuid, read_json
from .designate import collection, path_id, self_link, zone_json
from .openapi import describe

routes = web.RouteTableDef()


def pool_json(request: web.Request, p: dict) -> dict:
    return {
        "id": p["id"], "name": p["name"], "description": p["description"], "project_id": p["project_id"] or None,
        "attributes": p["attributes"] or {},
        "ns_records": [{"hostname": n.hostname, "priority": n.priority} for n in p["ns_records"]],
        "created_at": p["created_at"], "updated_at": p["updated_at"], "links": self_link(request, f"/v2/pools/{p['id']}"),
    }  # fmt: skip


@routes.get("/v2/pools")
@describe(responses={"200": {"description": "{pools: [...], links, metadata: {total_count}}"}})
async def list_pools(request: web.Request) -> web.Response:
    """Every pool with its NS records (admin)."""
    ctx(request).need("admin")
    async with request.app[DATABASE].pool.acquire() as conn:
        rows = await pools.list_pools(conn)
    return json_response(collection(request, "pools", [pool_json(request, p) for p in rows]))


@routes.get("/v2/pools/{pool_id}")
async def get_pool(request: web.Request) -> web.Response:
    """One pool (admin)."""
    ctx(request).need("admin")
    pid = path_id(request, "pool_id")
    async with request.app[DATABASE].pool.acquire() as conn:
        p = await pools.find_pool(conn, pid)
    return json_response(pool_json(request, p))


@routes.post("/v2/zones/{zone_id}/tasks/pool_move")
@describe(responses={"202": {"description": "The zone, in its new pool"}})
async def pool_move(request: web.Request) -> web.Response:
    """Move a zone to another pool (admin): body {"pool_id": ...}. Its apex NS become the new
    pool's (when the old pool made them) and its SOA MNAME the new pool's first NS, in one change."""
    c = ctx(request)
    c.need("admin")
    zid = path_id(request, "zone_id")
    body = await read_json(request) if request.body_exists else {}
    if not isinstance(body.get("pool_id"), str):
        raise ApiError(400, "invalid_object", "pool_id (the pool to move the zone to) is required: minidns has no "
                       "scheduler to choose one")  # fmt: skip
    target = parse_uuid(body["pool_id"], "pool")
    z = await zones.get_zone(request.app[DATABASE].pool, zid, c.project_filter())
    if z["pool_id"] == target:
        raise ApiError(400, "invalid_operation", "the zone is in that pool already")
    await pools.move_zone(request.app[DATABASE].store, zid, target)
    z = await zones.get_zone(request.app[DATABASE].pool, zid, None)
    return json_response(zone_json(request, z), 202)
