"""What the sink knows of each cloud resource (the `event_resources` table): the last state an
event gave it, live or deleted (a tombstone), and the time of that event.

A transaction reads and writes it through `Resources`. Applying a batch of events, it reads the
rows the batch names at once (`prefetch`, locked) and keeps them, and holds its writes back until
the end of the batch or until a query needs the table as it stands (`flush`): one round trip for
the batch instead of two per event. Without `batched` (events applied each in a savepoint, which
may be rolled back) every read and write goes to the table at once."""

from __future__ import annotations

import datetime

import orjson

from ..store.rows import columns

Key = tuple[str, str, str]  # (source, resource type, resource id)

SELECT = "SELECT * FROM event_resources WHERE source = $1 AND resource_type = $2 AND resource_id = $3 FOR UPDATE"
SELECT_MANY = (  # the rows of these keys and of the live floating IPs at these fixed IPs, locked
    "SELECT * FROM event_resources WHERE (source, resource_type, resource_id) IN ("
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) UNION ALL SELECT source, resource_type, resource_id"
    " FROM event_resources WHERE source = 'neutron' AND resource_type = 'floatingip' AND state = 'live'"
    " AND data->>'fixed_ip' = ANY($4::text[])) ORDER BY source, resource_type, resource_id FOR UPDATE"
)
PUT = (
    "INSERT INTO event_resources (source, resource_type, resource_id, state, tenant_id, data, event_time,"
    " last_message_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, resource_type, resource_id)"
    " DO UPDATE SET state = $4, tenant_id = COALESCE($5, event_resources.tenant_id), data = $6,"
    " event_time = GREATEST(event_resources.event_time, $7), last_message_id = $8, updated_at = now()"
)
FLOATINGIPS_AT = (
    "SELECT resource_id, data->>'fixed_ip' AS fixed_ip FROM event_resources WHERE source = 'neutron'"
    " AND resource_type = 'floatingip' AND state = 'live' AND data->>'fixed_ip' = ANY($1::text[])"
)


class Resources:
    """The `event_resources` rows of one transaction (which holds the events lock)."""

    def __init__(self, conn, batched: bool):
        self.conn, self.batched = conn, batched
        self.rows: dict[Key, dict | None] = {}  # read (locked) or written in this transaction; None: no row
        self.pending: list[tuple] = []  # PUT's parameters, in order, not yet written
        self.fixed_ips: set[str] | None = None  # floating IPs at these fixed IPs read at once (`prefetch`)
        self.floatingips: set[str] = set()  # the ids of the floating IPs in `rows`

    async def prefetch(self, keys, fixed_ips=()) -> None:
        """Read (and lock) the rows of these keys and of the live floating IPs at these fixed IPs,
        in one query; only while batched."""
        if not self.batched:
            return
        missing = sorted(set(keys) - self.rows.keys())
        ips = sorted(set(fixed_ips) - (self.fixed_ips or set()))
        if not missing and not ips:
            return
        await self.flush()
        for k in missing:
            self.remember(k, None)
        for r in await self.conn.fetch(SELECT_MANY, *columns(missing, 3), ips):
            key = (r["source"], r["resource_type"], r["resource_id"])
            if key not in self.rows or key in missing:  # a row read before may have a state held since
                self.remember(key, dict(r))
        self.fixed_ips = (self.fixed_ips or set()) | set(ips)

    async def get(self, source: str, rtype: str, rid: str) -> dict | None:
        """The resource's row, locked for the transaction."""
        key = (source, rtype, rid)
        if key in self.rows:
            return self.rows[key]
        r = await self.conn.fetchrow(SELECT, source, rtype, rid)
        row = dict(r) if r is not None else None
        if self.batched:
            self.remember(key, row)
        return row

    def remember(self, key: Key, row: dict | None) -> None:
        self.rows[key] = row
        if key[:2] == ("neutron", "floatingip"):
            self.floatingips.add(key[2])

    async def put(self, source: str, rtype: str, rid: str, state: str, tenant: str | None, data: dict,
                  event_time: datetime.datetime | None, message_id: str | None) -> None:  # fmt: skip
        """The resource's new state; written at once, or (batched) at the next flush, its row as the
        table will have it kept for the batch."""
        args = (source, rtype, rid, state, tenant, data, event_time, message_id)
        if not self.batched:
            await self.conn.execute(PUT, *args)
            return
        old = self.rows.get((source, rtype, rid))
        times = [t for t in (old and old["event_time"], event_time) if t is not None]
        self.remember((source, rtype, rid), {
            "source": source, "resource_type": rtype, "resource_id": rid, "state": state,
            "tenant_id": tenant if tenant is not None else (old and old["tenant_id"]),
            "data": orjson.loads(orjson.dumps(data)), "event_time": max(times) if times else None,
            "last_message_id": message_id,
        })  # fmt: skip
        self.pending.append(args)

    async def flush(self) -> None:
        """Write the held-back states."""
        if self.pending:
            pending, self.pending = self.pending, []
            await self.conn.executemany(PUT, pending)

    async def floatingips_on_port(self, port_id: str) -> list[str]:
        """The live floating IPs associated through the port."""
        await self.flush()
        rows = await self.conn.fetch(
            "SELECT resource_id FROM event_resources WHERE source = 'neutron' AND resource_type = 'floatingip'"
            " AND state = 'live' AND data->>'port_id' = $1 ORDER BY resource_id FOR UPDATE", port_id,
        )  # fmt: skip
        return [r["resource_id"] for r in rows]

    async def floatingips_at(self, addresses: list[str]) -> list[str]:
        """The live floating IPs pointing at these fixed IPs."""
        if self.fixed_ips is not None and self.fixed_ips.issuperset(addresses):
            wanted, rows = set(addresses), self.rows
            return sorted(rid for rid in self.floatingips if (r := rows[("neutron", "floatingip", rid)]) is not None
                          and r["state"] == "live" and r["data"].get("fixed_ip") in wanted)  # fmt: skip
        await self.flush()
        return sorted(r["resource_id"] for r in await self.conn.fetch(FLOATINGIPS_AT, addresses))

    async def instance_at(self, fixed_ip: str, tenant: str | None) -> dict | None:
        """The live Nova instance holding the fixed IP (its project's first, the latest updated)."""
        await self.flush()
        return await self.conn.fetchrow(
            "SELECT resource_id, tenant_id, data FROM event_resources WHERE source = 'nova' AND resource_type = 'instance'"
            " AND state = 'live' AND data->'addresses' ? $1 ORDER BY (tenant_id IS NOT DISTINCT FROM $2) DESC, updated_at DESC LIMIT 1",
            fixed_ip, tenant,
        )  # fmt: skip

    async def group_members(self, account_id: str, group: str) -> list:
        """The data of the live VMs of the account's group."""
        await self.flush()
        rows = await self.conn.fetch(
            "SELECT data FROM event_resources WHERE source = 'cloudstack' AND resource_type = 'vm' AND state = 'live'"
            " AND data->>'account_id' = $1 AND data->>'group' = $2 ORDER BY resource_id", account_id, group,
        )  # fmt: skip
        return [m["data"] for m in rows]

    async def live_ids(self, source: str, rtype: str) -> set[str]:
        await self.flush()
        rows = await self.conn.fetch(
            "SELECT resource_id FROM event_resources WHERE source = $1 AND resource_type = $2 AND state = 'live'",
            source, rtype)  # fmt: skip
        return {r[0] for r in rows}


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
