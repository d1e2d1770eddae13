"""Designate v2 shared zones (API v2.1): /v2/zones/{zone_id}/shares — share a zone with another
project (201), list and show its shares, unshare (204). The rules are in services/shares.py: the
project a zone is shared with sees the zone (`shared: true`) and its recordsets, creates
recordsets in it and manages those it created; the owner cannot unshare while that project has
recordsets there (400 shared_zone_has_recordsets) nor delete the zone without
X-Designate-Delete-Shares: true (400 zone_is_shared).

Left out of Designate's: a project a zone is shared with may not create subzones of it (the
subzone rule of zones by other projects still applies), and target project ids are not checked
against Keystone (minidns knows projects only by its tokens)."""

from __future__ import annotations

from aiohttp import web

from ..services import zones
from ..services import shares
from .common import DATABASE, ApiError, base_url, ctx, json_response, read_json
from .designate import check_body, list_body, list_query, path_id
from .openapi import describe

routes = web.RouteTableDef()

_SCHEMA = {"type": "object", "required": ["target_project_id"],
           "properties": {"target_project_id": {"type": "string", "maxLength": 255}}}  # fmt: skip
_READ_ONLY = ("id", "zone_id", "project_id", "created_at", "updated_at", "links")


def share_json(request: web.Request, s: dict) -> dict:
    url = base_url(request)
    return {"id": s["id"], "zone_id": s["zone_id"], "project_id": s["project_id"],
            "target_project_id": s["target_project_id"], "created_at": s["created_at"], "updated_at": s["updated_at"],
            "links": {"self": f"{url}/v2/zones/{s['zone_id']}/shares/{s['id']}",
                      "zone": f"{url}/v2/zones/{s['zone_id']}"}}  # fmt: skip


@routes.post("/v2/zones/{zone_id}/shares")
@describe(requestBody={"content": {"application/json": {"schema": _SCHEMA}}},
          responses={"201": {"description": "The share"}})  # fmt: skip
async def share_zone(request: web.Request) -> web.Response:
    """Share a zone with another project (the zone's owner).

    Body: target_project_id. Sharing with the owner is 400; twice with one project 409
    duplicate_shared_zone."""
    c = ctx(request)
    c.need("member")
    zid = path_id(request, "zone_id")
    values = check_body(await read_json(request), {"target_project_id": (str, 255)}, read_only=_READ_ONLY)
    if "target_project_id" not in values:
        raise ApiError(400, "invalid_object",
                       "Provided object does not match schema: 'target_project_id' is a required property")  # fmt: skip
    pool = request.app[DATABASE].pool
    z = await zones.get_zone(pool, zid, c.project_filter())
    s = await shares.share(pool, z, values["target_project_id"])
    return json_response(share_json(request, s), 201)


@routes.get("/v2/zones/{zone_id}/shares")
@describe(parameters=[{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                      for n in ("target_project_id", "limit", "marker")])  # fmt: skip
async def list_shares(request: web.Request) -> web.Response:
    """List a zone's shares: all of them for its owner, its own for a project it is shared with.

    Filter: target_project_id; paged with limit and marker."""
    c = ctx(request)
    zid = path_id(request, "zone_id")
    q = list_query(request, ())
    pool = request.app[DATABASE].pool
    await zones.get_zone(pool, zid, c.project_filter(), shared=True)
    rows, total = await shares.list_shares(pool, zid, c.project_filter(), target=request.query.get("target_project_id"),
                                           limit=q.limit + 1, marker=q.marker)  # fmt: skip
    items = [share_json(request, s) for s in rows[: q.limit]]
    return json_response(list_body(request, "shared_zones", items, total, len(rows) > q.limit, q.limit))


@routes.get("/v2/zones/{zone_id}/shares/{zone_share_id}")
async def get_share(request: web.Request) -> web.Response:
    """One share of a zone."""
    c = ctx(request)
    zid, sid = path_id(request, "zone_id"), path_id(request, "zone_share_id")
    pool = request.app[DATABASE].pool
    await zones.get_zone(pool, zid, c.project_filter(), shared=True)
    s = await shares.get_share(pool, zid, sid, c.project_filter())
    return json_response(share_json(request, s))


@routes.delete("/v2/zones/{zone_id}/shares/{zone_share_id}")
async def unshare_zone(request: web.Request) -> web.Response:
    """Unshare a zone (its owner); 204. Refused (400 shared_zone_has_recordsets) while the project
    it is shared with has recordsets in it."""
    c = ctx(request)
    c.need("member")
    zid, sid = path_id(request, "zone_id"), path_id(request, "zone_share_id")
    pool = request.app[DATABASE].pool
    z = await zones.get_zone(pool, zid, c.project_filter())
    await shares.unshare(pool, z, sid)
    return web.Response(status=204)
