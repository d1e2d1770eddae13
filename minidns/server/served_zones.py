"""The zones a server process answers for: its zone files (loaded at start, read anew on SIGHUP)
beside the database's (fed by store/follow.py), a zone file shadowing a database zone of the same
name. Every zone swapped in is handed to the notifier, so its secondaries hear of it."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from importlib import resources

from ..zones.loader import ZoneFileError, load_zone_file
from ..xfr.transfer import serial_lt
from ..zones.snapshot import Snapshot
from .config import Config

log = logging.getLogger("minidns")


def example_zone_path() -> str:
    """The small zone shipped with the package, served when no zone is configured."""
    return str(resources.files("minidns").joinpath("data/example.com.zone"))


def zone_sources(config: Config) -> list[tuple[str | None, str]]:
    """(origin or None, path) for every configured zone file."""
    out = []
    for spec in config.zone_files:
        origin, sep, path = spec.partition("=")
        out.append((origin, path) if sep and not os.path.exists(spec) else (None, spec))
    return out


def load_zones(sources: list[tuple[str | None, str]]) -> tuple[list[Snapshot], list[str]]:
    """Load every zone file; a bad one is reported (file:line: reason) and the rest still load."""
    zones, errors = [], []
    for origin, path in sources:
        started = time.monotonic()
        try:
            zone = load_zone_file(path, origin)
        except ZoneFileError as e:
            errors.append(str(e))
            log.error("zone not loaded: %s", e)
            continue
        log.info("loaded zone %s serial %d (%d names) from %s in %.2fs", zone.name, zone.serial, len(zone), path, time.monotonic() - started)
        zones.append(zone)
    return zones, errors


class ServedZones:
    """The engine's zones, as the follower's sink (store/follow.ZoneSink); the database's transfer
    settings go on to `access` (server/transfer_access.py)."""

    def __init__(self, engine, notifier, access):
        self.engine = engine
        self.notifier = notifier  # server/notify.Notifier, or None when NOTIFY is off
        self.access = access
        self.files: dict[bytes, Snapshot] = {}  # origin -> the zone file's snapshot
        self.waiting: dict[bytes, list[tuple[int, asyncio.Future]]] = {}  # origin -> (serial, waiter): `serving`

    def from_file(self, snapshot: Snapshot) -> bool:
        """Whether `snapshot` is the one a zone file gave (not a database zone)."""
        return self.files.get(snapshot.origin) is snapshot

    def has_file(self, name: str) -> bool:
        """Whether the zone `name` is served from a zone file."""
        return any(z.name == name for z in self.files.values())

    async def load_files(self, config: Config) -> None:
        """At start: every zone file, loaded in a thread."""
        zones, _ = await asyncio.get_running_loop().run_in_executor(None, load_zones, zone_sources(config))
        self.files = {z.origin: z for z in zones}
        self.engine.set_zones(zones)

    async def reload_files(self, config: Config) -> None:
        """SIGHUP: re-read every zone file aside, then swap each good zone in; a bad file keeps the
        zone it would have replaced serving."""
        zones, errors = await asyncio.get_running_loop().run_in_executor(None, load_zones, zone_sources(config))
        for zone in zones:
            old = self.files.get(zone.origin)
            self.files[zone.origin] = zone
            self.engine.replace_zone(zone)
            if self.notifier is not None and (old is None or old.serial != zone.serial):
                self.notifier.changed(zone)
        log.info("reload: %d zone(s) swapped in, %d kept as they were", len(zones), len(errors))

    async def serving(self, origin: bytes, serial: int, timeout: float) -> bool:
        """Wait until the zone `origin` is served at `serial` or later (RFC 1982): True, or False
        once `timeout` seconds have passed. A writer in this process that answers only then (a
        dynamic UPDATE) gives its client read-your-writes, as BIND and Knot do."""
        zone = self.engine.table.zones.get(origin)
        if zone is not None and not serial_lt(zone.serial, serial):
            return True
        entry = (serial, asyncio.get_running_loop().create_future())
        self.waiting.setdefault(origin, []).append(entry)
        try:
            return await asyncio.wait_for(entry[1], timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            waiters = self.waiting.get(origin, [])
            if entry in waiters:
                waiters.remove(entry)
            if not waiters:
                self.waiting.pop(origin, None)

    def _served(self, snapshot: Snapshot) -> None:
        for serial, fut in self.waiting.get(snapshot.origin, ()):
            if not fut.done() and not serial_lt(snapshot.serial, serial):
                fut.set_result(True)

    # -- the follower's sink: database zones beside the read-only file zones ---------------------
    def load_zones(self, snapshots: list[Snapshot]) -> None:
        served = dict(self.files)
        for snap in snapshots:
            if self._shadowed(snap):
                continue
            served[snap.origin] = snap
        self.engine.set_zones(list(served.values()))
        for snap in snapshots:
            self._served(snap)

    def put_zone(self, snapshot: Snapshot) -> None:
        if not self._shadowed(snapshot):
            self.engine.replace_zone(snapshot)
            self._served(snapshot)
            if self.notifier is not None:
                self.notifier.changed(snapshot)

    def drop_zone(self, snapshot: Snapshot) -> None:
        self.engine.remove_zone(snapshot)
        if self.notifier is not None:
            self.notifier.dropped(snapshot.name)

    def apply_settings(self, settings) -> None:
        """The database's transfer settings (store/access.py), for `access`."""
        self.access.apply_settings(settings)

    def _shadowed(self, snapshot: Snapshot) -> bool:
        if snapshot.origin in self.files:
            log.warning("zone %s is in the database and in a zone file; the file is served", snapshot.name)
            return True
        return False
