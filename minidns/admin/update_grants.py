"""/v2/minidns/update_grants: who may change what by RFC 2136 UPDATE (services/update_grants.py),
admin only. minidns's own resource (Designate has none): a grant in its dict form (xfr/grants.py)
plus id, position, description; the servers read the configured grants first, then these in
position order, and the first that matches decides."""

from __future__ import annotations

from aiohttp import web

from ..services import update_grants
from ..xfr.grants import MATCHES
from .common import DATABASE, ApiError, ctx, json_response, read_json
from .designate import check_fields, collection, path_id, self_link
from .openapi import describe

routes = web.RouteTableDef()

BASE = "/v2/minidns/update_grants"
FIELDS = {"key": ((str,), 255), "zone": ((str, None), 255), "match": ((str,),), "pattern": ((str, None), 255),
          "types": ((list,),), "action": ((str,),), "position": ((int, None),),
          "description": ((str, None), 160)}  # fmt: skip
REQUIRED = ("key", "match")
READ_ONLY = ("id", "created_at", "links")

GRANT_SCHEMA = {
    "type": "object",
    "required": list(REQUIRED),
    "properties": {
        "id": {"type": "string", "format": "uuid", "readOnly": True},
        "position": {"type": ["integer", "null"], "minimum": 1,
                     "description": "1: read first; the grants from there on move down one. Default: after the others"},
        "key": {"type": "string", "maxLength": 255, "description": "the TSIG key name"},
        "zone": {"type": ["string", "null"], "maxLength": 255, "description": "null: every zone"},
        "match": {"type": "string", "enum": list(MATCHES)},
        "pattern": {"type": ["string", "null"], "maxLength": 255,
                    "description": "the name for name, subdomain, wildcard (*.dyn.example.com.)"},
        "types": {"type": "array", "items": {"type": "string"}, "description": "type names; empty: every type"},
        "action": {"type": "string", "enum": ["grant", "deny"], "default": "grant"},
        "managed": {"type": "boolean", "default": False, "description": "also the RRsets the event sink made"},
        "description": {"type": ["string", "null"], "maxLength": 160},
        "created_at": {"type": "string", "readOnly": True},
        "links": {"type": "object", "readOnly": True},
    },
}  # fmt: skip


def _render(request: web.Request, grant: dict) -> dict:
    return {**grant, "links": self_link(request, f"{BASE}/{grant['id']}")}


@routes.get(BASE)
@describe(parameters=[{"name": n, "in": "query", "required": False, "schema": {"type": "string"}} for n in ("key", "zone")])
async def list_update_grants(request: web.Request) -> web.Response:
    """List the UPDATE grants in the order they are read (admin).
    Filters: key (that key's), zone (those that apply in the zone: its own and every zone's)."""
    ctx(request).need("admin")
    grants = await update_grants.list_grants(request.app[DATABASE].pool, request.query.get("key"), request.query.get("zone"))
    return json_response(collection(request, "update_grants", [_render(request, g) for g in grants]))


@routes.post(BASE)
@describe(requestBody={"content": {"application/json": {"schema": GRANT_SCHEMA}}},
          responses={"201": {"description": "The grant", "content": {"application/json": {"schema": GRANT_SCHEMA}}}})
async def create_update_grant(request: web.Request) -> web.Response:
    """Add an UPDATE grant (admin).
    The servers use it at once; 400 says why a grant is refused."""
    ctx(request).need("admin")
    body = await read_json(request)
    managed = body.pop("managed", False)
    if not isinstance(managed, bool):  # check_fields takes no booleans
        raise ApiError(400, "invalid_object", "managed must be true or false")
    values = check_fields(body, FIELDS, required=REQUIRED, read_only=READ_ONLY) | {"managed": managed}
    position, description = values.pop("position", None), values.pop("description", None)
    made = await update_grants.add_grant(request.app[DATABASE].pool, values, position, description)
    body = _render(request, made)
    return json_response(body, 201, {"Location": body["links"]["self"]})


@routes.get(BASE + "/{grant_id}")
async def get_update_grant(request: web.Request) -> web.Response:
    """Show an UPDATE grant (admin)."""
    ctx(request).need("admin")
    grant = await update_grants.get_grant(request.app[DATABASE].pool, path_id(request, "grant_id"))
    return json_response(_render(request, grant))


@routes.delete(BASE + "/{grant_id}")
async def delete_update_grant(request: web.Request) -> web.Response:
    """Delete an UPDATE grant (admin); the grants after it move up one."""
    ctx(request).need("admin")
    await update_grants.delete_grant(request.app[DATABASE].pool, path_id(request, "grant_id"))
    return web.Response(status=204)
