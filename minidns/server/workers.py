"""A worker process of `minidns serve --workers N` (`python -m minidns.server.workers`, started by
server/supervisor.py): it answers DNS on the main process's addresses (SO_REUSEPORT: the kernel
spreads clients over the sockets) with its own copy of the zones, kept current from PostgreSQL
(store/follow.py); the main process alone serves the API, sends NOTIFY and takes the database's
periodic work (server/jobs.py), so nothing is done twice.

Its configuration arrives as one JSON line on its standard input (the main process's, with the
addresses actually bound, the database's URL and no API or NOTIFY); each later line is a new
configuration (SIGHUP on the main process), and the end of its input (the main process gone,
however it ended) stops it. It writes READY on its standard output once it answers, then STATS
lines with its query counts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import orjson

from ..store.db import DatabaseError
from .app import Server, run_loop
from .config import Config, ConfigError, load_config
from .logs import TEXT_FORMAT, setup_logging
from .scheduler import Job
from .supervisor import STATS_EVERY, stats_snapshot

__all__ = ["STATS_EVERY", "main"]

log = logging.getLogger("minidns")


# -- the worker process ------------------------------------------------------------------------

class WorkerProcess:
    """This process's server, fed configurations by the main process and reporting to it."""

    def __init__(self, config: Config, index: int):
        self.index = index
        self.server = Server(config, role="worker")

    async def run(self) -> None:
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                           os.fdopen(0, "rb", buffering=0))  # fmt: skip
        tasks = [asyncio.ensure_future(self.from_main(reader)), asyncio.ensure_future(self.announce())]
        try:
            await self.server.run()
        finally:
            for t in tasks:
                t.cancel()
            try:
                self.report()  # the last counts, so the main process's totals keep them
            except OSError:
                pass

    async def from_main(self, reader: asyncio.StreamReader) -> None:
        """Each line from the main process is a configuration to apply; its end stops the worker."""
        while True:
            line = await reader.readline()
            if not line:  # the main process is gone
                log.info("worker %d: the main process ended; stopping", self.index)
                self.server.stopping.set()
                return
            try:
                new = load_config(None, orjson.loads(line)["config"])
            except (ConfigError, ValueError, KeyError, TypeError) as e:
                log.error("worker %d: configuration from the main process not used: %s", self.index, e)
                continue
            self.server.apply_config(new, quiet=True)
            await self.server.reload()

    def report(self) -> None:
        os.write(1, b"STATS " + orjson.dumps(stats_snapshot(self.server.engine.stats)) + b"\n")

    async def announce(self) -> None:
        """READY once answering, then the query counts every STATS_EVERY seconds."""
        await self.server.ready.wait()
        os.write(1, b"READY\n")
        self.server.scheduler.add(Job("query counts to the main process", STATS_EVERY, self.report_counts))

    async def report_counts(self) -> None:
        self.report()


class _WorkerField(logging.Filter):
    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        return True


def main() -> int:
    first = sys.stdin.buffer.readline()
    try:
        message = orjson.loads(first)
        index = int(message["index"])
        config = load_config(None, message["config"])
    except (ValueError, KeyError, TypeError, ConfigError) as e:
        print(f"minidns worker: bad configuration from the main process: {e}", file=sys.stderr)
        return 2
    fmt = getattr(config, "log_format", "text")
    setup_logging(config.log_level, fmt)
    for handler in logging.getLogger().handlers:  # each line says which worker wrote it
        handler.addFilter(_WorkerField(index))
        if fmt == "text":
            handler.setFormatter(logging.Formatter(TEXT_FORMAT.replace("%(name)s", "%(name)s[worker %(worker)s]")))
    try:
        run_loop(WorkerProcess(config, index).run())
    except (OSError, DatabaseError) as e:
        log.error("worker %d cannot serve: %s", index, e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
