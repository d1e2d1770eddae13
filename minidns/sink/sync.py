"""The sync step: a resource's wanted RRsets (desired state) made so in its zones, through the
store's write path. RRsets carry the resource's provenance (managed_source, managed_resource_type,
managed_resource_id): those no longer wanted are deleted, wanted ones written; a human record is
never touched."""

from __future__ import annotations

import datetime
import ipaddress
import uuid
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

from ..store.rows import columns
from ..store.writer import Edit, Store, ZoneLog
from ..wire import SOA
from . import resources
from .settings import EventSettings

ADDRESS_RDATA = {"A": (dns.rdtypes.IN.A.A, dns.rdatatype.A), "AAAA": (dns.rdtypes.IN.AAAA.AAAA, dns.rdatatype.AAAA)}
HAVE = (
    "SELECT r.zone_id, z.name AS zone, r.name, r.type, r.records, r.managed_extra FROM rrsets r"
    " JOIN zones z ON z.id = r.zone_id WHERE r.managed AND r.managed_source = $1"
    " AND r.managed_resource_type = $2 AND r.managed_resource_id = $3"
)
HAVE_AND_AT = (  # the RRsets these resources made (made), and all those at these owners but the SOA
    "SELECT r.*, z.name AS zone, true AS made FROM rrsets r JOIN zones z ON z.id = r.zone_id"
    " JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (source, rtype, rid) ON r.managed_source = k.source"
    " AND r.managed_resource_type = k.rtype AND r.managed_resource_id = k.rid WHERE r.managed"
    " UNION ALL SELECT r.*, NULL, false FROM rrsets r JOIN unnest($4::uuid[], $5::bytea[]) AS w (zone_id, owner)"
    " ON r.zone_id = w.zone_id AND r.owner = w.owner WHERE r.type <> $6"
)


@dataclass(frozen=True)
class Ident:
    """A resource's provenance, as stored on each RRset it made."""

    source: str
    rtype: str
    rid: str
    tenant: str | None = None
    extra: dict | None = None

    def managed(self) -> dict:
        return {"source": self.source, "resource_type": self.rtype, "resource_id": self.rid,
                "tenant_id": self.tenant, "extra": self.extra}  # fmt: skip

    def owns(self, row) -> bool:
        return bool(row["managed"]) and (row["managed_source"], row["managed_resource_type"],
                                         row["managed_resource_id"]) == (self.source, self.rtype, self.rid)  # fmt: skip


@dataclass
class Want:
    """One RRset a resource wants: its zone, owner, type and records (text)."""

    zone_id: uuid.UUID
    zone: str
    owner: dns.name.Name
    rtype: str
    records: tuple[str, ...]


def rdatas(rtype: str, records: tuple[str, ...]) -> tuple:
    """Addresses as the A and AAAA rdata they are (dnspython's constructors check them, for about
    half of what parsing their text in the store costs); other records, and any they refuse, as
    text (the store then says what is wrong with it)."""
    made = ADDRESS_RDATA.get(rtype)
    if made is None:
        return records
    try:
        return tuple(made[0](dns.rdataclass.IN, made[1], r) for r in records)
    except dns.exception.DNSException:
        return records


def same_records(rtype: str, a, b) -> bool:
    return set(norm(rtype, a)) == set(norm(rtype, b))


def norm(rtype: str, records) -> list[str]:
    if rtype in ("A", "AAAA"):
        return [str(ipaddress.ip_address(r)) for r in records]
    return [r.lower() for r in records]


@dataclass
class Plan:
    """The edits, per zone, that make a resource's RRsets the wanted ones, and the change entries
    (op add / replace / remove) an event reports."""

    ident: Ident
    edits: dict = field(default_factory=dict)  # zone id → [Edit]
    log: dict = field(default_factory=dict)  # zone id → [change entry]

    def add(self, zone_id: uuid.UUID, edit: Edit, entry: dict) -> None:
        self.edits.setdefault(zone_id, []).append(edit)
        self.log.setdefault(zone_id, []).append(entry)

    def remove(self, h) -> None:
        self.add(h["zone_id"], Edit("delete", h["name"], h["type"]),
                 {"op": "remove", "zone": h["zone"], "name": h["name"], "type": dns.rdatatype.to_text(h["type"]),
                  "records": list(h["records"])})  # fmt: skip

    def replace(self, h, w: Want) -> None:
        rtype = dns.rdatatype.to_text(h["type"])
        if same_records(rtype, w.records, h["records"]) and (h["managed_extra"] or None) == (self.ident.extra or None):
            return
        self.add(w.zone_id, Edit("replace", h["name"], h["type"], None, rdatas(rtype, w.records), managed=self.ident.managed()),
                 {"op": "replace", "zone": w.zone, "name": h["name"], "type": rtype, "records": list(w.records),
                  "previous": list(h["records"])})  # fmt: skip

    def create(self, w: Want) -> None:
        owner = w.owner.to_text().lower()
        self.add(w.zone_id, Edit("replace", w.owner, w.rtype, None, rdatas(w.rtype, w.records), managed=self.ident.managed()),
                 {"op": "add", "zone": w.zone, "name": owner, "type": w.rtype, "records": list(w.records)})  # fmt: skip

    def zones(self) -> list:
        """The zones to write, in the order of their names."""
        return sorted(self.edits, key=lambda z: min(e["zone"] for e in self.log[z]))


def plan(ident: Ident, have: list, wants: list[Want]) -> Plan:
    """What makes the RRsets `have` (rows carrying `ident`) exactly `wants`."""
    want = {(w.zone_id, w.owner.to_text().lower(), dns.rdatatype.from_text(w.rtype)): w for w in wants}
    p, seen = Plan(ident), set()
    for h in have:
        key = (h["zone_id"], h["name"], h["type"])
        if key in want:
            seen.add(key)
            p.replace(h, want[key])
        else:
            p.remove(h)
    for key, w in want.items():
        if key not in seen:
            p.create(w)
    return p


class Made:
    """The RRsets each resource made (HAVE), by its Ident. Applying a batch of events (`batched`),
    those of the batch's resources are read at once (`prefetch`) and kept until the resource's
    records are written; else each is read when asked."""

    def __init__(self, conn, log: ZoneLog, batched: bool):
        self.conn, self.log, self.batched = conn, log, batched
        self.rows: dict[tuple[str, str, str], list] = {}

    async def prefetch(self, idents, owners=()) -> None:
        """Read the RRsets these resources made, and (for the ZoneLog) those at these (zone id,
        owner) pairs, in one query."""
        keys = sorted({(i.source, i.rtype, i.rid) for i in idents} - self.rows.keys())
        pairs = self.log.unread_owners(owners)
        if not self.batched or not (keys or pairs):
            return
        await self.log.settle(self.conn)
        for k in keys:
            self.rows[k] = []
        rows = await self.conn.fetch(HAVE_AND_AT, *columns(keys, 3), *columns(pairs, 2), SOA)
        for r in rows:
            if r["made"]:
                self.rows[(r["managed_source"], r["managed_resource_type"], r["managed_resource_id"])].append(r)
        self.log.remember_owners(pairs, [r for r in rows if not r["made"]])

    async def of(self, ident: Ident) -> list:
        key = (ident.source, ident.rtype, ident.rid)
        if key in self.rows:
            return self.rows[key]
        await self.log.settle(self.conn)
        rows = await self.conn.fetch(HAVE, *key)
        if self.batched:
            self.rows[key] = rows
        return rows

    def forget(self, ident: Ident | None = None) -> None:
        """The resource's records were written (all resources': None): read them again when asked."""
        if ident is None:
            self.rows.clear()
        else:
            self.rows.pop((ident.source, ident.rtype, ident.rid), None)


@dataclass
class Scope:
    """What the events of a batch (or a reconcile) share in their transaction: the store and its
    change log per zone (ZoneLog), what is known of the resources, and the RRsets they made."""

    conn: object
    store: Store
    settings: EventSettings
    log: ZoneLog
    resources: resources.Resources
    made: Made

    @classmethod
    def of(cls, conn, store: Store, settings: EventSettings, log: ZoneLog, batched: bool) -> Scope:
        return cls(conn, store, settings, log, resources.Resources(conn, batched), Made(conn, log, batched))

    def forget(self) -> None:
        """What was read may have been rolled back (to a savepoint): read it again when asked."""
        self.log.forget_reads()
        self.made.forget()


class Run:
    """One event's (or reconcile's) work inside its transaction."""

    def __init__(self, scope: Scope, source: str, message_id: str | None, event_time: datetime.datetime | None):
        self.scope = scope
        self.conn, self.store, self.settings, self.log = scope.conn, scope.store, scope.settings, scope.log
        self.resources = scope.resources
        self.source, self.message_id, self.event_time = source, message_id, event_time
        self.changes: list[dict] = []
        self.notes: list[str] = []
        self.written: list = []  # ZoneLog.write results, kept by the log once the savepoint holds

    async def zone(self, name: str) -> dict | None:
        """The zone row (locked for the transaction), or None when there is no such zone."""
        return await self.log.zone(self.conn, name)

    async def sync(self, ident: Ident, wants: list[Want]) -> None:
        """Make the RRsets carrying `ident`'s provenance exactly `wants`."""
        p = plan(ident, await self.scope.made.of(ident), wants)
        if p.edits:
            self.scope.made.forget(ident)
        for zone_id in p.zones():
            self.written.append(await self.log.write(self.conn, zone_id, p.edits[zone_id]))
            self.changes += p.log[zone_id]

    async def write(self, zone_id: uuid.UUID, edits: list[Edit]) -> None:
        """Write to the zone's rows; its change-log row is the batch's (writer.ZoneLog)."""
        self.scope.made.forget()  # whatever it overwrote is read again
        self.written.append(await self.log.write(self.conn, zone_id, edits))

    def keep(self, source: str) -> None:
        """The work holds (its savepoint released): the batch's change log takes its writes."""
        for written in self.written:
            self.log.keep(written, source)

    def forget(self) -> None:
        """The work was rolled back to its savepoint: nothing of it is kept."""
        self.changes, self.notes, self.written = [], [], []

    async def resource(self, source: str, rtype: str, rid: str):
        return await self.resources.get(source, rtype, rid)

    def skip_reason(self, row, what: str) -> str | None:
        return resources.skip_reason(row, what, self.event_time)

    async def put(self, source: str, rtype: str, rid: str, state: str, tenant: str | None, data: dict) -> None:
        await self.resources.put(source, rtype, rid, state, tenant, data, self.event_time, self.message_id)
