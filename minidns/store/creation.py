"""A zone's creation and deletion, each one transaction: the zone row, its first RRsets, SOA and
change-log row (or the deleted zone's last serial kept), its entry in each catalog zone that lists
it (RFC 9432, through the unit of work of store/change.py) and the NOTIFY."""

from __future__ import annotations

import fnmatch
import logging
import uuid

import dns.name

from ..wire import NS, PTR, TXT
from .change import Change, ZoneChange, find_zone
from .db import CHANNEL, CONFIG_CHANNEL
from .edits import Edit, RRsetEdits, check_rows
from .records import Conflict, Invalid, RRsetData, check_ttl, parse_owner, parse_type, zone_name
from .rows import BULK_COLUMNS, RRSET_COLUMNS, rrset_row, soa_rdata, soa_row
from .serial import POLICIES, SERIAL_MOD, initial_serial, next_serial, serial_gt

DEFAULT_POOL_ID = uuid.UUID("794ccc2c-d751-44fe-b57f-8894c9f5c842")  # Designate's default pool id
POOL_SOURCE = "pool"  # the managed_source of the apex NS RRsets pools write (store/pools.py)
log = logging.getLogger("minidns.store")


async def create_zone(store, name: str, *, email: str, mname: str | None = None, ttl: int = 3600,
                      refresh: int = 3600, retry: int = 600, expire: int = 1209600, minimum: int = 300,
                      serial: int | None = None, serial_policy: str | None = None, project_id: str = "",
                      description: str | None = None, rrsets: list[RRsetData] = (), edits: list[Edit] = (),
                      source: str = "api", catalog_members: list[str] | None = None,
                      catalog_attributes: dict | None = None, pool_id: uuid.UUID = DEFAULT_POOL_ID,
                      conn=None) -> Change:  # fmt: skip
    """Store.create_zone: a zone with its records in one transaction (`conn`'s when given)."""
    origin = zone_name(name)
    policy = serial_policy or store.settings.serial_policy
    if policy not in POLICIES:
        raise Invalid(f"serial policy must be one of {', '.join(POLICIES)}")
    z = {
        "id": uuid.uuid4(), "name": origin.to_text().lower(), "project_id": project_id, "email": email,
        "mname": mname, "ttl": check_ttl(ttl), "refresh": refresh, "retry": retry,
        "expire": expire, "minimum": check_ttl(minimum),
        "serial": initial_serial(policy, store.clock()) if serial is None else serial % SERIAL_MOD,
        "serial_policy": policy, "description": description, "status": "PENDING", "action": "CREATE",
        "pool_id": pool_id,
    }  # fmt: skip
    new = _NewZone(store, z, origin, list(rrsets), list(edits), source, catalog_members)
    if catalog_members is not None:
        z["type"] = "CATALOG"
        z["attributes"] = {"members": list(catalog_members) or ["*"], **(catalog_attributes or {})}
        new.edits = [Edit("add", "@", "NS", None, ("invalid.",)), Edit("add", "version", "TXT", None, ('"2"',)), *new.edits]
    new.first_heartbeat()
    if conn is not None:
        return await new.write(conn)
    async with store.pool.acquire() as conn, conn.transaction():
        return await new.write(conn)


class _NewZone:
    """The rows of a zone being created."""

    def __init__(self, store, z: dict, origin: dns.name.Name, rrsets: list, edits: list, source: str, catalog_members):
        self.store, self.z, self.origin, self.rrsets, self.edits = store, z, origin, rrsets, edits
        self.source, self.catalog = source, catalog_members is not None
        self.apex = origin.to_wire().lower()
        self.heartbeat = store.stages.heartbeat if store.settings.heartbeat_name and not self.catalog else None

    def first_heartbeat(self) -> None:
        """The new zone's first heartbeat (store/heartbeat.py); one in its file is replaced."""
        if self.heartbeat is None:
            return
        hb = self.store.settings.heartbeat_name
        hb_owner = parse_owner(hb, self.origin).to_wire().lower()
        self.rrsets = [r for r in self.rrsets if not (r.owner == hb_owner and r.rtype == TXT)]
        self.edits = [*self.edits, self.heartbeat(hb, self.z["serial"], self.store.clock())]

    def rows(self, edit: RRsetEdits) -> list[tuple]:
        """The rows of the edits and the SOA, at the zone's serial (soa_rdata checks email and mname)."""
        rows = [rrset_row(self.z["id"], key, rr) for key, rr in edit.after.items()]
        rows.append(soa_row(self.z, self.apex, soa_rdata(self.z, self.z["serial"])))
        return rows

    async def write(self, conn) -> Change:
        z, pool_id = self.z, self.z["pool_id"]
        if not self.catalog and not _has_apex_ns(self.apex, self.rrsets, self.edits, self.origin):
            ns = await pool_nameservers(conn, pool_id)
            self.edits = [*self.edits, pool_ns_edit(pool_id, ns)]
            z["mname"] = z["mname"] or ns[0]
        z["mname"] = z["mname"] or f"ns1.{self.origin.to_text()}"
        edit = RRsetEdits(self.origin, z["ttl"])
        for e in self.edits:
            edit.apply(e)
        rows = self.rows(edit)
        if self.edits:
            check_rows(rows, self.apex)
        # A zone file's RRsets (checked already) go in as they are: no id (the database makes it),
        # no description, not managed.
        bulk = [(z["id"], r.name, r.owner, r.rtype, r.ttl, r.records, r.wire()) for r in self.rrsets]
        inserted = await conn.fetchval(
            f"INSERT INTO zones ({', '.join(z)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(z)))})"
            " ON CONFLICT (name) DO NOTHING RETURNING id", *z.values(),
        )  # fmt: skip
        if inserted is None:
            raise Conflict(f"zone {z['name']} exists")
        note = await _above_deleted(conn, z, self.store.clock())
        if note is not None:
            log.info("zone %s: %s", z["name"], note)
            if self.heartbeat is not None:
                edit.apply(self.heartbeat(self.store.settings.heartbeat_name, z["serial"], self.store.clock()))
            rows = self.rows(edit)
        await conn.copy_records_to_table("rrsets", records=rows, columns=RRSET_COLUMNS)
        if bulk:
            await conn.copy_records_to_table("rrsets", records=bulk, columns=BULK_COLUMNS)
        await self.announce(conn)
        return Change(z["id"], z["name"], None, z["serial"], 0, len(rows) + len(bulk), note)

    async def announce(self, conn) -> None:
        """The zone's first change-log row and NOTIFY; its place in the catalogs."""
        z = self.z
        await conn.execute(
            "INSERT INTO zone_changes (zone_id, serial_from, serial_to, removed, added, source)"
            " VALUES ($1, NULL, $2, '', '', $3)",
            z["id"], z["serial"], self.source,
        )  # fmt: skip
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{z['id']} {z['serial']}")
        if await conn.fetchval("SELECT 1 FROM pool_targets WHERE pool_id = $1 LIMIT 1", z["pool_id"]):
            await conn.execute("SELECT pg_notify($1, 'secondaries')", CONFIG_CHANNEL)  # the pool's targets get it
        if not self.catalog:
            await catalogs(self.store, conn, z["id"], z["name"], add=True, source=self.source, pool_id=z["pool_id"])
            return
        members = await conn.fetch("SELECT id, name, pool_id FROM zones WHERE type <> 'CATALOG'")
        entries = [Edit("add", _member(m["id"]), "PTR", 0, (m["name"],)) for m in members
                   if _lists(z["attributes"], m["name"], m["pool_id"])]  # fmt: skip
        if entries:
            await ZoneChange(self.store, z["id"], entries, source=self.source, conn=conn)


async def catalogs(store, conn, zone_id: uuid.UUID, name: str, *, add: bool, source: str,
                   pool_id: uuid.UUID | None) -> None:  # fmt: skip
    """Add the zone to (or remove it from) each catalog zone it belongs in, in the caller's
    transaction: the catalog gets its own new serial and change-log row, so secondaries
    consuming it (RFC 9432) learn of the new or deleted zone by IXFR."""
    for cat in await conn.fetch("SELECT id, attributes FROM zones WHERE type = 'CATALOG' ORDER BY id FOR UPDATE"):
        if not _lists(cat["attributes"] or {}, name, pool_id):
            continue
        if add:
            # An entry left for the same name by a zone abandoned earlier goes: RFC 9432 §4.3
            # wants one member entry per zone name.
            stale = await conn.fetch("SELECT name FROM rrsets WHERE zone_id = $1 AND type = $2 AND records = $3",
                                     cat["id"], PTR, [name])  # fmt: skip
            edits = [Edit("delete", r["name"], "PTR") for r in stale]
            edits.append(Edit("add", _member(zone_id), "PTR", 0, (name,)))
        else:
            edits = [Edit("delete", _member(zone_id), "PTR")]
        await ZoneChange(store, cat["id"], edits, source=source, conn=conn)


async def delete_zone(store, zone: str | uuid.UUID, source: str = "api", *, catalogs_too: bool = True) -> Change:
    """Store.delete_zone: the zone gone, its last serial kept, in one transaction."""
    async with store.pool.acquire() as conn, conn.transaction():
        z = await find_zone(conn, zone, lock=True)
        await conn.execute("DELETE FROM zones WHERE id = $1", z["id"])
        await conn.execute(
            "INSERT INTO deleted_zone_serials (name, serial) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET serial = excluded.serial, deleted_at = now()",
            z["name"], z["serial"],
        )  # fmt: skip
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{z['id']} deleted")
        if z["type"] != "CATALOG" and catalogs_too:
            await catalogs(store, conn, z["id"], z["name"], add=False, source=source, pool_id=z["pool_id"])
    return Change(z["id"], z["name"], z["serial"], z["serial"], 0, 0)


async def _above_deleted(conn, z: dict, now: float) -> str | None:
    """A zone made again after it was deleted starts above the last serial it had (RFC 1982):
    secondaries still holding the deleted zone's data would otherwise see no newer serial and keep
    it. Raises z["serial"] (and the zone row's, in the caller's transaction, after its INSERT: a
    delete of the same name in progress has committed by then) when it is not above; returns
    what was done, or None."""
    last = await conn.fetchval("SELECT serial FROM deleted_zone_serials WHERE name = $1", z["name"])
    if last is None or serial_gt(z["serial"], last):
        return None
    given, z["serial"] = z["serial"], next_serial(last, z["serial_policy"], now)
    await conn.execute("UPDATE zones SET serial = $2 WHERE id = $1", z["id"], z["serial"])
    return f"serial {given} is not above {last}, the last serial of the deleted zone: using {z['serial']}"


async def pool_nameservers(conn, pool_id: uuid.UUID) -> list[str]:
    """The pool's NS hostnames, first by priority; Invalid when it has none (or no such pool)."""
    ns = [r["hostname"] for r in await conn.fetch(
        "SELECT hostname FROM pool_ns_records WHERE pool_id = $1 ORDER BY priority, hostname", pool_id)]  # fmt: skip
    if not ns:
        raise Invalid(f"pool {pool_id} has no NS records (or does not exist); a zone needs NS at its apex "
                      "(RFC 1034 §4.2.1): set them with `minidns pool set-ns`")  # fmt: skip
    return ns


def pool_ns_edit(pool_id: uuid.UUID, ns: list[str]) -> Edit:
    """A zone's apex NS RRset as its pool writes it: managed, made by the pool."""
    managed = {"source": POOL_SOURCE, "resource_type": "pool", "resource_id": str(pool_id)}
    return Edit("replace", "@", "NS", None, tuple(ns), managed=managed)


def _has_apex_ns(apex: bytes, rrsets, edits, origin: dns.name.Name) -> bool:
    if any(r.owner == apex and r.rtype == NS for r in rrsets):
        return True
    owner = RRsetEdits(origin, 0).owner
    return any(parse_type(e.rtype) == NS and e.op != "delete" and owner(e.name) == origin for e in edits)


def _member(zone_id: uuid.UUID) -> str:
    """A member zone's entry in a catalog (RFC 9432 §4.3): a unique label under zones."""
    return f"{zone_id.hex}.zones"


def _lists(catalog_attributes: dict, name: str, pool_id: uuid.UUID | None) -> bool:
    """Whether a catalog zone lists the zone `name` of pool `pool_id`: its name matches the
    catalog's member patterns and, for a pool's catalog, the zone is in that pool."""
    pool = catalog_attributes.get("pool")
    if pool is not None and str(pool_id) != pool:
        return False
    return _matches(name, catalog_attributes.get("members", ["*"]))


def _matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, p if p == "*" or p.endswith(".") else p + ".") for p in patterns)
