"""`minidns check` (minidns/check.py) as an operator runs it: the real command, a real PostgreSQL,
real sockets. Exit 0 and what serve would do when it would start; each reason it would not gives
exit 1 (2 for a bad configuration) and a line naming it."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
from pathlib import Path

from minidns.store import db
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store

ZONE = "check.test."
KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(1, 33))).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_zone(url: str, signed_with: bytes | None = None) -> None:
    async def go():
        pool = await db.create_pool(url)
        try:
            store = Store(pool, master=signed_with, stages=write_stages())
            edits = [Edit("add", "@", "NS", None, ("ns1",)), Edit("add", "ns1", "A", None, ("192.0.2.53",)),
                     Edit("add", "www", "A", None, ("192.0.2.1",))]  # fmt: skip
            await store.create_zone(ZONE, email="h@check.test", edits=edits)
            if signed_with is not None:
                from minidns.services import dnssec

                await dnssec.enable(store, ZONE, signed_with)
        finally:
            await pool.close()

    asyncio.run(go())


def addresses() -> list[str]:
    return ["--listen", f"127.0.0.1:{free_port()}", "--api-listen", f"127.0.0.1:{free_port()}"]


def env_with(**kw) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MINIDNS_MASTER_KEY", "MINIDNS_DATABASE_URL")}
    env.update(kw)
    return env


def test_check_says_what_serve_would_do(cli, database_url):
    make_zone(database_url)
    args = addresses()
    p = cli("check", "--database-url", database_url, *args, env=env_with())
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "connected (PostgreSQL 18" in out and "schema:      current (0" in out
    assert "zones:       1 zone(s), 4 record(s), 0 signed" in out
    assert f"listen:      {args[1]}: free (tcp, udp)" in out and f"api:         {args[3]}: free (tcp)" in out
    assert "workers:     1" in out
    assert f"serve 1 zone(s) (4 record(s) in the database) on {args[1]} (udp, tcp); API on http://{args[3]}/" in out
    assert out.rstrip().endswith("minidns check: serve would start")


def test_a_bad_configuration_is_exit_2(cli, tmp_path):
    conf = tmp_path / "minidns.toml"
    conf.write_text('listen = ["nowhere:53"]\n')
    p = cli("check", "--config", conf)
    assert p.returncode == 2 and "configuration error" in p.stderr and "nowhere" in p.stderr
    conf.write_text("no_such_setting = 1\n")
    p = cli("check", "--config", conf)
    assert p.returncode == 2 and "unknown setting(s): no_such_setting" in p.stderr


def test_an_unreachable_database_is_exit_1(cli):
    url = f"postgresql://minidns:secret@127.0.0.1:{free_port()}/minidns"
    p = cli("check", "--database-url", url, *addresses(), env=env_with())
    assert p.returncode == 1
    assert "database:    PROBLEM: postgresql://minidns:***@127.0.0.1:" in p.stdout and "cannot connect" in p.stdout
    assert "secret" not in p.stdout + p.stderr
    assert "serve would not start: database:" in p.stdout


def test_a_port_in_use_is_exit_1(cli, serve, database_url):
    s = serve("--database-url", database_url, "--no-api")
    p = cli("check", "--database-url", database_url, "--listen", f"127.0.0.1:{s.port}", "--no-api", env=env_with())
    assert p.returncode == 1
    assert f"listen:      PROBLEM: 127.0.0.1:{s.port} (tcp): in use" in p.stdout
    api = socket.socket()
    api.bind(("127.0.0.1", 0))
    api.listen(1)
    try:
        p = cli("check", "--database-url", database_url, "--listen", f"127.0.0.1:{free_port()}",
                "--api-listen", f"127.0.0.1:{api.getsockname()[1]}", env=env_with())  # fmt: skip
    finally:
        api.close()
    assert p.returncode == 1 and "api:         PROBLEM: " in p.stdout and "in use" in p.stdout


def test_the_master_key_of_signed_zones(cli, database_url):
    make_zone(database_url, signed_with=base64.b64decode(KEY_A))
    args = ("check", "--database-url", database_url, *addresses())
    p = cli(*args, env=env_with(MINIDNS_MASTER_KEY=KEY_A))
    assert p.returncode == 0, p.stdout
    assert "dnssec:      master key from $MINIDNS_MASTER_KEY: present, opens the keys of 1 signed zone(s)" in p.stdout
    p = cli(*args, env=env_with(MINIDNS_MASTER_KEY=KEY_B))
    assert p.returncode == 1 and "dnssec:      PROBLEM: " in p.stdout and "wrong DNSSEC master key" in p.stdout
    p = cli(*args, env=env_with())
    assert p.returncode == 1 and "no master key" in p.stdout and "1 signed zone(s) would be served unsigned" in p.stdout
    p = cli(*args, env=env_with(MINIDNS_MASTER_KEY="not base64!"))
    assert p.returncode == 1 and "master key unusable" in p.stdout


def test_pending_migrations(cli, database_url):
    async def forget_latest():
        conn = await db.connect(database_url)
        await conn.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
        await conn.close()

    asyncio.run(forget_latest())
    latest = db.migrations()[-1][1]
    p = cli("check", "--database-url", database_url, *addresses(), env=env_with())
    assert p.returncode == 0 and f"serve applies 1 migration(s): {latest}" in p.stdout, p.stdout
    p = cli("check", "--database-url", database_url, "--no-db-upgrade", *addresses(), env=env_with())
    assert p.returncode == 1 and "db_upgrade is off: run `minidns db upgrade`" in p.stdout


def test_the_embedded_database_is_not_started(cli, tmp_path):
    data = tmp_path / "data"
    p = cli("check", "--data-dir", data, *addresses(), env=env_with())
    assert p.returncode == 0, p.stdout
    assert f"embedded PostgreSQL in {data}: absent: serve creates it" in p.stdout
    assert f"data dir:    {data}: writable" in p.stdout and not data.exists()
    assert "serve 1 zone(s)" in p.stdout


def test_a_running_embedded_database_is_inspected(cli, pg_server):
    pgdata = Path(re.search(r"host=([^&]+)", pg_server.url).group(1))  # the session's embedded PostgreSQL
    p = cli("check", "--data-dir", pgdata.parent, *addresses(), env=env_with())
    assert "running (used by a serve now)" in p.stdout and "connected (PostgreSQL 18" in p.stdout, p.stdout


def test_a_stopped_embedded_database_is_counted(cli, tmp_path):
    """A data dir whose PostgreSQL is not running is started for the check, its zones counted, and
    stopped again (the example zone and one imported: two zones)."""
    data = tmp_path / "data"
    p = cli("zone", "import", Path(__file__).resolve().parent.parent / "contrib/zones/example.org.zone",
            "--data-dir", data, env=env_with())
    assert p.returncode == 0, p.stderr
    p = cli("check", "--data-dir", data, *addresses(), env=env_with())
    assert p.returncode == 0, p.stdout
    assert "present, not running (started for this check)" in p.stdout, p.stdout
    assert "zones:       2 zone(s)" in p.stdout and "serve 2 zone(s)" in p.stdout, p.stdout
    assert not (data / "pg" / "postmaster.pid").exists()  # stopped again
