"""Group commit for a zone's writes: concurrent changes to one zone wait on its row lock anyway,
so they are taken together — one transaction, one new serial, one change-log row — and each
caller still gets its own result. A batch that fails (one caller's bad record) is retried one
change at a time, so each caller gets exactly the error its own edits cause and the others go in.

This is what lets the API take a thousand recordset creates a second into one zone: each write
costs the zone a few round trips to PostgreSQL, a batch costs them once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .writer import Change, Edit, Store

MAX_BATCH = 200  # changes per transaction at most


@dataclass
class _Pending:
    edits: list[Edit]
    source: str
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class ZoneBatcher:
    """`await batcher.change(zone, edits, source=...)` as Store.change, grouped per zone."""

    def __init__(self, store: Store):
        self.store = store
        self.queues: dict[str, list[_Pending]] = {}
        self.running: dict[str, asyncio.Task] = {}

    async def change(self, zone: str, edits: list[Edit], *, source: str) -> Change:
        key = str(zone).lower()
        p = _Pending(list(edits), source)
        self.queues.setdefault(key, []).append(p)
        if key not in self.running:
            self.running[key] = asyncio.ensure_future(self._drain(key, zone))
        return await p.future

    async def _drain(self, key: str, zone) -> None:
        try:
            while self.queues.get(key):
                batch, self.queues[key] = self.queues[key][:MAX_BATCH], self.queues[key][MAX_BATCH:]
                await self._apply(zone, batch)
        finally:
            self.running.pop(key, None)
            if not self.queues.get(key):
                self.queues.pop(key, None)
            else:  # something arrived as the loop ended
                self.running[key] = asyncio.ensure_future(self._drain(key, zone))

    async def _apply(self, zone, batch: list[_Pending]) -> None:
        if len(batch) > 1:
            try:
                change = await self.store.change(zone, [e for p in batch for e in p.edits],
                                                 source=batch[0].source if len({p.source for p in batch}) == 1 else "api")  # fmt: skip
            except Exception:  # noqa: BLE001 - one caller's bad edit: each one on its own below
                pass
            else:
                for p in batch:
                    if not p.future.done():
                        p.future.set_result(change)
                return
        for p in batch:
            try:
                result = await self.store.change(zone, p.edits, source=p.source)
            except Exception as e:  # noqa: BLE001 - handed to its caller
                if not p.future.done():
                    p.future.set_exception(e)
            else:
                if not p.future.done():
                    p.future.set_result(result)
