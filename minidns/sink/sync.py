"""The sync step: a resource's wanted RRsets (desired state) made so in its zones, through the
store's write path. RRsets carry the resource's provenance (managed_source, managed_resource_type,
managed_resource_id): those no longer wanted are deleted, wanted ones written; a human record is
never touched."""

from __future__ import annotations

import datetime
import ipaddress
import uuid
from dataclasses import dataclass, field

import asyncpg
import dns.name
import dns.rdatatype

from ..store.writer import Edit, Store, ZoneLog
from . import resources
from .settings import EventSettings

HAVE = (
    "SELECT r.zone_id, z.name AS zone, r.name, r.type, r.records, r.managed_extra FROM rrsets r"
    " JOIN zones z ON z.id = r.zone_id WHERE r.managed AND r.managed_source = $1"
    " AND r.managed_resource_type = $2 AND r.managed_resource_id = $3"
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
        self.add(w.zone_id, Edit("replace", h["name"], h["type"], None, w.records, managed=self.ident.managed()),
                 {"op": "replace", "zone": w.zone, "name": h["name"], "type": rtype, "records": list(w.records),
                  "previous": list(h["records"])})  # fmt: skip

    def create(self, w: Want) -> None:
        owner = w.owner.to_text().lower()
        self.add(w.zone_id, Edit("replace", owner, w.rtype, None, w.records, managed=self.ident.managed()),
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


class Run:
    """One event's (or reconcile's) work inside its transaction."""

    def __init__(self, conn, store: Store, settings: EventSettings, log: ZoneLog, source: str,
                 message_id: str | None, event_time: datetime.datetime | None):  # fmt: skip
        self.conn, self.store, self.settings, self.log = conn, store, settings, log
        self.source, self.message_id, self.event_time = source, message_id, event_time
        self.changes: list[dict] = []
        self.notes: list[str] = []
        self.written: list = []  # ZoneLog.write results, kept by the log once the savepoint holds

    async def zone(self, name: str) -> dict | None:
        """The zone row (locked for the transaction), or None when there is no such zone."""
        return await self.log.zone(self.conn, name)

    async def sync(self, ident: Ident, wants: list[Want]) -> None:
        """Make the RRsets carrying `ident`'s provenance exactly `wants`."""
        have = await self.conn.fetch(HAVE, ident.source, ident.rtype, ident.rid)
        p = plan(ident, have, wants)
        for zone_id in p.zones():
            await self.write(zone_id, p.edits[zone_id])
            self.changes += p.log[zone_id]

    async def write(self, zone_id: uuid.UUID, edits: list[Edit]) -> None:
        """Write to the zone's rows; its change-log row is the batch's (writer.ZoneLog)."""
        self.written.append(await self.log.write(self.conn, zone_id, edits))

    def keep(self, source: str) -> None:
        """The work holds (its savepoint released): the batch's change log takes its writes."""
        for written in self.written:
            self.log.keep(written, source)

    def forget(self) -> None:
        """The work was rolled back to its savepoint: nothing of it is kept."""
        self.changes, self.notes, self.written = [], [], []

    async def resource(self, source: str, rtype: str, rid: str) -> asyncpg.Record | None:
        return await resources.fetch(self.conn, source, rtype, rid)

    def skip_reason(self, row, what: str) -> str | None:
        return resources.skip_reason(row, what, self.event_time)

    async def put(self, source: str, rtype: str, rid: str, state: str, tenant: str | None, data: dict) -> None:
        await resources.put(self.conn, source, rtype, rid, state, tenant, data, self.event_time, self.message_id)
