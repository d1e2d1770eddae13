"""The set of served zones and longest-match zone selection (RFC 1034 §4.3.2 step 2)."""

from __future__ import annotations

from ..wire import DS
from .snapshot import Snapshot, Version, Versioned, parent


class ZoneTable(Versioned):
    """Maps each served origin to its current snapshot.

    One zone's new snapshot replaces the old with one dict assignment. `live` turns False when the
    set of zones changes (a zone added or removed), since that can move names between zones.
    """

    __slots__ = ("zones", "version")

    def __init__(self, snapshots=()):
        self.zones: dict[bytes, Snapshot] = {s.origin: s for s in snapshots}
        self.version = Version()

    def find(self, qname: bytes, qtype: int) -> Snapshot | None:
        """The zone with the longest origin that `qname` falls in. A DS query at a zone's apex goes
        to its parent zone when that is served too (RFC 4035 §3.1.4.1)."""
        zones = self.zones
        name = qname
        while True:
            zone = zones.get(name)
            if zone is not None:
                if qtype == DS and name == qname and len(name) > 1:
                    return self.find(parent(name), 0) or zone
                return zone
            if len(name) <= 1:
                return None
            name = parent(name)
