"""Changes to several zones in one transaction, logged once per zone (the batched form of the unit
of work, store/change.py): event ingest applies a batch of events this way — one new serial and
change-log row per zone per batch, not one per event."""

from __future__ import annotations

import uuid

from .change import Change, find_zone, log_change, write_edits
from .edits import Edit
from .records import NotFound, zone_name


class ZoneLog:
    """Record changes to several zones inside one transaction, logged once per zone: each write
    goes to the RRset rows at once (`write`), and `flush` — before the commit — gives each zone it
    touched one new serial, SOA and change-log row holding the net difference of all of them.

    A write made inside a savepoint is `kept` only once that savepoint is released, so a write that
    was rolled back is never logged. The net difference is kept per record: a record added and
    then removed again leaves nothing; one removed and then added back stays in both lists, which
    moves it to the end of its RRset — as the rows have it (RFC 1995 §4: deletions apply first).
    """

    def __init__(self, store, source: str):
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
                row = dict(await find_zone(conn, zone, lock=True))
            except NotFound:
                return None
            self.rows[row["id"]] = self.rows[row["name"]] = row
        return self.rows[key]

    async def write(self, conn, zone_id: uuid.UUID, edits: list[Edit]) -> tuple | None:
        """Write `edits` to the zone's rows; what `keep` takes once the caller's savepoint holds."""
        z = await self.zone(conn, zone_id)
        if z is None:
            raise NotFound(f"zone {zone_id} does not exist")
        removed, added, wrote = await write_edits(self.store, conn, z, edits, z["ttl"])
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
            z = dict(await find_zone(conn, zone_id, lock=True))  # the current serial
            sources = self.sources[zone_id]
            source = sources.pop() if len(sources) == 1 else self.source
            removed = [(o, t, ttl, rd) for (o, t, rd), ttl in self.removed[zone_id].items()]
            added = [(o, t, ttl, rd) for (o, t, rd), ttl in self.added[zone_id].items()]
            changes.append(await log_change(self.store, conn, z, z, removed, added, source, {}))
        self.rows.clear(), self.removed.clear(), self.added.clear(), self.sources.clear()
        return changes
