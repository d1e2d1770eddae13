"""Shared zones, as Designate (2023.2, API v2.1) has them: a zone's owner shares it with another
project, which then sees the zone and its RRsets, may create RRsets in it and manage the ones it
made — never the zone itself, nor the RRsets of others. The owner cannot unshare while that
project still has RRsets in the zone, nor delete a shared zone unless told to drop its shares.

A share is not zone data: no serial changes, secondaries see nothing of it.
"""

from __future__ import annotations

import uuid

import asyncpg

from ..store.records import Invalid
from ..store.writer import Conflict, NotFound
from .listing import Where, by_creation

# A zone row `z` the project $N may see: its own, or one shared with it.
VISIBLE = "({col} = {arg} OR {zid} IN (SELECT zone_id FROM shared_zones WHERE target_project_id = {arg}))"
_COLUMNS = "id, zone_id, project_id, target_project_id, created_at, updated_at"
MAX_PROJECT_ID = 255


class SharedZoneNotFound(NotFound):
    """Designate's SharedZoneNotFound."""

    status, type = 404, "shared_zone_not_found"


class DuplicateSharedZone(Conflict):
    """Designate's DuplicateSharedZone."""

    status, type = 409, "duplicate_shared_zone"


class ShareRefused(Invalid):
    """A share, unshare or zone delete Designate refuses with 400; `type` names its error
    (bad_request, shared_zone_has_recordsets, zone_is_shared)."""

    status = 400

    def __init__(self, message: str, type_: str = "bad_request"):
        super().__init__(message)
        self.type = type_


def visible(col: str, zid: str, arg: str) -> str:
    """SQL: the zone whose owner column is `col` and id `zid` is visible to the project `arg`."""
    return VISIBLE.format(col=col, zid=zid, arg=arg)


async def shared_with(conn_or_pool, zone_id: uuid.UUID, project: str) -> bool:
    return bool(await conn_or_pool.fetchval(
        "SELECT 1 FROM shared_zones WHERE zone_id = $1 AND target_project_id = $2", zone_id, project))  # fmt: skip


async def targets(conn_or_pool, zone_id: uuid.UUID) -> set[str]:
    """The projects the zone is shared with."""
    return {r[0] for r in await conn_or_pool.fetch("SELECT target_project_id FROM shared_zones WHERE zone_id = $1", zone_id)}


def check_project_id(value) -> str:
    """A target project id as Designate takes one: 1 to 255 characters, not all blank."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_PROJECT_ID:
        raise Invalid(f"target_project_id must be a project id (1 to {MAX_PROJECT_ID} characters)")
    return value


async def share(pool: asyncpg.Pool, zone: dict, target_project_id: str) -> dict:
    """Share `zone` (a row its owner may change) with `target_project_id`."""
    target = check_project_id(target_project_id)
    if target == zone["project_id"]:
        raise ShareRefused("Cannot share the zone with the zone owner.")
    if zone["action"] == "DELETE":
        raise ShareRefused("Can not share a deleting zone")
    row = await pool.fetchrow(
        "INSERT INTO shared_zones (zone_id, project_id, target_project_id) VALUES ($1, $2, $3)"
        f" ON CONFLICT (zone_id, target_project_id) DO NOTHING RETURNING {_COLUMNS}",
        zone["id"], zone["project_id"], target,
    )  # fmt: skip
    if row is None:
        raise DuplicateSharedZone(f"zone {zone['name']} is already shared with project {target}")
    return dict(row)


async def list_shares(pool, zone_id: uuid.UUID, project: str | None, *, target: str | None = None, limit: int = 20,
                      marker: uuid.UUID | None = None) -> tuple[list[dict], int]:  # fmt: skip
    """The zone's shares that `project` may see (None: all) — as the owner all of them, as a
    target its own — by creation, after `marker`; and how many in all pages."""
    w = Where()
    w.add(f"zone_id = {w.arg(zone_id)}")
    if project is not None:
        p = w.arg(project)
        w.add(f"(project_id = {p} OR target_project_id = {p})")
    if target is not None:
        w.add(f"target_project_id = {w.arg(target)}")
    return await by_creation(pool, f"SELECT {_COLUMNS} FROM shared_zones", w, limit, marker)


async def get_share(pool, zone_id: uuid.UUID, share_id: uuid.UUID, project: str | None) -> dict:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM shared_zones WHERE id = $1 AND zone_id = $2"
        " AND ($3::text IS NULL OR project_id = $3 OR target_project_id = $3)",
        share_id, zone_id, project,
    )  # fmt: skip
    if row is None:
        raise SharedZoneNotFound(f"Could not find SharedZone {share_id}")
    return dict(row)


async def unshare(pool: asyncpg.Pool, zone: dict, share_id: uuid.UUID) -> None:
    """Remove a share of `zone` (a row its owner may change). Refused while the target project
    has RRsets in the zone (Designate's SharedZoneHasRecordSets): they would be left without an
    owner able to see them."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT target_project_id FROM shared_zones WHERE id = $1 AND zone_id = $2 FOR UPDATE",
                                  share_id, zone["id"])  # fmt: skip
        if row is None:
            raise SharedZoneNotFound(f"Could not find SharedZone {share_id}")
        target = row["target_project_id"]
        if await conn.fetchval("SELECT 1 FROM rrsets WHERE zone_id = $1 AND project_id = $2 LIMIT 1", zone["id"], target):
            raise ShareRefused(f"Please delete all recordsets owned by project {target} before unsharing this zone.",
                               "shared_zone_has_recordsets")  # fmt: skip
        await conn.execute("DELETE FROM shared_zones WHERE id = $1", share_id)


async def follow_owner(conn, zone_id: uuid.UUID, new_owner: str) -> None:
    """After the zone moved to `new_owner` (a transfer), in the mover's transaction: its shares are
    the new owner's to manage and a share with the new owner itself is gone (the RRsets it made as
    a target became simply the owner's in the change that moved it: ZoneChange.adopt_rrsets)."""
    await conn.execute("DELETE FROM shared_zones WHERE zone_id = $1 AND target_project_id = $2", zone_id, new_owner)
    await conn.execute("UPDATE shared_zones SET project_id = $2, updated_at = now() WHERE zone_id = $1", zone_id, new_owner)
