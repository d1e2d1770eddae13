"""The rules zones and records are created under, as Designate has them: the TLD list, the name
blacklist, and per-project quotas. The API reads and writes them here (admin/tlds.py,
admin/quotas.py); the write paths call `check_new_zone` and `check_quota` before a write.

Every function takes an asyncpg pool or connection (both have fetch/fetchval/execute), so a caller
may run a check inside its own transaction.
"""

from __future__ import annotations

import re
import uuid

import asyncpg

from ..store.records import Invalid, zone_name
from ..store.writer import Conflict, NotFound

try:  # the `regex` module can bound a match's time, as Designate bounds it (20 ms)
    import regex as _regex
except ImportError:  # pragma: no cover - plain re then
    _regex = None

SOA = 6
MATCH_TIMEOUT = 0.02  # seconds per blacklist pattern; a pattern that takes longer counts as a match

# Designate's defaults (designate/quota: quota_zones, quota_zone_recordsets, ...).
QUOTA_DEFAULTS = {
    "zones": 10,
    "zone_recordsets": 500,
    "zone_records": 500,
    "recordset_records": 20,
    "api_export_size": 1000,
}
MAX_LIMIT = 2**31 - 1

# Designate's "tldname" format: labels of letters, digits, '-' and '_', no leading or trailing '-',
# no trailing dot.
_TLD_RE = re.compile(r"^(?!.{255,})(?:(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.)*(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class PolicyError(Exception):
    """A write the rules refuse; `status` and `type` are what Designate answers with."""

    status = 400
    type = "bad_request"


class ZoneNameRefused(PolicyError, Invalid):
    """Designate's InvalidZoneName (400 invalid_zone_name): an invalid TLD, a zone named as a TLD,
    or a blacklisted name. An Invalid too, so code mapping Invalid to 400 handles it."""

    status = 400
    type = "invalid_zone_name"


class OverQuota(PolicyError):
    """Designate's OverQuota: 413 over_quota."""

    status = 413
    type = "over_quota"


# -- zone creation ------------------------------------------------------------------------------


async def check_new_zone(conn_or_pool, name: str, project_id: str, is_admin: bool) -> None:
    """Refuse a new zone `name` as Designate's central service does (_is_valid_zone_name):

    - when the TLD list is not empty, some proper suffix of the name (its last label, or a longer
      entry such as "co.uk") must be a TLD → else ZoneNameRefused("Invalid TLD");
    - the zone must not be a TLD itself → ZoneNameRefused("Zone name cannot be the same as a TLD");
    - a name matching a blacklist pattern (re.search on the lowercase absolute name, e.g.
      "example.com.") is refused unless `is_admin` → ZoneNameRefused("Blacklisted zone name").

    A malformed name raises records.Invalid. `project_id` is the project the zone is for (kept for
    the call's symmetry with check_quota; the rules do not depend on it today).
    """
    text = zone_name(name).to_text().lower()
    labels = text.rstrip(".").split(".")
    tlds = {r["name"] for r in await conn_or_pool.fetch("SELECT name FROM tlds")}
    if tlds:
        if ".".join(labels) in tlds:
            raise ZoneNameRefused(f"Zone name cannot be the same as a TLD: {text}")
        if not any(".".join(labels[i:]) in tlds for i in range(1, len(labels))):
            raise ZoneNameRefused(f"Invalid TLD: no TLD in the list ends {text}")
    if is_admin:
        return
    for row in await conn_or_pool.fetch("SELECT pattern FROM blacklists ORDER BY created_at, id"):
        if blacklisted(row["pattern"], text):
            raise ZoneNameRefused(f"Blacklisted zone name: {text}")


def blacklisted(pattern: str, name: str) -> bool:
    """Whether `pattern` is found in `name`; a pattern that does not compile never matches, one that
    takes longer than MATCH_TIMEOUT counts as a match (as in Designate)."""
    try:
        if _regex is not None:
            return _regex.search(pattern, name, timeout=MATCH_TIMEOUT) is not None
        return re.search(pattern, name) is not None
    except TimeoutError:
        return True
    except (re.error, Exception):  # noqa: BLE001 - regex.error and re.error: a bad stored pattern
        return False


# -- quotas -------------------------------------------------------------------------------------


async def get_quotas(conn_or_pool, project_id: str) -> dict[str, int]:
    """The project's limits: Designate's defaults, overridden by what is stored."""
    out = dict(QUOTA_DEFAULTS)
    for r in await conn_or_pool.fetch("SELECT resource, hard_limit FROM quotas WHERE project_id = $1", project_id):
        out[r["resource"]] = r["hard_limit"]
    return out


def check_quota_values(values: dict) -> dict[str, int]:
    """Checked {resource: hard_limit}: known resources, whole numbers from -1 (unlimited) up."""
    if not values:
        raise Invalid("no quota given")
    out = {}
    for k, v in values.items():
        if k not in QUOTA_DEFAULTS:
            raise Invalid(f"{k!r} is not a quota resource; they are {', '.join(QUOTA_DEFAULTS)}")
        if isinstance(v, bool) or not isinstance(v, int) or not -1 <= v <= MAX_LIMIT:
            raise Invalid(f"quota {k} must be a whole number from -1 (unlimited) to {MAX_LIMIT}, not {v!r}")
        out[k] = v
    return out


async def set_quotas(pool: asyncpg.Pool, project_id: str, values: dict) -> dict[str, int]:
    """Store overrides for the project (all or nothing); returns its limits after."""
    values = check_quota_values(values)
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3) ON CONFLICT (project_id, resource)"
            " DO UPDATE SET hard_limit = EXCLUDED.hard_limit, updated_at = now()",
            [(project_id, k, v) for k, v in values.items()],
        )  # fmt: skip
        return await get_quotas(conn, project_id)


async def reset_quotas(conn_or_pool, project_id: str) -> None:
    """Back to the defaults."""
    await conn_or_pool.execute("DELETE FROM quotas WHERE project_id = $1", project_id)


async def check_quota(
    conn, project_id: str, kind: str, *, zone_id: uuid.UUID | None = None, rrset_id: uuid.UUID | None = None,
    count: int = 1,
) -> None:  # fmt: skip
    """Raise OverQuota (413 over_quota) when a write would take `project_id` past its limit, as
    Designate's central service checks (a limit of -1 is unlimited):

    - "zones": the project's zones + `count` (default 1, the zone being created) > limit;
    - "zone_recordsets" (zone_id needed): the zone's RRsets (SOA included, as Designate counts) +
      `count` (default 1, the RRset being created) > limit;
    - "zone_records" (zone_id needed): the zone's records — not event-managed, not the SOA —
      less those of the RRset `rrset_id` being replaced (if any), + `count` (the new RRset's
      record count) > limit;
    - "recordset_records": `count` (the records the RRset will hold) > limit;
    - "api_export_size": `count` (the records an export holds) > limit.

    `project_id` is the project owning the zone (Designate checks the zone's tenant).
    """
    limits = await get_quotas(conn, project_id)
    if kind not in limits:
        raise ValueError(f"unknown quota {kind!r}")
    limit = limits[kind]
    if limit < 0:
        return
    if kind == "zones":
        have = await conn.fetchval("SELECT count(*) FROM zones WHERE project_id = $1", project_id)
    elif kind == "zone_recordsets":
        if zone_id is None:
            raise ValueError("zone_recordsets needs zone_id")
        have = await conn.fetchval("SELECT count(*) FROM rrsets WHERE zone_id = $1", zone_id)
    elif kind == "zone_records":
        if zone_id is None:
            raise ValueError("zone_records needs zone_id")
        have = await conn.fetchval(
            "SELECT coalesce(sum(cardinality(records)), 0) FROM rrsets WHERE zone_id = $1 AND NOT managed AND type <> $2"
            " AND ($3::uuid IS NULL OR id <> $3)",
            zone_id, SOA, rrset_id,
        )  # fmt: skip
    else:
        have = 0
    error = over_quota(limits, kind, have, count)
    if error is not None:
        raise error


def over_quota(limits: dict[str, int], kind: str, have: int, count: int) -> OverQuota | None:
    """The OverQuota that `have` + `count` of `kind` would pass, or None within the limit (as
    `check_quota` judges, for callers that counted `have` themselves — a batch of writes)."""
    limit = limits[kind]
    if limit < 0 or have + count <= limit:
        return None
    what = {"zones": "zones for the project", "zone_recordsets": "recordsets in the zone",
            "zone_records": "records in the zone", "recordset_records": "records in a recordset",
            "api_export_size": "records in an export"}[kind]  # fmt: skip
    return OverQuota(f"Quota exceeded: {kind} is {limit} {what}; this would make {have + count}")


# -- TLDs and blacklists ------------------------------------------------------------------------


def tld_name(name) -> str:
    if not isinstance(name, str) or not _TLD_RE.match(name):
        raise Invalid(f"{name!r} is not a TLD name (labels of letters, digits, '-', no trailing dot)")
    return name.lower()


def check_pattern(pattern) -> str:
    if not isinstance(pattern, str) or not pattern or len(pattern) > 255:
        raise Invalid("pattern must be a regular expression of 1 to 255 characters")
    try:
        re.compile(pattern)
    except re.error as e:
        raise Invalid(f"pattern {pattern!r} is not a regular expression: {e}") from None
    return pattern


def check_description(value) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 160):
        raise Invalid("description must be a string of at most 160 characters, or null")
    return value


class TldNotFound(NotFound):
    status, type = 404, "tld_not_found"


class DuplicateTld(Conflict):
    status, type = 409, "duplicate_tld"


class BlacklistNotFound(NotFound):
    status, type = 404, "blacklist_not_found"


class DuplicateBlacklist(Conflict):
    status, type = 409, "duplicate_blacklist"


_TABLES = {"tlds": ("name", "TLD"), "blacklists": ("pattern", "blacklist")}
_NOT_FOUND = {"tlds": TldNotFound, "blacklists": BlacklistNotFound}
_DUPLICATE = {"tlds": DuplicateTld, "blacklists": DuplicateBlacklist}


async def list_rows(conn_or_pool, table: str, *, key: str | None = None, limit: int = 1000,
                    marker: uuid.UUID | None = None) -> tuple[list[dict], int]:  # fmt: skip
    """TLDs or blacklists ordered by creation, optionally only the one whose name/pattern is `key`,
    paged after `marker`; and how many match in all pages."""
    col, _ = _TABLES[table]
    rows = await conn_or_pool.fetch(
        f"SELECT * FROM {table} WHERE ($1::text IS NULL OR {col} = $1)"
        f" AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM {table} WHERE id = $2))"
        " ORDER BY created_at, id LIMIT $3",
        key, marker, limit,
    )  # fmt: skip
    total = await conn_or_pool.fetchval(f"SELECT count(*) FROM {table} WHERE ($1::text IS NULL OR {col} = $1)", key)
    return [dict(r) for r in rows], total


async def get_row(conn_or_pool, table: str, row_id: uuid.UUID) -> dict:
    row = await conn_or_pool.fetchrow(f"SELECT * FROM {table} WHERE id = $1", row_id)
    if row is None:
        raise _NOT_FOUND[table](f"no {_TABLES[table][1]} {row_id}")
    return dict(row)


async def create_row(conn_or_pool, table: str, key: str, description: str | None) -> dict:
    col, what = _TABLES[table]
    row = await conn_or_pool.fetchrow(
        f"INSERT INTO {table} ({col}, description) VALUES ($1, $2) ON CONFLICT ({col}) DO NOTHING RETURNING *",
        key, description,
    )  # fmt: skip
    if row is None:
        raise _DUPLICATE[table](f"{what} {key} exists")
    return dict(row)


async def update_row(conn_or_pool, table: str, row_id: uuid.UUID, values: dict) -> dict:
    """Set `values` (name/pattern, description) on the row; Conflict when the new name is taken."""
    col, what = _TABLES[table]
    if set(values) - {col, "description"}:
        raise Invalid(f"unknown field(s): {', '.join(sorted(set(values) - {col, 'description'}))}")
    sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(values))
    try:
        row = await conn_or_pool.fetchrow(
            f"UPDATE {table} SET {sets + ', ' if sets else ''}updated_at = now() WHERE id = $1 RETURNING *",
            row_id, *values.values(),
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        raise _DUPLICATE[table](f"{what} {values.get(col)} exists") from None
    if row is None:
        raise _NOT_FOUND[table](f"no {what} {row_id}")
    return dict(row)


async def delete_row(conn_or_pool, table: str, row_id: uuid.UUID) -> None:
    if await conn_or_pool.fetchval(f"DELETE FROM {table} WHERE id = $1 RETURNING id", row_id) is None:
        raise _NOT_FOUND[table](f"no {_TABLES[table][1]} {row_id}")
