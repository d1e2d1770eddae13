"""What the sink knows of each cloud resource (the `event_resources` table): the last state an
event gave it, live or deleted (a tombstone), and the time of that event."""

from __future__ import annotations

import datetime

import asyncpg


async def fetch(conn, source: str, rtype: str, rid: str) -> asyncpg.Record | None:
    """The resource's row, locked for the transaction."""
    return await conn.fetchrow(
        "SELECT * FROM event_resources WHERE source = $1 AND resource_type = $2 AND resource_id = $3 FOR UPDATE",
        source, rtype, rid,
    )  # fmt: skip


async def put(conn, source: str, rtype: str, rid: str, state: str, tenant: str | None, data: dict,
              event_time: datetime.datetime | None, message_id: str | None) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO event_resources (source, resource_type, resource_id, state, tenant_id, data, event_time,"
        " last_message_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, resource_type, resource_id)"
        " DO UPDATE SET state = $4, tenant_id = COALESCE($5, event_resources.tenant_id), data = $6,"
        " event_time = GREATEST(event_resources.event_time, $7), last_message_id = $8, updated_at = now()",
        source, rtype, rid, state, tenant, data, event_time, message_id,
    )  # fmt: skip


def skip_reason(row, what: str, event_time: datetime.datetime | None) -> str | None:
    """Why an event about resource `row` is not applied: it is a tombstone, or newer news of it has
    been applied already."""
    if row is None:
        return None
    if row["state"] == "deleted":
        return f"{what} was deleted (by {row['last_message_id']}) before this event arrived"
    if event_time and row["event_time"] and event_time < row["event_time"]:
        return f"{what} has a newer event applied already ({row['last_message_id']})"
    return None


def deleted_already(row) -> bool:
    return row is not None and row["state"] == "deleted"


async def floatingips_on_port(conn, port_id: str) -> list[str]:
    """The live floating IPs associated through the port."""
    rows = await conn.fetch(
        "SELECT resource_id FROM event_resources WHERE source = 'neutron' AND resource_type = 'floatingip'"
        " AND state = 'live' AND data->>'port_id' = $1 FOR UPDATE", port_id,
    )  # fmt: skip
    return [r["resource_id"] for r in rows]


async def floatingips_at(conn, addresses: list[str]) -> list[str]:
    """The live floating IPs pointing at these fixed IPs."""
    rows = await conn.fetch(
        "SELECT resource_id FROM event_resources WHERE source = 'neutron' AND resource_type = 'floatingip'"
        " AND state = 'live' AND data->>'fixed_ip' = ANY($1::text[]) ORDER BY resource_id", addresses,
    )  # fmt: skip
    return [r["resource_id"] for r in rows]


async def instance_at(conn, fixed_ip: str, tenant: str | None) -> asyncpg.Record | None:
    """The live Nova instance holding the fixed IP (its project's first, the latest updated)."""
    return await conn.fetchrow(
        "SELECT resource_id, tenant_id, data FROM event_resources WHERE source = 'nova' AND resource_type = 'instance'"
        " AND state = 'live' AND data->'addresses' ? $1 ORDER BY (tenant_id IS NOT DISTINCT FROM $2) DESC, updated_at DESC LIMIT 1",
        fixed_ip, tenant,
    )  # fmt: skip


async def group_members(conn, account_id: str, group: str) -> list:
    """The data of the live VMs of the account's group."""
    rows = await conn.fetch(
        "SELECT data FROM event_resources WHERE source = 'cloudstack' AND resource_type = 'vm' AND state = 'live'"
        " AND data->>'account_id' = $1 AND data->>'group' = $2 ORDER BY resource_id", account_id, group,
    )  # fmt: skip
    return [m["data"] for m in rows]


async def live_ids(conn, source: str, rtype: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT resource_id FROM event_resources WHERE source = $1 AND resource_type = $2 AND state = 'live'",
        source, rtype)  # fmt: skip
    return {r[0] for r in rows}
