"""Pools, as Designate has them: the name servers a zone is served by. A pool has NS records
(hostname and priority), targets (secondaries NOTIFYed for each of its zones, whose serials decide
ACTIVE) and may have a catalog zone (RFC 9432) listing its zones. Every zone belongs to a pool.

A zone's apex NS RRset (RFC 1034 §4.2.1: every zone has NS at its apex) is the pool's NS set,
written as a managed RRset when the zone is made and kept in step when the pool's NS set changes,
each time through the write path (new serial, change log, NOTIFY); the SOA MNAME is the pool's
first NS by priority. An NS RRset the zone brought itself (a zone file) is the operator's and is
left alone. `prepare` runs where the schema is upgraded: it fills the default pool's NS set from
the configuration and repairs zones that have no apex NS, saying what it did.
"""

from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import dataclass

import dns.name

from ..wire import NS
from .access import check_secondary
from ..store.db import CONFIG_CHANNEL
from ..store.records import Invalid
from ..store.writer import DEFAULT_POOL_ID, POOL_SOURCE, Conflict, NotFound, Store, pool_ns_edit

log = logging.getLogger("minidns.store")


class PoolNotFound(NotFound):
    """Designate's PoolNotFound."""

    status, type, reply = 404, "pool_not_found", "Could not find Pool {0.pool}"

    def __init__(self, pool):
        super().__init__(f"no pool {pool}")
        self.pool = pool


@dataclass(frozen=True, slots=True)
class NsRecord:
    hostname: str  # absolute, lowercase
    priority: int


def check_ns_records(entries) -> list[NsRecord]:
    """NS records from `hostname` or `hostname:priority` strings or (hostname, priority) pairs:
    absolute names, distinct, priorities 1 and up; sorted by priority (then as given)."""
    out: list[NsRecord] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            host, _, prio = entry.partition(":")
        else:
            host, prio = entry
        try:
            name = dns.name.from_text(str(host))
        except Exception as e:  # noqa: BLE001 - dnspython's name errors
            raise Invalid(f"NS hostname {host!r}: {e}") from None
        text = name.to_text().lower()
        if not str(host).endswith("."):
            raise Invalid(f"NS hostname {host!r} must be absolute (end in a dot)")
        try:
            priority = int(prio) if prio not in ("", None) else i + 1
        except ValueError:
            raise Invalid(f"NS priority {prio!r} of {host} is not a whole number") from None
        if priority < 1:
            raise Invalid(f"NS priority of {host} must be 1 or more")
        if any(n.hostname == text for n in out):
            raise Invalid(f"NS hostname {text} given twice")
        out.append(NsRecord(text, priority))
    return sorted(out, key=lambda n: n.priority)


def default_nameservers() -> list[NsRecord]:
    """The default pool's NS set when none is configured: this host's name when it has a domain,
    else localhost. (which is right for the default listener on loopback)."""
    fqdn = socket.getfqdn().rstrip(".").lower()
    return [NsRecord(f"{fqdn}." if "." in fqdn else "localhost.", 1)]


# -- reads --------------------------------------------------------------------------------------


async def ns_records(conn, pool_id: uuid.UUID) -> list[NsRecord]:
    rows = await conn.fetch("SELECT hostname, priority FROM pool_ns_records WHERE pool_id = $1 ORDER BY priority, hostname",
                            pool_id)  # fmt: skip
    return [NsRecord(r["hostname"], r["priority"]) for r in rows]


async def find_pool(conn, pool: str | uuid.UUID) -> dict:
    """A pool by id or name, with its ns_records and targets; NotFound when there is none."""
    if isinstance(pool, str):
        try:
            pool = uuid.UUID(pool)
        except ValueError:
            pass
    column = "id" if isinstance(pool, uuid.UUID) else "name"
    row = await conn.fetchrow(f"SELECT * FROM pools WHERE {column} = $1", pool)
    if row is None:
        raise PoolNotFound(pool)
    return await _with_parts(conn, dict(row))


async def list_pools(conn) -> list[dict]:
    return [await _with_parts(conn, dict(r)) for r in await conn.fetch("SELECT * FROM pools ORDER BY created_at, name")]


async def _with_parts(conn, p: dict) -> dict:
    p["ns_records"] = await ns_records(conn, p["id"])
    p["targets"] = [(r["address"], r["port"], r["key_name"]) for r in await conn.fetch(
        "SELECT host(address) AS address, port, key_name FROM pool_targets WHERE pool_id = $1 ORDER BY address, port",
        p["id"])]  # fmt: skip
    p["zones"] = await conn.fetchval("SELECT count(*) FROM zones WHERE pool_id = $1", p["id"])
    return p


# -- writes -------------------------------------------------------------------------------------


async def create_pool(store: Store, name: str, ns: list[NsRecord], description: str | None = None) -> dict:
    if not ns:
        raise Invalid("a pool needs at least one NS record")
    async with store.pool.acquire() as conn, conn.transaction():
        pid = await conn.fetchval("INSERT INTO pools (name, description) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
                                  " RETURNING id", name, description)  # fmt: skip
        if pid is None:
            raise Conflict(f"pool {name} exists")
        await conn.executemany("INSERT INTO pool_ns_records (pool_id, hostname, priority) VALUES ($1, $2, $3)",
                               [(pid, n.hostname, n.priority) for n in ns])  # fmt: skip
        return await find_pool(conn, pid)


async def delete_pool(store: Store, pool: str | uuid.UUID) -> None:
    async with store.pool.acquire() as conn, conn.transaction():
        p = await find_pool(conn, pool)
        if p["id"] == DEFAULT_POOL_ID:
            raise Conflict("the default pool cannot be deleted")
        if p["zones"]:
            raise Conflict(f"pool {p['name']} has {p['zones']} zone(s); move or delete them first")
        await conn.execute("DELETE FROM pools WHERE id = $1", p["id"])


async def set_ns_records(store: Store, pool: str | uuid.UUID, ns: list[NsRecord], source: str = "pool") -> list:
    """Make `ns` the pool's NS set, then bring every zone of the pool in step (one change each:
    the apex NS RRset and the SOA MNAME). Returns those changes."""
    if not ns:
        raise Invalid("a pool needs at least one NS record")
    async with store.pool.acquire() as conn, conn.transaction():
        p = await find_pool(conn, pool)
        await _replace_ns_records(conn, p["id"], ns)
    return await sync_zones(store, p["id"], source=source)


async def _replace_ns_records(conn, pool_id: uuid.UUID, ns: list[NsRecord]) -> None:
    await conn.execute("SELECT 1 FROM pools WHERE id = $1 FOR UPDATE", pool_id)
    await conn.execute("DELETE FROM pool_ns_records WHERE pool_id = $1", pool_id)
    await conn.executemany("INSERT INTO pool_ns_records (pool_id, hostname, priority) VALUES ($1, $2, $3)",
                           [(pool_id, n.hostname, n.priority) for n in ns])  # fmt: skip
    await conn.execute("UPDATE pools SET updated_at = now() WHERE id = $1", pool_id)


async def set_target(store: Store, pool: str | uuid.UUID, address: str, port: int = 53, key: str | None = None,
                     *, remove: bool = False) -> None:  # fmt: skip
    """Add (or with `remove`, take away) a target of the pool: a secondary NOTIFYed for each of
    its zones, allowed to transfer them, and watched for propagation."""
    async with store.pool.acquire() as conn, conn.transaction():
        p = await find_pool(conn, pool)
        ip, port, key = await check_secondary(conn, address, port, None if remove else key)
        if remove:
            done = await conn.fetchval("DELETE FROM pool_targets WHERE pool_id = $1 AND address = $2 AND port = $3"
                                       " RETURNING port", p["id"], ip, port)  # fmt: skip
            if done is None:
                raise NotFound(f"{address}#{port} is not a target of pool {p['name']}")
        else:
            await conn.execute(
                "INSERT INTO pool_targets (pool_id, address, port, key_name) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (pool_id, address, port) DO UPDATE SET key_name = EXCLUDED.key_name",
                p["id"], ip, port, key,
            )  # fmt: skip
        await conn.execute("SELECT pg_notify($1, 'secondaries')", CONFIG_CHANNEL)


async def move_zone(store: Store, zone_id: uuid.UUID, pool: str | uuid.UUID, source: str = "api"):
    """Designate's pool_move: the zone goes to `pool` in one change through the write path. Its
    apex NS RRset, when its old pool wrote it, becomes the new pool's, with the SOA MNAME; NS of
    the operator's own stay. The new pool's targets are its secondaries from then on."""
    async with store.pool.acquire() as conn:
        p = await find_pool(conn, pool)
        z = await conn.fetchrow("SELECT z.name, r.managed_source FROM zones z LEFT JOIN rrsets r ON r.zone_id = z.id"
                                " AND r.name = z.name AND r.type = $2 WHERE z.id = $1", zone_id, NS)  # fmt: skip
    if z is None:
        raise NotFound(f"no zone {zone_id}")
    fields: dict = {"pool_id": p["id"]}
    edits = []
    if z["managed_source"] in (POOL_SOURCE, None):
        want = [n.hostname for n in p["ns_records"]]
        edits.append(pool_ns_edit(p["id"], want))
        fields["mname"] = want[0] if want else None
    change = await store.change(zone_id, edits, source=source, fields=fields)
    await store.pool.execute("SELECT pg_notify($1, 'secondaries')", CONFIG_CHANNEL)
    return change


async def sync_zones(store: Store, pool_id: uuid.UUID | None = None, *, source: str = "pool") -> list:
    """Bring zones in step with their pool (all pools when `pool_id` is None): a zone without an
    apex NS RRset gets the pool's; one whose NS RRset the pool wrote gets the pool's current set;
    either way the SOA MNAME becomes the pool's first NS. Each is one change through the write
    path. Catalog zones (NS invalid., RFC 9432 §4.1) and NS RRsets of the operator's own are left
    alone. Returns [(zone name, what was done, Change)]."""
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT z.id, z.name, z.pool_id, z.mname, r.records, r.managed_source FROM zones z"
            " LEFT JOIN rrsets r ON r.zone_id = z.id AND r.name = z.name AND r.type = $1"
            " WHERE z.type <> 'CATALOG' AND ($2::uuid IS NULL OR z.pool_id = $2) ORDER BY z.name",
            NS, pool_id,
        )  # fmt: skip
        sets = {}
        for pid in {r["pool_id"] for r in rows}:
            sets[pid] = await ns_records(conn, pid)
    done = []
    for r in rows:
        ns = sets[r["pool_id"]]
        want = [n.hostname for n in ns]
        if r["records"] is None:
            what = "had no NS at its apex"
        elif r["managed_source"] == POOL_SOURCE and (sorted(x.lower() for x in r["records"]) != sorted(want)
                                                or r["mname"] != want[0]):  # fmt: skip
            what = "had NS out of step with its pool"
        else:
            continue
        if not ns:
            log.error("zone %s %s, and its pool has no NS records to give it: set them (minidns pool set-ns)",
                      r["name"], what)  # fmt: skip
            continue
        change = await store.change(r["id"], [pool_ns_edit(r["pool_id"], want)], source=source,
                                    fields={"mname": want[0]})  # fmt: skip
        done.append((r["name"], what, change))
    return done


async def prepare(store: Store, configured: list[str] | tuple = ()) -> None:
    """At start, where the schema is upgraded: the default pool's NS set is the configured one
    (`pool_nameservers`) when given, else what it holds, else this host's name; then zones are
    brought in step with their pools (services/pools.py sync_zones), each repair logged."""
    async with store.pool.acquire() as conn:
        have = await ns_records(conn, DEFAULT_POOL_ID)
    want = check_ns_records(configured) if configured else None
    if want is not None and want != have:
        log.info("default pool: NS records %s (from pool_nameservers; were %s)",
                 ", ".join(n.hostname for n in want), ", ".join(n.hostname for n in have) or "none")  # fmt: skip
        async with store.pool.acquire() as conn, conn.transaction():
            await _replace_ns_records(conn, DEFAULT_POOL_ID, want)
    elif want is None and not have:
        guess = default_nameservers()
        log.warning("default pool: no NS records configured; using %s (set pool_nameservers to the names "
                    "your name servers are known by)", guess[0].hostname)  # fmt: skip
        async with store.pool.acquire() as conn, conn.transaction():
            await conn.executemany("INSERT INTO pool_ns_records (pool_id, hostname, priority) VALUES ($1, $2, $3)"
                                   " ON CONFLICT DO NOTHING", [(DEFAULT_POOL_ID, n.hostname, n.priority) for n in guess])  # fmt: skip
    for name, what, change in await sync_zones(store):
        log.warning("zone %s %s: wrote its pool's NS records, serial %s -> %s", name, what, change.serial_from,
                    change.serial_to)  # fmt: skip
