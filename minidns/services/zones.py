"""Zones as the Designate-shaped API sees them: listing, reading with per-project visibility (a
zone shared with a project is seen by it: services/shares.py), and creating, updating, deleting
and abandoning with Designate's rules (names, neighbours of other projects, TLDs, blacklists,
quotas: services/policy.py). Every write goes through the store's unit of work."""

from __future__ import annotations

import re
import uuid

from ..store.records import Invalid, zone_name
from ..store.writer import DEFAULT_POOL_ID, Conflict, Edit, NotFound, Store
from ..wire import NS
from . import policy
from .listing import Query, Where, int_filter, page
from .shares import ShareRefused, shared_with, visible

# Designate's default pool: every zone here is in the one "pool" this server is.
POOL_ID = DEFAULT_POOL_ID


class ZoneNotFound(NotFound):
    status, type = 404, "zone_not_found"


class DuplicateZone(Conflict):
    """The zone exists already (Designate's DuplicateZone)."""

    status, type, reply = 409, "duplicate_zone", "Duplicate Zone: {0}"


class Refused(Invalid):
    """Designate's BadRequest (400 bad_request): SOA edits, managed records, a deleting zone."""

    status, type = 400, "bad_request"


class Forbidden(Exception):
    """Designate's Forbidden (403): e.g. a subzone of another project's zone."""

    status, type = 403, "forbidden"


# `shared`: whether the zone is shared with another project (Designate's zone field).
_SHARED = "EXISTS (SELECT 1 FROM shared_zones s WHERE s.zone_id = z.id) AS shared"


_ZONE_SELECT = f"SELECT z.*, {_SHARED} FROM zones z"


ZONE_SORT = {"created_at": "created_at", "id": "id", "updated_at": "coalesce(updated_at, created_at)", "name": "name",
             "tenant_id": "project_id", "project_id": "project_id", "serial": "serial", "ttl": "ttl",
             "status": "status"}  # fmt: skip


ZONE_FILTERS = ("name", "email", "status", "ttl", "description", "type")


def zone_where(project: str | None, filters: dict) -> Where:
    w = Where()
    if project is not None:
        w.add(visible("project_id", "id", w.arg(project)))
    for key, value in filters.items():
        if key == "ttl":
            w.add(f"ttl = {w.arg(int_filter(key, value))}")
        elif key == "name":
            w.text_match("name", value.lower())
        elif key in ("email", "status", "description", "type"):
            w.text_match(key, value.upper() if key in ("status", "type") else value)
        else:
            raise Invalid(f"unknown filter {key!r}")
    return w


async def list_zones(pool, project: str | None, q: Query) -> tuple[list[dict], int, bool]:
    """(zones of the page, total matching, whether more follow)."""
    async with pool.acquire() as conn:
        rows, total = await page(conn, _ZONE_SELECT, zone_where(project, q.filters), q, ZONE_SORT, "zone")
    return rows[: q.limit], total, len(rows) > q.limit


async def get_zone(conn_or_pool, zone_id: uuid.UUID, project: str | None, *, lock: bool = False,
                   shared: bool = False) -> dict:  # fmt: skip
    """The zone, if `project` owns it (None: any project). A zone shared with `project` is
    returned with `shared` (a read), else refused with Forbidden (a change only its owner may
    make, as Designate's policy refuses it); any other project's zone is ZoneNotFound."""
    row = await conn_or_pool.fetchrow(
        f"SELECT z.*, {_SHARED} FROM zones z WHERE z.id = $1" + (" FOR UPDATE OF z" if lock else ""), zone_id)
    guest = row is not None and project is not None and row["project_id"] != project
    if row is None or (guest and not await shared_with(conn_or_pool, zone_id, project)):
        raise ZoneNotFound(f"Could not find Zone {zone_id}")
    if guest and not shared:
        raise Forbidden(f"zone {row['name']} is shared with project {project}: only its owner may do this")
    return dict(row)


# Designate's "zonename" and "hostname" formats: labels of letters, digits, '_' and '-' (not at
# either end), each ending in a dot; a recordset name may start with the wildcard label.
_ZONE_RE = re.compile(r"^(?!.{255,})(?:(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.)+$")


def check_zone_name(name) -> str:
    """Designate's zone names: absolute (trailing dot), more than one label."""
    if not isinstance(name, str) or not name.endswith(".") or name.endswith(".."):
        raise Invalid(f"zone name {name!r} must be a fully qualified name ending in a dot")
    if not _ZONE_RE.match(name):
        raise Invalid(f"zone name {name!r}: labels are letters, digits, '_' and '-' (not first or last)")
    text = zone_name(name).to_text().lower()
    if len(text.rstrip(".").split(".")) < 2:
        raise Invalid(f"{text}: more than one label is required")
    if len(text) > 255:
        raise Invalid(f"{text}: name too long")
    return text


async def _check_neighbours(conn, name: str, project: str) -> None:
    """Designate's rules for a new zone beside existing ones: no subzone of another project's
    zone, no superzone of another project's zone."""
    labels = name.rstrip(".").split(".")
    parents = [".".join(labels[i:]) + "." for i in range(1, len(labels))]
    if await conn.fetchval(
        "SELECT 1 FROM zones WHERE name = ANY($1::text[]) AND project_id <> $2 AND type <> 'CATALOG' LIMIT 1",
        parents, project,
    ):  # fmt: skip
        raise Forbidden("Unable to create subzone in another tenants zone")
    if await conn.fetchval(
        "SELECT 1 FROM zones WHERE right(name, $3) = $1 AND project_id <> $2 AND type <> 'CATALOG' LIMIT 1",
        "." + name, project, len(name) + 1,
    ):  # fmt: skip
        raise Forbidden("Unable to create zone because another tenant owns a subzone of the zone")


async def check_new_zone(pool, name: str, project: str, is_admin: bool) -> None:
    """Everything a new zone must pass before Store.create_zone: neighbours, TLDs, blacklist,
    quota."""
    async with pool.acquire() as conn:
        await _check_neighbours(conn, name, project)
        await policy.check_new_zone(conn, name, project, is_admin)
        await policy.check_quota(conn, project, "zones")


async def create_zone(store: Store, project: str, *, name: str, email: str, ttl: int | None = None,
                      description: str | None = None, is_admin: bool = False, pool_id: uuid.UUID = POOL_ID) -> dict:  # fmt: skip
    """A new zone of `pool_id` (its apex NS and SOA MNAME are the pool's: services/pools.py)."""
    name = check_zone_name(name)
    await check_new_zone(store.pool, name, project, is_admin)
    if pool_id != POOL_ID and not await store.pool.fetchval("SELECT 1 FROM pools WHERE id = $1", pool_id):
        raise Invalid(f"no pool {pool_id}")
    kw = {"ttl": ttl} if ttl is not None else {}
    try:
        change = await store.create_zone(name, email=email, description=description, project_id=project, source="api",
                                         pool_id=pool_id, **kw)  # fmt: skip
    except Conflict as e:
        raise DuplicateZone(str(e)) from None
    return await get_zone(store.pool, change.zone_id, None)


async def update_zone(store: Store, zone_id: uuid.UUID, project: str | None, fields: dict) -> dict:
    """New email, ttl, description in one change. RRsets whose TTL is the zone's default follow a
    new zone TTL, in the same change."""
    async with store.pool.acquire() as conn, conn.transaction():
        z = await get_zone(conn, zone_id, project, lock=True)
        if z["action"] == "DELETE":
            raise Refused("Can not update a deleting zone")
        edits = []
        if "ttl" in fields and fields["ttl"] != z["ttl"]:
            for r in await conn.fetch("SELECT name, type, records FROM rrsets WHERE zone_id = $1 AND ttl_default", zone_id):
                edits.append(Edit("replace", r["name"], r["type"], fields["ttl"], tuple(r["records"])))
        await store.change(zone_id, edits, source="api", fields=fields, conn=conn)
        return await get_zone(conn, zone_id, None)


async def delete_zone(store: Store, zone_id: uuid.UUID, project: str | None, *, delete_shares: bool = False) -> dict:
    """Delete a zone. A shared zone only with `delete_shares` (Designate's X-Designate-Delete-Shares),
    else ShareRefused (400 zone_is_shared); its shares go with it."""
    z = await get_zone(store.pool, zone_id, project)
    if z["shared"] and not delete_shares:
        raise ShareRefused("This zone is shared with other projects, please remove these shares before deletion or "
                           "use the delete-shares modifier to override this warning.", "zone_is_shared")  # fmt: skip
    await store.delete_zone(zone_id, source="api")
    return {**z, "status": "PENDING", "action": "DELETE"}


async def abandon_zone(store: Store, zone_id: uuid.UUID, *, delete_shares: bool = False) -> dict:
    """Designate's abandon: the zone leaves the database at once — no DELETE/PENDING phase — so
    it is no longer served here (REFUSED); nothing is sent to the secondaries: no NOTIFY and no
    removal from the catalog zones, so they keep serving their copy until it expires (SOA
    EXPIRE). A shared zone only with `delete_shares`, as delete_zone."""
    z = await get_zone(store.pool, zone_id, None)
    if z["shared"] and not delete_shares:
        raise ShareRefused("This zone is shared with other projects, please remove these shares before deletion or "
                           "use the delete-shares modifier to override this warning.", "zone_is_shared")  # fmt: skip
    await store.delete_zone(zone_id, source="api", catalogs=False)
    return z


async def nameservers(pool, zone_id: uuid.UUID, project: str | None) -> list[tuple[str, int]]:
    """The zone's apex NS names with a priority each: the pool's priorities when the RRset is the
    pool's NS set (Designate lists the pool's ns_records), else 1, 2, ... in the RRset's order."""
    async with pool.acquire() as conn:
        z = await get_zone(conn, zone_id, project, shared=True)
        recs = await conn.fetchval("SELECT records FROM rrsets WHERE zone_id = $1 AND name = $2 AND type = $3",
                                   zone_id, z["name"], NS)  # fmt: skip
        prio = {r["hostname"]: r["priority"] for r in await conn.fetch(
            "SELECT hostname, priority FROM pool_ns_records WHERE pool_id = $1", z["pool_id"])}  # fmt: skip
    names = list(recs or [])
    if names and all(n.lower() in prio for n in names):
        return sorted(((n, prio[n.lower()]) for n in names), key=lambda n: n[1])
    return [(n, i + 1) for i, n in enumerate(names)]
