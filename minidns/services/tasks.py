"""Zone import and export tasks (Designate's /v2/zones/tasks/imports and exports): a row per task
in zone_tasks (migration 5). An import creates its zone through the zone-file import path
(zonefile.read_zone_file, then Store.create_zone: all or nothing); an export is produced from the
zone's current data when it is fetched, as Designate's synchronous exports are."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import uuid

from ..zones.loader import NoOrigin, ZoneFileError
from ..store.records import Invalid
from .listing import Query, Where, page
from .zones import Forbidden, check_new_zone, check_zone_name
from ..store.writer import Conflict, NotFound, Store
from .zonefile import export_zone, read_zone_file

TASK_SORT = {"created_at": "created_at", "id": "id", "updated_at": "coalesce(updated_at, created_at)"}
TASK_FILTERS = ("status", "message", "zone_id")


class TaskNotFound(NotFound):
    """Designate's ZoneImportNotFound / ZoneExportNotFound: `type` names the task's kind."""

    def __init__(self, message: str, kind: str = "IMPORT"):
        super().__init__(message)
        self.type = f"zone_{kind.lower()}_not_found"


def export_location(task_id: uuid.UUID) -> str:
    return f"designate://v2/zones/tasks/exports/{task_id}/export"


async def create_task(pool, kind: str, project: str, *, zone_id=None, status="PENDING", message=None,
                      location_for_export: bool = False) -> dict:  # fmt: skip
    tid = uuid.uuid4()
    row = await pool.fetchrow(
        "INSERT INTO zone_tasks (id, kind, project_id, zone_id, status, message, location)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        tid, kind, project, zone_id, status, message, export_location(tid) if location_for_export else None,
    )  # fmt: skip
    return dict(row)


INTERRUPTED = "Interrupted: the server stopped before the import finished. Nothing was written; import the file again."
STALE_IMPORT = 3600.0  # seconds after which an import still PENDING is one its server did not live to finish


async def fail_stale_imports(pool, older_than: float = STALE_IMPORT) -> int:
    """Imports left PENDING by a server that died (SIGKILL, power) end in ERROR; how many."""
    status = await pool.execute(
        "UPDATE zone_tasks SET status = 'ERROR', message = $1, updated_at = now(), version = version + 1"
        " WHERE kind = 'IMPORT' AND status = 'PENDING' AND created_at < now() - make_interval(secs => $2)",
        INTERRUPTED, older_than,
    )  # fmt: skip
    return int(status.split()[-1])


async def finish_task(pool, task_id: uuid.UUID, status: str, message: str, zone_id=None) -> None:
    await pool.execute(
        "UPDATE zone_tasks SET status = $2, message = $3, zone_id = coalesce($4, zone_id), updated_at = now(),"
        " version = version + 1 WHERE id = $1",
        task_id, status, message, zone_id,
    )  # fmt: skip


async def get_task(pool, kind: str, project: str | None, task_id: uuid.UUID) -> dict:
    row = await pool.fetchrow(
        "SELECT * FROM zone_tasks WHERE id = $1 AND kind = $2 AND ($3::text IS NULL OR project_id = $3)",
        task_id, kind, project,
    )  # fmt: skip
    if row is None:
        raise TaskNotFound(f"Could not find Zone{kind.capitalize()} {task_id}", kind)
    return dict(row)


async def list_tasks(pool, kind: str, project: str | None, q: Query) -> tuple[list[dict], int, bool]:
    w = Where()
    w.add(f"kind = {w.arg(kind)}")
    if project is not None:
        w.add(f"project_id = {w.arg(project)}")
    for key, value in q.filters.items():
        if key == "zone_id":
            try:
                w.add(f"zone_id = {w.arg(uuid.UUID(value))}")
            except ValueError:
                raise Invalid(f"filter zone_id {value!r} is not a UUID") from None
        elif key == "status":
            w.text_match("status", value.upper())
        elif key == "message":
            w.text_match("message", value)
        else:
            raise Invalid(f"unknown filter {key!r}")
    async with pool.acquire() as conn:
        rows, total = await page(conn, "SELECT * FROM zone_tasks", w, q, TASK_SORT, "task")
    return rows[: q.limit], total, len(rows) > q.limit


async def delete_task(pool, kind: str, project: str | None, task_id: uuid.UUID) -> None:
    await get_task(pool, kind, project, task_id)
    await pool.execute("DELETE FROM zone_tasks WHERE id = $1", task_id)


class _Stopped(Exception):
    """Raised in the parsing thread of an import that was cancelled."""


async def run_import(store: Store, task_id: uuid.UUID, project: str, text: str, is_admin: bool) -> None:
    """Create the zone of `text` (a zone file) for `project`; the task ends COMPLETE with the zone,
    or ERROR with the reason. Nothing is written for a zone file that does not import whole."""
    fd, path = tempfile.mkstemp(prefix="minidns-import-", suffix=".zone")
    stopped = threading.Event()

    def progress(_done: int, _total: int) -> None:
        if stopped.is_set():  # the parse of a cancelled import stops too, not only its task
            raise _Stopped

    try:
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            try:
                content = await asyncio.to_thread(read_zone_file, path, None, progress, 1)
            except NoOrigin as e:
                raise e.with_hint("begin the file with $ORIGIN or write the first owner name in full") from None
        except asyncio.CancelledError:
            stopped.set()
            raise
        finally:
            os.unlink(path)
        name = check_zone_name(content.origin)
        await check_new_zone(store.pool, name, project, is_admin)
        change = await store.create_zone(name, **content.soa, rrsets=content.rrsets, project_id=project,
                                         source="api-import")  # fmt: skip
    except asyncio.CancelledError:  # the server is stopping: nothing was written
        await finish_task(store.pool, task_id, "ERROR", INTERRUPTED)
        raise
    except ZoneFileError as e:
        await finish_task(store.pool, task_id, "ERROR", str(e).replace(path, "zonefile"))
    except Conflict:
        await finish_task(store.pool, task_id, "ERROR", "Duplicate zone.")
    except (Invalid, Forbidden) as e:
        await finish_task(store.pool, task_id, "ERROR", str(e))
    except Exception as e:  # noqa: BLE001 - policy errors (quota…) and anything else end the task in ERROR
        await finish_task(store.pool, task_id, "ERROR", f"{type(e).__name__}: {e}")
    else:
        note = f"; {change.note}" if change.note else ""
        await finish_task(store.pool, task_id, "COMPLETE", f"imported the zone {change.zone} "
                          f"({change.added} RRsets){note}", change.zone_id)  # fmt: skip


async def export_text(store: Store, zone_id: uuid.UUID) -> str:
    parts: list[str] = []
    await export_zone(store, zone_id, parts.append)
    return "".join(parts)
