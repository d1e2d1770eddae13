"""Periodic jobs of one process (signature refresh, key rollovers, heartbeats, housekeeping, the
systemd watchdog): each named, with an interval, started and stopped together; an exception in one
job is logged and the job runs again after its retry interval, the others untouched."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

log = logging.getLogger("minidns.scheduler")


@dataclass(frozen=True)
class Job:
    name: str  # what the log calls it
    interval: float  # seconds from the end of one run to the start of the next
    run: Callable[[], Awaitable[object]]
    first: float | None = None  # seconds before the first run (None: one interval; 0: at start)
    retry: float | None = None  # seconds before the next run after a failed one (None: one interval)


class Scheduler:
    """Runs each job on a task of its own, one run at a time; `stop` cancels them all."""

    def __init__(self):
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.running = False

    def add(self, job: Job) -> None:
        """Take on `job` (replacing one of the same name); started now when the others run."""
        old = self.tasks.pop(job.name, None)
        if old is not None:
            old.cancel()
        self.jobs[job.name] = job
        if self.running:
            self.tasks[job.name] = asyncio.ensure_future(self._loop(job))

    def start(self) -> None:
        self.running = True
        for job in self.jobs.values():
            self.tasks[job.name] = asyncio.ensure_future(self._loop(job))

    async def stop(self) -> None:
        """Cancel every job (a run under way included) and wait until each has ended."""
        self.running = False
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, job: Job) -> None:
        delay = job.interval if job.first is None else job.first
        while True:
            await asyncio.sleep(delay)
            delay = await self.run_once(job)

    @staticmethod
    async def run_once(job: Job) -> float:
        """Run `job` once; the seconds until its next run."""
        try:
            await job.run()
        except Exception as e:  # noqa: BLE001 - a job failing never stops the others, nor itself
            retry = job.interval if job.retry is None else job.retry
            log.warning("%s: %s (next run in %g s)", job.name, str(e) or type(e).__name__, retry)
            return retry
        return job.interval
