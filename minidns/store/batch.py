"""Group commit: writes that would queue on one lock anyway (one zone's row, the events lock) are
taken together — one transaction, one commit — and each caller still gets its own result.

`GroupCommit` is the mechanism: one queue and one draining task per key; whatever arrives while a
key's batch is being applied forms the next batch. `ZoneBatcher` uses it for plain changes to a
zone (one new serial and change-log row per batch); the API uses it for recordset creates
(services/recordsets.py) and for events (admin/events.py).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Hashable

from .writer import Change, Edit, Store

MAX_BATCH = 200  # items per batch at most


class GroupCommit:
    """`await submit(key, item)` → what `apply(key, items)` returned for that item. `apply` gets
    the items queued for one key, in arrival order, and returns one result per item — a value, or
    an exception that is raised to that item's caller. An exception raised by `apply` itself goes
    to every caller of the batch."""

    def __init__(self, apply: Callable[[Hashable, list], Awaitable[list]], max_batch: int = MAX_BATCH,
                 linger: float = 0.0):  # fmt: skip
        self.apply = apply
        self.max_batch = max_batch
        self.linger = linger  # seconds a batch may wait to fill up (see _fill)
        self.last: dict[Hashable, int] = {}  # the size of each key's previous batch
        self.filling: dict[Hashable, tuple[int, asyncio.Event]] = {}
        self.queues: dict[Hashable, list[tuple[object, asyncio.Future]]] = {}
        self.running: dict[Hashable, asyncio.Task] = {}

    async def submit(self, key: Hashable, item) -> object:
        fut = asyncio.get_running_loop().create_future()
        queue = self.queues.setdefault(key, [])
        queue.append((item, fut))
        filling = self.filling.get(key)
        if filling is not None and len(queue) >= filling[0]:
            filling[1].set()
        if key not in self.running:
            self.running[key] = asyncio.ensure_future(self._drain(key))
        return await fut

    async def _drain(self, key: Hashable) -> None:
        try:
            while self.queues.get(key):
                if self.linger:
                    await self._fill(key)
                # A caller that has gone (its request cancelled: the client hung up or gave up)
                # leaves its item out: under overload, work nobody waits for is shed first.
                self.queues[key] = [(item, fut) for item, fut in self.queues[key] if not fut.done()]
                batch, self.queues[key] = self.queues[key][: self.max_batch], self.queues[key][self.max_batch :]
                if not batch:
                    continue
                self.last[key] = len(batch)
                try:
                    results = await self.apply(key, [item for item, _ in batch])
                except Exception as e:  # noqa: BLE001 - the whole batch failed: every caller hears it
                    results = [e] * len(batch)
                for (_, fut), result in zip(batch, results):
                    if fut.done():
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self.running.pop(key, None)
            if self.queues.get(key):  # something arrived as the loop ended
                self.running[key] = asyncio.ensure_future(self._drain(key))
            else:
                self.queues.pop(key, None)


    async def _fill(self, key: Hashable) -> None:
        """Before a batch is cut: what has arrived meanwhile (read, not yet parsed) is let in, and
        while the queue holds less than half the previous batch — the writers of that batch coming
        back, as closed-loop clients do — it waits up to `linger` seconds for it to reach that
        size, so that one batch of all of them follows instead of a batch of the one straggler
        (PostgreSQL's commit_delay idea). A lone writer never waits: its previous batch was one."""
        await asyncio.sleep(0)
        want = self.last.get(key, 0)
        if len(self.queues.get(key, ())) * 2 >= want:
            return
        event = asyncio.Event()
        self.filling[key] = (want, event)
        try:
            await asyncio.wait_for(event.wait(), self.linger)
        except asyncio.TimeoutError:
            pass
        finally:
            self.filling.pop(key, None)


class ZoneBatcher:
    """`await batcher.change(zone, edits, source=...)` as Store.change, grouped per zone. A batch
    that fails (one caller's bad record) is retried one change at a time, so each caller gets
    exactly the error its own edits cause and the others go in."""

    def __init__(self, store: Store):
        self.store = store
        self.group = GroupCommit(self._apply)

    async def change(self, zone: str, edits: list[Edit], *, source: str) -> Change:
        return await self.group.submit(str(zone).lower(), (list(edits), source))

    async def _apply(self, zone: str, batch: list[tuple[list[Edit], str]]) -> list:
        if len(batch) > 1:
            sources = {source for _, source in batch}
            try:
                change = await self.store.change(zone, [e for edits, _ in batch for e in edits],
                                                 source=sources.pop() if len(sources) == 1 else "api")  # fmt: skip
                return [change] * len(batch)
            except Exception:  # noqa: BLE001 - one caller's bad edit: each one on its own below
                pass
        results = []
        for edits, source in batch:
            try:
                results.append(await self.store.change(zone, edits, source=source))
            except Exception as e:  # noqa: BLE001 - handed to its caller
                results.append(e)
        return results
