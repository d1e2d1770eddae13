"""Zones' propagation status (server/notify.py tracks it) written where `zone status` and the API
read it (store/propagation_status.py): one writer task takes the newest state of each zone, so writes never
land out of order; at start, zones left unsettled are NOTIFYed again so their status settles."""

from __future__ import annotations

import asyncio
import datetime
import logging

import dns.name

from ..store.propagation_status import record_status, unsettled_zones
from ..xfr.propagation import ZoneState

log = logging.getLogger("minidns")


def status_rows(zs: ZoneState) -> list[tuple]:
    """(secondary, serial seen, state, seen_at as a UTC datetime or None) of each secondary."""
    return [(label, st.serial, st.state,
             datetime.datetime.fromtimestamp(st.seen_at, datetime.timezone.utc) if st.seen_at else None)
            for label, st in zs.secondaries.items()]  # fmt: skip


class StatusWriter:
    """The notifier's `on_status`: database zones' status, written in the background."""

    def __init__(self, link, served):
        self.link = link  # server/database_link.DatabaseLink
        self.served = served  # server/served_zones.ServedZones: zone files have no status to write
        self.dirty: dict[str, ZoneState] = {}
        self.writer: asyncio.Task | None = None

    def on_status(self, zs: ZoneState) -> None:
        """A zone's propagation changed: written soon, its newest state only."""
        if self.link.database is None or self.served.has_file(zs.name):
            return
        self.dirty[zs.name] = zs
        if self.writer is None or self.writer.done():
            self.writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        while self.dirty:
            name = next(iter(self.dirty))
            zs = self.dirty.pop(name)
            try:
                await record_status(self.link.database.pool, name.lower(), zs.serial, status_rows(zs), zs.status)
            except Exception as e:  # noqa: BLE001 - status is advisory; the next change writes it again
                log.warning("zone %s: status %s not recorded (%s)", name, zs.status, e)

    async def resume(self, notifier, engine) -> None:
        """Zones left PENDING or in ERROR (changed while no server watched, or before a restart):
        NOTIFY their secondaries again and watch, so their status gets settled."""
        try:
            names = await unsettled_zones(self.link.database.pool)
        except Exception as e:  # noqa: BLE001 - advisory; the next change does it anyway
            log.warning("zones awaiting propagation not read (%s)", e)
            return
        for name in names:
            snap = engine.table.zones.get(dns.name.from_text(name).to_wire().lower())
            if snap is not None:
                notifier.changed(snap)
