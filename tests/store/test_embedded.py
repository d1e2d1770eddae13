"""store/embedded.py: a private PostgreSQL made in a new data directory, stopped with its last
user, found again with its data on the next start (a user killed without a word not keeping it
running), and a data directory that cannot be used told in one line."""

import asyncio
import json
import subprocess
import sys

import pytest

from minidns.store import db
from minidns.store.embedded import Embedded, start_embedded


async def query(url: str, sql: str, *, script: bool = False):
    conn = await db.connect(url)
    try:
        return await (conn.execute(sql) if script else conn.fetchval(sql))
    finally:
        await conn.close()


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_made_stopped_and_found_again_with_its_data(tmp_path):
    root = tmp_path / "minidns"
    pgdata = root / "pg"
    first = start_embedded(str(root))
    try:
        assert isinstance(first, Embedded) and first.created and (pgdata / "PG_VERSION").exists()
        assert (pgdata / "postmaster.pid").exists()
        asyncio.run(query(first.url, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)", script=True))
    finally:
        first.stop()
    assert not (pgdata / "postmaster.pid").exists()  # its only user gone: PostgreSQL stopped

    # A user killed with SIGKILL stays on the wheel's list of users; the next start drops it.
    (pgdata / ".handle_pids.json").write_text(json.dumps([dead_pid()]))
    again = start_embedded(str(root))
    try:
        assert not again.created
        assert asyncio.run(query(again.url, "SELECT x FROM kept")) == 42
    finally:
        again.stop()
    assert not (pgdata / "postmaster.pid").exists()  # stopped: the dead user did not keep it running


def test_a_data_directory_below_a_file_is_told_in_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(db.DatabaseError) as e:
        start_embedded(str(tmp_path / "file" / "minidns"))
    message = str(e.value)
    assert message.startswith(f"cannot use the data directory {tmp_path / 'file' / 'minidns'}: Not a directory")
    assert message.endswith(f"; {tmp_path / 'file'} is not a directory") and "\n" not in message
