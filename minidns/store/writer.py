"""The one write path. Every change to a zone — records, zone fields, creation, deletion — is one
transaction that locks the zone row, validates, writes the rows, bumps the SOA serial (RFC 1982),
appends one change-log row holding the difference (RFC 1995 §4 form) and NOTIFYs the zone id and
serial. Holding the zone row's lock from the read of the old serial to the commit is what keeps
concurrent writers from losing an update or reusing a serial.
"""

from __future__ import annotations

import fnmatch
import logging
import time
import uuid
from dataclasses import dataclass
from struct import pack

import asyncpg
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from ..wire import NS, PTR, SOA, TXT
from ..zones.changes import pack_rrs
from .db import CHANNEL, CONFIG_CHANNEL
from .records import (
    GENERATED,
    KEY_TYPES,
    Invalid,
    RRsetData,
    check_owner_types,
    check_ttl,
    email_to_rname,
    parse_owner,
    parse_rdata,
    parse_type,
    rdata_from_wire,
    zone_name,
)

SERIAL_MOD = 2**32
DEFAULT_POOL_ID = uuid.UUID("794ccc2c-d751-44fe-b57f-8894c9f5c842")  # Designate's default pool id
POOL_SOURCE = "pool"  # the managed_source of the apex NS RRsets pools write (store/pools.py)
POLICIES = ("increment", "unixtime", "date")
log = logging.getLogger("minidns.store")


class NotFound(LookupError):
    """No such zone, RRset or record."""

    status, type = 404, "not_found"


class Conflict(Exception):
    """The write collides with what exists (a name taken, an operation under way)."""

    status, type = 409, "conflict"


class Unsignable(Exception):
    """A signed zone cannot be written by this process: it has no DNSSEC master key to sign the
    change with. A setting of the server, not of the request: nothing was written; try later."""

    status, type, retry_after = 503, "service_unavailable", 60


def serial_gt(a: int, b: int) -> bool:
    """a > b in serial number arithmetic (RFC 1982 §3.2). Serials 2^31 apart compare neither way."""
    return a != b and (a - b) % SERIAL_MOD < 2**31


def next_serial(old: int, policy: str, now: float) -> int:
    """The serial after `old`: the clock's value under `unixtime` (seconds) or `date`
    (YYYYMMDDnn) when that is greater than `old` in serial arithmetic, else `old` + 1 — so a serial
    always moves forward, across the 2^32 wrap and when the clock goes back."""
    if policy == "unixtime":
        candidate = int(now) % SERIAL_MOD
    elif policy == "date":
        candidate = int(time.strftime("%Y%m%d", time.gmtime(now))) * 100 % SERIAL_MOD
    else:
        candidate = None
    if candidate is not None and serial_gt(candidate, old):
        return candidate
    return (old + 1) % SERIAL_MOD


def initial_serial(policy: str, now: float) -> int:
    return next_serial(0, policy, now) if policy != "increment" else 1


async def _above_deleted(conn: asyncpg.Connection, z: dict, now: float) -> str | None:
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


@dataclass(frozen=True, slots=True)
class Edit:
    """One change to one RRset.

    op: "replace" (the RRset becomes exactly `records`; none → deleted), "create" (as replace, but
    Conflict when the RRset exists), "add" (records added; a given TTL applies to the whole RRset),
    "remove" (records removed, TTL ignored as in RFC 2136 §2.5.4; none → the whole RRset),
    "delete" (the RRset).
    """

    op: str
    name: str
    rtype: str | int
    ttl: int | None = None
    records: tuple[str, ...] = ()
    description: str | None = None
    managed: dict | None = None  # provenance of event-made records: source, resource_type, resource_id, tenant_id, extra


@dataclass(frozen=True, slots=True)
class Change:
    """What a committed write did."""

    zone_id: uuid.UUID
    zone: str
    serial_from: int | None
    serial_to: int
    removed: int
    added: int
    note: str | None = None  # what the write decided that the caller did not ask (a serial raised)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    serial_policy: str = "increment"  # for zones created without one
    log_keep_count: int = 1000  # change-log rows kept per zone, unless the zone says otherwise
    log_keep_seconds: int = 7 * 86400
    heartbeat_name: str | None = None  # store/heartbeat.py: every change writes this TXT too
    pool_nameservers: tuple[str, ...] = ()  # the default pool's NS records ("host." or "host.:priority"); store/pools.py


_ZONE_FIELDS = {
    "email", "mname", "ttl", "refresh", "retry", "expire", "minimum", "description", "serial_policy",
    "log_keep_count", "log_keep_seconds", "project_id", "attributes", "status", "action", "pool_id",
}  # fmt: skip
_MANAGED = ("source", "resource_type", "resource_id", "tenant_id", "extra")
_RRSET_COLUMNS = (
    "id", "zone_id", "name", "owner", "type", "ttl", "records", "wire", "description", "managed",
    "managed_source", "managed_resource_type", "managed_resource_id", "managed_tenant_id", "managed_extra",
)  # fmt: skip
# A change leaves the zone PENDING until the servers have seen its secondaries take it
# (server/notify.py writes ACTIVE or ERROR), as Designate reports a zone's status.
_PENDING = ", status = 'PENDING', action = 'UPDATE'"
_BULK_COLUMNS = ("zone_id", "name", "owner", "type", "ttl", "records", "wire")
_UPSERT = f"""
INSERT INTO rrsets ({", ".join(_RRSET_COLUMNS)}) VALUES ({", ".join(f"${i + 1}" for i in range(len(_RRSET_COLUMNS)))})
ON CONFLICT (zone_id, owner, type) DO UPDATE SET ttl = EXCLUDED.ttl, records = EXCLUDED.records,
  wire = EXCLUDED.wire, description = EXCLUDED.description, managed = EXCLUDED.managed,
  managed_source = EXCLUDED.managed_source, managed_resource_type = EXCLUDED.managed_resource_type,
  managed_resource_id = EXCLUDED.managed_resource_id, managed_tenant_id = EXCLUDED.managed_tenant_id,
  managed_extra = EXCLUDED.managed_extra, updated_at = now()
"""


class _RRset:
    """An RRset being edited: records as (dnspython rdata, wire) pairs, plus its metadata."""

    __slots__ = ("name", "ttl", "recs", "meta")

    def __init__(self, name: str, ttl: int, recs: list, meta: dict):
        self.name, self.ttl, self.recs, self.meta = name, ttl, recs, meta


class _Edits:
    """The RRsets at the owners a write touches, before and after its edits. With `key_records`
    (store/dnssec.py only) the apex DNSKEY, CDS and CDNSKEY RRsets may be written too."""

    def __init__(self, origin: dns.name.Name, default_ttl: int, key_records: bool = False):
        self.origin = origin
        self.default_ttl = default_ttl
        self.key_records = key_records
        self.before: dict[tuple[bytes, int], _RRset] = {}
        self.after: dict[tuple[bytes, int], _RRset] = {}

    def load(self, rows) -> None:
        for r in rows:
            rtype = r["type"]
            recs = [(rdata_from_wire(rtype, rd), rd) for rd in _split_wire(r["wire"])]
            meta = {k: r[k] for k in ("description", "managed") + tuple("managed_" + m for m in _MANAGED)}
            key = (bytes(r["owner"]), rtype)
            self.before[key] = _RRset(r["name"], r["ttl"], recs, meta)
            self.after[key] = _RRset(r["name"], r["ttl"], list(recs), dict(meta))

    def apply(self, e: Edit) -> None:
        owner = parse_owner(e.name, self.origin)
        rtype = parse_type(e.rtype)
        if rtype in GENERATED and not (self.key_records and rtype in KEY_TYPES and owner == self.origin):
            raise Invalid(f"{dns.rdatatype.to_text(rtype)} records are made by minidns, not written")
        key = (owner.to_wire().lower(), rtype)
        new = [parse_rdata(rtype, text, self.origin) for text in e.records]
        cur = self.after.get(key)
        if e.op in ("remove", "delete"):
            if cur is None:
                raise NotFound(f"no {dns.rdatatype.to_text(rtype)} records at {owner}")
            if e.op == "delete" or not new:
                del self.after[key]
                return
            for rd in new:
                if not any(rd == have for have, _ in cur.recs):
                    raise NotFound(f"{owner} {dns.rdatatype.to_text(rtype)} {rd} does not exist")
            cur.recs = [(have, w) for have, w in cur.recs if have not in new]
            if not cur.recs:
                del self.after[key]
            return
        op = e.op
        if op == "create":
            if cur is not None:
                raise Conflict(f"{owner} {dns.rdatatype.to_text(rtype)} exists")
            if not new:
                raise Invalid("no records to create")
            op = "replace"
        if op not in ("replace", "add"):
            raise Invalid(f"unknown edit {e.op!r}")
        if not new and op == "add":
            raise Invalid("no records to add")
        ttl = check_ttl(e.ttl) if e.ttl is not None else (cur.ttl if cur and op == "add" else self.default_ttl)
        if op == "replace":
            if not new:
                self.after.pop(key, None)
                return
            # Records that stay keep their place and stored form, new ones follow: the order that
            # applying the logged difference gives (zones/changes.py), so a follower equals a reload.
            kept = [(have, w) for have, w in cur.recs if have in new] if cur else []
            cur = self.after[key] = _RRset(owner.to_text().lower(), ttl, kept, dict(cur.meta) if cur else _meta_default())
        elif cur is None:
            cur = self.after[key] = _RRset(owner.to_text().lower(), ttl, [], _meta_default())
        cur.ttl = ttl
        for rd in new:
            if not any(rd == have for have, _ in cur.recs):
                cur.recs.append((rd, rd.to_wire()))
        if e.description is not None:
            cur.meta["description"] = e.description
        if e.managed is not None:
            cur.meta["managed"] = True
            for m in _MANAGED:
                cur.meta["managed_" + m] = e.managed.get(m)

    def check(self, apex: bytes) -> None:
        owners: dict[bytes, dict[int, int]] = {}
        for (owner, rtype), rr in self.after.items():
            owners.setdefault(owner, {})[rtype] = len(rr.recs)
        for owner, types in owners.items():
            check_owner_types(dns.name.from_wire(owner, 0)[0].to_text(), types, owner == apex)

    def diff(self):
        """(removed RRs, added RRs, RRsets to write, RRset keys to delete)."""
        removed, added, write, delete = [], [], [], []
        for key in self.before.keys() | self.after.keys():
            old, new = self.before.get(key), self.after.get(key)
            owner, rtype = key
            if new is None:
                removed += [(owner, rtype, old.ttl, w) for _, w in old.recs]
                delete.append(key)
                continue
            if old is not None and old.ttl == new.ttl:
                kept, had = {rd for rd, _ in new.recs}, {rd for rd, _ in old.recs}
                gone = [(owner, rtype, old.ttl, w) for rd, w in old.recs if rd not in kept]
                came = [(owner, rtype, new.ttl, w) for rd, w in new.recs if rd not in had]
            else:  # a new RRset, or a new TTL: the whole RRset goes and comes back (RFC 1995 §4)
                gone = [(owner, rtype, old.ttl, w) for _, w in old.recs] if old else []
                came = [(owner, rtype, new.ttl, w) for _, w in new.recs]
            removed += gone
            added += came
            if gone or came or (old is not None and old.meta != new.meta):
                write.append((key, new))
        return removed, added, write, delete


def _meta_default() -> dict:
    return {"description": None, "managed": False, **{"managed_" + m: None for m in _MANAGED}}


def _split_wire(wire: bytes) -> list[bytes]:
    """The RDATA of each record in an RRset's stored wire (TYPE TTL RDLENGTH RDATA each)."""
    out, off = [], 0
    while off < len(wire):
        rdlen = int.from_bytes(wire[off + 6 : off + 8], "big")
        out.append(bytes(wire[off + 8 : off + 8 + rdlen]))
        off += 8 + rdlen
    return out


def soa_rdata(z: dict, serial: int) -> bytes:
    """The SOA RDATA the zone's fields make (RFC 1035 §3.3.13)."""
    rd = dns.rdata.from_text(
        dns.rdataclass.IN, SOA,
        f"{z['mname']} {email_to_rname(z['email'])} {serial} {z['refresh']} {z['retry']} {z['expire']} {z['minimum']}",
    )  # fmt: skip
    return rd.to_wire()


def _rrset_row(zone_id, key, rr: _RRset) -> tuple:
    owner, rtype = key
    wire = b"".join(pack("!HIH", rtype, rr.ttl, len(w)) + w for _, w in rr.recs)
    m = rr.meta
    return (
        uuid.uuid4(), zone_id, rr.name, owner, rtype, rr.ttl, [rd.to_text() for rd, _ in rr.recs], wire,
        m["description"], bool(m["managed"]), *(m["managed_" + k] for k in _MANAGED),
    )  # fmt: skip


class Store:
    """The write path and the reads the commands need, over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, settings: StoreSettings = StoreSettings(), clock=time.time,
                 master: bytes | None = None):  # fmt: skip
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self.master = master  # the DNSSEC master key: writes to a signed zone sign what they change

    # -- reads --------------------------------------------------------------------------------
    async def zone(self, zone: str | uuid.UUID) -> asyncpg.Record:
        async with self.pool.acquire() as conn:
            return await _find_zone(conn, zone, lock=False)

    async def zones(self) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch("SELECT * FROM zones ORDER BY name")

    async def changes(self, zone: str | uuid.UUID) -> list[asyncpg.Record]:
        """The zone's change-log rows, oldest first."""
        async with self.pool.acquire() as conn:
            z = await _find_zone(conn, zone, lock=False)
            return await conn.fetch("SELECT * FROM zone_changes WHERE zone_id = $1 ORDER BY seq", z["id"])

    # -- writes -------------------------------------------------------------------------------
    async def create_zone(
        self,
        name: str,
        *,
        email: str,
        mname: str | None = None,
        ttl: int = 3600,
        refresh: int = 3600,
        retry: int = 600,
        expire: int = 1209600,
        minimum: int = 300,
        serial: int | None = None,
        serial_policy: str | None = None,
        project_id: str = "",
        description: str | None = None,
        rrsets: list[RRsetData] = (),
        edits: list[Edit] = (),
        source: str = "api",
        catalog_members: list[str] | None = None,
        catalog_attributes: dict | None = None,
        pool_id: uuid.UUID = DEFAULT_POOL_ID,
    ) -> Change:
        """Create a zone with its records in one transaction. `rrsets` come checked already (a zone
        file import); `edits` are checked here. The zone is added to every catalog zone whose member
        patterns match it. With `catalog_members` (name patterns) the zone is itself a catalog
        zone (RFC 9432): NS invalid., version "2", and a member entry for each existing zone that
        matches. A zone of `pool_id` that brings no apex NS RRset gets its pool's NS records
        (RFC 1034 §4.2.1; store/pools.py), and its SOA MNAME is then the pool's first NS unless
        `mname` is given."""
        origin = zone_name(name)
        policy = serial_policy or self.settings.serial_policy
        if policy not in POLICIES:
            raise Invalid(f"serial policy must be one of {', '.join(POLICIES)}")
        z = {
            "id": uuid.uuid4(), "name": origin.to_text().lower(), "project_id": project_id, "email": email,
            "mname": mname, "ttl": check_ttl(ttl), "refresh": refresh, "retry": retry,
            "expire": expire, "minimum": check_ttl(minimum),
            "serial": initial_serial(policy, self.clock()) if serial is None else serial % SERIAL_MOD,
            "serial_policy": policy, "description": description, "status": "PENDING", "action": "CREATE",
            "pool_id": pool_id,
        }  # fmt: skip
        if catalog_members is not None:
            z["type"] = "CATALOG"
            z["attributes"] = {"members": list(catalog_members) or ["*"], **(catalog_attributes or {})}
            edits = [Edit("add", "@", "NS", None, ("invalid.",)), Edit("add", "version", "TXT", None, ('"2"',)), *edits]
        hb = self.settings.heartbeat_name
        if hb and catalog_members is None:  # the new zone's first heartbeat; one in its file is replaced
            from .heartbeat import heartbeat_edit

            hb_owner = parse_owner(hb, origin).to_wire().lower()
            rrsets = [r for r in rrsets if not (r.owner == hb_owner and r.rtype == TXT)]
            edits = [*edits, heartbeat_edit(hb, z["serial"], self.clock())]
        apex = origin.to_wire().lower()
        async with self.pool.acquire() as conn, conn.transaction():
            if catalog_members is None and not _has_apex_ns(apex, rrsets, edits, origin):
                ns = await pool_nameservers(conn, pool_id)
                edits = [*edits, pool_ns_edit(pool_id, ns)]
                z["mname"] = z["mname"] or ns[0]
            z["mname"] = z["mname"] or f"ns1.{origin.to_text()}"
            edit = _Edits(origin, z["ttl"])
            for e in edits:
                edit.apply(e)

            def zone_rows() -> list[tuple]:
                """The rows of the edits and the SOA, at the zone's serial (soa_rdata checks email and mname)."""
                rows = [_rrset_row(z["id"], key, rr) for key, rr in edit.after.items()]
                rows.append(_soa_row(z, apex, soa_rdata(z, z["serial"])))
                return rows

            rows = zone_rows()
            if edits:
                _check_rows(rows, apex)
            zid = z["id"]
            # A zone file's RRsets (checked already) go in as they are: no id (the database makes it),
            # no description, not managed.
            bulk = [(zid, r.name, r.owner, r.rtype, r.ttl, r.records, r.wire()) for r in rrsets]
            cols = ", ".join(z)
            args = ", ".join(f"${i + 1}" for i in range(len(z)))
            inserted = await conn.fetchval(
                f"INSERT INTO zones ({cols}) VALUES ({args}) ON CONFLICT (name) DO NOTHING RETURNING id", *z.values()
            )
            if inserted is None:
                raise Conflict(f"zone {z['name']} exists")
            note = await _above_deleted(conn, z, self.clock())
            if note is not None:
                log.info("zone %s: %s", z["name"], note)
                if hb and catalog_members is None:
                    edit.apply(heartbeat_edit(hb, z["serial"], self.clock()))
                rows = zone_rows()
            await conn.copy_records_to_table("rrsets", records=rows, columns=_RRSET_COLUMNS)
            if bulk:
                await conn.copy_records_to_table("rrsets", records=bulk, columns=_BULK_COLUMNS)
            await conn.execute(
                "INSERT INTO zone_changes (zone_id, serial_from, serial_to, removed, added, source)"
                " VALUES ($1, NULL, $2, '', '', $3)",
                z["id"], z["serial"], source,
            )  # fmt: skip
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{z['id']} {z['serial']}")
            if await conn.fetchval("SELECT 1 FROM pool_targets WHERE pool_id = $1 LIMIT 1", pool_id):
                await conn.execute("SELECT pg_notify($1, 'secondaries')", CONFIG_CHANNEL)  # the pool's targets get it
            if catalog_members is None:
                await self._catalogs(conn, z["id"], z["name"], add=True, source=source, pool_id=pool_id)
            else:
                members = await conn.fetch("SELECT id, name, pool_id FROM zones WHERE type <> 'CATALOG'")
                entries = [Edit("add", _member(m["id"]), "PTR", 0, (m["name"],)) for m in members
                           if _lists(z["attributes"], m["name"], m["pool_id"])]  # fmt: skip
                if entries:
                    await self._change(conn, z["id"], entries, source, {})
        return Change(z["id"], z["name"], None, z["serial"], 0, len(rows) + len(bulk), note)

    async def _catalogs(self, conn, zone_id: uuid.UUID, name: str, *, add: bool, source: str,
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
            await self._change(conn, cat["id"], edits, source, {})

    async def delete_zone(self, zone: str | uuid.UUID, source: str = "api", *, catalogs: bool = True) -> Change:
        """Delete the zone; every server stops serving it. It leaves the catalog zones (RFC 9432
        §5.5: their consumers drop it) unless `catalogs` is false — an abandoned zone, which the
        secondaries are to keep (admin/abandon.py)."""
        async with self.pool.acquire() as conn, conn.transaction():
            z = await _find_zone(conn, zone, lock=True)
            await conn.execute("DELETE FROM zones WHERE id = $1", z["id"])
            await conn.execute(
                "INSERT INTO deleted_zone_serials (name, serial) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET serial = excluded.serial, deleted_at = now()",
                z["name"], z["serial"],
            )  # fmt: skip
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{z['id']} deleted")
            if z["type"] != "CATALOG" and catalogs:
                await self._catalogs(conn, z["id"], z["name"], add=False, source=source, pool_id=z["pool_id"])
        return Change(z["id"], z["name"], z["serial"], z["serial"], 0, 0)

    async def change(
        self, zone: str | uuid.UUID, edits: list[Edit] = (), *, source: str, fields: dict | None = None
    ) -> Change:
        """Apply `edits` (and new zone `fields`: email, ttl, SOA timers, description…) as one
        change with one new serial. A write that changes nothing commits nothing."""
        fields = dict(fields or {})
        unknown = set(fields) - _ZONE_FIELDS
        if unknown:
            raise Invalid(f"unknown zone field(s): {', '.join(sorted(unknown))}")
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._change(conn, zone, edits, source, fields)

    async def _change(self, conn, zone, edits, source: str, fields: dict, *, key_records: bool = False,
                      resign: bool = False) -> Change:  # fmt: skip
        """`change` inside the caller's transaction. `key_records` lets the edits write the apex
        DNSKEY/CDS/CDNSKEY RRsets, which users may not: for store/dnssec.py alone. `resign` signs
        a signed zone whole anew with its active keys (a key rollover's switch)."""
        z = dict(await _find_zone(conn, zone, lock=True))
        new_z = _checked_fields({**z, **fields})
        signing_z = z
        if z.get("dnssec") and min(new_z["ttl"], new_z["minimum"]) != min(z["ttl"], z["minimum"]):
            # The NSEC3 chain and NSEC3PARAM carry the negative TTL (RFC 9077 §3): all of them anew.
            signing_z, resign = {**z, "ttl": new_z["ttl"], "minimum": new_z["minimum"]}, True
        removed, added, wrote = await self._write(conn, signing_z, edits, new_z["ttl"], key_records, resign)
        if not (wrote or any(new_z[f] != z[f] for f in fields)):
            return Change(z["id"], z["name"], z["serial"], z["serial"], 0, 0)
        return await self._log(conn, z, new_z, removed, added, source, fields)

    async def _write(self, conn, z, edits, default_ttl: int, key_records: bool = False,
                     resign: bool = False) -> tuple[list, list, bool]:  # fmt: skip
        """A change's first half: `edits` checked against the zone's RRsets at the owners they
        touch and the rows written. (removed RRs, added RRs, whether any row changed). In a signed
        zone what changed is signed too (store/signing.py); `resign` signs the whole zone anew."""
        origin = dns.name.from_text(z["name"])
        edit = _Edits(origin, default_ttl, key_records)
        owners = {parse_owner(e.name, origin).to_wire().lower() for e in edits}
        if owners:
            edit.load(await conn.fetch(
                "SELECT * FROM rrsets WHERE zone_id = $1 AND owner = ANY($2::bytea[]) AND type <> $3",
                z["id"], list(owners), SOA,
            ))  # fmt: skip
        for e in edits:
            edit.apply(e)
        edit.check(origin.to_wire().lower())
        keys = await self._signing_keys(conn, z)
        if keys:
            from . import signing

            try:
                await signing.update(conn, z, edit, keys, self.clock())
            except signing.Full:
                resign = True
        removed, added, write, delete = edit.diff()
        if delete:
            await conn.executemany(
                "DELETE FROM rrsets WHERE zone_id = $1 AND owner = $2 AND type = $3",
                [(z["id"], owner, rtype) for owner, rtype in delete],
            )
        if write:
            await conn.executemany(_UPSERT, [_rrset_row(z["id"], key, rr) for key, rr in write])
        if keys and resign:
            gone, came = await signing.sign_whole(conn, z, keys, self.clock(), force=owners)
            removed, added = _then(removed, added, gone, came)
        return removed, added, bool(removed or added or write)

    async def refresh_signatures(self, zone: str | uuid.UUID) -> Change:
        """Re-sign what in a signed zone is nearing expiry (store/signing.REFRESH_LEFT of the
        validity left), as one change with a new serial so secondaries take it by IXFR before any
        signature they serve expires; a no-op (no new serial) when nothing is due."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._change(conn, zone, [], "dnssec", {}, resign=True)

    async def _signing_keys(self, conn, z) -> list | None:
        """The keys a signed zone's writes sign with; None for an unsigned zone. Unsignable when
        the zone is signed and this store has no master key to open its keys with."""
        if not z.get("dnssec"):
            return None
        if self.master is None:
            raise Unsignable(f"zone {z['name']} is signed: writing to it needs the DNSSEC master key "
                             "($MINIDNS_MASTER_KEY or dnssec_master_key_file)")  # fmt: skip
        from .dnssec import load_zone_keys

        keys = await load_zone_keys(conn, z["id"], self.master)
        return keys if any(k.signs_zone for k in keys) and any(k.signs_keys for k in keys) else None

    async def _log(self, conn, z: dict, new_z: dict, removed: list, added: list, source: str, fields: dict) -> Change:
        """A change's second half, for a zone row locked by the caller: the next serial, the SOA,
        the zone's fields, one change-log row holding `removed` and `added`, and the NOTIFY."""
        serial = next_serial(z["serial"], new_z["serial_policy"], self.clock())
        if self.settings.heartbeat_name and z.get("type") != "CATALOG":
            removed, added = await self._heartbeat(conn, z, new_z, serial, removed, added)
        old_soa, new_soa = soa_rdata(z, z["serial"]), soa_rdata(new_z, serial)
        apex = dns.name.from_text(z["name"]).to_wire().lower()
        await conn.execute(_UPSERT, *_soa_row(new_z, apex, new_soa))
        sets = ", ".join(f"{f} = ${i + 3}" for i, f in enumerate(fields))
        await conn.execute(
            f"UPDATE zones SET serial = $2, updated_at = now(){'' if 'status' in fields else _PENDING}"
            f"{', ' + sets if sets else ''} WHERE id = $1",
            z["id"], serial, *(new_z[f] for f in fields),
        )  # fmt: skip
        removed = [(apex, SOA, z["ttl"], old_soa), *removed]
        added = [(apex, SOA, new_z["ttl"], new_soa), *added]
        keys = await self._signing_keys(conn, z)
        if keys:  # each serial's SOA signed (RFC 4035 §2.2)
            from .signing import sign_soa

            gone, came = await sign_soa(conn, z, apex, new_z["ttl"], new_soa, keys, self.clock())
            removed, added = _then(removed, added, gone, came)
        seq = await conn.fetchval(
            "INSERT INTO zone_changes (zone_id, serial_from, serial_to, removed, added, source)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            z["id"], z["serial"], serial, pack_rrs(removed), pack_rrs(added), source,
        )  # fmt: skip
        await self._prune(conn, new_z, seq)
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{z['id']} {serial}")
        return Change(z["id"], z["name"], z["serial"], serial, len(removed) - 1, len(added) - 1)

    async def _heartbeat(self, conn, z: dict, new_z: dict, serial: int, removed: list, added: list) -> tuple[list, list]:
        """The heartbeat TXT (store/heartbeat.py) of this commit written beside the change, signed
        like any edit in a signed zone. A zone whose data forbid it there (a CNAME at that name) is
        written without it; the check fails before anything is written."""
        from .heartbeat import heartbeat_edit

        edit = heartbeat_edit(self.settings.heartbeat_name, serial, self.clock())
        try:
            gone, came, _ = await self._write(conn, z, [edit], new_z["ttl"])
        except Invalid as e:
            import logging

            logging.getLogger("minidns.heartbeat").warning("zone %s: no heartbeat written: %s", z["name"], e)
            return removed, added
        return _then(removed, added, gone, came)

    async def _prune(self, conn: asyncpg.Connection, z: dict, seq: int) -> None:
        """Change-log retention: keep the zone's newest `log_keep_count` rows, none older than
        `log_keep_seconds`, and always the row just written."""
        keep = z.get("log_keep_count") or self.settings.log_keep_count
        age = z.get("log_keep_seconds") or self.settings.log_keep_seconds
        await conn.execute(
            "DELETE FROM zone_changes WHERE zone_id = $1 AND seq < $2 AND (created_at < now() - make_interval(secs => $3)"
            " OR seq <= (SELECT seq FROM zone_changes WHERE zone_id = $1 ORDER BY seq DESC OFFSET $4 LIMIT 1))",
            z["id"], seq, float(age), keep,
        )  # fmt: skip


class ZoneLog:
    """Record changes to several zones inside one transaction, logged once per zone: each write
    goes to the RRset rows at once (`write`), and `flush` — before the commit — gives each zone it
    touched one new serial, SOA and change-log row holding the net difference of all of them. Event
    ingest applies a batch of events this way: one change per zone per batch, not one per event.

    A write made inside a savepoint is `kept` only once that savepoint is released, so a write that
    was rolled back is never logged. The net difference is kept per record: a record added and
    then removed again leaves nothing; one removed and then added back stays in both lists, which
    moves it to the end of its RRset — as the rows have it (RFC 1995 §4: deletions apply first).
    """

    def __init__(self, store: "Store", source: str):
        self.store, self.source = store, source
        self.rows: dict[uuid.UUID, dict] = {}  # zone rows read (and locked) in this transaction
        self.removed: dict[uuid.UUID, dict[tuple, int]] = {}  # (owner, type, rdata) → TTL
        self.added: dict[uuid.UUID, dict[tuple, int]] = {}
        self.sources: dict[uuid.UUID, set[str]] = {}

    async def zone(self, conn, zone: str | uuid.UUID) -> dict | None:
        """The zone's row, locked; read once per transaction. None when there is no such zone."""
        key = zone if isinstance(zone, uuid.UUID) else zone_name(zone).to_text().lower()
        if key not in self.rows:
            try:
                row = dict(await _find_zone(conn, zone, lock=True))
            except NotFound:
                return None
            self.rows[row["id"]] = self.rows[row["name"]] = row
        return self.rows[key]

    async def write(self, conn, zone_id: uuid.UUID, edits: list[Edit]) -> tuple | None:
        """Write `edits` to the zone's rows; what `keep` takes once the caller's savepoint holds."""
        z = await self.zone(conn, zone_id)
        if z is None:
            raise NotFound(f"zone {zone_id} does not exist")
        removed, added, wrote = await self.store._write(conn, z, edits, z["ttl"])
        return (zone_id, removed, added) if wrote else None

    def keep(self, written: tuple | None, source: str) -> None:
        if written is None:
            return
        zone_id, removed, added = written
        gone, came = self.removed.setdefault(zone_id, {}), self.added.setdefault(zone_id, {})
        self.sources.setdefault(zone_id, set()).add(source)
        for owner, rtype, ttl, rd in removed:
            key = (owner, rtype, rd)
            if came.get(key) == ttl:
                del came[key]
            else:
                gone[key] = ttl
        for owner, rtype, ttl, rd in added:
            came[(owner, rtype, rd)] = ttl

    async def flush(self, conn) -> list[Change]:
        """One change per zone written: serial, SOA, change-log row and NOTIFY."""
        changes = []
        for zone_id in sorted(self.sources, key=str):  # one order of row locks for every writer of this kind
            z = dict(await _find_zone(conn, zone_id, lock=True))  # the current serial
            sources = self.sources[zone_id]
            source = sources.pop() if len(sources) == 1 else self.source
            removed = [(o, t, ttl, rd) for (o, t, rd), ttl in self.removed[zone_id].items()]
            added = [(o, t, ttl, rd) for (o, t, rd), ttl in self.added[zone_id].items()]
            changes.append(await self.store._log(conn, z, z, removed, added, source, {}))
        self.rows.clear(), self.removed.clear(), self.added.clear(), self.sources.clear()
        return changes


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
    return any(parse_type(e.rtype) == NS and e.op != "delete" and parse_owner(e.name, origin) == origin for e in edits)


def _then(removed: list, added: list, gone: list, came: list) -> tuple[list, list]:
    """One difference (RFC 1995 §4: removals, then additions) for a difference followed by another:
    an RR the first added and the second removes is in neither; the others are kept as they are.
    RRs match by owner, type and data (a removal ignores the TTL, zones/changes.py)."""
    removing = {(o, t, rd) for o, t, _, rd in gone}
    kept = [a for a in added if (a[0], a[1], a[3]) not in removing]
    cancelled = {(o, t, rd) for o, t, _, rd in added} - {(o, t, rd) for o, t, _, rd in kept}
    return removed + [g for g in gone if (g[0], g[1], g[3]) not in cancelled], kept + came


def _soa_row(z: dict, apex: bytes, soa: bytes) -> tuple:
    text = dns.rdata.from_wire(dns.rdataclass.IN, SOA, soa, 0, len(soa)).to_text()
    wire = pack("!HIH", SOA, z["ttl"], len(soa)) + soa
    return (uuid.uuid4(), z["id"], z["name"], apex, SOA, z["ttl"], [text], wire, None, False, None, None, None, None, None)


def _check_rows(rows: list[tuple], apex: bytes) -> None:
    owners: dict[bytes, dict[int, int]] = {}
    for row in rows:
        owners.setdefault(row[3], {})[row[4]] = len(row[6])
    for owner, types in owners.items():
        check_owner_types(dns.name.from_wire(owner, 0)[0].to_text(), types, owner == apex)


def _checked_fields(z: dict) -> dict:
    for f in ("ttl", "minimum", "refresh", "retry", "expire"):
        check_ttl(z[f])
    if z["serial_policy"] not in POLICIES:
        raise Invalid(f"serial policy must be one of {', '.join(POLICIES)}")
    email_to_rname(z["email"])
    for f in ("log_keep_count", "log_keep_seconds"):
        if z.get(f) is not None and (not isinstance(z[f], int) or z[f] < 1):
            raise Invalid(f"{f} must be a positive whole number")
    return z


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


async def _find_zone(conn: asyncpg.Connection, zone: str | uuid.UUID, lock: bool) -> asyncpg.Record:
    lock_sql = " FOR UPDATE" if lock else ""
    if isinstance(zone, uuid.UUID):
        row = await conn.fetchrow("SELECT * FROM zones WHERE id = $1" + lock_sql, zone)
    else:
        name = zone_name(zone).to_text().lower()
        row = await conn.fetchrow("SELECT * FROM zones WHERE name = $1" + lock_sql, name)
    if row is None:
        raise NotFound(f"no zone {zone}")
    return row
