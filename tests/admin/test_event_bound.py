"""The event ingest's queue is bounded (events_max_pending): past it, a request is told to come back
(sink.outcome.Unavailable, which the API answers 503 with Retry-After) instead of waiting in memory."""

import asyncio

import pytest

from minidns.admin import events as api_events
from minidns.sink import ingest as ev


async def test_events_waiting_are_bounded(monkeypatch):
    gate = asyncio.Event()

    async def ingest_many(store, settings, items):
        await gate.wait()
        return [f"done {i}" for i in items]

    monkeypatch.setattr(ev, "ingest_many", ingest_many)
    batcher = api_events.EventBatcher(None, max_pending=3)
    first = asyncio.ensure_future(batcher.submit([1, 2], None))
    await asyncio.sleep(0)
    assert batcher.pending == 2
    with pytest.raises(ev.Unavailable):
        await batcher.submit([3, 4], None)  # 4 would be waiting: over the bound
    second = asyncio.ensure_future(batcher.submit([3], None))  # 3: within it
    await asyncio.sleep(0)
    gate.set()
    assert await first == ["done 1", "done 2"] and await second == ["done 3"]
    assert batcher.pending == 0
    big = api_events.EventBatcher(None, max_pending=3)
    assert await big.submit([1, 2, 3, 4], None) == ["done 1", "done 2", "done 3", "done 4"]  # alone, a big batch goes in
