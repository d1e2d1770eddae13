"""Designate v2 zone transfers between projects: transfer requests
(/v2/zones/{zone_id}/tasks/transfer_requests, /v2/zones/tasks/transfer_requests[/{id}]) and
accepts (/v2/zones/tasks/transfer_accepts[/{id}]), with Designate's fields and status codes
(201 on create, 200 on update, 204 on delete; a wrong key 403 invalid_key; a used request 400
invalid_zone_transfer_request). The rules are in services/transfers.py.

A request's key and projects are shown to the project offering the zone (and an admin); the
project it names, or anyone given the id of a request naming no project, sees only its id, zone,
description and status — as Designate's get_zone_transfer_request_detailed policy has it."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..services import transfers as tr
from .common import DATABASE, ApiError, base_url, ctx, json_response, read_json
from .designate import check_body, list_body, list_query, path_id
from .openapi import describe

routes = web.RouteTableDef()

_REQUEST_READ_ONLY = ("id", "key", "status", "project_id", "created_at", "updated_at", "links")
_ACCEPT_READ_ONLY = ("id", "status", "project_id", "zone_id", "created_at", "updated_at", "links")
SCHEMA_ERROR = "Provided object does not match schema: "
_REQUEST_SCHEMA = {"type": "object", "properties": {
    "target_project_id": {"type": ["string", "null"],
                          "description": "the one project that may accept; null: any project given the key"},
    "description": {"type": ["string", "null"], "maxLength": 160}}}  # fmt: skip
_ACCEPT_SCHEMA = {"type": "object", "required": ["key", "zone_transfer_request_id"], "properties": {
    "key": {"type": "string", "maxLength": 160},
    "zone_transfer_request_id": {"type": "string", "format": "uuid"}}}  # fmt: skip
_LIST_PARAMS = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                for n in ("status", "limit", "marker")]  # fmt: skip
_BRIEF = ("id", "zone_id", "zone_name", "description", "status")  # what a project other than the offering one sees


def request_json(request: web.Request, t: dict, detailed: bool) -> dict:
    out = {"id": t["id"], "zone_id": t["zone_id"], "zone_name": t["zone_name"], "project_id": t["project_id"],
           "target_project_id": t["target_project_id"], "description": t["description"], "key": t["key"],
           "status": t["status"], "created_at": t["created_at"], "updated_at": t["updated_at"]}  # fmt: skip
    if not detailed:
        out = {k: out[k] for k in _BRIEF}
    out["links"] = {"self": f"{base_url(request)}/v2/zones/tasks/transfer_requests/{t['id']}"}
    return out


def accept_json(request: web.Request, a: dict) -> dict:
    url = base_url(request)
    return {"id": a["id"], "zone_transfer_request_id": a["zone_transfer_request_id"], "project_id": a["project_id"],
            "key": a["key"], "status": a["status"], "zone_id": a["zone_id"], "created_at": a["created_at"],
            "updated_at": a["updated_at"],
            "links": {"self": f"{url}/v2/zones/tasks/transfer_accepts/{a['id']}",
                      "zone": f"{url}/v2/zones/{a['zone_id']}"}}  # fmt: skip


def _detailed(request: web.Request, t: dict) -> bool:
    c = ctx(request)
    return c.project_filter() is None or c.role == "admin" or t["project_id"] == c.acting_project


async def _body(request: web.Request) -> dict:
    """The JSON body; none at all is an empty object (Designate's EmptyRequestBody is allowed here)."""
    return await read_json(request) if request.body_exists else {}


@routes.post("/v2/zones/{zone_id}/tasks/transfer_requests")
@describe(requestBody={"content": {"application/json": {"schema": _REQUEST_SCHEMA}}},
          responses={"201": {"description": "The transfer request, status ACTIVE, with its key"}})  # fmt: skip
async def create_request(request: web.Request) -> web.Response:
    """Offer a zone for transfer to another project (the zone's owner).

    Body (optional): target_project_id (null or absent: any project given the key may accept),
    description. The answer holds the key to hand to the accepting project. One open request
    per zone (409 duplicate_zone_transfer_request)."""
    c = ctx(request)
    c.need("member")
    zid = path_id(request, "zone_id")
    body = await _body(request)
    body.pop("zone_id", None)  # Designate sets zone_id and zone_name from the path itself
    body.pop("zone_name", None)
    values = check_body(body, {"target_project_id": (str, None, 255), "description": (str, None, 160)},
                        read_only=_REQUEST_READ_ONLY)  # fmt: skip
    t = await tr.create_request(request.app[DATABASE].pool, zid, c.project_filter(),
                                target_project_id=values.get("target_project_id"),
                                description=values.get("description"))  # fmt: skip
    out = request_json(request, t, True)
    return json_response(out, 201, {"Location": out["links"]["self"]})


@routes.get("/v2/zones/tasks/transfer_requests")
@describe(parameters=_LIST_PARAMS)
async def list_requests(request: web.Request) -> web.Response:
    """List the transfer requests the project made or is named in.

    Filter: status; paged with limit and marker."""
    return await _list(request, tr.list_requests, "transfer_requests", lambda t: request_json(request, t, _detailed(request, t)))


@routes.get("/v2/zones/tasks/transfer_requests/{transfer_request_id}")
async def get_request(request: web.Request) -> web.Response:
    """One transfer request (its key and projects only to the project offering the zone)."""
    c = ctx(request)
    rid = path_id(request, "transfer_request_id")
    t = await tr.get_request(request.app[DATABASE].pool, rid, c.project_filter())
    return json_response(request_json(request, t, _detailed(request, t)))


@routes.patch("/v2/zones/tasks/transfer_requests/{transfer_request_id}")
@describe(requestBody={"content": {"application/json": {"schema": _REQUEST_SCHEMA}}})
async def update_request(request: web.Request) -> web.Response:
    """Change a transfer request's description (its offering project); the target project and the
    zone are immutable, as in Designate."""
    c = ctx(request)
    c.need("member")
    rid = path_id(request, "transfer_request_id")
    body = await read_json(request)
    t = await tr.get_request(request.app[DATABASE].pool, rid, c.project_filter())
    values = check_body(body, {"description": (str, None, 160)}, read_only=_REQUEST_READ_ONLY,
                        immutable={"target_project_id": t["target_project_id"], "zone_id": str(t["zone_id"]),
                                   "zone_name": t["zone_name"]})  # fmt: skip
    t = await tr.update_request(request.app[DATABASE].pool, rid, c.project_filter(), values)
    return json_response(request_json(request, t, True))


@routes.delete("/v2/zones/tasks/transfer_requests/{transfer_request_id}")
async def delete_request(request: web.Request) -> web.Response:
    """Withdraw a transfer request (its offering project); 204."""
    c = ctx(request)
    c.need("member")
    rid = path_id(request, "transfer_request_id")
    await tr.delete_request(request.app[DATABASE].pool, rid, c.project_filter())
    return web.Response(status=204)


@routes.post("/v2/zones/tasks/transfer_accepts")
@describe(requestBody={"content": {"application/json": {"schema": _ACCEPT_SCHEMA}}},
          responses={"201": {"description": "The accept, status COMPLETE: the zone is the project's now"}})  # fmt: skip
async def create_accept(request: web.Request) -> web.Response:
    """Accept a transfer request with its key: the zone becomes the acting project's at once.

    Body: zone_transfer_request_id, key. A wrong key is 403 invalid_key; a request used already
    400 invalid_zone_transfer_request; one the project may not see 404. The zone's records are
    unchanged (records made by events stay managed); it gets a new serial."""
    c = ctx(request)
    c.need("member")
    body = await read_json(request)
    values = check_body(body, {"key": (str, 160), "zone_transfer_request_id": (str, 36)},
                        read_only=_ACCEPT_READ_ONLY)  # fmt: skip
    for required in ("key", "zone_transfer_request_id"):
        if required not in values:
            raise ApiError(400, "invalid_object", f"{SCHEMA_ERROR}'{required}' is a required property")
    try:
        rid = uuid.UUID(values["zone_transfer_request_id"])
    except ValueError:
        raise ApiError(400, "invalid_object", f"{SCHEMA_ERROR}zone_transfer_request_id is not a UUID") from None
    a = await tr.accept(request.app[DATABASE].store, rid, values["key"], c.acting_project,
                        see_all=c.project_filter() is None)  # fmt: skip
    out = accept_json(request, a)
    return json_response(out, 201, {"Location": out["links"]["self"]})


@routes.get("/v2/zones/tasks/transfer_accepts")
@describe(parameters=_LIST_PARAMS)
async def list_accepts(request: web.Request) -> web.Response:
    """List the project's transfer accepts.

    Filter: status; paged with limit and marker."""
    return await _list(request, tr.list_accepts, "transfer_accepts", lambda a: accept_json(request, a))


async def _list(request: web.Request, fetch, name: str, render) -> web.Response:
    """A page of the project's transfer requests or accepts (`fetch`), filtered by status."""
    q = list_query(request, ())
    rows, total = await fetch(request.app[DATABASE].pool, ctx(request).project_filter(),
                              status=request.query.get("status"), limit=q.limit + 1, marker=q.marker)  # fmt: skip
    items = [render(r) for r in rows[: q.limit]]
    return json_response(list_body(request, name, items, total, len(rows) > q.limit, q.limit))


@routes.get("/v2/zones/tasks/transfer_accepts/{transfer_accept_id}")
async def get_accept(request: web.Request) -> web.Response:
    """One transfer accept of the project."""
    c = ctx(request)
    aid = path_id(request, "transfer_accept_id")
    a = await tr.get_accept(request.app[DATABASE].pool, aid, c.project_filter())
    return json_response(accept_json(request, a))
