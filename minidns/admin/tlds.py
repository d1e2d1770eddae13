"""/v2/tlds and /v2/blacklists, as Designate has them. TLDs: anyone authenticated may list and
show them, an admin changes them; when the list is not empty a zone must end in one of them.
Blacklists (admin only): regular expressions a new zone's name must not match, unless an admin
creates it. Both rules are applied by services/policy.check_new_zone when a zone is created."""

from __future__ import annotations

from aiohttp import web

from ..services import policy
from .common import DATABASE, ctx, json_response, paging, read_json
from .designate import check_fields, collection, path_id, self_link
from .openapi import describe

routes = web.RouteTableDef()

READ_ONLY = ("id", "created_at", "updated_at", "links")
TLD_FIELDS = {"name": ((str,), 255), "description": ((str, None), 160)}
BLACKLIST_FIELDS = {"pattern": ((str,), 255), "description": ((str, None), 160)}


def _schema(key: str, key_doc: str) -> dict:
    return {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid", "readOnly": True},
        key: {"type": "string", "maxLength": 255, "description": key_doc},
        "description": {"type": ["string", "null"], "maxLength": 160},
        "created_at": {"type": "string", "readOnly": True}, "updated_at": {"type": ["string", "null"], "readOnly": True},
        "links": {"type": "object", "readOnly": True},
    }}  # fmt: skip


TLD_SCHEMA = _schema("name", "a TLD without the trailing dot: com, co.uk")
BLACKLIST_SCHEMA = _schema("pattern", "a regular expression searched in the zone name (with its trailing dot)")
LIST_PARAMS = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}} for n in ("limit", "marker")]


def _render(request: web.Request, table: str, row: dict) -> dict:
    key = "name" if table == "tlds" else "pattern"
    out = {k: row[k] for k in ("id", key, "description", "created_at", "updated_at")}
    out["links"] = self_link(request, f"/v2/{table}/{row['id']}")
    return out


def _values(table: str, body: dict, create: bool) -> dict:
    if table == "tlds":
        values = check_fields(body, TLD_FIELDS, required=("name",) if create else (), read_only=READ_ONLY)
        if "name" in values:
            values["name"] = policy.tld_name(values["name"])
    else:
        values = check_fields(body, BLACKLIST_FIELDS, required=("pattern",) if create else (), read_only=READ_ONLY)
        if "pattern" in values:
            values["pattern"] = policy.check_pattern(values["pattern"])
    return values


async def _list(request: web.Request, table: str, key: str) -> web.Response:
    limit, marker = paging(request)
    rows, total = await policy.list_rows(request.app[DATABASE].pool, table, key=request.query.get(key),
                                         limit=limit, marker=marker)  # fmt: skip
    return json_response(collection(request, table, [_render(request, table, r) for r in rows], limit, total))


async def _create(request: web.Request, table: str) -> web.Response:
    values = _values(table, await read_json(request), True)
    key = "name" if table == "tlds" else "pattern"
    row = await policy.create_row(request.app[DATABASE].pool, table, values[key], values.get("description"))
    body = _render(request, table, row)
    return json_response(body, 201, {"Location": body["links"]["self"]})


async def _get(request: web.Request, table: str, param: str) -> web.Response:
    row_id = path_id(request, param)
    row = await policy.get_row(request.app[DATABASE].pool, table, row_id)
    return json_response(_render(request, table, row))


async def _update(request: web.Request, table: str, param: str) -> web.Response:
    row_id = path_id(request, param)
    values = _values(table, await read_json(request), False)
    row = await policy.update_row(request.app[DATABASE].pool, table, row_id, values)
    return json_response(_render(request, table, row))


async def _delete(request: web.Request, table: str, param: str) -> web.Response:
    row_id = path_id(request, param)
    await policy.delete_row(request.app[DATABASE].pool, table, row_id)
    return web.Response(status=204)


# -- TLDs -----------------------------------------------------------------------------------------


@routes.get("/v2/tlds")
@describe(parameters=[{"name": "name", "in": "query", "required": False, "schema": {"type": "string"}}, *LIST_PARAMS])
async def list_tlds(request: web.Request) -> web.Response:
    """List TLDs (any authenticated user).
    Filter: name; paged with limit and marker."""
    ctx(request).need("reader")
    return await _list(request, "tlds", "name")


@routes.post("/v2/tlds")
@describe(requestBody={"content": {"application/json": {"schema": TLD_SCHEMA}}},
          responses={"201": {"description": "The TLD", "content": {"application/json": {"schema": TLD_SCHEMA}}}})
async def create_tld(request: web.Request) -> web.Response:
    """Create a TLD (admin)."""
    ctx(request).need("admin")
    return await _create(request, "tlds")


@routes.get("/v2/tlds/{tld_id}")
async def get_tld(request: web.Request) -> web.Response:
    """Show a TLD (any authenticated user)."""
    ctx(request).need("reader")
    return await _get(request, "tlds", "tld_id")


@routes.patch("/v2/tlds/{tld_id}")
@describe(requestBody={"content": {"application/json": {"schema": TLD_SCHEMA}}})
async def update_tld(request: web.Request) -> web.Response:
    """Update a TLD's name or description (admin)."""
    ctx(request).need("admin")
    return await _update(request, "tlds", "tld_id")


@routes.delete("/v2/tlds/{tld_id}")
async def delete_tld(request: web.Request) -> web.Response:
    """Delete a TLD (admin)."""
    ctx(request).need("admin")
    return await _delete(request, "tlds", "tld_id")


# -- blacklists -----------------------------------------------------------------------------------


@routes.get("/v2/blacklists")
@describe(parameters=[{"name": "pattern", "in": "query", "required": False, "schema": {"type": "string"}},
                      *LIST_PARAMS])  # fmt: skip
async def list_blacklists(request: web.Request) -> web.Response:
    """List blacklisted zone name patterns (admin).
    Filter: pattern; paged with limit and marker."""
    ctx(request).need("admin")
    return await _list(request, "blacklists", "pattern")


@routes.post("/v2/blacklists")
@describe(requestBody={"content": {"application/json": {"schema": BLACKLIST_SCHEMA}}},
          responses={"201": {"description": "The blacklist entry",
                             "content": {"application/json": {"schema": BLACKLIST_SCHEMA}}}})  # fmt: skip
async def create_blacklist(request: web.Request) -> web.Response:
    """Blacklist a zone name pattern (admin).
    New zones whose name matches it are refused (400 invalid_zone_name) unless an admin creates them."""
    ctx(request).need("admin")
    return await _create(request, "blacklists")


@routes.get("/v2/blacklists/{blacklist_id}")
async def get_blacklist(request: web.Request) -> web.Response:
    """Show a blacklist entry (admin)."""
    ctx(request).need("admin")
    return await _get(request, "blacklists", "blacklist_id")


@routes.patch("/v2/blacklists/{blacklist_id}")
@describe(requestBody={"content": {"application/json": {"schema": BLACKLIST_SCHEMA}}})
async def update_blacklist(request: web.Request) -> web.Response:
    """Update a blacklist entry's pattern or description (admin)."""
    ctx(request).need("admin")
    return await _update(request, "blacklists", "blacklist_id")


@routes.delete("/v2/blacklists/{blacklist_id}")
async def delete_blacklist(request: web.Request) -> web.Response:
    """Delete a blacklist entry (admin)."""
    ctx(request).need("admin")
    return await _delete(request, "blacklists", "blacklist_id")
