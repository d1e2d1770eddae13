"""`minidns serve --workers N`: the main process and N-1 worker processes answer DNS on the same
addresses (SO_REUSEPORT: the kernel spreads clients over the sockets), each with its own copy of
the zones kept current from PostgreSQL (store/follow.py). The main process alone serves the API,
sends NOTIFY and takes the database's periodic work (signature refresh, key rollovers), so nothing
is done twice.

A worker is `python -m minidns.server.workers`. Its configuration arrives as one JSON line on its
standard input (the main process's, with the addresses actually bound, the database's URL and no
API or NOTIFY); each later line is a new configuration (SIGHUP on the main process), and the end of
its input (the main process gone, however it ended) stops it. It writes READY on its standard
output once it answers. A worker that dies is started again; stopping the main process stops every
worker and waits for each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
import time

import orjson

from .config import Config, ConfigError, load_config
from .sdnotify import child_environ

log = logging.getLogger("minidns")

START_TIMEOUT = 600.0  # seconds a worker may take to load its zones before serving
STOP_TIMEOUT = 10.0  # seconds a worker may take to drain before it is killed
RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)  # seconds before restarting a worker that keeps dying
STABLE = 60.0  # seconds a worker must have run for its next death to count as the first
STATS_EVERY = 5.0  # seconds between a worker's reports of its query counts to the main process


def config_line(config: Config, index: int) -> bytes:
    return orjson.dumps({"index": index, "config": dataclasses.asdict(config)}) + b"\n"


class Worker:
    """One worker process and the task that keeps it running."""

    def __init__(self, index: int):
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.started = 0.0
        self.ready = asyncio.Event()  # this process of the worker answers
        self.answered = False  # some process of the worker has answered
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None


def stats_snapshot(stats) -> dict:
    """A process's query counts (answer.stats.QueryStats) as plain data."""
    return {"hits": list(stats.hits()), "answers": [[int(t), q, r, n] for (t, q, r), n in stats.answers.items()],
            "buckets": [list(b) for b in stats.buckets], "sums": list(stats.sums), "counts": list(stats.counts)}


class StatsTotal:
    """Query counts added up over processes, read as answer.stats.QueryStats is (admin/metrics.py)."""

    def __init__(self, buckets: tuple, snapshots):
        self.BUCKETS = buckets
        self._hits = [0, 0]
        self.answers: dict[tuple[bool, int, int], int] = {}
        self.buckets = ([0] * (len(buckets) + 1), [0] * (len(buckets) + 1))
        self.sums = [0.0, 0.0]
        self.counts = [0, 0]
        for snap in snapshots:
            self.add(snap)

    def add(self, snap: dict) -> None:
        for i in (0, 1):
            self._hits[i] += snap["hits"][i]
            self.sums[i] += snap["sums"][i]
            self.counts[i] += snap["counts"][i]
            for j, n in enumerate(snap["buckets"][i][: len(self.buckets[i])]):
                self.buckets[i][j] += n
        for t, q, r, n in snap["answers"]:
            key = (bool(t), q, r)
            self.answers[key] = self.answers.get(key, 0) + n

    def hits(self) -> tuple[int, int]:
        return self._hits[0], self._hits[1]


class Workers:
    """Workers 2..N of `serve --workers N` (the main process is worker 1)."""

    def __init__(self, count: int, config: Config):
        self.config = config
        self.workers = [Worker(i) for i in range(2, count + 1)]
        self.tasks: list[asyncio.Task] = []
        self.stopping = False
        self.snapshots: dict[int, dict] = {}  # pid -> the latest query counts a live worker reported
        self.retired: list[dict] = []  # the last counts of workers that ended, so totals never go back

    def total_stats(self, own) -> StatsTotal:
        """The main process's query counts (`own`, an answer.stats.QueryStats) plus every worker's."""
        return StatsTotal(own.BUCKETS, [stats_snapshot(own), *self.retired, *self.snapshots.values()])

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self.workers)

    @property
    def running(self) -> int:
        return sum(1 for w in self.workers if w.pid is not None and w.ready.is_set())

    async def start(self) -> None:
        """Start every worker; return once each answers. A worker that ends before it is ready
        stops the start (its own log says why)."""
        self.tasks = [asyncio.ensure_future(self._keep(w)) for w in self.workers]
        waits = [asyncio.ensure_future(w.ready.wait()) for w in self.workers]
        pending = set(waits) | set(self.tasks)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(w.ready.is_set() for w in self.workers):
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError("workers not ready after %d s" % START_TIMEOUT)
            done, pending = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task in self.tasks:
                    task.result()  # raises what ended it
        for w in waits:
            w.cancel()
        log.info("%d worker process(es) answering: pids %s", len(self.workers), ", ".join(str(w.pid) for w in self.workers))

    async def _keep(self, w: Worker) -> None:
        failures = 0
        while True:
            await self._spawn(w)
            status = await w.proc.wait()
            if self.stopping:
                return
            if not w.answered:
                raise OSError(f"worker {w.index} ended with status {_status(status)} before it answered")
            ran = time.monotonic() - w.started
            failures = 0 if ran >= STABLE else failures + 1
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            log.warning("worker %d (pid %d) ended with status %s after %.0f s; starting it again in %.1f s",
                        w.index, w.proc.pid, _status(status), ran, delay)  # fmt: skip
            await asyncio.sleep(delay)
            w.restarts += 1

    async def _spawn(self, w: Worker) -> None:
        w.ready.clear()
        w.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "minidns.server.workers", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=child_environ(), start_new_session=True,  # a terminal's ^C reaches the main process only
        )  # fmt: skip
        w.started = time.monotonic()
        w.proc.stdin.write(config_line(self.config, w.index))
        await w.proc.stdin.drain()
        asyncio.ensure_future(self._read_reports(w, w.proc))

    async def _read_reports(self, w: Worker, proc) -> None:
        """A worker's standard output: READY once it answers, then STATS lines with its counts."""
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                if line.startswith(b"STATS "):
                    try:
                        self.snapshots[proc.pid] = orjson.loads(line[6:])
                    except ValueError:
                        pass
                elif line.strip() == b"READY" and w.proc is proc:
                    w.answered = True
                    w.ready.set()
                    if w.restarts:
                        log.info("worker %d (pid %d) answering again", w.index, proc.pid)
        finally:
            last = self.snapshots.pop(proc.pid, None)
            if last is not None:
                self.retired.append(last)
                if len(self.retired) > 16:  # many restarts: keep their sum as one
                    self.retired = [_sum_snapshots(self.retired)]

    def reconfigure(self, config: Config) -> None:
        """A new configuration (SIGHUP): each worker applies what can change live, as the main
        process does, and reloads its zone files."""
        self.config = config
        for w in self.workers:
            if w.pid is not None:
                try:
                    w.proc.stdin.write(config_line(config, w.index))
                except (ConnectionError, RuntimeError) as e:
                    log.warning("worker %d: new configuration not sent: %s", w.index, e)

    async def stop(self) -> None:
        """SIGTERM to every worker; each stops listening and ends; killed after STOP_TIMEOUT."""
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        procs = [w.proc for w in self.workers if w.pid is not None]
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        if not procs:
            return
        _, slow = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=STOP_TIMEOUT)
        for p in procs:
            if p.returncode is None:
                log.warning("worker pid %d did not stop in %.0f s; killed", p.pid, STOP_TIMEOUT)
                p.kill()
        if slow:
            await asyncio.wait(slow, timeout=5)


def _sum_snapshots(snapshots: list[dict]) -> dict:
    size = len(snapshots[0]["buckets"][0])
    total = StatsTotal(tuple(range(size - 1)), snapshots)
    return {"hits": list(total.hits()), "answers": [[int(t), q, r, n] for (t, q, r), n in total.answers.items()],
            "buckets": [list(b) for b in total.buckets], "sums": total.sums, "counts": total.counts}


def _status(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return str(code)


# -- the worker process ------------------------------------------------------------------------

async def _run_worker(config: Config, index: int) -> None:
    from .app import Server

    server = Server(config, role="worker")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))

    async def from_main() -> None:
        while True:
            line = await reader.readline()
            if not line:  # the main process is gone
                log.info("worker %d: the main process ended; stopping", index)
                server.stopping.set()
                return
            try:
                new = load_config(None, orjson.loads(line)["config"])
            except (ConfigError, ValueError, KeyError, TypeError) as e:
                log.error("worker %d: configuration from the main process not used: %s", index, e)
                continue
            server.apply_config(new, quiet=True)
            await server.reload()

    def report() -> None:
        os.write(1, b"STATS " + orjson.dumps(stats_snapshot(server.engine.stats)) + b"\n")

    async def announce() -> None:
        await server.ready.wait()
        os.write(1, b"READY\n")
        while True:
            await asyncio.sleep(STATS_EVERY)
            report()

    tasks = [asyncio.ensure_future(from_main()), asyncio.ensure_future(announce())]
    try:
        await server.run()
    finally:
        for t in tasks:
            t.cancel()
        try:
            report()  # the last counts, so the main process's totals keep them
        except OSError:
            pass


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
    from .logs import TEXT_FORMAT, setup_logging

    fmt = getattr(config, "log_format", "text")
    setup_logging(config.log_level, fmt)
    for handler in logging.getLogger().handlers:  # each line says which worker wrote it
        handler.addFilter(_WorkerField(index))
        if fmt == "text":
            handler.setFormatter(logging.Formatter(TEXT_FORMAT.replace("%(name)s", "%(name)s[worker %(worker)s]")))
    from ..store.db import DatabaseError
    from .app import run_loop

    try:
        run_loop(_run_worker(config, index))
    except (OSError, DatabaseError) as e:
        log.error("worker %d cannot serve: %s", index, e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
