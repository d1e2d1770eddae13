"""Run the server: load zones, listen on UDP and TCP, reload on SIGHUP, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import errno
import logging
import os
import signal
import socket
import time
from importlib import resources

import dns.name

from ..store.db import DatabaseError
from ..store.follow import Follower
from ..zones.loader import ZoneFileError, load_zone_file
from ..zones.snapshot import Snapshot
from ..xfr.tsig import make_key
from .config import Config, ConfigError, parse_listen
from ..answer.engine import Engine, EngineSettings
from .notify import Notifier, Secondary
from .sdnotify import SystemdNotifier
from .transfers import Acl, Transfers
from .transport import LoggingTcpProtocol, LoggingUdpProtocol, TcpLimits, TcpProtocol, UdpProtocol
from .transport import QueryLog, RrlUdpProtocol
from ..answer.cookies import Cookies
from ..answer.rrl import RateLimiter

log = logging.getLogger("minidns")

SOCKET_BUFFER = 4 << 20  # room for bursts on UDP before the kernel drops

# Settings a SIGHUP applies while serving; any other change is logged as needing a restart.
LIVE_SETTINGS = frozenset(("log_level", "zone_files", "nsid", "version", "identity", "tsig_keys", "allow_transfer",
                           "zone_allow_transfer"))  # fmt: skip


def _udp_socket(family: int, host: str, port: int, reuse_port: bool = False) -> socket.socket:
    udp = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # several worker processes on one address; the kernel spreads clients over them
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        udp.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
    udp.bind((host, port))
    return udp


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


class Server:
    """One server process: the engine plus its listeners. The "main" process (the only one unless
    `workers` > 1) also serves the API (as a service), sends NOTIFY, takes the database's periodic
    work and runs the other workers (server/workers.py); a "worker" answers DNS only."""

    def __init__(self, config: Config, services=(), role: str = "main", reload_config=None):
        if config.cookie_secret is None:  # one random secret, which the workers are given too
            config = dataclasses.replace(config, cookie_secret=os.urandom(16).hex())
        self.config = config
        self.role = role
        self.reload_config = reload_config  # SIGHUP: () -> Config read anew, or None to keep this one
        self.services = list(services)  # started after the listeners: start(server), stop()
        self.ready = asyncio.Event()  # set once every listener (and every worker) answers
        self.bound: list[str] = []  # the listen addresses as bound (port 0 resolved)
        self.workers = None  # server/workers.Workers when there are others
        self.systemd = SystemdNotifier()  # a worker's environment has no NOTIFY_SOCKET: it sends nothing
        self._db_settings = None  # the transfer settings last read from the database
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
        self.closers: list = []
        self.stopping = asyncio.Event()
        self.renewing: asyncio.Task | None = None  # Engine.renew_signed every minute
        self.rolling: asyncio.Task | None = None  # DNSSEC key rollover steps, every minute
        self.reloading: asyncio.Task | None = None
        self.file_zones: dict[bytes, Snapshot] = {}
        self.database = None  # a store.Database once connected
        self.xfr_pool = None  # IXFR's change-log reads: connections of their own, not behind API writes
        self.follower: Follower | None = None
        self.following: asyncio.Task | None = None
        self._status_dirty: dict = {}
        self._status_writer: asyncio.Task | None = None
        self.config_keyring = {}
        for k in config.tsig_keys:
            key = make_key(k["name"], k.get("algorithm", "hmac-sha256"), k["secret"])
            self.config_keyring[key.name] = key
        self.keyring = dict(self.config_keyring)
        self.config_secondaries = [
            Secondary(s["address"], int(s.get("port", 53)), self._key(s.get("key")), tuple(s.get("zones", ["*"])))
            for s in config.secondaries
        ]
        self.db_secondaries: dict[str, list[Secondary]] = {}
        self.transfers = Transfers(self.engine, keyring=self.keyring, acl=self._acl(config.allow_transfer, self.config_secondaries),
                                   history=self._history, max_concurrent=config.xfr_max_concurrent)  # fmt: skip
        self.transfers.zone_acls = self._zone_acls({}, {})
        self.engine.xfr = self.transfers
        self.notifier = Notifier(
            self.config_secondaries, retries=config.notify_retries, timeout=config.notify_timeout, rate=config.notify_rate,
            propagation_timeout=config.propagation_timeout, share=config.propagation_share, on_status=self._on_status,
            renotify=config.renotify_interval,
            zone_secondaries=lambda name: self.db_secondaries.get(name, ()),
        ) if config.notify else None  # fmt: skip

    @staticmethod
    def _acl(entries, secondaries) -> Acl:
        """An access list, plus the secondaries: each by its key when it has one, else by address."""
        acl = Acl.parse(entries)
        for sec in secondaries:
            if sec.key is not None:
                acl.keys.add(sec.key.name)
            else:
                acl.networks += Acl.parse([sec.address]).networks
        return acl

    def _zone_acls(self, db_acls: dict, db_secondaries: dict) -> dict:
        """Per-zone access lists: the zone's own list (database over configuration) or the default,
        plus the zone's secondaries."""
        lists = {dns.name.from_text(z).to_wire().lower(): (z, e) for z, e in self.config.zone_allow_transfer.items()}
        lists.update({dns.name.from_text(z).to_wire().lower(): (z, e) for z, e in db_acls.items()})
        for z in db_secondaries:
            origin = dns.name.from_text(z).to_wire().lower()
            lists.setdefault(origin, (z, list(self.config.allow_transfer)))
        out = {}
        for origin, (z, entries) in lists.items():
            name = dns.name.from_text(z).to_text().lower()
            secs = [s for s in self.config_secondaries if s.serves(name)] + list(db_secondaries.get(name, ()))
            out[origin] = self._acl(entries, secs)
        return out

    def apply_settings(self, settings) -> None:
        """Transfer settings from the database (store/access.py): keys, access lists, secondaries."""
        self._db_settings = settings
        keyring = dict(self.config_keyring)
        for name, algorithm, secret in settings.keys:
            try:
                key = make_key(name, algorithm, secret)
            except ValueError as e:
                log.error("TSIG key %s from the database not used: %s", name, e)
                continue
            keyring.setdefault(key.name, key)  # a configured key of the same name wins
        self.keyring = keyring
        self.transfers.keyring = keyring
        db_secondaries: dict[str, list[Secondary]] = {}
        for zone, entries in settings.secondaries.items():
            for address, port, key_name in entries:
                key = keyring.get(dns.name.from_text(key_name)) if key_name else None
                db_secondaries.setdefault(zone, []).append(Secondary(address, port, key))
        self.db_secondaries = db_secondaries
        self.transfers.zone_acls = self._zone_acls(settings.acls, db_secondaries)

    def _key(self, name: str | None):
        if name is None:
            return None
        key = self.keyring.get(dns.name.from_text(name))
        if key is None:
            raise ValueError(f"secondary key {name!r} is not among tsig_keys")
        return key

    @property
    def state(self) -> str:
        """Readiness: "loading", "ready", or "stale" while the database is unreachable."""
        return self.follower.state if self.follower else ("ready" if self.closers else "loading")

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        zones, _ = await loop.run_in_executor(None, load_zones, zone_sources(self.config))
        self.file_zones = {z.origin: z for z in zones}
        self.engine.set_zones(zones)
        if self.notifier is not None:
            await self.notifier.start()
        if self.config.uses_database:
            await self._start_database()
        for spec in self.config.listen:
            await self._listen(spec)
        count = self.config.worker_count if self.role == "main" else 1
        if count > 1:
            from .workers import Workers

            self.workers = Workers(count, self._worker_config(self.config))
            await self.workers.start()
        for service in self.services:
            await service.start(self)
        self.renewing = asyncio.ensure_future(self._renew_signed())
        if self.database is not None and self.role == "main":
            self.rolling = asyncio.ensure_future(self._advance_rollovers())
        if self.database is not None and self.config.heartbeat_name and getattr(self, "role", "main") == "main":
            from ..store import heartbeat  # the heartbeat TXT of zones left unchanged, until stopping

            self.beating = asyncio.ensure_future(heartbeat.run(self.database.store, self.config.heartbeat_interval, self.stopping))
        from .startup import details

        text, fields = details(self)
        log.info("serving %d zone(s) on %s%s", len(self.engine.table.zones), ", ".join(fields["listen"]), text, extra=fields)

    async def _renew_signed(self) -> None:
        """Signed zones' cached replies are rendered anew once their signing epoch ends; every
        hour, stored signatures nearing expiry are made again (a change each: secondaries get
        them by IXFR)."""
        minutes = 0
        while True:
            await asyncio.sleep(60)
            self.engine.renew_signed()
            minutes += 1
            if self.database is not None and self.role == "main" and minutes % 60 == 0:
                await self._refresh_signatures()

    async def _refresh_signatures(self) -> None:
        store = self.database.store
        try:
            zones = await store.pool.fetch("SELECT id, name FROM zones WHERE dnssec")
            for z in zones:
                change = await store.refresh_signatures(z["id"])
                if change.serial_to != change.serial_from:
                    log.info("zone %s: signatures nearing expiry made again (serial %d)", z["name"], change.serial_to)
        except Exception as e:  # noqa: BLE001 - tried again in an hour; answering goes on
            log.warning("refreshing DNSSEC signatures: %s", e)

    async def _advance_rollovers(self) -> None:
        """At start, then every minute: the DNSSEC key rollover steps now due (store/rollover.py),
        taken on a loop and connection pool of their own in a thread, so that signing a zone whole
        does not hold up answering. Several servers on one database take each step once."""
        from ..store import rollover

        db, margin = self.database, self.config.dnssec_rollover_margin
        while True:
            try:
                if await rollover.due(db.pool, time.time()):
                    await asyncio.to_thread(rollover.run_advance, db.url, db.store.master, db.store.settings, margin)
            except Exception as e:  # noqa: BLE001 - tried again in a minute; answering goes on
                log.warning("DNSSEC key rollovers: %s", e)
            await asyncio.sleep(60)

    async def _start_database(self) -> None:
        from ..store.database import open_database

        c = self.config
        main = self.role == "main"
        self.database = await open_database(
            c.database_url, c.data_dir, upgrade=c.db_upgrade and main, settings=c.store_settings(),
            seed_zone_file=example_zone_path() if main else None,
            master_key=self._master_key,  # the API's writes to signed zones sign
        )  # fmt: skip
        from ..store import db

        self.xfr_pool = await db.create_pool(self.database.url, size=2)
        self.follower = Follower(
            self.database.url, self, listen=self.config.db_listen, check_interval=self.config.db_check_interval,
            master_key=self.database.store.master,
        )
        await self.follower.start()
        self.following = asyncio.ensure_future(self.follower.run())
        if self.notifier is not None:
            await self._resume_pending()

    def _master_key(self) -> bytes | None:
        """The DNSSEC master key, or None (logged) when it is configured but unusable: signed zones
        are then served unsigned (store/follow.py says which). With the embedded database the main
        process makes master.key in its data directory when there is none yet, so that a later
        `minidns dnssec enable` seals the zone's keys under the key this server holds."""
        from ..dnssec.keys import BadKey

        try:
            return self.config.master_key(create=self.role == "main" and self.config.database_url is None)
        except BadKey as e:
            log.error("DNSSEC: %s", e)
            return None

    async def _resume_pending(self) -> None:
        """Zones left PENDING or in ERROR (changed while no server watched, or before a restart):
        NOTIFY their secondaries again and watch, so their status gets settled."""
        try:
            rows = await self.database.pool.fetch("SELECT name FROM zones WHERE status <> 'ACTIVE'")
        except Exception as e:  # noqa: BLE001 - advisory; the next change does it anyway
            log.warning("zones awaiting propagation not read (%s)", e)
            return
        for row in rows:
            snap = self.engine.table.zones.get(dns.name.from_text(row["name"]).to_wire().lower())
            if snap is not None:
                self.notifier.changed(snap)

    # -- the follower's sink: database zones beside the read-only file zones ---------------------
    def load_zones(self, snapshots: list[Snapshot]) -> None:
        served = dict(self.file_zones)
        for snap in snapshots:
            if self._shadowed(snap):
                continue
            served[snap.origin] = snap
        self.engine.set_zones(list(served.values()))

    def put_zone(self, snapshot: Snapshot) -> None:
        if not self._shadowed(snapshot):
            self.engine.replace_zone(snapshot)
            if self.notifier is not None:
                self.notifier.changed(snapshot)

    def drop_zone(self, snapshot: Snapshot) -> None:
        self.engine.remove_zone(snapshot)
        if self.notifier is not None:
            self.notifier.dropped(snapshot.name)

    async def _history(self, snapshot: Snapshot) -> list | None:
        """The change log of a database zone, for IXFR; None for a zone file or no database."""
        if self.database is None or self.file_zones.get(snapshot.origin) is snapshot:
            return None
        try:
            async with (self.xfr_pool or self.database.pool).acquire() as conn:
                return await conn.fetch(
                    "SELECT c.serial_from, c.serial_to, c.removed, c.added FROM zone_changes c"
                    " JOIN zones z ON z.id = c.zone_id WHERE z.name = $1 AND c.serial_from IS NOT NULL ORDER BY c.seq",
                    snapshot.name.lower(),
                )
        except (OSError, asyncio.TimeoutError, DatabaseError) as e:
            log.warning("change log of %s not readable (%s): sending the whole zone", snapshot.name, e)
            return None
        except Exception as e:  # noqa: BLE001 - asyncpg's errors: the transfer falls back to AXFR
            log.warning("change log of %s not readable (%s): sending the whole zone", snapshot.name, e)
            return None

    def _on_status(self, zs) -> None:
        """A zone's propagation changed: record it where `zone status` and the API read it. One
        writer task takes the newest state of each zone, so writes never land out of order."""
        if self.database is None or any(z.name == zs.name for z in self.file_zones.values()):
            return
        self._status_dirty[zs.name] = zs
        if self._status_writer is None or self._status_writer.done():
            self._status_writer = asyncio.ensure_future(self._write_status())

    async def _write_status(self) -> None:
        from ..store.access import record_status

        while self._status_dirty:
            name = next(iter(self._status_dirty))
            zs = self._status_dirty.pop(name)
            rows = [(label, st.serial, st.state,
                     datetime.datetime.fromtimestamp(st.seen_at, datetime.timezone.utc) if st.seen_at else None)
                    for label, st in zs.secondaries.items()]  # fmt: skip
            try:
                await record_status(self.database.pool, name.lower(), zs.serial, rows, zs.status)
            except Exception as e:  # noqa: BLE001 - status is advisory; the next change writes it again
                log.warning("zone %s: status %s not recorded (%s)", name, zs.status, e)

    def _shadowed(self, snapshot: Snapshot) -> bool:
        if snapshot.origin in self.file_zones:
            log.warning("zone %s is in the database and in a zone file; the file is served", snapshot.name)
            return True
        return False

    async def _listen(self, spec: str) -> None:
        """UDP and TCP on one address. Port 0 picks a port free for both (tried a few times)."""
        family, host, port = parse_listen(spec)
        reuse_port = self.role == "worker" or self.config.worker_count > 1
        for attempt in range(20 if port == 0 else 1):
            udp = _udp_socket(family, host, port, reuse_port)
            try:
                await self._serve_on(udp, family, host)
                return
            except OSError as e:
                udp.close()
                if port != 0 or e.errno != errno.EADDRINUSE or attempt == 19:
                    raise

    async def _serve_on(self, udp: socket.socket, family: int, host: str) -> None:
        loop = asyncio.get_running_loop()
        port = udp.getsockname()[1]
        udp_proto, tcp_proto = (LoggingUdpProtocol, LoggingTcpProtocol) if self.config.query_log else (UdpProtocol, TcpProtocol)
        reuse_port = self.role == "worker" or self.config.worker_count > 1
        tcp = await loop.create_server(
            lambda: tcp_proto(self.engine, self.limits), host, port, family=family, reuse_address=True, backlog=1024,
            reuse_port=reuse_port or None,
        )  # fmt: skip
        if self.rrl is not None:  # the plain protocol stays free of any RRL work when it is off
            make_udp = lambda: RrlUdpProtocol(self.engine, self.rrl, self.config.query_log)  # noqa: E731
        else:
            make_udp = lambda: udp_proto(self.engine)  # noqa: E731
        transport, _ = await loop.create_datagram_endpoint(make_udp, sock=udp)
        self.closers += [transport, tcp]
        self.bound.append(f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}")
        log.info("listening on %s port %d (udp, tcp)", host, port)

    async def reload(self) -> None:
        """SIGHUP: re-read every zone file aside, then swap each good zone in; a bad file keeps the
        zone it would have replaced serving."""
        loop = asyncio.get_running_loop()
        zones, errors = await loop.run_in_executor(None, load_zones, zone_sources(self.config))
        for zone in zones:
            old = self.file_zones.get(zone.origin)
            self.file_zones[zone.origin] = zone
            self.engine.replace_zone(zone)
            if self.notifier is not None and (old is None or old.serial != zone.serial):
                self.notifier.changed(zone)
        log.info("reload: %d zone(s) swapped in, %d kept as they were", len(zones), len(errors))

    def _on_hup(self) -> None:
        if self.reloading is None or self.reloading.done():
            self.reloading = asyncio.ensure_future(self._hup())
        else:
            log.warning("reload already running; SIGHUP ignored")

    async def _hup(self) -> None:
        """SIGHUP: the configuration read anew and what can change live applied (the rest named
        as needing a restart), the same sent to every worker, and the zone files reloaded."""
        self.systemd.send("RELOADING=1", "STATUS=reloading")
        try:
            if self.reload_config is not None:
                try:
                    new = self.reload_config()
                except ConfigError as e:
                    log.error("reload: the configuration has an error, nothing of it applied: %s", e)
                else:
                    self.apply_config(new)
                    if self.workers is not None:
                        self.workers.reconfigure(self._worker_config(self.config))
            await self.reload()
        finally:
            self.systemd.send("READY=1", "STATUS=" + self.status_line())

    def apply_config(self, new: Config, quiet: bool = False) -> None:
        """Take from `new` the settings that can change while serving (LIVE_SETTINGS); log those
        that changed but need a restart, and keep their old values until then."""
        old = self.config
        if new.cookie_secret is None:  # the random one made at start stays
            new = dataclasses.replace(new, cookie_secret=old.cookie_secret)
        changed = [f.name for f in dataclasses.fields(Config) if getattr(old, f.name) != getattr(new, f.name)]
        live = {k: getattr(new, k) for k in changed if k in LIVE_SETTINGS}
        later = [k for k in changed if k not in LIVE_SETTINGS]
        self.config = dataclasses.replace(old, **live)
        if "log_level" in live:
            logging.getLogger().setLevel(new.log_level.upper())
        if {"nsid", "version", "identity"} & set(live):
            c = self.config
            self.engine.set_identity(c.nsid.encode() if c.nsid else None, c.version, c.identity)
        if {"tsig_keys", "allow_transfer", "zone_allow_transfer"} & set(live):
            self.config_keyring = {}
            for k in self.config.tsig_keys:
                key = make_key(k["name"], k.get("algorithm", "hmac-sha256"), k["secret"])
                self.config_keyring[key.name] = key
            self.keyring = dict(self.config_keyring)
            self.transfers.keyring = self.keyring
            self.transfers.acl = self._acl(self.config.allow_transfer, self.config_secondaries)
            if self._db_settings is not None:
                self.apply_settings(self._db_settings)
            else:
                self.transfers.zone_acls = self._zone_acls({}, {})
        if quiet:
            return
        if live:
            log.info("reload: applied %s", ", ".join(sorted(live)))
        if later:
            log.warning("reload: changed but needing a restart to take effect: %s", ", ".join(sorted(later)))
        if not changed:
            log.info("reload: configuration unchanged")

    def _worker_config(self, config: Config) -> Config:
        """A worker's configuration: the main process's, on the addresses it bound (a port 0
        resolved), the database it opened, without API, NOTIFY or migrations."""
        url = self.database.url if self.database is not None else config.database_url
        key_file = config.dnssec_master_key_file
        if key_file is None and config.database_url is None and config.uses_database:
            # The embedded database's master.key: a worker is given the database by URL, so it
            # would not look in the data directory.
            from ..store.dnssec import KEY_FILE
            from ..store.embedded import default_data_dir

            key_file = os.path.join(os.path.expanduser(config.data_dir or default_data_dir()), KEY_FILE)
        return dataclasses.replace(config, listen=tuple(self.bound), database_url=url, api=False, notify=False,
                                   db_upgrade=False, workers=1, dnssec_master_key_file=key_file)  # fmt: skip

    def status_line(self) -> str:
        workers = 1 + (len(self.workers.workers) if self.workers is not None else 0)
        return f"serving {len(self.engine.table.zones)} zone(s) on {', '.join(self.bound)}, {workers} worker(s)"

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        start = asyncio.ensure_future(self.start())
        await asyncio.wait([start, asyncio.ensure_future(self.stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
        watchdog = None
        if start.done():
            try:
                start.result()  # a listen, database or worker error ends the run here
            except BaseException:
                if self.workers is not None:
                    await self.workers.stop()
                await self._stop_database()
                raise
            self.ready.set()
            self.systemd.send("READY=1", "STATUS=" + self.status_line(), f"MAINPID={os.getpid()}")
            if self.systemd.watchdog:
                watchdog = asyncio.ensure_future(self._watchdog(self.systemd.watchdog))
            await self.stopping.wait()
        else:
            start.cancel()
        log.info("stopping")
        self.systemd.send("STOPPING=1", "STATUS=stopping")
        for task in (self.renewing, self.rolling, watchdog):
            if task is not None:
                task.cancel()
        if self.workers is not None:
            await self.workers.stop()
        for service in self.services:
            try:
                await service.stop()
            except Exception as e:  # noqa: BLE001 - stopping goes on
                log.warning("stopping %s: %s", type(service).__name__, e)
        if self.notifier is not None:
            self.notifier.stop()
        await self._stop_database()
        for closer in self.closers:
            closer.close()
        for closer in self.closers:
            if hasattr(closer, "wait_closed"):
                try:
                    await asyncio.wait_for(closer.wait_closed(), 2)
                except asyncio.TimeoutError:
                    pass


    async def _watchdog(self, every: float) -> None:
        """WATCHDOG=1 from the event loop: a loop stuck for WatchdogSec gets the service restarted."""
        while True:
            self.systemd.send("WATCHDOG=1")
            await asyncio.sleep(every)

    async def _stop_database(self) -> None:
        if self.following is not None:
            self.following.cancel()
            await asyncio.gather(self.following, return_exceptions=True)
        if self.follower is not None:
            await self.follower.stop()
        if self.xfr_pool is not None:
            pool, self.xfr_pool = self.xfr_pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (asyncio.TimeoutError, OSError):
                pool.terminate()
        if self.database is not None:
            await self.database.close()


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
