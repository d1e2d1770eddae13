"""What became of an event: its Outcome, a reason to ignore it, a reason to refuse it (BadEvent), or
the database away (Unavailable)."""

from __future__ import annotations

from dataclasses import dataclass, field


class BadEvent(ValueError):
    """The event cannot be used; the message says why (recorded as failed)."""

    status, type = 400, "invalid_event"


class Unavailable(Exception):
    """The database cannot be reached: nothing was recorded; send the event again later."""

    status, type, retry_after = 503, "service_unavailable", 5


@dataclass(frozen=True, slots=True)
class Ignore:
    """The event is well formed but asks nothing of the sink, for this reason."""

    reason: str


@dataclass
class Outcome:
    message_id: str
    source: str
    event_type: str
    status: str  # applied, ignored, failed
    reason: str | None = None
    changes: list = field(default_factory=list)
    duplicate: bool = False

    def to_json(self) -> dict:
        return {"message_id": self.message_id, "source": self.source, "event_type": self.event_type,
                "status": self.status, "reason": self.reason, "changes": self.changes,
                "duplicate": self.duplicate}  # fmt: skip
