"""The scheduler of periodic jobs (server/scheduler.py) on a real event loop: jobs run again and
again, one failing is logged and kept while the others go on, stopping ends every job (a run under
way included), and a job added to a running scheduler starts at once."""

import asyncio
import logging

import pytest

from minidns.server.scheduler import Job, Scheduler


async def _until(cond) -> None:
    while not cond():
        await asyncio.sleep(0.001)


async def test_each_job_runs_again_after_its_interval():
    runs = {"a": 0, "b": 0}

    async def count(name):
        runs[name] += 1

    s = Scheduler()
    s.add(Job("a", 0.001, lambda: count("a"), first=0))
    s.add(Job("b", 0.001, lambda: count("b")))
    s.start()
    await asyncio.wait_for(_until(lambda: min(runs.values()) >= 3), 10)
    await s.stop()
    assert not s.tasks


async def test_a_failing_job_is_logged_and_kept_and_the_others_go_on(caplog):
    runs = {"bad": 0, "good": 0}

    async def bad():
        runs["bad"] += 1
        raise RuntimeError("the database is away")

    async def good():
        runs["good"] += 1

    s = Scheduler()
    s.add(Job("bad job", 3600, bad, first=0, retry=0.001))
    s.add(Job("good job", 0.001, good, first=0))
    with caplog.at_level(logging.WARNING, "minidns.scheduler"):
        s.start()
        await asyncio.wait_for(_until(lambda: runs["bad"] >= 3 and runs["good"] >= 3), 10)
        await s.stop()
    assert "bad job: the database is away (next run in 0.001 s)" in caplog.text
    assert "good job" not in caplog.text


@pytest.mark.parametrize("fails, interval, retry, delay", [
    (False, 60.0, 5.0, 60.0),
    (True, 60.0, 5.0, 5.0),
    (True, 60.0, None, 60.0),  # no retry interval: the next run as usual
])  # fmt: skip
async def test_the_next_run_is_an_interval_or_after_a_failure_the_retry(fails, interval, retry, delay):
    async def run():
        if fails:
            raise OSError("refused")

    assert await Scheduler.run_once(Job("j", interval, run, retry=retry)) == delay


async def test_stopping_cancels_a_run_under_way():
    started, ended = asyncio.Event(), []

    async def slow():
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append(True)

    s = Scheduler()
    s.add(Job("slow", 60, slow, first=0))
    s.start()
    await asyncio.wait_for(started.wait(), 10)
    await s.stop()
    assert ended == [True] and not s.running


async def test_a_job_added_while_running_starts_and_replaces_its_namesake():
    seen = []

    async def mark(tag):
        seen.append(tag)

    s = Scheduler()
    s.start()
    s.add(Job("j", 3600, lambda: mark("old"), first=0))
    await asyncio.wait_for(_until(lambda: seen), 10)
    s.add(Job("j", 3600, lambda: mark("new"), first=0))
    await asyncio.wait_for(_until(lambda: len(seen) >= 2), 10)
    await s.stop()
    assert seen == ["old", "new"] and list(s.jobs) == ["j"]


async def test_a_job_added_before_start_waits_for_it():
    seen = []

    async def mark():
        seen.append(1)

    s = Scheduler()
    s.add(Job("j", 3600, mark, first=0))
    await asyncio.sleep(0.01)
    assert seen == [] and not s.tasks
    s.start()
    await asyncio.wait_for(_until(lambda: seen), 10)
    await s.stop()


async def test_a_failure_without_a_message_is_named_by_its_kind(caplog):
    async def times_out():
        raise TimeoutError

    with caplog.at_level(logging.WARNING, "minidns.scheduler"):
        assert await Scheduler.run_once(Job("rollovers", 60, times_out)) == 60
    assert "rollovers: TimeoutError (next run in 60 s)" in caplog.text
