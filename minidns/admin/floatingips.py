"""/v2/reverse/floatingips: set and unset the PTR record of a floating IP the project holds, as
Designate has it (ids are "region:uuid"; PATCH answers 202). The PTR goes into the most specific
in-addr.arpa / ip6.arpa zone served for the address, as an event-managed record
(resource type ptr:floatingip), through the one write path (services/floatingips.py).

Which project holds which floating IP is registered by an admin — a minidns addition, since there
is no Neutron here to ask: POST /v2/reverse/floatingips {region, id, address, project_id} and
DELETE /v2/reverse/floatingips/{region}:{id} (which removes the PTR too)."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..services import floatingips as fips
from .common import DATABASE, ApiError, ctx, json_response, read_json
from .designate import check_fields, collection, self_link
from .openapi import describe

routes = web.RouteTableDef()

FIP_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "region:uuid", "readOnly": True},
        "address": {"type": "string", "readOnly": True},
        "ptrdname": {"type": ["string", "null"], "description": "absolute name; null unsets the PTR"},
        "description": {"type": ["string", "null"], "maxLength": 160},
        "ttl": {"type": ["integer", "null"], "minimum": 1, "maximum": 2147483647},
        "action": {"type": "string", "readOnly": True},
        "status": {"type": "string", "readOnly": True},
        "links": {"type": "object", "readOnly": True},
    },
}
REGISTER_SCHEMA = {
    "type": "object",
    "required": ["region", "id", "address", "project_id"],
    "properties": {"region": {"type": "string"}, "id": {"type": "string", "format": "uuid"},
                   "address": {"type": "string"}, "project_id": {"type": "string"}},
}  # fmt: skip
PATCH_FIELDS = {"ptrdname": ((str, None), 255), "description": ((str, None), 160), "ttl": ((int, None),)}
READ_ONLY = ("id", "address", "action", "status", "links", "region")


def _render(request: web.Request, row: dict, status: str = "ACTIVE", action: str = "NONE") -> dict:
    key = f"{row['region']}:{row['id']}"
    return {
        "id": key, "ptrdname": row["ptrdname"], "description": row["description"], "ttl": row["ttl"],
        "address": row["address"], "action": action, "status": status,
        "links": self_link(request, f"/v2/reverse/floatingips/{key}"),
    }  # fmt: skip


def _key(request: web.Request) -> tuple[str, uuid.UUID]:
    return fips.parse_key(request.match_info["fip_key"])


@routes.get("/v2/reverse/floatingips")
async def list_floatingips(request: web.Request) -> web.Response:
    """List the floating IPs of the project, with their PTR records."""
    c = ctx(request)
    c.need("reader")
    rows = await fips.list_fips(request.app[DATABASE].pool, c.project_filter())
    return json_response(collection(request, "floatingips", [_render(request, r) for r in rows]))


@routes.get("/v2/reverse/floatingips/{fip_key}")
async def get_floatingip(request: web.Request) -> web.Response:
    """Show a floating IP's PTR record."""
    c = ctx(request)
    c.need("reader")
    region, fip_id = _key(request)
    row = await fips.get_fip(request.app[DATABASE].pool, region, fip_id, c.project_filter())
    return json_response(_render(request, row))


@routes.patch("/v2/reverse/floatingips/{fip_key}")
@describe(requestBody={"content": {"application/json": {"schema": FIP_SCHEMA}}},
          responses={"202": {"description": "The floating IP, its PTR being published",
                             "content": {"application/json": {"schema": FIP_SCHEMA}}}})  # fmt: skip
async def set_floatingip_ptr(request: web.Request) -> web.Response:
    """Set (ptrdname) or unset (ptrdname null) a floating IP's PTR record.
    description and ttl go with the PTR. 400 when no in-addr.arpa / ip6.arpa zone is served for the
    address."""
    c = ctx(request)
    c.need("member")
    region, fip_id = _key(request)
    values = check_fields(await read_json(request), PATCH_FIELDS, required=("ptrdname",), read_only=READ_ONLY)
    database = request.app[DATABASE]
    row = await fips.set_ptr(database.store, region, fip_id, c.project_filter(), values["ptrdname"],
                             values.get("description"), values.get("ttl"))  # fmt: skip
    action = "CREATE" if values["ptrdname"] is not None else "DELETE"
    return json_response(_render(request, row, "PENDING", action), 202)


@routes.post("/v2/reverse/floatingips")
@describe(requestBody={"content": {"application/json": {"schema": REGISTER_SCHEMA}}},
          responses={"201": {"description": "The floating IP", "content": {"application/json": {"schema": FIP_SCHEMA}}}})
async def register_floatingip(request: web.Request) -> web.Response:
    """Register a floating IP a project holds (admin; a minidns addition).
    Body: region, id (uuid), address, project_id. Registering it again changes its holder or
    address (and drops a PTR set for the old one)."""
    ctx(request).need("admin")
    fields = {"region": ((str,), 100), "id": ((str,), 36), "address": ((str,), 64), "project_id": ((str,), 255)}
    values = check_fields(await read_json(request), fields, required=tuple(fields))
    try:
        fip_id = uuid.UUID(values["id"])
    except ValueError:
        raise ApiError(400, "invalid_object", "id must be a UUID") from None
    row = await fips.register(request.app[DATABASE].store, values["region"], fip_id, values["address"],
                              values["project_id"])  # fmt: skip
    body = _render(request, row)
    return json_response(body, 201, {"Location": body["links"]["self"]})


@routes.delete("/v2/reverse/floatingips/{fip_key}")
async def unregister_floatingip(request: web.Request) -> web.Response:
    """Forget a floating IP (admin; a minidns addition); its PTR record is removed."""
    ctx(request).need("admin")
    region, fip_id = _key(request)
    await fips.unregister(request.app[DATABASE].store, region, fip_id)
    return web.Response(status=204)
