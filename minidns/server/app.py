"""A server process composed and run: its parts started in order, reloaded on SIGHUP, stopped on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal

from ..answer.cookies import Cookies
from ..answer.engine import Engine, EngineSettings
from ..answer.rrl import RateLimiter
from ..zones.snapshot import Snapshot
from .config import Config
from .database_link import DatabaseLink, embedded_master_key_file
from .jobs import answer_jobs, database_jobs
from .listeners import Listeners
from .notify import Notifier
from .reload import Reloader, apply_config
from .scheduler import Job, Scheduler
from .sdnotify import SystemdNotifier
from .served_zones import ServedZones, example_zone_path, load_zones, zone_sources
from .startup import details
from .status_writer import StatusWriter
from .supervisor import Workers
from .transfer_access import TransferAccess
from .transfers import Transfers
from .updates import UpdateDoor
from .transport import QueryLog, TcpLimits

# example_zone_path, load_zones and zone_sources (served_zones.py) as check.py and commands.py import them
__all__ = ["Server", "example_zone_path", "load_zones", "run_loop", "serve", "zone_sources"]

log = logging.getLogger("minidns")


class Server:
    """One server process: the engine plus its listeners. The "main" process (the only one unless
    `workers` > 1) also serves the API (as a service), sends NOTIFY, takes the database's periodic
    work and runs the other workers (server/supervisor.py); a "worker" answers DNS only."""

    def __init__(self, config: Config, services=(), role: str = "main", reload_config=None):
        if config.cookie_secret is None:  # one random secret, which the workers are given too
            config = dataclasses.replace(config, cookie_secret=os.urandom(16).hex())
        self.config = config
        self.role = role
        self.services = list(services)  # started after the listeners: start(server), stop()
        self.ready = asyncio.Event()  # set once every listener (and every worker) answers
        self.stopping = asyncio.Event()
        self.workers: Workers | None = None  # when there are others
        self.bus = None  # bus.status.BusStatus of the message-bus sources, once server/buses.py started them
        self.systemd = SystemdNotifier()  # a worker's environment has no NOTIFY_SOCKET: it sends nothing
        self.scheduler = Scheduler()
        self.reloader = Reloader(self, reload_config)
        self.engine = Engine(
            EngineSettings(
                edns_payload=config.edns_payload,
                nsid=config.nsid.encode() if config.nsid else None,
                version=config.version,
                identity=config.identity,
                cache_entries=config.cache_entries,
            )
        )
        self.limits = TcpLimits(config.tcp_max_connections, config.tcp_idle_timeout, config.tcp_max_per_client,
                                config.tcp_query_timeout)  # fmt: skip
        self.engine.cookies = Cookies(bytes.fromhex(config.cookie_secret))
        self.rrl = RateLimiter(
            config.rrl_responses_per_second, config.rrl_errors_per_second, config.rrl_nxdomains_per_second,
            slip=config.rrl_slip, window=config.rrl_window, ipv4_prefix=config.rrl_ipv4_prefix,
            ipv6_prefix=config.rrl_ipv6_prefix, exempt=config.rrl_exempt, max_table=config.rrl_max_table,
        ) if config.rrl_responses_per_second else None  # fmt: skip
        self.engine.query_log = QueryLog(config.query_log_sample)  # the query log's sampling (transport.py)
        self.listeners = Listeners(config, self.engine, self.limits, self.rrl, self.shares_ports)
        self.link = DatabaseLink(config, role)
        self.access = TransferAccess(config)
        self.transfers = Transfers(self.engine, keyring=self.access.keyring, acl=self.access.default_acl(),
                                   history=self._history, max_concurrent=config.xfr_max_concurrent)  # fmt: skip
        self.access.transfers = self.transfers
        self.transfers.zone_acls = self.access.zone_acls({}, {})
        self.transfers.update_grants = self.access.config_grants  # the database's follow (apply_settings)
        self.engine.xfr = self.transfers
        self.transfers.updates = UpdateDoor(
            self.engine, store=lambda: self.database.store if self.database is not None else None,
            from_file=lambda snapshot: self.zones.from_file(snapshot), grants=lambda: self.transfers.update_grants,
            serving=lambda origin, serial, timeout: self.zones.serving(origin, serial, timeout),
            require_tsig=config.update_require_tsig, acl=config.update_acl, max_records=config.update_max_records,
            max_queued=config.update_max_queued,
        )  # fmt: skip
        self.zones = ServedZones(self.engine, None, self.access)
        self.status = StatusWriter(self.link, self.zones)
        self.notifier = Notifier(
            self.access.config_secondaries, retries=config.notify_retries, timeout=config.notify_timeout, rate=config.notify_rate,
            propagation_timeout=config.propagation_timeout, share=config.propagation_share, on_status=self.status.on_status,
            renotify=config.renotify_interval, zone_secondaries=self.access.zone_secondaries,
        ) if config.notify else None  # fmt: skip
        self.zones.notifier = self.notifier

    @property
    def shares_ports(self) -> bool:
        """Whether other processes listen on the same addresses (SO_REUSEPORT)."""
        return self.role == "worker" or self.config.worker_count > 1

    @property
    def database(self):
        """The store.Database once connected, else None."""
        return self.link.database

    @property
    def follower(self):
        return self.link.follower

    @property
    def bound(self) -> list[str]:
        """The listen addresses as bound (port 0 resolved)."""
        return self.listeners.bound

    @property
    def state(self) -> str:
        """Readiness: "loading", "ready", or "stale" while the database is unreachable."""
        return self.follower.state if self.follower else ("ready" if self.listeners.closers else "loading")

    async def start(self) -> None:
        """Zone files, NOTIFY, the database, the listeners, the workers, the services, the jobs."""
        await self.zones.load_files(self.config)
        if self.notifier is not None:
            await self.notifier.start()
        if self.config.uses_database:
            await self.link.open(self.zones)
            if self.notifier is not None:
                await self.status.resume(self.notifier, self.engine)
        for spec in self.config.listen:
            await self.listeners.listen(spec)
        count = self.config.worker_count if self.role == "main" else 1
        if count > 1:
            self.workers = Workers(count, self.worker_config(self.config))
            await self.workers.start()
        for service in self.services:
            await service.start(self)
        self._schedule()
        text, fields = details(self)
        log.info("serving %d zone(s) on %s%s", len(self.engine.table.zones), ", ".join(fields["listen"]), text, extra=fields)

    def _schedule(self) -> None:
        """The periodic jobs: every process's, and the database's in the main process alone."""
        for job in answer_jobs(self.engine):
            self.scheduler.add(job)
        if self.database is not None and self.role == "main":
            for job in database_jobs(self.database, self.config):
                self.scheduler.add(job)
        self.scheduler.start()

    async def _history(self, snapshot: Snapshot) -> list | None:
        """The change log of a database zone, for IXFR; None for a zone file or no database."""
        if self.database is None or self.zones.from_file(snapshot):
            return None
        return await self.link.history(snapshot.name)

    def apply_config(self, new: Config, quiet: bool = False) -> None:
        """The settings of `new` that can change while serving (server/reload.py)."""
        apply_config(self, new, quiet)

    async def reload(self) -> None:
        """The zone files read anew; each good one swapped in."""
        await self.zones.reload_files(self.config)

    def worker_config(self, config: Config) -> Config:
        """A worker's configuration: the main process's, on the addresses it bound (a port 0
        resolved), the database it opened, without API, NOTIFY or migrations."""
        url = self.database.url if self.database is not None else config.database_url
        key_file = config.dnssec_master_key_file
        if key_file is None and config.database_url is None and config.uses_database:
            # The embedded database's master.key: a worker is given the database by URL, so it
            # would not look in the data directory.
            key_file = embedded_master_key_file(config)
        return dataclasses.replace(config, listen=tuple(self.bound), database_url=url, api=False, notify=False,
                                   db_upgrade=False, workers=1, dnssec_master_key_file=key_file)  # fmt: skip

    def status_line(self) -> str:
        workers = 1 + (len(self.workers.workers) if self.workers is not None else 0)
        return f"serving {len(self.engine.table.zones)} zone(s) on {', '.join(self.bound)}, {workers} worker(s)"

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, stop. A start that fails stops what it started."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.reloader.on_hup)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        start = asyncio.ensure_future(self.start())
        await asyncio.wait([start, asyncio.ensure_future(self.stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
        if start.done():
            try:
                start.result()  # a listen, database or worker error ends the run here
            except BaseException:
                await self._stop_started()
                raise
            self._ready()
            await self.stopping.wait()
        else:
            start.cancel()
        await self.stop()

    def _ready(self) -> None:
        self.ready.set()
        self.systemd.send("READY=1", "STATUS=" + self.status_line(), f"MAINPID={os.getpid()}")
        if self.systemd.watchdog:  # WATCHDOG=1 from the event loop: a stuck loop gets the service restarted
            self.scheduler.add(Job("systemd watchdog", self.systemd.watchdog, self._watchdog, first=0))

    async def _watchdog(self) -> None:
        self.systemd.send("WATCHDOG=1")

    async def _stop_started(self) -> None:
        await self.scheduler.stop()
        if self.workers is not None:
            await self.workers.stop()
        await self.link.close()

    async def stop(self) -> None:
        """Jobs, workers, services, NOTIFY, the database, then the listeners."""
        log.info("stopping")
        self.systemd.send("STOPPING=1", "STATUS=stopping")
        await self.scheduler.stop()
        if self.workers is not None:
            await self.workers.stop()
        for service in self.services:
            try:
                await service.stop()
            except Exception as e:  # noqa: BLE001 - stopping goes on
                log.warning("stopping %s: %s", type(service).__name__, e)
        if self.notifier is not None:
            self.notifier.stop()
        await self.link.close()
        await self.listeners.close()


def run_loop(main) -> None:
    """Run the coroutine `main` on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        asyncio.run(main)
        return
    uvloop.run(main)


def serve(config: Config, services=(), reload_config=None) -> None:
    """Run until SIGTERM/SIGINT. `reload_config`: reads the configuration anew on SIGHUP."""
    run_loop(Server(config, services, reload_config=reload_config).run())
