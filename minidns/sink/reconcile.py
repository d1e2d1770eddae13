"""Reconcile: given the ids of the resources of a cloud that exist now, every other one loses its
records and is remembered as deleted (a tombstone), as a delete event would have done."""

from __future__ import annotations

from ..store.db import DB_DOWN
from ..store.records import Invalid
from ..store.writer import Store, ZoneLog
from .handlers import resync_floatingips, sync_group
from .ingest import EVENTS_LOCK
from .outcome import Unavailable
from .settings import EventSettings
from .sync import Ident, Run, Scope

RESOURCE_TYPES = {"nova": "instance", "neutron": "floatingip", "cloudstack": "vm"}
MADE = "SELECT DISTINCT managed_resource_id FROM rrsets WHERE managed AND managed_source = $1 AND managed_resource_type = $2"


class DryRun(Exception):
    """Raised to roll back what a dry run did."""


async def reconcile(store: Store, settings: EventSettings, source: str, live_ids, resource_type: str | None = None,
                    dry_run: bool = False) -> dict:  # fmt: skip
    """Remove the records of every resource of `source` not in `live_ids` (and keep a tombstone for
    it). Returns {source, resource_type, resources, removed, dry_run}."""
    rtype = resource_type_of(source, live_ids, resource_type)
    try:
        async with store.pool.acquire(timeout=10) as conn:
            return await reconcile_in(conn, store, settings, source, rtype, set(live_ids), dry_run)
    except DB_DOWN as e:
        raise Unavailable(f"the database is not reachable: {e}") from None


def resource_type_of(source: str, live_ids, resource_type: str | None) -> str:
    """The resource type reconciled (the source's own unless given); Invalid for a bad request."""
    rtype = resource_type or RESOURCE_TYPES.get(source)
    if rtype is None:
        raise Invalid(f"unknown source {source!r}: give resource_type too")
    if isinstance(live_ids, (str, bytes)) or not all(isinstance(i, str) for i in live_ids):
        raise Invalid("resource ids must be a list of strings")
    return rtype


async def reconcile_in(conn, store: Store, settings: EventSettings, source: str, rtype: str, live: set,
                       dry_run: bool) -> dict:  # fmt: skip
    """The reconcile's transaction, rolled back when it is a dry run."""
    result: dict = {}
    try:
        async with conn.transaction():
            result = await remove_gone(conn, store, settings, source, rtype, live, dry_run)
            if dry_run:
                raise DryRun
    except DryRun:
        pass
    return result


async def remove_gone(conn, store: Store, settings: EventSettings, source: str, rtype: str, live: set,
                      dry_run: bool) -> dict:  # fmt: skip
    """Inside the transaction: the events lock, then every resource known or with records but not
    live made deleted."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", EVENTS_LOCK)
    log = ZoneLog(store, "event:reconcile")
    run = Run(Scope.of(conn, store, settings, log, batched=False), "reconcile", None, None)
    gone = sorted((await run.resources.live_ids(source, rtype) | await made_by(conn, source, rtype)) - live)
    for rid in gone:
        await forget(run, source, rtype, rid)
    run.keep("event:reconcile")
    await log.flush(conn)
    return {"source": source, "resource_type": rtype, "resources": gone, "removed": run.changes, "dry_run": dry_run}


async def made_by(conn, source: str, rtype: str) -> set[str]:
    """The ids of the resources that have records."""
    return {r[0] for r in await conn.fetch(MADE, source, rtype)}


async def forget(run: Run, source: str, rtype: str, rid: str) -> None:
    """A tombstone for the resource, its records removed, and what depended on it made again."""
    row = await run.resource(source, rtype, rid)
    data = dict(row["data"]) if row else {}
    await run.put(source, rtype, rid, "deleted", row["tenant_id"] if row else None, data)
    await run.sync(Ident(source, rtype, rid), [])
    if (source, rtype) == ("cloudstack", "vm") and data.get("group"):
        await sync_group(run, data["account_id"], data["group"])
    if (source, rtype) == ("nova", "instance"):
        await resync_floatingips(run, data.get("addresses", []))
