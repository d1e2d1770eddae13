"""/v2/tsigkeys: Designate's TSIG key resource, admin only, over the keys the servers sign and check
transfers and NOTIFY with (services/access.py). Designate returns the secret in every reply, so this
does too (the resource is admin-only); it is never logged."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..services import access
from .common import DATABASE, ApiError, ctx, json_response, paging, read_json
from .designate import check_fields, collection, path_id, self_link
from .openapi import describe

routes = web.RouteTableDef()

ALGORITHMS = ("hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")
FIELDS = {"name": ((str,), 160), "algorithm": ((str,),), "secret": ((str,), 160), "scope": ((str,),),
          "resource_id": ((str,),)}  # fmt: skip
REQUIRED = ("name", "algorithm", "secret", "scope", "resource_id")
READ_ONLY = ("id", "created_at", "updated_at", "links")

KEY_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid", "readOnly": True},
        "name": {"type": "string", "maxLength": 160},
        "algorithm": {"type": "string", "enum": list(ALGORITHMS)},
        "secret": {"type": "string", "maxLength": 160, "description": "base64"},
        "scope": {"type": "string", "enum": ["POOL", "ZONE"]},
        "resource_id": {"type": "string", "format": "uuid"},
        "created_at": {"type": "string", "readOnly": True},
        "updated_at": {"type": ["string", "null"], "readOnly": True},
        "links": {"type": "object", "readOnly": True},
    },
}


def _render(request: web.Request, row: dict) -> dict:
    out = {k: row[k] for k in ("id", "name", "algorithm", "secret", "scope", "resource_id", "created_at", "updated_at")}
    out["links"] = self_link(request, f"/v2/tsigkeys/{row['id']}")
    return out


def _checked(body: dict, *, create: bool) -> dict:
    values = check_fields(body, FIELDS, required=REQUIRED if create else (), read_only=READ_ONLY)
    if "algorithm" in values and values["algorithm"] not in ALGORITHMS:
        raise ApiError(400, "invalid_object", f"algorithm must be one of {', '.join(ALGORITHMS)}")
    if "scope" in values and values["scope"] not in access.TSIG_SCOPES:
        raise ApiError(400, "invalid_object", "scope must be POOL or ZONE")
    if "resource_id" in values:
        try:
            values["resource_id"] = uuid.UUID(values["resource_id"])
        except ValueError:
            raise ApiError(400, "invalid_object", "resource_id must be a UUID") from None
    return values


@routes.get("/v2/tsigkeys")
@describe(parameters=[{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                      for n in ("name", "algorithm", "scope", "limit", "marker")])  # fmt: skip
async def list_tsigkeys(request: web.Request) -> web.Response:
    """List TSIG keys (admin).
    Filters: name, algorithm, scope; paged with limit and marker."""
    ctx(request).need("admin")
    limit, marker = paging(request)
    q = request.query
    rows, total = await access.key_rows(request.app[DATABASE].pool, name=q.get("name"), algorithm=q.get("algorithm"),
                                        scope=q.get("scope"), limit=limit, marker=marker)  # fmt: skip
    return json_response(collection(request, "tsigkeys", [_render(request, r) for r in rows], limit, total))


@routes.post("/v2/tsigkeys")
@describe(requestBody={"content": {"application/json": {"schema": KEY_SCHEMA}}},
          responses={"201": {"description": "The key", "content": {"application/json": {"schema": KEY_SCHEMA}}}})
async def create_tsigkey(request: web.Request) -> web.Response:
    """Create a TSIG key (admin).
    The servers use it for transfers and NOTIFY at once."""
    ctx(request).need("admin")
    values = _checked(await read_json(request), create=True)
    row = await access.create_key_row(request.app[DATABASE].pool, **values)
    body = _render(request, row)
    return json_response(body, 201, {"Location": body["links"]["self"]})


@routes.get("/v2/tsigkeys/{tsigkey_id}")
async def get_tsigkey(request: web.Request) -> web.Response:
    """Show a TSIG key (admin)."""
    ctx(request).need("admin")
    key_id = path_id(request, "tsigkey_id")
    row = await access.key_row(request.app[DATABASE].pool, key_id)
    return json_response(_render(request, row))


@routes.patch("/v2/tsigkeys/{tsigkey_id}")
@describe(requestBody={"content": {"application/json": {"schema": KEY_SCHEMA}}})
async def update_tsigkey(request: web.Request) -> web.Response:
    """Update a TSIG key (admin): name, algorithm, secret, scope, resource_id."""
    ctx(request).need("admin")
    key_id = path_id(request, "tsigkey_id")
    values = _checked(await read_json(request), create=False)
    row = await access.update_key_row(request.app[DATABASE].pool, key_id, values)
    return json_response(_render(request, row))


@routes.delete("/v2/tsigkeys/{tsigkey_id}")
async def delete_tsigkey(request: web.Request) -> web.Response:
    """Delete a TSIG key (admin); 409 while a secondary uses it."""
    ctx(request).need("admin")
    key_id = path_id(request, "tsigkey_id")
    await access.delete_key_row(request.app[DATABASE].pool, key_id)
    return web.Response(status=204)
