"""`minidns check`: the configuration as `serve` would load it, the database it would use, and
what it would serve — without serving. Exit 0 when `serve` would start, 1 (with the reasons) when
it would not: an unreachable database, a schema it may not upgrade, a wrong or missing DNSSEC
master key for signed zones, a listen or API address it cannot bind."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from pathlib import Path

from .server.config import Config, parse_listen
from .server.startup import redact_url


class Report:
    """Lines of `what: result`, and the problems that would stop `serve`."""

    def __init__(self, write=print):
        self.write = write
        self.problems: list[str] = []

    def line(self, what: str, text: str) -> None:
        self.write(f"{what + ':':<12} {text}")

    def problem(self, what: str, text: str) -> None:
        self.line(what, f"PROBLEM: {text}")
        self.problems.append(f"{what}: {text}")


async def run_check(config: Config, config_path: str | None = None, write=print) -> int:
    r = Report(write)
    r.line("config", f"{config_path or 'no file'}: valid")
    facts = await _database(config, r) if config.uses_database else {}
    if not config.uses_database:
        r.line("database", "none (zone files only)")
    file_zones = _zone_files(config, r)
    for spec in config.listen:
        _bind_test(r, "listen", spec, udp=True)
    api = config.api and config.uses_database
    if api:
        _bind_test(r, "api", config.api_listen, udp=False)
    secondaries = len(config.secondaries) + facts.get("db_secondaries", 0)
    r.line("notify", f"{'on' if config.notify else 'off'}: {len(config.secondaries)} secondaries configured, "
                     f"{facts.get('db_secondaries', 0)} in the database")  # fmt: skip
    workers = config.worker_count if hasattr(config, "worker_count") else None
    if workers is not None:
        r.line("workers", str(workers))
    zones = facts.get("zones", 0) + file_zones
    would = (f"serve {zones} zone(s) ({facts.get('records', 0)} record(s) in the database) on "
             f"{', '.join(config.listen)} (udp, tcp); API {'on http://' + config.api_listen + '/' if api else 'off'}; "
             f"NOTIFY {secondaries if config.notify else 0} secondaries")  # fmt: skip
    if workers is not None:
        would += f"; {workers} worker(s)"
    if config.heartbeat_name:
        would += f"; heartbeat {config.heartbeat_name}.<zone> every {config.heartbeat_interval:g}s"
    r.line("serve would", would)
    if r.problems:
        r.write(f"minidns check: serve would not start: {'; '.join(r.problems)}")
        return 1
    r.write("minidns check: serve would start")
    return 0


# -- the database ---------------------------------------------------------------------------------


async def _database(config: Config, r: Report) -> dict:
    from .store import db

    url = config.database_url
    started = None
    if url is None:
        url, started = await _embedded(config, r)
        if url is None:  # absent: serve creates it, and a new one gets the example zone
            return {} if r.problems else {"zones": 1}
        shown = "the embedded PostgreSQL"
    else:
        shown = redact_url(url)
    try:
        try:
            pool = await db.create_pool(url, size=2)
        except db.DatabaseError as e:
            r.problem("database", f"{shown}: {e}")
            return {}
        try:
            return await _inspect(pool, config, r, shown)
        except db.DatabaseError as e:
            r.problem("database", f"{shown}: {e}")
            return {}
        finally:
            await asyncio.wait_for(pool.close(), 5)
    finally:
        if started is not None:
            await asyncio.to_thread(started.stop)


async def _embedded(config: Config, r: Report):
    """The embedded database: its directory, whether it is there, running, and writable; returns
    (its URL, the Embedded this check started or None). A running one (another `serve` uses it) is
    connected to; one present but not running is started for the check and stopped after it, so
    that the zones it holds are counted; an absent one is not created."""
    from .store.db import DatabaseError
    from .store.embedded import NEEDS_MB, default_data_dir, start_embedded

    root = Path(config.data_dir or default_data_dir()).expanduser().resolve()
    pgdata = root / "pg"
    exists = (pgdata / "PG_VERSION").exists()
    running = _postmaster_running(pgdata)
    where = _nearest_existing(root)
    writable = os.access(where, os.W_OK | os.X_OK)
    free = _free_mb(where)
    state = ("running (used by a serve now)" if running else "present, not running (started for this check)") if exists \
        else "absent: serve creates it (with the example zone example.com.)"  # fmt: skip
    r.line("database", f"embedded PostgreSQL in {root}: {state}")
    if not writable:
        r.problem("data dir", f"{where} is not writable by this user")
    elif not exists and free is not None and free < NEEDS_MB:
        r.problem("data dir", f"{where}: {free} MB free, a new database needs about {NEEDS_MB} MB")
    else:
        r.line("data dir", f"{root}: writable" + (f", {free} MB free" if free is not None else ""))
    if running:
        return f"postgresql://postgres@/postgres?host={pgdata}", None
    if not exists:
        return None, None
    try:
        started = await asyncio.to_thread(start_embedded, str(root))
    except DatabaseError as e:
        r.problem("database", str(e))
        return None, None
    return started.url, started


def _default_data_dir() -> str:
    from .store.embedded import default_data_dir

    return default_data_dir()


def _postmaster_running(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _free_mb(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize // (1 << 20)


async def _inspect(pool, config: Config, r: Report, shown: str) -> dict:
    from .store import db

    version = await pool.fetchval("SHOW server_version")
    r.line("database", f"{shown}: connected (PostgreSQL {version})")
    async with pool.acquire() as conn:
        have = set()
        if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            have = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    pending = [name for v, name, _ in db.migrations() if v not in have]
    latest = max(have) if have else None
    expected = db.migrations()[-1][1]
    if not pending:
        r.line("schema", f"current ({expected})")
    elif config.db_upgrade:
        r.line("schema", f"at {latest or 'none'}; serve applies {len(pending)} migration(s): {', '.join(pending)}")
    else:
        r.problem("schema", f"{len(pending)} migration(s) pending ({', '.join(pending)}) and db_upgrade is off: "
                            "run `minidns db upgrade`")  # fmt: skip
    if "zones" not in await _tables(pool):
        r.line("zones", "none yet (an empty database)")
        return {}
    zones, signed = await pool.fetchrow("SELECT count(*), count(*) FILTER (WHERE dnssec) FROM zones")
    records = await pool.fetchval("SELECT coalesce(sum(cardinality(records)), 0) FROM rrsets")
    r.line("zones", f"{zones} zone(s), {records} record(s), {signed} signed")
    await _master_key(pool, config, r, signed)
    db_secondaries = 0
    if "zone_secondaries" in await _tables(pool):
        db_secondaries = await pool.fetchval("SELECT count(*) FROM zone_secondaries")
    return {"zones": zones, "records": records, "db_secondaries": db_secondaries}


async def _tables(pool) -> set[str]:
    rows = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return {row[0] for row in rows}


async def _master_key(pool, config: Config, r: Report, signed: int) -> None:
    """The DNSSEC master key: where it comes from, and whether it opens the database's keys."""
    from .dnssec.keys import BadKey
    from .store.keys import ENV, check_master, load_zone_keys

    source = f"${ENV}" if os.environ.get(ENV) else (config.dnssec_master_key_file or "master.key in the data directory")
    try:
        master = config.master_key()
    except BadKey as e:
        if signed:
            r.problem("dnssec", f"master key unusable: {e}")
        else:
            r.line("dnssec", f"master key unusable ({e}); no zone is signed")
        return
    if master is None:
        if signed:
            r.problem("dnssec", f"no master key ({ENV} or dnssec_master_key_file): "
                                f"{signed} signed zone(s) would be served unsigned")  # fmt: skip
        else:
            r.line("dnssec", "no master key; no zone is signed")
        return
    try:
        async with pool.acquire() as conn:
            await check_master(conn, master)
            for row in await conn.fetch("SELECT id FROM zones WHERE dnssec ORDER BY name"):
                await load_zone_keys(conn, row["id"], master)
    except BadKey as e:
        r.problem("dnssec", f"master key from {source}: {e}")
        return
    r.line("dnssec", f"master key from {source}: present, opens the keys of {signed} signed zone(s)")


# -- zone files and addresses ----------------------------------------------------------------------


def _zone_files(config: Config, r: Report) -> int:
    from .server.app import load_zones, zone_sources

    if not config.zone_files:
        return 0
    zones, errors = load_zones(zone_sources(config))
    for zone in zones:
        r.line("zone file", f"{zone.name} serial {zone.serial}: {len(zone)} name(s)")
    for error in errors:  # serve starts without them, logging the same
        r.line("zone file", f"not loaded, serve would skip it: {error}")
    return len(zones)


_BIND_ERRORS = {
    errno.EADDRINUSE: "in use",
    errno.EACCES: "permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "no such address on this host",
}


def _bind_test(r: Report, what: str, spec: str, *, udp: bool) -> None:
    """Bind (and release) the address as serve would: UDP and TCP, or TCP alone for the API."""
    family, host, port = parse_listen(spec)
    kinds = [("tcp", socket.SOCK_STREAM)] + ([("udp", socket.SOCK_DGRAM)] if udp else [])
    for name, kind in kinds:
        s = socket.socket(family, kind)
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if kind == socket.SOCK_STREAM:  # as serve's listener: a TIME_WAIT left over is no obstacle
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            if kind == socket.SOCK_STREAM:
                s.listen(1)
        except OSError as e:
            reason = _BIND_ERRORS.get(e.errno, e.strerror)
            r.problem(what, f"{spec} ({name}): {reason}")
            return
        finally:
            s.close()
    r.line(what, f"{spec}: free ({', '.join(n for n, _ in kinds)})" if port else f"{spec}: any free port")
