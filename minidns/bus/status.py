"""The state of each bus source of this process (SourceStatus) — connected or why not, what became
of its messages, its last error, its lag — and of all of them (BusStatus), as JSON."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

COUNTERS = ("received", "applied", "ignored", "failed", "duplicates", "redelivered")


@dataclass
class SourceStatus:
    name: str  # the configured source: openstack, cloudstack, cloudstack-kafka
    kind: str  # amqp or kafka
    connected: bool = False
    reason: str | None = "not connected yet"  # why not connected
    broker: str | None = None  # the host:port connected to
    received: int = 0
    applied: int = 0
    ignored: int = 0
    failed: int = 0
    duplicates: int = 0
    redelivered: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # Unix time
    last_event_at: float | None = None  # Unix time of the last message received
    waiting: str | None = None  # why the batch in hand waits (the database away, an API unreachable)
    lag: int | None = None  # messages waiting in the broker; None when the bus does not say

    def up(self, broker: str) -> None:
        self.connected, self.reason, self.broker = True, None, broker

    def down(self, reason: str) -> None:
        self.connected, self.reason, self.lag = False, reason, None  # the depth read before may be long gone
        self.error(reason)

    def stopped(self) -> None:
        self.connected, self.reason = False, "stopped"

    def error(self, text: str) -> None:
        self.last_error, self.last_error_at = text, time.time()

    def receive(self, count: int, redelivered: int) -> None:
        self.received += count
        self.redelivered += redelivered
        self.last_event_at = time.time()

    def count(self, outcomes) -> None:
        """Count the committed outcomes of a batch: applied, ignored, failed, or duplicates (an
        event seen before, so nothing was done again)."""
        for o in outcomes:
            if o.duplicate:
                self.duplicates += 1
            else:
                setattr(self, o.status, getattr(self, o.status) + 1)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class BusStatus:
    """The bus sources of one process."""

    sources: dict[str, SourceStatus] = field(default_factory=dict)

    def add(self, name: str, kind: str) -> SourceStatus:
        self.sources[name] = SourceStatus(name, kind)
        return self.sources[name]

    def to_json(self) -> dict:
        return {name: s.to_json() for name, s in self.sources.items()}

    def disconnected(self) -> list[SourceStatus]:
        return [s for s in self.sources.values() if not s.connected]
