"""The periodic jobs of a server process (server/jobs.py): which jobs a process takes and how
often, and a heartbeat round run for real against PostgreSQL."""

from types import SimpleNamespace

import pytest

from minidns.server.config import load_config
from minidns.answer.engine import Engine, EngineSettings
from minidns.server.jobs import REFRESH_EVERY, RENEW_EVERY, ROLLOVER_EVERY, answer_jobs, database_jobs, heartbeat_job
from minidns.store import db
from minidns.store.writer import Edit, Store, StoreSettings

ZONE = "jobs.test."


def test_every_process_renews_its_signed_replies():
    (job,) = answer_jobs(Engine(EngineSettings()))
    assert (job.interval, job.first) == (RENEW_EVERY, None)


@pytest.mark.parametrize("heartbeat, names", [
    (None, ["refreshing DNSSEC signatures", "DNSSEC key rollovers"]),
    ("_heartbeat", ["refreshing DNSSEC signatures", "DNSSEC key rollovers", "heartbeat"]),
])  # fmt: skip
def test_the_main_process_takes_the_database_jobs(heartbeat, names):
    database = SimpleNamespace(store=None, pool=None, url=None)
    jobs = database_jobs(database, load_config(None, {"heartbeat_name": heartbeat} if heartbeat else {}))
    assert [j.name for j in jobs] == names
    assert [(j.interval, j.first) for j in jobs[:2]] == [(REFRESH_EVERY, None), (ROLLOVER_EVERY, 0)]


@pytest.mark.parametrize("interval, every", [(3600, 60.0), (300, 30.0), (10, 1.0)])
def test_heartbeat_rounds_come_every_tenth_of_the_interval_a_minute_at_most(interval, every):
    job = heartbeat_job(None, interval)
    assert (job.interval, job.first) == (every, 0)


async def test_a_heartbeat_round_bumps_a_zone_left_alone(database_url):
    pool = await db.create_pool(database_url, size=2)
    try:
        store = Store(pool, StoreSettings(heartbeat_name="_heartbeat"))
        created = await store.create_zone(ZONE, email="hostmaster@jobs.test", edits=[Edit("add", "@", "NS", None, ("ns1",))])
        await pool.execute("UPDATE zone_changes SET created_at = created_at - interval '2 hours'")  # left alone since
        await heartbeat_job(store, 3600).run()
        assert await pool.fetchval("SELECT serial FROM zones WHERE name = $1", ZONE) == created.serial_to + 1
        await heartbeat_job(store, 3600).run()  # fresh now: nothing to do
        assert await pool.fetchval("SELECT serial FROM zones WHERE name = $1", ZONE) == created.serial_to + 1
    finally:
        await pool.close()
