"""Zone transfers between projects, as Designate has them: the owner makes a transfer request (a
random key, optionally naming the one project that may take it); a project holding the key
accepts it, and in that one transaction the zone becomes that project's — through the write path
(Store.change: zone row locked, new serial, one change-log row), the request COMPLETE, an accept
row recorded. The zone's data are untouched: records the event sink made stay managed, and the
zone's shares follow it to its new owner (services/shares.follow_owner).

Who sees a request: its zone's owner (with its key), the project it names, and — by id only —
any project when it names none (that is how the key's holder finds it). A request any other
project asks for is TransferRequestNotFound, as one that does not exist. Accepts are seen by the
project that made them.
"""

from __future__ import annotations

import hmac
import secrets
import string
import uuid

import asyncpg

from . import policy
from ..store.records import Invalid
from .listing import Where, by_creation
from .zones import Forbidden, get_zone
from .shares import check_project_id, follow_owner
from ..store.writer import Conflict, NotFound, Store

KEY_CHARS = string.ascii_uppercase + string.digits  # Designate's _transfer_key_generator: 8 of these
KEY_LENGTH = 8
_REQUEST = "SELECT t.*, z.name AS zone_name FROM zone_transfer_requests t JOIN zones z ON z.id = t.zone_id"


class TransferRequestNotFound(NotFound):
    status, type = 404, "zone_transfer_request_not_found"


class TransferAcceptNotFound(NotFound):
    status, type = 404, "zone_transfer_accept_not_found"


class DuplicateTransferRequest(Conflict):
    status, type = 409, "duplicate_zone_transfer_request"


class IncorrectKey(Exception):
    """Designate's IncorrectZoneTransferKey."""

    status, type = 403, "invalid_key"


class InvalidTransfer(Invalid):
    """Designate's InvaildZoneTransfer: the request was used already (or failed)."""

    status, type = 400, "invalid_zone_transfer_request"


class TransferRefused(Invalid):
    """Designate's BadRequest for a zone that cannot move (being deleted, a catalog zone)."""

    status, type = 400, "bad_request"


def make_key() -> str:
    return "".join(secrets.choice(KEY_CHARS) for _ in range(KEY_LENGTH))


def check_target(value) -> str | None:
    """A target project id, or None (any project holding the key)."""
    return None if value is None else check_project_id(value)


def _movable(z: dict) -> None:
    if z["action"] == "DELETE":
        raise TransferRefused("Can not transfer a deleting zone")
    if z["type"] == "CATALOG":
        raise TransferRefused("a catalog zone is minidns's own; it cannot be transferred")


def may_see(t, project: str | None) -> bool:
    """Whether `project` (None: every project) may read the request `t`."""
    return project is None or project in (t["project_id"], t["target_project_id"]) or t["target_project_id"] is None


# -- requests -----------------------------------------------------------------------------------


async def create_request(pool: asyncpg.Pool, zone_id: uuid.UUID, project: str | None, *, target_project_id=None,
                         description: str | None = None) -> dict:  # fmt: skip
    """Offer the zone (one `project` owns; None: any) for transfer; one open request per zone."""
    target = check_target(target_project_id)
    async with pool.acquire() as conn, conn.transaction():
        z = await get_zone(conn, zone_id, project, lock=True)
        _movable(z)
        try:
            rid = await conn.fetchval(
                "INSERT INTO zone_transfer_requests (zone_id, project_id, target_project_id, key, description)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                zone_id, z["project_id"], target, make_key(), description,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise DuplicateTransferRequest(f"zone {z['name']} has an open transfer request already") from None
        return dict(await conn.fetchrow(f"{_REQUEST} WHERE t.id = $1", rid))


async def list_requests(pool, project: str | None, *, status: str | None = None, limit: int = 20,
                        marker: uuid.UUID | None = None) -> tuple[list[dict], int]:  # fmt: skip
    """The requests `project` made or is named in (None: all), by creation after `marker`; and how
    many in all pages."""
    w = _status_where(status)
    if project is not None:
        p = w.arg(project)
        w.add(f"(project_id = {p} OR target_project_id = {p})")
    return await by_creation(pool, _REQUEST, w, limit, marker)


def _status_where(status: str | None) -> Where:
    """The status filter of a list of requests or accepts (any letter case, as Designate)."""
    w = Where()
    if status is not None:
        w.add(f"status = upper({w.arg(status)})")
    return w


async def get_request(conn_or_pool, request_id: uuid.UUID, project: str | None, *, lock: bool = False) -> dict:
    row = await conn_or_pool.fetchrow(f"{_REQUEST} WHERE t.id = $1" + (" FOR UPDATE OF t" if lock else ""), request_id)
    if row is None or not may_see(row, project):
        raise TransferRequestNotFound(f"Could not find ZoneTransferRequest {request_id}")
    return dict(row)


async def _owned_request(conn, request_id: uuid.UUID, project: str | None) -> dict:
    t = await get_request(conn, request_id, project, lock=True)
    if project is not None and t["project_id"] != project:
        raise Forbidden("only the project offering the zone may change or withdraw its transfer request")
    return t


async def update_request(pool: asyncpg.Pool, request_id: uuid.UUID, project: str | None, values: dict) -> dict:
    """Change the request's description (the only field Designate lets change)."""
    async with pool.acquire() as conn, conn.transaction():
        await _owned_request(conn, request_id, project)
        if "description" in values:
            await conn.execute("UPDATE zone_transfer_requests SET description = $2, updated_at = now() WHERE id = $1",
                               request_id, values["description"])  # fmt: skip
        return dict(await conn.fetchrow(f"{_REQUEST} WHERE t.id = $1", request_id))


async def delete_request(pool: asyncpg.Pool, request_id: uuid.UUID, project: str | None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _owned_request(conn, request_id, project)
        await conn.execute("DELETE FROM zone_transfer_requests WHERE id = $1", request_id)


# -- accepts ------------------------------------------------------------------------------------


async def accept(store: Store, request_id: uuid.UUID, key: str, project: str, *, see_all: bool = False) -> dict:
    """Accept the request for `project` with `key`: the zone becomes `project`'s, all in one
    transaction (nothing changes when any check fails). Checked as Designate checks: a request
    `project` may see, still ACTIVE, the right key, a zone not being deleted, and `project`'s
    zone quota."""
    async with store.pool.acquire() as conn, conn.transaction():
        t = await get_request(conn, request_id, None if see_all else project, lock=True)
        if t["status"] != "ACTIVE":
            raise InvalidTransfer("Zone Transfer Request has been used" if t["status"] == "COMPLETE"
                                  else "Zone Transfer Request Invalid")  # fmt: skip
        if not hmac.compare_digest(t["key"].encode(), key.encode()):
            raise IncorrectKey("Key does not match stored key for request")
        z = await get_zone(conn, t["zone_id"], None, lock=True)
        _movable(z)
        if z["project_id"] != project:
            await policy.check_quota(conn, project, "zones")
            async with store.change(z["id"], source="api", fields={"project_id": project}, conn=conn) as w:
                w.adopt_rrsets(project)
            await follow_owner(conn, z["id"], project)
        await conn.execute("UPDATE zone_transfer_requests SET status = 'COMPLETE', updated_at = now() WHERE id = $1",
                           request_id)  # fmt: skip
        row = await conn.fetchrow(
            "INSERT INTO zone_transfer_accepts (zone_transfer_request_id, zone_id, project_id, key, status)"
            " VALUES ($1, $2, $3, $4, 'COMPLETE') RETURNING *",
            request_id, z["id"], project, key,
        )  # fmt: skip
        return dict(row)


async def list_accepts(pool, project: str | None, *, status: str | None = None, limit: int = 20,
                       marker: uuid.UUID | None = None) -> tuple[list[dict], int]:  # fmt: skip
    w = _status_where(status)
    if project is not None:
        w.add(f"project_id = {w.arg(project)}")
    return await by_creation(pool, "SELECT * FROM zone_transfer_accepts", w, limit, marker)


async def get_accept(pool, accept_id: uuid.UUID, project: str | None) -> dict:
    row = await pool.fetchrow("SELECT * FROM zone_transfer_accepts WHERE id = $1 AND ($2::text IS NULL OR project_id = $2)",
                              accept_id, project)  # fmt: skip
    if row is None:
        raise TransferAcceptNotFound(f"Could not find ZoneTransferAccept {accept_id}")
    return dict(row)
