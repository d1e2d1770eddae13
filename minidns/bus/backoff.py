"""How the bus sources wait before trying again — a broker to connect to, the database or the
CloudStack API to come back: one schedule, its last step repeated, and a pause a stop cuts short."""

from __future__ import annotations

import asyncio
import contextlib

BACKOFF = (0.5, 1, 2, 5)  # seconds before the 1st, 2nd, 3rd … try again; the last repeats


def delay(attempt: int, schedule: tuple = BACKOFF) -> float:
    """The pause before try again number `attempt` (1 for the first)."""
    return schedule[min(attempt, len(schedule)) - 1]


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less when `stopping` is set meanwhile."""
    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
