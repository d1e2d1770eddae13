"""Designate v2 recordsets: /v2/zones/{zone_id}/recordsets (create, list) and
/v2/zones/{zone_id}/recordsets/{recordset_id} (get, update, delete); /v2/recordsets (every
visible zone's) and /v2/recordsets/{recordset_id} (a 301 to its canonical place, as Designate
answers).

Records are presentation-format strings, each parsed by dnspython in the write path; names are
absolute and inside the zone. Designate's rules: a name and type exist once (409
duplicate_recordset), CNAME alone at its name and never at the apex (400
invalid_recordset_location), the SOA recordset read-only (400), and recordsets made by events
(managed) are edited only by an admin sending X-Designate-Edit-Managed-Records: true (else 400
"Managed records may not be updated", as Designate answers; the header from a non-admin is 403).
Create, update and delete answer 202 while the zone is PENDING (the change not yet on every
secondary), as Designate does. The writes to one zone that arrive together are committed together
(services/recordsets.py RecordsetWriter), each request still getting its own outcome.
"""

from __future__ import annotations

from aiohttp import web

from ..services import recordsets as rs
from .common import WRITER, DATABASE, ApiError, ctx, json_response, read_json
from .designate import check_body, edit_managed, list_body, list_query, path_id, rrset_json

routes = web.RouteTableDef()

_READ_ONLY = ("id", "zone_id", "project_id", "zone_name", "status", "action", "version", "created_at", "updated_at",
              "links")  # fmt: skip
_WRITABLE = {"records": (list,), "ttl": (int, None), "description": (str, None, 160)}


def _status(r: dict, ok: int) -> int:
    return 202 if r["status"] == "PENDING" else ok


@routes.post("/v2/zones/{zone_id}/recordsets")
async def create_recordset(request: web.Request) -> web.Response:
    """Create a recordset: name (absolute), type, records, and optionally ttl, description."""
    c = ctx(request)
    c.need("member")
    zid = path_id(request, "zone_id")
    body = await read_json(request)
    values = check_body(body, {"name": (str, 255), "type": (str, 16), **_WRITABLE}, read_only=_READ_ONLY)
    for required in ("name", "type", "records"):
        if required not in values:
            raise ApiError(400, "invalid_object", f"Provided object does not match schema: '{required}' is a required property")
    r = await request.app[WRITER].create(zid, c.project_filter(), name=values["name"], rtype=values["type"],
                                          records=values["records"], ttl=values.get("ttl"),
                                          description=values.get("description"))  # fmt: skip
    out = rrset_json(request, r)
    return json_response(out, _status(r, 201), {"Location": out["links"]["self"]})


@routes.get("/v2/zones/{zone_id}/recordsets")
async def list_zone_recordsets(request: web.Request) -> web.Response:
    """The zone's recordsets (the SOA and apex NS included).

    Filters name, type, data (any record), ttl, status, description (`*` is a wildcard); limit/marker
    paging; sort_key (created_at, id, updated_at, name, type, ttl, zone_id, tenant_id) and sort_dir."""
    c = ctx(request)
    zid = path_id(request, "zone_id")
    q = list_query(request, rs.RRSET_FILTERS[:-1])
    rows, total, more = await rs.list_rrsets(request.app[DATABASE].pool, c.project_filter(), zid, q)
    return json_response(list_body(request, "recordsets", [rrset_json(request, r) for r in rows], total, more, q.limit))


@routes.get("/v2/recordsets")
async def list_recordsets(request: web.Request) -> web.Response:
    """Recordsets of every zone the caller sees; the same filters, and zone_id."""
    c = ctx(request)
    q = list_query(request, rs.RRSET_FILTERS)
    rows, total, more = await rs.list_rrsets(request.app[DATABASE].pool, c.project_filter(), None, q)
    return json_response(list_body(request, "recordsets", [rrset_json(request, r) for r in rows], total, more, q.limit))


@routes.get("/v2/recordsets/{recordset_id}")
async def recordset_redirect(request: web.Request) -> web.Response:
    """301 to the recordset's canonical place under its zone (as Designate answers)."""
    c = ctx(request)
    rid = path_id(request, "recordset_id")
    r = await rs.get_rrset(request.app[DATABASE].pool, c.project_filter(), None, rid)
    location = rrset_json(request, r)["links"]["self"]
    return web.Response(status=301, headers={"Location": location})


@routes.get("/v2/zones/{zone_id}/recordsets/{recordset_id}")
async def get_recordset(request: web.Request) -> web.Response:
    """One recordset."""
    c = ctx(request)
    zid, rid = path_id(request, "zone_id"), path_id(request, "recordset_id")
    r = await rs.get_rrset(request.app[DATABASE].pool, c.project_filter(), zid, rid)
    return json_response(rrset_json(request, r))


@routes.put("/v2/zones/{zone_id}/recordsets/{recordset_id}")
async def update_recordset(request: web.Request) -> web.Response:
    """Replace a recordset's records, ttl (null: the zone's) or description; name and type stay."""
    c = ctx(request)
    c.need("member")
    managed = edit_managed(request, c)
    zid, rid = path_id(request, "zone_id"), path_id(request, "recordset_id")
    body = await read_json(request)
    if "records" in body and body["records"] is None:
        raise ApiError(400, "bad_request", "records is null")
    pool = request.app[DATABASE].pool
    current = await rs.get_rrset(pool, c.project_filter(), zid, rid)
    immutable = {"name": current["name"], "type": rrset_json(request, current)["type"]}
    values = check_body(body, _WRITABLE, read_only=_READ_ONLY, immutable=immutable)
    r = await request.app[WRITER].update(zid, c.project_filter(), rid, values, edit_managed=managed)
    return json_response(rrset_json(request, r), _status(r, 200))


@routes.delete("/v2/zones/{zone_id}/recordsets/{recordset_id}")
async def delete_recordset(request: web.Request) -> web.Response:
    """Delete a recordset; 202 with it, action DELETE."""
    c = ctx(request)
    c.need("member")
    managed = edit_managed(request, c)
    zid, rid = path_id(request, "zone_id"), path_id(request, "recordset_id")
    r = await request.app[WRITER].delete(zid, c.project_filter(), rid, edit_managed=managed)
    return json_response(rrset_json(request, r), 202)
