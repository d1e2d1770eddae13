"""SIGHUP: the configuration read anew and the settings that can change while serving applied
(the others logged as needing a restart), the same sent to every worker, the zone files reloaded;
systemd is told RELOADING, then READY again."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from .config import Config, ConfigError

log = logging.getLogger("minidns")

# Settings a SIGHUP applies while serving; any other change is logged as needing a restart.
LIVE_SETTINGS = frozenset(("log_level", "zone_files", "nsid", "version", "identity", "tsig_keys", "allow_transfer",
                           "zone_allow_transfer", "update_grants"))  # fmt: skip
ACCESS_SETTINGS = frozenset(("tsig_keys", "allow_transfer", "zone_allow_transfer", "update_grants"))


def live_changes(old: Config, new: Config) -> tuple[Config, dict, list[str], list[str]]:
    """(the configuration to run with, the live settings changed, those changed that need a
    restart, every setting changed). A random cookie secret made at start stays."""
    if new.cookie_secret is None:
        new = dataclasses.replace(new, cookie_secret=old.cookie_secret)
    changed = [f.name for f in dataclasses.fields(Config) if getattr(old, f.name) != getattr(new, f.name)]
    live = {k: getattr(new, k) for k in changed if k in LIVE_SETTINGS}
    later = [k for k in changed if k not in LIVE_SETTINGS]
    return dataclasses.replace(old, **live), live, later, changed


def apply_config(server, new: Config, quiet: bool = False) -> None:
    """Take from `new` the settings that can change while serving (LIVE_SETTINGS); log those
    that changed but need a restart, and keep their old values until then."""
    server.config, live, later, changed = live_changes(server.config, new)
    if "log_level" in live:
        logging.getLogger().setLevel(new.log_level.upper())
    if {"nsid", "version", "identity"} & set(live):
        c = server.config
        server.engine.set_identity(c.nsid.encode() if c.nsid else None, c.version, c.identity)
    if ACCESS_SETTINGS & set(live):
        server.access.reconfigure(server.config)
    if not quiet:
        report(live, later, changed)


def report(live: dict, later: list[str], changed: list[str]) -> None:
    if live:
        log.info("reload: applied %s", ", ".join(sorted(live)))
    if later:
        log.warning("reload: changed but needing a restart to take effect: %s", ", ".join(sorted(later)))
    if not changed:
        log.info("reload: configuration unchanged")


class Reloader:
    """A server's SIGHUP handler: one reload at a time, a signal during one ignored (logged)."""

    def __init__(self, server, reload_config=None):
        self.server = server
        self.reload_config = reload_config  # () -> Config read anew, or None to keep the one running
        self.task: asyncio.Task | None = None

    def on_hup(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self.hup())
        else:
            log.warning("reload already running; SIGHUP ignored")

    async def hup(self) -> None:
        server = self.server
        server.systemd.send("RELOADING=1", "STATUS=reloading")
        try:
            if self.reload_config is not None:
                self.reconfigure()
            await server.reload()
        finally:
            server.systemd.send("READY=1", "STATUS=" + server.status_line())

    def reconfigure(self) -> None:
        try:
            new = self.reload_config()
        except ConfigError as e:
            log.error("reload: the configuration has an error, nothing of it applied: %s", e)
            return
        apply_config(self.server, new)
        if self.server.workers is not None:
            self.server.workers.reconfigure(self.server.worker_config(self.server.config))
