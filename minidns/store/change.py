"""The unit of work: one change to one zone in one transaction — the zone row locked, the edits
applied to its RRset rows, the signing stage it is handed run over what changed, the SOA serial
bumped once (RFC 1982), one change-log row holding the difference (RFC 1995 §4 form) appended and
the zone id and serial NOTIFYed on commit. Holding the zone row's lock from the read of the old
serial to the commit is what keeps concurrent writers from losing an update or reusing a serial.

    async with store.change(zone, source="api") as w:      # its own transaction
        w.replace("www", "A", (rdata,), ttl=300)
    async with store.change(zone, source="api", conn=conn) as w:   # joins the caller's
        ...
    change = await store.change(zone, edits, source="cli")  # the short form
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable

import asyncpg
import dns.name

from ..wire import SOA
from ..zones.changes import pack_rrs
from .db import CHANNEL
from .edits import Edit, ResignWhole, RRsetEdits, then
from .records import Invalid, NotFound, Unsignable, check_ttl, email_to_rname, parse_type, zone_name
from .rows import AT_OWNERS, ATTRIBUTES, DELETE_MANY, RRSET_COLUMNS, UPSERT, UPSERT_MANY, columns, many_rows, rrset_row, soa_rdata, soa_row, upsert
from .serial import POLICIES, next_serial, serial_gt

ZONE_FIELDS = {
    "email", "mname", "ttl", "refresh", "retry", "expire", "minimum", "description", "serial_policy",
    "log_keep_count", "log_keep_seconds", "project_id", "attributes", "status", "action", "pool_id",
}  # fmt: skip
# A change leaves the zone PENDING until the servers have seen its secondaries take it
# (server/notify.py writes ACTIVE or ERROR), as Designate reports a zone's status.
_PENDING = ", status = 'PENDING', action = 'UPDATE'"
heartbeat_log = logging.getLogger("minidns.heartbeat")
_ATTRIBUTE_TYPES = {"ttl_default": "bool", "project_id": "text", "description": "text"}


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
    logged: tuple | None = None  # (seq, removed, added as the change log packs them): its change-log row


@dataclass(frozen=True, slots=True)
class StoreSettings:
    serial_policy: str = "increment"  # for zones created without one
    log_keep_count: int = 1000  # change-log rows kept per zone, unless the zone says otherwise
    log_keep_seconds: int = 7 * 86400
    heartbeat_name: str | None = None  # store/heartbeat.py: every change writes this TXT too
    pool_nameservers: tuple[str, ...] = ()  # the default pool's NS records ("host." or "host.:priority"); store/pools.py


@dataclass(frozen=True, slots=True)
class SigningStage:
    """How a change to a signed zone is signed (store/signing.py, with the zone's keys from
    store/dnssec.py), handed to the Store by whoever composes it (store/stages.py)."""

    zone_keys: Callable[..., Awaitable[list]]  # (conn, zone_id, master) → the zone's keys, unsealed
    update: Callable[..., Awaitable[None]]  # (conn, z, RRsetEdits, keys, now); raises ResignWhole
    sign_whole: Callable[..., Awaitable[tuple[list, list]]]  # (conn, z, keys, now, force) → (gone, came)
    sign_soa: Callable[..., Awaitable[tuple[list, list]]]  # (conn, z, apex, ttl, soa, keys, now) → (gone, came)


@dataclass(frozen=True, slots=True)
class Stages:
    """The stages a Store runs inside each change: signing (signed zones), and the heartbeat
    record ((name, serial, now) → the Edit writing it; store/heartbeat.py) when configured."""

    signing: SigningStage | None = None
    heartbeat: Callable[[str, int, float], Edit] | None = None


async def find_zone(conn: asyncpg.Connection, zone: str | uuid.UUID, lock: bool) -> asyncpg.Record:
    """The zone's row by id or name, with `lock` locked FOR UPDATE; NotFound when there is none."""
    lock_sql = " FOR UPDATE" if lock else ""
    if isinstance(zone, uuid.UUID):
        row = await conn.fetchrow("SELECT * FROM zones WHERE id = $1" + lock_sql, zone)
    else:
        name = zone_name(zone).to_text().lower()
        row = await conn.fetchrow("SELECT * FROM zones WHERE name = $1" + lock_sql, name)
    if row is None:
        raise NotFound(f"no zone {zone}")
    return row


def _check_field_names(fields: dict) -> None:
    unknown = set(fields) - ZONE_FIELDS
    if unknown:
        raise Invalid(f"unknown zone field(s): {', '.join(sorted(unknown))}")


def checked_fields(z: dict) -> dict:
    """A zone row's fields as a change leaves them, checked; Invalid naming the first bad one."""
    for f in ("ttl", "minimum", "refresh", "retry", "expire"):
        check_ttl(z[f])
    if z["serial_policy"] not in POLICIES:
        raise Invalid(f"serial policy must be one of {', '.join(POLICIES)}")
    email_to_rname(z["email"])
    for f in ("log_keep_count", "log_keep_seconds"):
        if z.get(f) is not None and (not isinstance(z[f], int) or z[f] < 1):
            raise Invalid(f"{f} must be a positive whole number")
    return z


class ZoneChange:
    """One change to one zone: `async with` it (a transaction of its own, or with `conn` the
    caller's, already open), queue edits, fields and row attributes; leaving the block applies them
    as one change — or, awaited, the edits given. `change` then holds what was done. A change
    that alters nothing commits nothing (no new serial) unless `bump`. `key_records` lets the
    edits write the apex DNSKEY/CDS/CDNSKEY RRsets (DNSSEC key management alone); `resign` signs a
    signed zone whole anew with its active keys (a key change, a rollover's switch)."""

    def __init__(self, store, zone: str | uuid.UUID, edits=(), *, source: str, fields: dict | None = None,
                 conn=None, key_records: bool = False, resign: bool = False, bump: bool = False,
                 serial: int | None = None):  # fmt: skip
        self.store, self.zone_ref, self.source, self.conn = store, zone, source, conn
        self.serial = serial
        self.rows = None  # the RRset rows at the edits' owners (but the SOA), when the caller has read them
        self.edits: list[Edit] = list(edits)
        self.fields = dict(fields or {})
        self.key_records, self.resign, self.bump = key_records, resign, bump
        self.attributes: list[tuple] = []
        self.adopted: list[str] = []
        self.zone: dict | None = None  # the zone's row, locked, once entered
        self.change: Change | None = None
        self._own = None  # the connection and transaction this change opened itself

    # -- what to change ------------------------------------------------------------------------
    def edit(self, *edits: Edit) -> None:
        self.edits.extend(edits)

    def replace(self, name, rtype, records, ttl: int | None = None, **meta) -> None:
        self.edits.append(Edit("replace", name, rtype, ttl, tuple(records), **meta))

    def create(self, name, rtype, records, ttl: int | None = None, **meta) -> None:
        self.edits.append(Edit("create", name, rtype, ttl, tuple(records), **meta))

    def add(self, name, rtype, records, ttl: int | None = None, **meta) -> None:
        self.edits.append(Edit("add", name, rtype, ttl, tuple(records), **meta))

    def remove(self, name, rtype, records=()) -> None:
        self.edits.append(Edit("remove", name, rtype, None, tuple(records)))

    def delete(self, name, rtype) -> None:
        self.edits.append(Edit("delete", name, rtype))

    def set_fields(self, **fields) -> None:
        """New zone fields (email, ttl, SOA timers, description…) for this change."""
        _check_field_names(fields)
        self.fields.update(fields)

    def set_attributes(self, name, rtype, **attributes) -> None:
        """Row attributes of an RRset this change leaves in place (ttl_default, project_id,
        description — None clears it): kept by the API beside the data, never logged, so setting
        them alone makes no new serial."""
        unknown = set(attributes) - set(ATTRIBUTES)
        if unknown:
            raise Invalid(f"unknown RRset attribute(s): {', '.join(sorted(unknown))}")
        self.attributes.append((name, rtype, attributes))

    def adopt_rrsets(self, project_id: str) -> None:
        """The RRsets `project_id` made in the zone as a project it was shared with become simply
        the zone owner's (a zone transfer to that project): their row attribute project_id cleared."""
        self.adopted.append(project_id)

    # -- the transaction -----------------------------------------------------------------------
    async def __aenter__(self) -> ZoneChange:
        _check_field_names(self.fields)
        if self.conn is None:
            await self._begin()
        try:
            self.zone = dict(await find_zone(self.conn, self.zone_ref, lock=True))
        except BaseException as e:
            await self._close(e)
            raise
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            try:
                self.change = await self._apply()
            except BaseException as e:
                await self._close(e)
                raise
        await self._close(exc)

    def __await__(self):
        return self._run().__await__()

    async def _run(self) -> Change:
        async with self:
            pass
        return self.change

    async def _begin(self) -> None:
        """A connection and transaction of this change's own."""
        acquiring = self.store.pool.acquire()
        conn = await acquiring.__aenter__()
        try:
            tx = conn.transaction()
            await tx.start()
        except BaseException as e:
            await acquiring.__aexit__(type(e), e, e.__traceback__)
            raise
        self._own, self.conn = (acquiring, tx), conn

    async def _close(self, exc: BaseException | None) -> None:
        if self._own is None:
            return
        (acquiring, tx), self._own = self._own, None
        try:
            if exc is None:
                await tx.commit()
            else:
                await tx.rollback()
        finally:
            self.conn = None
            await acquiring.__aexit__(None, None, None)
        if exc is None and self.change is not None:
            self.store.taken([self.change])

    async def _apply(self) -> Change:
        conn, z = self.conn, self.zone
        new_z = checked_fields({**z, **self.fields})
        signing_z, resign = z, self.resign
        if z.get("dnssec") and min(new_z["ttl"], new_z["minimum"]) != min(z["ttl"], z["minimum"]):
            # The NSEC3 chain and NSEC3PARAM carry the negative TTL (RFC 9077 §3): all of them anew.
            signing_z, resign = {**z, "ttl": new_z["ttl"], "minimum": new_z["minimum"]}, True
        removed, added, wrote = await write_edits(self.store, conn, signing_z, self.edits, new_z["ttl"],
                                                  self.key_records, resign, rows=self.rows)  # fmt: skip
        if self.attributes:
            await self._write_attributes()
        for project_id in self.adopted:
            await conn.execute("UPDATE rrsets SET project_id = NULL WHERE zone_id = $1 AND project_id = $2", z["id"], project_id)
        ahead = self.serial is not None and serial_gt(self.serial, z["serial"])
        if not (wrote or self.bump or ahead or any(new_z[f] != z[f] for f in self.fields)):
            return Change(z["id"], z["name"], z["serial"], z["serial"], 0, 0)
        return await log_change(self.store, conn, z, new_z, removed, added, self.source, self.fields,
                                self.serial if ahead else None)  # fmt: skip

    async def _write_attributes(self) -> None:
        origin = dns.name.from_text(self.zone["name"])
        edits = RRsetEdits(origin, 0)
        by_column: dict[str, list[tuple]] = {}
        for name, rtype, attributes in self.attributes:
            owner = edits.owner(name).to_wire().lower()
            for column, value in attributes.items():
                by_column.setdefault(column, []).append((owner, parse_type(rtype), value))
        for column, rows in by_column.items():
            await self.conn.execute(
                f"UPDATE rrsets SET {column} = v.x FROM unnest($2::bytea[], $3::int[], $4::{_ATTRIBUTE_TYPES[column]}[])"
                " AS v(o, t, x) WHERE rrsets.zone_id = $1 AND rrsets.owner = v.o AND rrsets.type = v.t",
                self.zone["id"], *map(list, zip(*rows)),
            )  # fmt: skip


async def write_edits(store, conn, z: dict, edits, default_ttl: int, key_records: bool = False,
                      resign: bool = False, rows: list | None = None,
                      held: RowWrites | None = None) -> tuple[list, list, bool]:  # fmt: skip
    """A change's first half: `edits` checked against the zone's RRsets at the owners they
    touch and the rows written. (removed RRs, added RRs, whether any row changed). In a signed
    zone what changed is signed too (the store's signing stage); `resign` signs the whole zone anew.
    `rows` are the RRset rows at those owners (but the SOA) when the caller has read them; with
    `held`, the rows of an unsigned zone are not written yet but added to it (the caller writes
    them before anything reads them)."""
    origin = zone_name(z["name"])
    edit = RRsetEdits(origin, default_ttl, key_records)
    owners = {edit.owner(e.name).to_wire().lower() for e in edits}
    if rows is not None:
        edit.load(rows)
    elif owners:
        edit.load(await conn.fetch(
            AT_OWNERS, [z["id"]] * len(owners), list(owners), SOA,
        ))  # fmt: skip
    for e in edits:
        edit.apply(e)
    edit.check(origin.to_wire().lower())
    keys = await signing_keys(store, conn, z)
    if keys:
        try:
            await store.stages.signing.update(conn, z, edit, keys, store.clock())
        except ResignWhole:
            resign = True
    removed, added, write, delete = edit.diff()
    rw = held if held is not None and not keys else RowWrites()
    rw.add(z["id"], delete, [rrset_row(z["id"], key, rr) for key, rr in write])
    if rw is not held:
        await rw.flush(conn)
    if keys and resign:
        gone, came = await store.stages.signing.sign_whole(conn, z, keys, store.clock(), force=owners)
        removed, added = then(removed, added, gone, came)
    return removed, added, bool(removed or added or write)


class RowWrites:
    """RRset rows to write and to delete, the last word on each (zone, owner, type) kept: written
    together by `flush`, a DELETE and an upsert of many rows each."""

    def __init__(self):
        self.rows: dict[tuple, tuple | None] = {}  # (zone id, owner, type) → the row, None to delete

    def add(self, zone_id, delete, write: list[tuple]) -> None:
        for owner, rtype in delete:
            self.rows[(zone_id, owner, rtype)] = None
        for row in write:
            self.rows[(zone_id, row[3], row[4])] = row

    def __bool__(self) -> bool:
        return bool(self.rows)

    async def flush(self, conn) -> None:
        """Two statements at most, however many rows: a DELETE of the gone, an upsert of the kept."""
        rows, self.rows = self.rows, {}
        gone = [key for key, row in rows.items() if row is None]
        if gone:
            await conn.execute(DELETE_MANY, *columns(gone, 3))
        kept = [row for row in rows.values() if row is not None]
        if len(kept) == 1:
            await conn.execute(UPSERT, *kept[0])
        elif kept:
            await conn.execute(UPSERT_MANY, *many_rows(kept))


async def signing_keys(store, conn, z: dict) -> list | None:
    """The keys a signed zone's writes sign with; None for an unsigned zone. Unsignable when
    the zone is signed and the store has no master key to open its keys with (or no signing stage)."""
    if not z.get("dnssec"):
        return None
    if store.stages.signing is None:
        raise Unsignable(f"zone {z['name']} is signed: this store was composed without a signing stage (store/stages.py)")
    if store.master is None:
        raise Unsignable(f"zone {z['name']} is signed: writing to it needs the DNSSEC master key "
                         "($MINIDNS_MASTER_KEY or dnssec_master_key_file)")  # fmt: skip
    keys = await store.stages.signing.zone_keys(conn, z["id"], store.master)
    return keys if any(k.signs_zone for k in keys) and any(k.signs_keys for k in keys) else None


async def log_change(store, conn, z: dict, new_z: dict, removed: list, added: list, source: str, fields: dict,
                     serial: int | None = None) -> Change:  # fmt: skip
    """A change's second half, for a zone row locked by the caller: the next serial (`serial`
    when the writer set one), the SOA, the zone's fields, one change-log row holding `removed` and
    `added`, and the NOTIFY."""
    if serial is None:
        serial = next_serial(z["serial"], new_z["serial_policy"], store.clock())
    if store.settings.heartbeat_name and store.stages.heartbeat and z.get("type") != "CATALOG":
        removed, added = await _heartbeat(store, conn, z, new_z, serial, removed, added)
    old_soa, new_soa = soa_rdata(z, z["serial"]), soa_rdata(new_z, serial)
    apex = dns.name.from_text(z["name"]).to_wire().lower()
    soa = soa_row(new_z, apex, new_soa)
    removed = [(apex, SOA, z["ttl"], old_soa), *removed]
    added = [(apex, SOA, new_z["ttl"], new_soa), *added]
    keys = await signing_keys(store, conn, z)
    if keys:  # each serial's SOA signed (RFC 4035 §2.2): the signing stage reads the SOA row written
        await conn.execute(UPSERT, *soa)
        gone, came = await store.stages.signing.sign_soa(conn, z, apex, new_z["ttl"], new_soa, keys, store.clock())
        removed, added = then(removed, added, gone, came)
    gone, came = pack_rrs(removed), pack_rrs(added)
    seq = await conn.fetchval(
        _logged(tuple(fields), "status" not in fields, with_soa=not keys),
        z["id"], z["serial"], serial, gone, came, source,
        float(new_z.get("log_keep_seconds") or store.settings.log_keep_seconds),
        (new_z.get("log_keep_count") or store.settings.log_keep_count) - 1, CHANNEL, f"{z['id']} {serial}",
        *(() if keys else soa), *(new_z[f] for f in fields),
    )  # fmt: skip
    return Change(z["id"], z["name"], z["serial"], serial, len(removed) - 1, len(added) - 1, logged=(seq, gone, came))


async def _heartbeat(store, conn, z: dict, new_z: dict, serial: int, removed: list, added: list) -> tuple[list, list]:
    """The heartbeat TXT of this commit written beside the change, signed like any edit in a
    signed zone. A zone whose data forbid it there (a CNAME at that name) is written without it;
    the check fails before anything is written."""
    edit = store.stages.heartbeat(store.settings.heartbeat_name, serial, store.clock())
    try:
        gone, came, _ = await write_edits(store, conn, z, [edit], new_z["ttl"])
    except Invalid as e:
        heartbeat_log.warning("zone %s: no heartbeat written: %s", z["name"], e)
        return removed, added
    return then(removed, added, gone, came)


@functools.lru_cache(maxsize=64)
def _logged(fields: tuple[str, ...], pending: bool, with_soa: bool) -> str:
    """The statement that ends a change in one round trip: the SOA row (`with_soa`: parameters
    $11–$25), the zone's serial and fields, the change-log row, the retention (keep the zone's
    newest `log_keep_count` rows, none older than `log_keep_seconds`, always the row just written:
    the DELETE sees the rows from before this statement, so it keeps count − 1 of them) and the
    NOTIFY (sent at commit)."""
    first = 11 + (len(RRSET_COLUMNS) if with_soa else 0)
    sets = "".join(f", {f} = ${i + first}" for i, f in enumerate(fields))
    soa = upsert(11).strip() if with_soa else ""
    return (
        (f"WITH s AS ({soa})," if with_soa else "WITH")
        + f" z AS (UPDATE zones SET serial = $3, updated_at = now(){_PENDING if pending else ''}{sets} WHERE id = $1),"
        " c AS (INSERT INTO zone_changes (zone_id, serial_from, serial_to, removed, added, source)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq),"
        " p AS (DELETE FROM zone_changes WHERE zone_id = $1 AND (created_at < now() - make_interval(secs => $7)"
        " OR seq <= (SELECT seq FROM zone_changes WHERE zone_id = $1 ORDER BY seq DESC OFFSET $8 LIMIT 1)))"
        " SELECT seq, pg_notify($9, $10) FROM c"
    )


