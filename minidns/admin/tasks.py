"""Designate v2 zone import and export tasks:

- POST /v2/zones/tasks/imports with a zone file (Content-Type text/dns; or JSON {"zonefile": ...})
  → 202 with the task. The zone is created in the acting project through the zone-file import
  path — all of the file or nothing; the task ends COMPLETE (zone_id, links.zone) or ERROR with
  the reason. Small files finish before the reply; a large one answers PENDING and goes on.
- GET /v2/zones/tasks/imports, GET/DELETE /v2/zones/tasks/imports/{import_id}.
- POST /v2/zones/{zone_id}/tasks/export → 202 with the export task (COMPLETE; location
  designate://…), GET /v2/zones/tasks/exports, GET/DELETE /v2/zones/tasks/exports/{export_id},
  GET /v2/zones/tasks/exports/{export_id}/export → the zone file (text/dns) of the zone now.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ..services import zones
from ..services import tasks
from .common import DATABASE, ApiError, ctx, json_response, parse_json, read_body
from .designate import list_body, list_query, path_id, task_json

log = logging.getLogger("minidns.api")
routes = web.RouteTableDef()

IMPORT_WAIT = 10.0  # seconds an import may take before the reply says PENDING
MAX_ZONE_FILE = 4 << 20
_running: set[asyncio.Task] = set()  # imports still going on (kept referenced until done)

try:
    from ..services import policy
except ImportError:  # pragma: no cover
    policy = None


async def _zone_file_text(request: web.Request) -> str:
    ctype = request.content_type
    if ctype not in ("text/dns", "application/json"):
        raise ApiError(415, "unsupported_content_type", "Content-type must be text/dns")
    raw = await read_body(request, MAX_ZONE_FILE, "the zone file")
    if ctype == "text/dns":
        text = raw
    else:
        body = parse_json(raw)
        if not isinstance(body, dict) or not isinstance(body.get("zonefile"), str):
            raise ApiError(400, "invalid_object", "a JSON import body is {\"zonefile\": \"<zone file text>\"}")
        return body["zonefile"]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", "the zone file is not UTF-8 text") from None


@routes.post("/v2/zones/tasks/imports")
async def create_import(request: web.Request) -> web.Response:
    """Import a zone file (text/dns) as a new zone of the acting project; 202 with the task."""
    c = ctx(request)
    c.need("member")
    text = await _zone_file_text(request)
    store = request.app[DATABASE].store
    # The job makes the task row itself and is known to stop_imports before anything is awaited:
    # a request cancelled midway (its client gone, the server stopping) never leaves a task that
    # no job will finish.
    created = asyncio.get_running_loop().create_future()
    job = asyncio.ensure_future(_import(created, store, c.acting_project, text, c.role == "admin"))
    _running.add(job)
    job.add_done_callback(_running.discard)
    task = await asyncio.shield(created)
    await asyncio.wait({job}, timeout=IMPORT_WAIT)
    t = task_json(request, await tasks.get_task(store.pool, "IMPORT", None, task["id"]))
    return json_response(t, 202, {"Location": t["links"]["self"]})


async def _import(created: asyncio.Future, store, project: str, text: str, is_admin: bool) -> None:
    """An import's job: its task row (handed to the request through `created`), then the import."""
    try:
        task = await tasks.create_task(store.pool, "IMPORT", project)
    except asyncio.CancelledError:
        created.cancel()
        raise
    except Exception as e:  # the database refused it: the request answers as for any other write
        created.set_exception(e)
        return
    created.set_result(task)
    await tasks.run_import(store, task["id"], project, text, is_admin)


async def stop_imports() -> None:
    """Imports still going on are cancelled (their tasks end in ERROR, nothing written)."""
    jobs = list(_running)
    for job in jobs:
        job.cancel()
    if jobs:
        await asyncio.wait(jobs, timeout=5)


def _task_routes(kind: str, plural: str, forgets: str) -> None:
    """List, show and forget the tasks of one kind (imports, exports): the same three routes."""
    base, one = f"/v2/zones/tasks/{plural}", plural[:-1]
    item = f"{base}/{{{one}_id}}"
    routes.get(base)(_named(_lister(kind, plural), f"list_{plural}",
                            f"{one.capitalize()} tasks of the acting project; filters status, message, zone_id; paging."))
    routes.get(item)(_named(_getter(kind, one), f"get_{one}", f"One {one} task."))
    routes.delete(item)(_named(_forgetter(kind, one), f"delete_{one}", f"Forget {forgets}; 204."))


def _named(handler, name: str, doc: str):
    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc
    return handler


def _lister(kind: str, plural: str):
    async def list_(request: web.Request) -> web.Response:
        c = ctx(request)
        q = list_query(request, tasks.TASK_FILTERS)
        rows, total, more = await tasks.list_tasks(request.app[DATABASE].pool, kind, c.project_filter(), q)
        return json_response(list_body(request, plural, [task_json(request, t) for t in rows], total, more, q.limit))

    return list_


def _getter(kind: str, one: str):
    async def get(request: web.Request) -> web.Response:
        tid = path_id(request, f"{one}_id")
        t = await tasks.get_task(request.app[DATABASE].pool, kind, ctx(request).project_filter(), tid)
        return json_response(task_json(request, t))

    return get


def _forgetter(kind: str, one: str):
    async def delete(request: web.Request) -> web.Response:
        c = ctx(request)
        c.need("member")
        tid = path_id(request, f"{one}_id")
        await tasks.delete_task(request.app[DATABASE].pool, kind, c.project_filter(), tid)
        return web.Response(status=204)

    return delete


_task_routes("IMPORT", "imports", "an import task (its zone stays)")
_task_routes("EXPORT", "exports", "an export task")


@routes.post("/v2/zones/{zone_id}/tasks/export")
async def create_export(request: web.Request) -> web.Response:
    """Export a zone: 202 with the task (COMPLETE), links.export to fetch the zone file."""
    c = ctx(request)
    c.need("member")
    zid = path_id(request, "zone_id")
    pool = request.app[DATABASE].pool
    z = await zones.get_zone(pool, zid, c.project_filter())
    if policy is not None:
        count = await pool.fetchval("SELECT coalesce(sum(cardinality(records)), 0) FROM rrsets WHERE zone_id = $1", zid)
        await policy.check_quota(pool, z["project_id"], "api_export_size", count=count)
    t = await tasks.create_task(pool, "EXPORT", z["project_id"], zone_id=zid, status="COMPLETE",
                                message=None, location_for_export=True)  # fmt: skip
    out = task_json(request, t)
    return json_response(out, 202, {"Location": out["links"]["self"]})


@routes.get("/v2/zones/tasks/exports/{export_id}/export")
async def export_file(request: web.Request) -> web.Response:
    """The exported zone as a zone file (text/dns), made from the zone's data now."""
    c = ctx(request)
    tid = path_id(request, "export_id")
    db = request.app[DATABASE]
    t = await tasks.get_task(db.pool, "EXPORT", c.project_filter(), tid)
    await zones.get_zone(db.pool, t["zone_id"], c.project_filter())
    text = await tasks.export_text(db.store, t["zone_id"])
    return web.Response(text=text, content_type="text/dns", charset="utf-8")
