"""The periodic jobs of a server process, run by server/scheduler.py: signed zones' cached replies
rendered anew, stored signatures nearing expiry made again, DNSSEC key rollover steps, heartbeats.
Only the main process takes the database's jobs, so nothing is done twice."""

from __future__ import annotations

import asyncio
import logging
import time

from ..store import heartbeat, resign
from ..services import rollover
from .scheduler import Job

log = logging.getLogger("minidns")

RENEW_EVERY = 60.0  # seconds between renderings of signed zones' replies whose signing epoch ended
REFRESH_EVERY = 3600.0  # seconds between passes over stored signatures nearing expiry
ROLLOVER_EVERY = 60.0  # seconds between looks for due DNSSEC key rollover steps


def answer_jobs(engine) -> list[Job]:
    """Jobs of every process: signed zones' cached replies made anew once their epoch ends."""

    async def renew() -> None:
        engine.renew_signed()

    return [Job("renewing signed replies", RENEW_EVERY, renew)]


def database_jobs(database, config) -> list[Job]:
    """Jobs of the main process on a database: signature refresh, rollovers, heartbeats."""
    jobs = [
        Job("refreshing DNSSEC signatures", REFRESH_EVERY, lambda: refresh_signatures(database.store)),
        Job("DNSSEC key rollovers", ROLLOVER_EVERY, lambda: advance_rollovers(database, config.dnssec_rollover_margin),
            first=0),
    ]  # fmt: skip
    if config.heartbeat_name:
        jobs.append(heartbeat_job(database.store, config.heartbeat_interval))
    return jobs


async def refresh_signatures(store) -> None:
    """Every hour, stored signatures nearing expiry made again (a change each: secondaries get
    them by IXFR)."""
    for name, serial in await resign.refresh_all(store):
        log.info("zone %s: signatures nearing expiry made again (serial %d)", name, serial)


async def advance_rollovers(database, margin: int) -> None:
    """The DNSSEC key rollover steps now due (store/rollover.py), taken on a loop and connection
    pool of their own in a thread, so that signing a zone whole does not hold up answering.
    Several servers on one database take each step once."""
    if await rollover.due(database.pool, time.time()):
        store = database.store
        await asyncio.to_thread(rollover.run_advance, database.url, store.master, store.settings, margin)


def heartbeat_job(store, interval: float) -> Job:
    """The heartbeat TXT of zones left unchanged (store/heartbeat.py): a round every `interval`
    / 10 seconds (a minute at most), so a zone's heartbeat is never much older than `interval`."""

    async def beat() -> None:
        for change in await heartbeat.beat(store, interval):
            log.debug("zone %s: heartbeat, serial %d", change.zone, change.serial_to)

    return Job("heartbeat", min(interval / 10, 60.0), beat, first=0)
