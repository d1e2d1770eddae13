"""Designate v2 zone abandon: POST /v2/zones/{zone_id}/tasks/abandon (admin) → 204.

Designate abandons a zone by deleting it from its database while leaving it on the backend DNS
servers. minidns is itself the backend, so here abandon means: the zone is forgotten by minidns
at once — gone from the database, no longer answered by any minidns server (REFUSED) — and
nothing is sent to the secondaries: no NOTIFY, and the zone stays listed in the catalog zones,
so secondaries (catalog consumers included) keep serving their copy until it expires (the SOA
EXPIRE, 14 days by default) or an operator points them at another primary. That is the
operator's use of abandon: hand the zone over to something else without taking it off the air.
A plain DELETE /v2/zones/{zone_id} is the way to take a zone off the secondaries too."""

from __future__ import annotations

from aiohttp import web

from ..services import zones
from .common import DATABASE, ctx
from .designate import path_id
from .zones import delete_shares

routes = web.RouteTableDef()


@routes.post("/v2/zones/{zone_id}/tasks/abandon")
async def abandon_zone(request: web.Request) -> web.Response:
    """Abandon a zone (admin, any project's): removed from minidns at once, left on the
    secondaries; 204.

    A shared zone only with X-Designate-Delete-Shares: true, as for a delete."""
    ctx(request).need("admin")
    zid = path_id(request, "zone_id")
    await zones.abandon_zone(request.app[DATABASE].store, zid, delete_shares=delete_shares(request))
    return web.Response(status=204)
