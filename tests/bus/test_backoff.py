"""The bus sources' pacing (bus/backoff.py): the schedule's steps in order, its last repeated, and a
pause that a stop cuts short."""

import asyncio
import time

import pytest

from minidns.bus.backoff import BACKOFF, delay, pause


@pytest.mark.parametrize("attempt, seconds", [(1, 0.5), (2, 1), (3, 2), (4, 5), (5, 5), (100, 5)])
def test_the_schedule_is_followed_and_its_last_step_repeated(attempt, seconds):
    assert delay(attempt) == seconds
    assert delay(attempt, (1, 2, 5, 10)) == (1, 2, 5, 10)[min(attempt, 4) - 1]
    assert BACKOFF == (0.5, 1, 2, 5)


async def test_a_pause_ends_at_once_when_the_source_stops():
    stopping = asyncio.Event()
    started = time.monotonic()
    waiter = asyncio.ensure_future(pause(stopping, 30))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # it waits while nothing stops it
    stopping.set()
    await asyncio.wait_for(waiter, 5)
    assert time.monotonic() - started < 5
    await pause(stopping, 30)  # already stopping: no wait at all
