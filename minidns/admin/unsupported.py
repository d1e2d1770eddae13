"""The Designate v2 routes minidns does not implement, in one list, each answered with Designate's
error shape naming the feature and why: 501 not_supported, "<feature> is not supported by
minidns: <why>" — so a client can tell "not supported" from "no such zone", which stays 404
zone_not_found (a route under /v2/zones/{zone_id} checks the zone first, as Designate does).

Elsewhere, for the same reason: POST /v2/zones with type SECONDARY (or masters) is refused with
400 by admin/zones.py, the field being part of the body Designate validates."""

from __future__ import annotations

from aiohttp import web

from ..services import zones
from .common import DATABASE, ApiError, ctx
from .designate import path_id
from .openapi import describe

routes = web.RouteTableDef()

# (method, path, feature, why)
UNSUPPORTED = (
    ("POST", "/v2/zones/{zone_id}/tasks/xfr", "Transferring a SECONDARY zone from its masters (tasks/xfr)",
     "minidns is the primary of every zone it serves and has no SECONDARY zones"),
)  # fmt: skip


def _handler(feature: str, why: str):
    async def unsupported(request: web.Request) -> web.Response:
        if "zone_id" in request.match_info:
            zid = path_id(request, "zone_id")
            await zones.get_zone(request.app[DATABASE].pool, zid, ctx(request).project_filter(), shared=True)
        raise ApiError(501, "not_supported", f"{feature} is not supported by minidns: {why}")

    unsupported.__doc__ = f"{feature}: not supported by minidns (501).\n\n{why}."
    return describe(responses={"501": {"description": f"{feature} is not supported by minidns"}})(unsupported)


for _method, _path, _feature, _why in UNSUPPORTED:
    routes.route(_method, _path)(_handler(_feature, _why))
