"""The heartbeat record: a TXT at <heartbeat_name>.<zone> naming the serial and the time of the
zone's latest commit. Every change writes it in its own transaction (store/change.py), so it never
costs a serial of its own and reaches secondaries by IXFR with the SOA it belongs to; a zone left
unchanged for `heartbeat_interval` gets an otherwise empty change (`beat`). Querying any secondary
for it then tells how old its copy of the zone is."""

from __future__ import annotations

import logging
import re
import time
import uuid

import dns.exception
import dns.name

from ..wire import TXT
from ..zones.snapshot import Snapshot, node_find
from .edits import Edit

log = logging.getLogger("minidns.heartbeat")

SOURCE = "heartbeat"  # the change log's source of a heartbeat-only change
# Managed (read-only in the API, as Designate's managed records are): source and resource type.
MANAGED = {"source": "minidns", "resource_type": "heartbeat", "resource_id": None, "tenant_id": None, "extra": None}
TTL = 0  # never cached by a resolver: each query shows what that server serves now
# The zone's latest change (one index probe: zone_changes_zone_seq) is older than $1 seconds.
_STALE = ("coalesce((SELECT c.created_at FROM zone_changes c WHERE c.zone_id = z.id ORDER BY c.seq DESC LIMIT 1)"
          " < now() - make_interval(secs => $1), true)")
_UNIX = re.compile(rb"\bunix=(\d+)")


def check_heartbeat_name(name: str) -> dns.name.Name:
    """A heartbeat name: a name relative to each zone (`_heartbeat`, `_hb.ops`), no wildcard."""
    if not isinstance(name, str) or not name or name.endswith(".") or name.startswith("@"):
        raise ValueError(f"{name!r} must be a name relative to the zone, such as _heartbeat")
    try:
        rel = dns.name.from_text(name, None)
    except dns.exception.DNSException as e:
        raise ValueError(f"{name!r}: {e}") from None
    if rel.is_wild() or any(label == b"*" for label in rel.labels):
        raise ValueError(f"{name!r} may not hold a wildcard label")
    return rel


def heartbeat_text(serial: int, now: float) -> str:
    """The TXT data: `"serial=2026113001 committed=2026-11-30T14:00:00Z unix=1796047200"`."""
    committed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return f'"serial={serial} committed={committed} unix={int(now)}"'


def heartbeat_edit(name: str, serial: int, now: float) -> Edit:
    """The edit that writes the heartbeat of a commit at `now` with `serial`: the heartbeat
    stage (store/change.Stages) a store is composed with."""
    return Edit("replace", name, "TXT", TTL, (heartbeat_text(serial, now),), managed=MANAGED)


def heartbeat_time(snapshot: Snapshot, name: str) -> float | None:
    """The commit time the heartbeat in a served snapshot names, or None when it has none."""
    owner = dns.name.from_text(name, dns.name.from_wire(snapshot.origin, 0)[0]).to_wire().lower()
    found = node_find(snapshot.nodes.get(owner, b""), TXT)
    if found is None:
        return None
    m = _UNIX.search(found[1][0])
    return float(m.group(1)) if m else None


async def beat(store, interval: float) -> list:
    """One heartbeat round: an otherwise empty change for each zone (not a catalog, nor a signed
    zone when this store has no master key to sign with) whose latest change is older than
    `interval` seconds. The zone row is locked (rows another writer holds are
    skipped: its change writes the heartbeat) and its age checked again under the lock, so several
    processes on one database bump each zone once. The changes made."""
    rows = await store.pool.fetch(
        f"SELECT z.id FROM zones z WHERE z.type <> 'CATALOG' AND (NOT z.dnssec OR $2) AND {_STALE} ORDER BY z.name",
        float(interval), store.master is not None,
    )  # fmt: skip
    changes = []
    for row in rows:
        change = await _beat_zone(store, row["id"], interval)
        if change is not None:
            changes.append(change)
    return changes


async def _beat_zone(store, zone_id: uuid.UUID, interval: float):
    async with store.pool.acquire() as conn, conn.transaction():
        z = await conn.fetchrow("SELECT * FROM zones WHERE id = $1 FOR UPDATE SKIP LOCKED", zone_id)
        if z is None:
            return None  # being written (that change has the heartbeat) or deleted
        stale = await conn.fetchval(f"SELECT {_STALE} FROM zones z WHERE z.id = $2", float(interval), zone_id)
        if not stale:
            return None  # another process beat it (or someone changed it) since the round began
        return await store.change(zone_id, source=SOURCE, conn=conn, bump=True)  # the heartbeat alone
