"""The database commands of `minidns`: each opens the database as `serve` would, does one thing
through the store's write path, and prints its result. Errors print one line and exit non-zero."""

from __future__ import annotations

import sys
import time

from .dnssec.keys import BadKey
from .server.config import Config
from .services.database import open_database
from .store.db import DatabaseError, connect, upgrade
from .store.embedded import start_embedded, default_data_dir
from .services import access
from .store.history import recent_changes
from .store.transfer_settings import load_settings
from .store.backup import BackupError
from .store.records import Invalid, zone_name
from .store.writer import Conflict, Edit, NotFound, Unsignable
from .zones.loader import NoOrigin, ZoneFileError


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self):
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        bar = "#" * int(share * 40)
        elapsed = time.monotonic() - self.started
        sys.stderr.write(f"\rreading {bar:<40} {share:6.1%} {elapsed:6.1f}s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


async def run_command(args, config: Config) -> int:
    try:
        if args.command == "db":
            return await _db_upgrade(config)
        if args.command in ("backup", "restore"):
            return await (_backup(args, config) if args.command == "backup" else _restore(args, config))
        from .server.app import example_zone_path

        database = await open_database(
            config.database_url, config.data_dir, settings=config.store_settings(), seed_zone_file=example_zone_path(),
            master_key=lambda: _usable_master_key(config),  # writes to signed zones sign what they change
        )
        try:
            if args.command == "reconcile":
                return await _reconcile(args, database, config)
            if args.command == "events":
                return await _events_status(database)
            if args.command == "dnssec":
                return await _dnssec(args, database, config)
            return await _run(args, database)
        finally:
            await database.close()
    except (Invalid, NotFound, Conflict, ZoneFileError, DatabaseError, BadKey, Unsignable, BackupError) as e:
        print(f"minidns: {e}", file=sys.stderr)
        return 1


def _usable_master_key(config: Config) -> bytes | None:
    try:
        return config.master_key()
    except BadKey:
        return None


async def _pool(args, database) -> int:
    """`minidns pool ...`: pools, their NS records and targets (services/pools.py)."""
    from .services import pools

    store = database.store
    if args.action == "list":
        async with store.pool.acquire() as conn:
            for p in await pools.list_pools(conn):
                ns = " ".join(f"{n.hostname}:{n.priority}" for n in p["ns_records"])
                targets = " ".join(f"{a}#{port}" + (f" key {key}" if key else "") for a, port, key in p["targets"])
                print(f"{p['name']}\t{p['id']}\t{p['zones']} zone(s)\tNS {ns or '-'}\ttargets {targets or '-'}")
    elif args.action == "create":
        p = await pools.create_pool(store, args.pool, pools.check_ns_records(args.ns), args.description)
        print(f"created pool {p['name']} {p['id']}")
    elif args.action == "set-ns":
        for name, what, change in await pools.set_ns_records(store, args.pool, pools.check_ns_records(args.ns), source="cli"):
            print(f"{name} serial {change.serial_from} -> {change.serial_to}")
    elif args.action == "move-zone":
        z = await store.zone(args.zone)
        change = await pools.move_zone(store, z["id"], args.pool, source="cli")
        print(f"{change.zone} moved to pool {args.pool}: serial {change.serial_from} -> {change.serial_to}")
    elif args.action == "delete":
        await pools.delete_pool(store, args.pool)
        print(f"deleted pool {args.pool}")
    else:
        remove = args.action == "target-delete"
        await pools.set_target(store, args.pool, args.address, args.port, None if remove else args.key, remove=remove)
        print(f"pool {args.pool}: target {args.address}#{args.port} {'removed' if remove else 'added'}")
    return 0


async def _db_upgrade(config: Config) -> int:
    embedded = None
    url = config.database_url
    if url is None:
        import asyncio

        embedded = await asyncio.to_thread(start_embedded, config.data_dir or default_data_dir())
        url = embedded.url
    try:
        conn = await connect(url)
        try:
            applied = await upgrade(conn)
        finally:
            await conn.close()
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"applied: {', '.join(applied)}" if applied else "the schema is current")
    # Pools are prepared where the schema is upgraded: zones without apex NS are repaired (logged).
    database = await open_database(config.database_url, config.data_dir, settings=config.store_settings(),
                                   master_key=lambda: _usable_master_key(config))  # fmt: skip
    await database.close()
    return 0


async def _plain_database(config: Config, *, create: bool):
    """The database's URL and, for the embedded one, the Embedded started for this command — with
    no migration applied and nothing seeded, as backup and restore need it. Without `create`, a
    data directory holding no database is an error."""
    import asyncio
    from pathlib import Path

    if config.database_url is not None:
        return config.database_url, None
    data_dir = Path(config.data_dir or default_data_dir()).expanduser()
    if not create and not (data_dir / "pg" / "PG_VERSION").exists():
        raise DatabaseError(f"no embedded database in {data_dir} (give --data-dir or --database-url)")
    embedded = await asyncio.to_thread(start_embedded, str(data_dir))
    return embedded.url, embedded


async def _backup(args, config: Config) -> int:
    """`minidns backup FILE`: the database and the master key, one snapshot, one file."""
    import asyncio

    from . import __version__
    from .store.backup import backup

    master = config.master_key()
    url, embedded = await _plain_database(config, create=False)
    try:
        m = await backup(url, master, args.file, minidns_version=__version__)
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
    key = "with the DNSSEC master key" if m["master_key"] else "no DNSSEC master key (none configured, no signed zone)"
    print(f"{args.file}: {m['zones']} zone(s), {m['records']} record(s), {m['signed_zones']} signed; schema "
          f"{m['schema_migration']}; {key}")  # fmt: skip
    return 0


def _master_key_destination(config: Config, master: bytes, replace: bool):
    """Where restore writes the backup's master key (None: already there), checked before the
    database is touched."""
    import base64
    import os
    from pathlib import Path

    from .store.backup import place_master_key
    from .store.keys import ENV, KEY_FILE

    if os.environ.get(ENV):
        if base64.b64decode(os.environ[ENV].strip()) != master:
            raise BackupError(f"${ENV} holds another master key than the backup's: unset it, or set it to the backup's")
        return None
    if config.dnssec_master_key_file:
        path = Path(config.dnssec_master_key_file).expanduser()
    elif config.database_url is None:
        path = Path(config.data_dir or default_data_dir()).expanduser() / KEY_FILE
    else:
        raise BackupError("the backup holds a DNSSEC master key: give --dnssec-master-key-file FILE (restore writes "
                          "it there; serve reads it from there)")  # fmt: skip
    return place_master_key(master, path, replace=replace)


async def _restore(args, config: Config) -> int:
    """`minidns restore FILE`: check the file whole, then load it into an empty database."""
    import asyncio
    import tempfile

    from .store.backup import read_backup, restore, write_master_key

    with tempfile.TemporaryDirectory(prefix="minidns-restore-") as work:
        b = read_backup(args.file, work)
        key_to = _master_key_destination(config, b.master, args.force) if b.master is not None else None
        url, embedded = await _plain_database(config, create=True)
        try:
            applied = await restore(url, b, replace=args.force)
            if key_to is not None:
                write_master_key(b.master, key_to)
        finally:
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)
    m = b.manifest
    print(f"restored {m['zones']} zone(s), {m['records']} record(s), {m['signed_zones']} signed, from a backup of "
          f"{m['created_at']} (minidns {m['minidns_version']}, schema {m['schema_migration']})")  # fmt: skip
    if applied:
        print(f"applied: {', '.join(applied)}")
    if b.master is not None:
        print(f"DNSSEC master key: {key_to if key_to is not None else 'already in place'}")
    return 0


async def _events_status(database) -> int:
    """`minidns events status`: the message-bus sources of every serve process (bus/status_table.py)."""
    from .bus.status_table import read_status, report

    async with database.pool.acquire() as conn:
        print("\n".join(report(await read_status(conn))))
    return 0


async def _reconcile(args, database, config: Config) -> int:
    """`minidns reconcile SOURCE ID…`: what POST /v1/reconcile does, from a shell."""
    from .sink.outcome import Unavailable
    from .sink.reconcile import reconcile
    from .sink.settings import EventSettings

    ids = list(args.ids)
    if args.ids_file:
        f = sys.stdin if args.ids_file == "-" else open(args.ids_file, encoding="utf-8")
        try:
            ids += [line.strip() for line in f if line.strip() and not line.startswith("#")]
        finally:
            if f is not sys.stdin:
                f.close()
    try:
        result = await reconcile(database.store, EventSettings.from_config(config), args.source, ids,
                                 args.resource_type, args.dry_run)  # fmt: skip
    except Unavailable as e:
        print(f"minidns: {e}", file=sys.stderr)
        return 1
    verb = "would remove" if args.dry_run else "removed"
    for c in result["removed"]:
        print(f"{verb}\t{c['zone']}\t{c['name']}\t{c['type']}\t{' '.join(c.get('records', []))}")
    print(f"{result['source']} {result['resource_type']}: {len(result['resources'])} resource(s) gone, "
          f"{len(result['removed'])} RRset(s) {verb}")  # fmt: skip
    return 0


def _when(at) -> str:
    """A time as UTC ISO 8601, and how far off it is."""
    import datetime

    left = (at - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    off = f"in {_span(left)}" if left > 0 else f"{_span(-left)} ago"
    return f"{at.astimezone(datetime.timezone.utc).isoformat(timespec='seconds')} ({off})"


def _span(seconds: float) -> str:
    s = int(seconds)
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    return f"{d}d {h}h" if d else f"{h}h {m}m" if h else f"{m}m {s % 60}s"


def _print_steps(steps) -> int:
    failed = 0
    for st in steps:
        if st.error:
            failed += 1
            print(f"{st.zone}\t{st.kind.upper()} rollover: step not taken: {st.error}", file=sys.stderr)
            continue
        c = st.change
        serial = f" (serial {c.serial_from} -> {c.serial_to})" if c and c.serial_to != c.serial_from else ""
        then = f"; next step due {_when(st.due_at)}" if st.due_at and not st.finished else ""
        print(f"{st.zone}\t{st.kind.upper()} rollover: {st.done}{serial}{then}")
    return 1 if failed else 0


async def _dnssec(args, database, config: Config) -> int:
    """`minidns dnssec enable|disable|status|ds|rollover|ds-seen ZONE`, `minidns dnssec advance`."""
    from .services import dnssec, rollover

    store = database.store
    margin = config.dnssec_rollover_margin
    if args.action == "rollover":
        return _print_steps([await rollover.start(store, args.zone, args.key, margin=margin)])
    if args.action == "ds-seen":
        return _print_steps([await rollover.ds_seen(store, args.zone, margin=margin)])
    if args.action == "advance":
        steps = await rollover.advance(store, margin=margin)
        if not steps:
            print("no rollover step is due")
        return _print_steps(steps)
    if args.action == "enable":
        store.master = config.master_key(create=True)
        change = await dnssec.enable(store, args.zone, store.master, args.algorithm, args.split, args.nsec3_opt_out)
        print(f"{change.zone} signed ({args.algorithm}, {'KSK and ZSK' if args.split else 'CSK'}):"
              f" serial {change.serial_from} -> {change.serial_to}")  # fmt: skip
        for line in await dnssec.ds(store, change.zone):
            print(line)
    elif args.action == "nsec3":
        change = await dnssec.set_nsec3_optout(store, args.zone, args.optout)
        print(f"{change.zone} NSEC3 opt-out {'on' if args.optout else 'off'}: serial {change.serial_from} -> {change.serial_to}")
    elif args.action == "disable":
        change = await dnssec.disable(store, args.zone)
        print(f"{change.zone} no longer signed: serial {change.serial_from} -> {change.serial_to}")
    elif args.action == "status":
        await _print_dnssec_status(database, args.zone)
    else:
        for line in await dnssec.ds(store, args.zone):
            print(line)
    return 0


async def _print_dnssec_status(database, zone: str) -> None:
    """A zone's keys with their dates, and its rollovers in progress with their next steps."""
    from .services import dnssec, rollover

    z, keys = await dnssec.status(database.store, zone)
    print(f"{z['name']} {'signed' if z['dnssec'] else 'unsigned'}, {len(keys)} key(s)")
    for k in keys:
        dates = "\t".join(f"{d} {k[d + '_at'].isoformat(timespec='seconds') if k[d + '_at'] else '-'}"
                          for d in ("created", "activated", "retired"))  # fmt: skip
        print(f"  {k['role']}\t{k['algorithm']}\ttag {k['key_tag']}\t{k['state']}\t{dates}")
    async with database.pool.acquire() as conn:
        rolls = await rollover.rollovers(conn, z["id"])
    for r in rolls:
        print(f"  rollover {r['key']} ({r['role'].upper()} {r['old_key_tag']} -> {r['new_key_tag']}): {r['phase']}"
              f" since {r['phase_at'].isoformat(timespec='seconds')}; next: {r['next_step']}")  # fmt: skip
        if r["waiting_for_ds"]:
            print(f"    waiting for `minidns dnssec ds-seen {z['name']}` (the parent serving the new key's DS, its TTL"
                  f" passed), and not before {_when(r['next_step_due'])}")  # fmt: skip
        else:
            print(f"    due {_when(r['next_step_due'])}")
    if not rolls and z["dnssec"]:
        print("  no rollover in progress")


def _print_status(zone: dict, rows: list[dict]) -> None:
    print(f"{zone['name']} serial {zone['serial']} status {zone['status']} action {zone['action']}")
    for r in rows:
        seen = r["seen_at"].isoformat(timespec="milliseconds") if r["seen_at"] else "-"
        lag = f"{(r['seen_at'] - zone['updated_at']).total_seconds() * 1000:.0f} ms" if r["seen_at"] and r["target"] == zone["serial"] else "-"
        print(f"  {r['secondary']}\t{r['state']}\tserial {r['serial'] if r['serial'] is not None else '-'}"
              f" (waiting for {r['target']})\tseen {seen}\tlag {lag}")


async def _run(args, database) -> int:
    run = {"zone": _zone, "token": _token, "pool": _pool, "catalog": _catalog, "tsig": _tsig, "record": _record,
           "update": _update}  # fmt: skip
    if args.command not in run:
        raise AssertionError(args.command)
    return await run[args.command](args, database)


async def _zone(args, database) -> int:
    """`minidns zone import|export|list|delete|status|history|allow-transfer|secondary ...`."""
    store = database.store
    if args.action == "import":
        await _zone_import(args, store)
    elif args.action == "export":
        from .services.zonefile import export_zone

        await export_zone(store, args.name, sys.stdout.write)
    elif args.action == "list":
        for z in await store.zones():
            print(f"{z['name']}\t{z['serial']}\t{z['status']}\t{z['id']}")
    elif args.action == "delete":
        change = await store.delete_zone(args.name, source="cli")
        print(f"deleted {change.zone}")
    elif args.action == "status":
        _print_status(*await access.zone_status(database.pool, args.name))
    elif args.action == "history":
        for c in await recent_changes(database.pool, str(zone_name(args.name)), args.limit):
            print(f"{c['serial_from'] or '-'} -> {c['serial_to']}\t{c['created_at']:%Y-%m-%d %H:%M:%S}\t{c['source']}"
                  f"\t-{c['removed']} +{c['added']}")  # fmt: skip
    elif args.action == "allow-transfer":
        entries = [] if args.nobody else (args.entries or None)
        await access.set_allow_transfer(database.pool, args.name, entries)
        print(f"{args.name}: transfers allowed to {', '.join(entries) if entries else 'nobody' if entries == [] else 'the default'}")
    elif args.action == "secondary":
        await _zone_secondary(args, database)
    return 0


async def _zone_import(args, store) -> None:
    from .services.zonefile import import_zone

    progress = _Progress() if (args.progress or sys.stderr.isatty()) else None
    started = time.monotonic()
    try:
        change = await import_zone(store, args.file, args.origin, source="cli:import", progress=progress)
    except NoOrigin as e:
        raise e.with_hint("give the zone's name with --origin NAME") from None
    print(f"imported {change.zone} serial {change.serial_to}: {change.added} RRsets in {time.monotonic() - started:.1f}s")
    if change.note:
        print(f"{change.zone}: {change.note}")


async def _zone_secondary(args, database) -> None:
    if args.secondary_action == "add":
        await access.add_secondary(database.pool, args.name, args.address, args.port, args.key)
        print(f"{args.name}: secondary {args.address}#{args.port}{' key ' + args.key if args.key else ''}")
    elif args.secondary_action == "delete":
        await access.delete_secondary(database.pool, args.name, args.address, args.port)
        print(f"{args.name}: secondary {args.address}#{args.port} removed")
    else:
        for zone, entries in (await load_settings(database.pool)).secondaries.items():
            if zone == zone_name(args.name).to_text().lower():
                for address, port, key in entries:
                    print(f"{address}\t{port}\t{key or '-'}")


async def _token(args, database) -> int:
    """`minidns token create|list|delete`."""
    from .services import tokens

    if args.action == "create":
        print(await tokens.create_token(database.pool, args.project, args.role, args.description))
    elif args.action == "list":
        for t in await tokens.list_tokens(database.pool):
            print(f"{t['id']}\t{t['project_id']}\t{t['role']}\t{t['description'] or ''}")
    else:
        await tokens.delete_token(database.pool, args.token_id)
        print(f"deleted token {args.token_id}")
    return 0


async def _catalog(args, database) -> int:
    """`minidns catalog create NAME`: a catalog zone (RFC 9432)."""
    store = database.store
    attrs = {}
    if args.pool:
        from .services.pools import find_pool

        async with store.pool.acquire() as conn:
            attrs["pool"] = str((await find_pool(conn, args.pool))["id"])
    change = await store.create_zone(args.name, email=args.email, mname="invalid.", source="cli",
                                     catalog_members=args.members or ["*"], catalog_attributes=attrs)  # fmt: skip
    z = await store.zone(change.zone_id)
    print(f"created catalog zone {z['name']} serial {z['serial']}")
    return 0


async def _tsig(args, database) -> int:
    """`minidns tsig add|list|delete`: TSIG keys in the database."""
    if args.action == "add":
        name, alg, secret = await access.add_key(database.pool, args.keyname, args.algorithm, args.secret)
        print(f"{name}\t{alg}\t{secret}")
    elif args.action == "list":
        for name, alg in await access.list_keys(database.pool):
            print(f"{name}\t{alg}")
    else:
        await access.delete_key(database.pool, args.keyname)
        print(f"deleted {args.keyname}")
    return 0


async def _update(args, database) -> int:
    """`minidns update grant add|list|delete`: the UPDATE grants in the database."""
    from .services import update_grants

    if args.grant_action == "add":
        entry = {"key": args.key, "zone": args.zone, "match": args.match, "pattern": args.pattern,
                 "types": [t for t in (args.types or "").split(",") if t.strip()], "action": "deny" if args.deny else "grant",
                 "managed": args.managed}  # fmt: skip
        made = await update_grants.add_grant(database.pool, entry, args.position, args.description)
        print(f"added grant {made['id']} at position {made['position']}")
    elif args.grant_action == "list":
        print("\n".join(update_grants.table(await update_grants.list_grants(database.pool, args.key, args.zone))))
    else:
        await update_grants.delete_grant(database.pool, args.grant_id)
        print(f"deleted grant {args.grant_id}")
    return 0


async def _record(args, database) -> int:
    """`minidns record add|delete ZONE NAME TYPE TTL DATA…`: one record through the write path."""
    store = database.store
    data = " ".join(args.data)
    edit = Edit("add" if args.action == "add" else "remove", args.name, args.type, args.ttl, (data,))
    change = await store.change(args.zone, [edit], source="cli")
    if change.serial_to == change.serial_from:
        print(f"{change.zone} unchanged (serial {change.serial_to})")
    else:
        print(f"{change.zone} serial {change.serial_from} -> {change.serial_to}")
    return 0
