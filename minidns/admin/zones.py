"""Designate v2 zones: /v2/zones (create, list), /v2/zones/{zone_id} (get, update, delete) and
/v2/zones/{zone_id}/nameservers, with Designate's paths, fields and status codes.

A member sees and changes only its (acting) project's zones — another project's zone is 404, as one
that does not exist; a reader may only read; an admin acts for another project with
X-Auth-Sudo-Project-ID or sees every project with X-Auth-All-Projects. A zone's status and action
are the database's: PENDING from each change until the secondaries have it (ACTIVE at once with
none)."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..services import zones
from ..store.records import MAX_TTL
from .common import DATABASE, ApiError, ctx, json_response, read_json
from .designate import check_body, list_body, list_query, path_id, zone_json
from .openapi import describe

routes = web.RouteTableDef()

_READ_ONLY = ("id", "pool_id", "project_id", "serial", "status", "action", "version", "created_at", "updated_at",
              "transferred_at", "shared", "links")  # fmt: skip
_WRITABLE = {"email": (str, 255), "ttl": (int,), "description": (str, None, 160)}


def _check_ttl(ttl) -> None:
    if ttl is not None and not 1 <= ttl <= MAX_TTL:
        raise ApiError(400, "invalid_object", f"Provided object does not match schema: ttl must be 1 to {MAX_TTL}")


def _pool_hint(attributes, c) -> uuid.UUID:
    """The pool a new zone goes to: the default, or (admin only) the one its `pool_id` attribute
    names — the one scheduling hint of Designate's that minidns honours."""
    if not attributes:
        return zones.POOL_ID
    if not isinstance(attributes, dict) or set(attributes) != {"pool_id"}:
        raise ApiError(400, "invalid_object", "the only zone attribute minidns takes is pool_id (the pool to use)")
    if c.role != "admin":
        raise ApiError(403, "forbidden", "only an admin may choose a zone's pool")
    try:
        return uuid.UUID(str(attributes["pool_id"]))
    except ValueError:
        raise ApiError(400, "invalid_object", f"pool_id {attributes['pool_id']!r} is not an id") from None


@routes.post("/v2/zones")
@describe(responses={"202": {"description": "The zone, status PENDING, action CREATE"}})
async def create_zone(request: web.Request) -> web.Response:
    """Create a zone (PRIMARY) in the acting project.

    Body: name (absolute, with the trailing dot), email, and optionally ttl, description, type."""
    c = ctx(request)
    c.need("member")
    body = await read_json(request)
    ztype = body.get("type") or "PRIMARY"
    if not isinstance(ztype, str) or ztype.upper() not in ("PRIMARY", "SECONDARY"):
        raise ApiError(400, "invalid_object", f"Provided object does not match schema: type {ztype!r} is not PRIMARY")
    if ztype.upper() == "SECONDARY":
        raise ApiError(400, "invalid_object", "SECONDARY zones are not supported: minidns is primary for every zone "
                       "it serves; create a PRIMARY zone (or import its zone file)")  # fmt: skip
    fields = {k: v for k, v in body.items() if k not in ("type", "masters", "attributes")}
    if body.get("masters"):
        raise ApiError(400, "invalid_object", "masters are only for SECONDARY zones")
    pool_id = _pool_hint(body.get("attributes"), c)
    values = check_body(fields, {"name": (str, 255), **_WRITABLE}, read_only=_READ_ONLY)
    for required in ("name", "email"):
        if required not in values:
            raise ApiError(400, "invalid_object", f"Provided object does not match schema: '{required}' is a required property")
    _check_ttl(values.get("ttl"))
    z = await zones.create_zone(request.app[DATABASE].store, c.acting_project, name=values["name"],
                             email=values["email"], ttl=values.get("ttl"), description=values.get("description"),
                             is_admin=c.role == "admin", pool_id=pool_id)  # fmt: skip
    out = zone_json(request, z)
    # 202 as Designate answers a new zone, whatever its status by the time it is read back (with
    # no secondaries to wait for it may be ACTIVE already).
    return json_response(out, 202, {"Location": out["links"]["self"]})


@routes.get("/v2/zones")
async def list_zones(request: web.Request) -> web.Response:
    """List the zones of the acting project (every project's with X-Auth-All-Projects).

    Filters name, email, status, ttl, description, type (`*` is a wildcard); limit/marker paging;
    sort_key (created_at, id, updated_at, name, serial, ttl, status, tenant_id) and sort_dir."""
    c = ctx(request)
    q = list_query(request, zones.ZONE_FILTERS)
    rows, total, more = await zones.list_zones(request.app[DATABASE].pool, c.project_filter(), q)
    return json_response(list_body(request, "zones", [zone_json(request, z) for z in rows], total, more, q.limit))


@routes.get("/v2/zones/{zone_id}")
async def get_zone(request: web.Request) -> web.Response:
    """One zone (also one shared with the project)."""
    c = ctx(request)
    zid = path_id(request, "zone_id")
    z = await zones.get_zone(request.app[DATABASE].pool, zid, c.project_filter(), shared=True)
    return json_response(zone_json(request, z))


@routes.patch("/v2/zones/{zone_id}")
async def update_zone(request: web.Request) -> web.Response:
    """Change a zone's email, ttl or description (one change, new serial); 202 while PENDING."""
    c = ctx(request)
    c.need("member")
    zid = path_id(request, "zone_id")
    body = await read_json(request)
    z = await zones.get_zone(request.app[DATABASE].pool, zid, c.project_filter())
    values = check_body(body, _WRITABLE, read_only=_READ_ONLY,
                        immutable={"name": z["name"], "type": z["type"], "attributes": {}, "masters": []})  # fmt: skip
    _check_ttl(values.get("ttl"))
    if "ttl" in values and values["ttl"] is None:
        raise ApiError(400, "invalid_object", "Provided object does not match schema: ttl may not be null")
    z = await zones.update_zone(request.app[DATABASE].store, zid, c.project_filter(), values)
    return json_response(zone_json(request, z), 202 if z["status"] == "PENDING" else 200)


@routes.delete("/v2/zones/{zone_id}")
async def delete_zone(request: web.Request) -> web.Response:
    """Delete a zone; 202 with the zone, action DELETE.

    A shared zone only with the header X-Designate-Delete-Shares: true (or ?delete_shares=true),
    which removes its shares with it; else 400 zone_is_shared."""
    c = ctx(request)
    c.need("member")
    zid = path_id(request, "zone_id")
    z = await zones.delete_zone(request.app[DATABASE].store, zid, c.project_filter(),
                             delete_shares=delete_shares(request))  # fmt: skip
    return json_response(zone_json(request, z), 202)


def delete_shares(request: web.Request) -> bool:
    """Designate's delete-shares modifier: the X-Designate-Delete-Shares header or the
    delete_shares query parameter."""
    given = request.headers.get("X-Designate-Delete-Shares", request.query.get("delete_shares", ""))
    return given.lower() in ("true", "1", "yes")


@routes.get("/v2/zones/{zone_id}/nameservers")
async def nameservers(request: web.Request) -> web.Response:
    """The zone's name servers: its apex NS records, [{hostname, priority}]."""
    c = ctx(request)
    zid = path_id(request, "zone_id")
    names = await zones.nameservers(request.app[DATABASE].pool, zid, c.project_filter())
    return json_response({"nameservers": [{"hostname": n, "priority": p} for n, p in names]})
