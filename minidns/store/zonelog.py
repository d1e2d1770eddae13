"""Changes to several zones in one transaction, logged once per zone (the batched form of the unit
of work, store/change.py): event ingest applies a batch of events this way — one new serial and
change-log row per zone per batch, not one per event."""

from __future__ import annotations

import uuid

from ..wire import SOA
from .change import Change, RowWrites, find_zone, log_change, write_edits
from .edits import Edit, edit_owner
from .records import NotFound, zone_name
from .rows import AT_OWNERS


class ZoneLog:
    """Record changes to several zones inside one transaction, logged once per zone: each write
    goes to the RRset rows at once (`write`), and `flush` — before the commit — gives each zone it
    touched one new serial, SOA and change-log row holding the net difference of all of them.

    A write made inside a savepoint is `kept` only once that savepoint is released, so a write that
    was rolled back is never logged. The net difference is kept per record: a record added and
    then removed again leaves nothing; one removed and then added back stays in both lists, which
    moves it to the end of its RRset — as the rows have it (RFC 1995 §4: deletions apply first).

    What the transaction reads of zones and of the RRsets at an owner is kept for it (the zone rows
    are locked, so no other writer changes either while it lasts): `prefetch_zones` and
    `prefetch_owners` read many at once, so a batch pays one round trip where each of its writers
    would pay its own. A write forgets the owners it touched (they are read again when asked);
    `forget_reads` drops everything read, after a savepoint is rolled back. With `hold_writes`, the
    rows an unsigned zone's writes make are written together (`settle`) before the next read of the
    table, here or by the caller, and before the change is logged.
    """

    def __init__(self, store, source: str, hold_writes: bool = False):
        self.store, self.source = store, source
        self.held = RowWrites() if hold_writes else None  # rows not written yet (`settle`)
        self.rows: dict[uuid.UUID, dict] = {}  # zone rows read (and locked) in this transaction
        self.removed: dict[uuid.UUID, dict[tuple, int]] = {}  # (owner, type, rdata) → TTL
        self.added: dict[uuid.UUID, dict[tuple, int]] = {}
        self.sources: dict[uuid.UUID, set[str]] = {}
        self.absent: set[str] = set()  # zone names read and not there
        self.owners: dict[tuple[uuid.UUID, bytes], list] = {}  # (zone id, owner) → its RRset rows but the SOA

    async def zone(self, conn, zone: str | uuid.UUID) -> dict | None:
        """The zone's row, locked; read once per transaction. None when there is no such zone."""
        key = zone if isinstance(zone, uuid.UUID) or zone in self.rows else zone_name(zone).to_text().lower()
        if key in self.absent:
            return None
        if key not in self.rows:
            try:
                row = dict(await find_zone(conn, zone, lock=True))
            except NotFound:
                return None
            self.rows[row["id"]] = self.rows[row["name"]] = row
        return self.rows[key]

    async def prefetch_zones(self, conn, names) -> None:
        """Read (and lock, in the order of their names) the zones of these names (absolute,
        lowercase) at once; the names with no zone are remembered as absent."""
        wanted = sorted(set(names) - self.rows.keys() - self.absent)
        if not wanted:
            return
        for r in await conn.fetch("SELECT * FROM zones WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE", wanted):
            row = dict(r)
            self.rows[row["id"]] = self.rows[row["name"]] = row
        self.absent.update(n for n in wanted if n not in self.rows)

    def made(self, name: str) -> None:
        """The zone `name` was created in this transaction: read it when it is asked for."""
        self.absent.discard(name)

    async def rrsets_at(self, conn, zone_id: uuid.UUID, owners) -> list:
        """The RRset rows (all columns) at these owners (lowercase wire form) of the zone, but the
        SOA; read once per transaction until a write touches the owner. The zone is locked first."""
        if zone_id not in self.rows and await self.zone(conn, zone_id) is None:
            return []
        await self.prefetch_owners(conn, [(zone_id, o) for o in owners])
        return [r for o in owners for r in self.owners[(zone_id, o)]]

    async def prefetch_owners(self, conn, pairs) -> None:
        """Read the RRsets at these (zone id, owner) pairs at once, for the zones read (and locked)
        in this transaction."""
        missing = self.unread_owners(pairs)
        if not missing:
            return
        await self.settle(conn)
        self.remember_owners(missing, await conn.fetch(AT_OWNERS, [z for z, _ in missing], [o for _, o in missing], SOA))

    def unread_owners(self, pairs) -> list:
        """Of these (zone id, owner) pairs, those not read yet, of the zones read (and locked)."""
        return sorted({p for p in pairs if p not in self.owners and p[0] in self.rows})

    def remember_owners(self, pairs, rows) -> None:
        """The RRset rows (but the SOA's) at `pairs` (from unread_owners), read by the caller with
        no writes held (`settle` first) — in a query of its own that reads other things too."""
        for p in pairs:
            self.owners[p] = []
        for r in rows:
            self.owners[(r["zone_id"], bytes(r["owner"]))].append(r)

    def forget_reads(self) -> None:
        """Drop what was read (the work that read it was rolled back to a savepoint)."""
        self.rows.clear(), self.absent.clear(), self.owners.clear()

    async def write(self, conn, zone_id: uuid.UUID, edits: list[Edit]) -> tuple | None:
        """Write `edits` to the zone's rows; what `keep` takes once the caller's savepoint holds."""
        z = await self.zone(conn, zone_id)
        if z is None:
            raise NotFound(f"zone {zone_id} does not exist")
        owners = owners_of(z, edits)
        rows = await self.rrsets_at(conn, zone_id, owners)
        for o in owners:
            del self.owners[(zone_id, o)]  # written: read again when asked
        if z.get("dnssec"):  # signing rewrites other owners too (the NSEC chain, RFC 4034 §4)
            self.owners = {k: v for k, v in self.owners.items() if k[0] != zone_id}
        removed, added, wrote = await write_edits(self.store, conn, z, edits, z["ttl"], rows=rows, held=self.held)
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

    async def settle(self, conn) -> None:
        """Write the rows held back, before anything reads the RRsets from the table."""
        if self.held:
            await self.held.flush(conn)

    async def flush(self, conn) -> list[Change]:
        """One change per zone written: serial, SOA, change-log row and NOTIFY."""
        await self.settle(conn)
        changes = []
        for zone_id in sorted(self.sources, key=str):  # one order of row locks for every writer of this kind
            z = self.rows.get(zone_id)  # read and locked in this transaction: its serial is still the current one
            if z is None:
                z = dict(await find_zone(conn, zone_id, lock=True))
            sources = self.sources[zone_id]
            source = sources.pop() if len(sources) == 1 else self.source
            removed = [(o, t, ttl, rd) for (o, t, rd), ttl in self.removed[zone_id].items()]
            added = [(o, t, ttl, rd) for (o, t, rd), ttl in self.added[zone_id].items()]
            changes.append(await log_change(self.store, conn, z, z, removed, added, source, {}))
        self.rows.clear(), self.removed.clear(), self.added.clear(), self.sources.clear()
        self.absent.clear(), self.owners.clear()
        return changes


def owners_of(z: dict, edits: list[Edit]) -> list[bytes]:
    """The owners (lowercase wire form) the edits touch, each once."""
    origin = zone_name(z["name"])
    return list(dict.fromkeys(edit_owner(origin, e.name).to_wire().lower() for e in edits))
