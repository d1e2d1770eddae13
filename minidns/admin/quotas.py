"""/v2/quotas: per-project limits as Designate has them — zones, zone_recordsets, zone_records,
recordset_records, api_export_size — with Designate's defaults (10, 500, 500, 20, 1000) unless a
stored override says otherwise (-1: unlimited). A project reads its own; an admin reads any and
is the only one to change or reset them. Enforced by services/policy.check_quota on the write paths."""

from __future__ import annotations

from aiohttp import web

from ..services import policy
from .common import DATABASE, ApiError, ctx, json_response, read_json
from .openapi import describe

routes = web.RouteTableDef()

QUOTA_SCHEMA = {
    "type": "object",
    "properties": {k: {"type": "integer", "minimum": -1, "default": v} for k, v in policy.QUOTA_DEFAULTS.items()},
    "additionalProperties": False,
}
_BODY = {"content": {"application/json": {"schema": QUOTA_SCHEMA}}}


def _project(request: web.Request) -> str:
    project = request.match_info["project_id"]
    if not project or len(project) > 255:
        raise ApiError(400, "invalid_object", "a project id is 1 to 255 characters")
    return project


def _may_read(request: web.Request, project: str) -> None:
    c = ctx(request)
    c.need("reader")
    if project not in (c.project_id, c.acting_project) and c.role != "admin":
        raise ApiError(403, "forbidden", "only an admin may see another project's quotas")


@routes.get("/v2/quotas")
@describe(responses={"200": {"description": "The quotas", **_BODY}})
async def my_quotas(request: web.Request) -> web.Response:
    """The quotas of the project the request acts for."""
    c = ctx(request)
    c.need("reader")
    return json_response(await policy.get_quotas(request.app[DATABASE].pool, c.acting_project))


@routes.get("/v2/quotas/{project_id}")
@describe(responses={"200": {"description": "The quotas", **_BODY}})
async def get_quotas(request: web.Request) -> web.Response:
    """A project's quotas (its own; an admin: any)."""
    project = _project(request)
    _may_read(request, project)
    return json_response(await policy.get_quotas(request.app[DATABASE].pool, project))


@routes.patch("/v2/quotas/{project_id}")
@describe(requestBody=_BODY, responses={"200": {"description": "The quotas after", **_BODY}})
async def set_quotas(request: web.Request) -> web.Response:
    """Set some of a project's quotas (admin).
    The body maps resources to limits; -1 is unlimited. All or nothing."""
    ctx(request).need("admin")
    project = _project(request)
    body = await read_json(request)
    quotas = await policy.set_quotas(request.app[DATABASE].pool, project, body)
    return json_response(quotas)


@routes.delete("/v2/quotas/{project_id}")
async def reset_quotas(request: web.Request) -> web.Response:
    """Reset a project's quotas to the defaults (admin)."""
    ctx(request).need("admin")
    project = _project(request)
    await policy.reset_quotas(request.app[DATABASE].pool, project)
    return web.Response(status=204)
