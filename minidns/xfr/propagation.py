"""Propagation of a change to a zone's secondaries: per secondary the serial seen and a state
(PENDING, OK, ERROR), the zone's status from the share that has the change (PENDING → ACTIVE, or
ERROR), and when to poll a secondary's SOA next or NOTIFY it again. Pure: times come in as
arguments."""

from __future__ import annotations

from dataclasses import dataclass, field

from .transfer import serial_lt

POLL_FIRST, POLL_MAX, POLL_AFTER_ERROR = 0.02, 0.1, 5.0  # seconds between SOA polls of a secondary
RENOTIFY_MAX = 300.0  # seconds between re-NOTIFYs to a secondary that stays behind, at most
EPSILON = 1e-9  # a share compared in floating point: 2/3 of secondaries meets a share of 2/3


@dataclass
class SecondaryState:
    serial: int | None = None  # the serial last seen there
    seen_at: float | None = None  # when it was first seen at the target serial
    state: str = "PENDING"  # PENDING (waiting), OK (has the zone's serial), ERROR (timed out)
    notified: str = ""  # "" / "sent" / "answered" / "unanswered"


@dataclass
class ZoneState:
    name: str
    serial: int
    changed_at: float
    status: str = "PENDING"
    secondaries: dict[str, SecondaryState] = field(default_factory=dict)
    active_at: float | None = None


def zone_changed(name: str, serial: int, now: float, labels: list[str], old: ZoneState | None) -> ZoneState:
    """A zone's state once a change reached this server: every secondary PENDING, keeping the
    serial last seen there."""
    zs = ZoneState(name, serial, now)
    for label in labels:
        prev = old.secondaries.get(label) if old else None
        zs.secondaries[label] = SecondaryState(serial=prev.serial if prev else None)
    return zs


def observe_serial(st: SecondaryState, serial: int | None, target: int, now: float) -> bool:
    """A polled serial (None: no SOA in the reply) recorded; True when the secondary now has the
    change (its serial is not below the target's, RFC 1982)."""
    if serial is None:
        return False
    st.serial = serial
    if serial_lt(serial, target):
        return False
    st.state, st.seen_at = "OK", now
    return True


def mark_error(st: SecondaryState) -> bool:
    """A secondary still behind when the propagation timeout passed; True when that is news."""
    if st.state == "ERROR":
        return False
    st.state = "ERROR"
    return True


def decide_status(zs: ZoneState, share: float) -> str | None:
    """The zone's status from its secondaries: ACTIVE once `share` of them have the change, ERROR
    once that share can no longer be met, None while it is open."""
    total = len(zs.secondaries)
    ok = sum(1 for s in zs.secondaries.values() if s.state == "OK")
    failed = sum(1 for s in zs.secondaries.values() if s.state == "ERROR")
    if total and ok / total >= share - EPSILON:
        return "ACTIVE"
    if failed and (total - failed) / total < share - EPSILON:
        return "ERROR"
    return None


def set_status(zs: ZoneState, status: str, now: float) -> bool:
    """Give the zone `status`; True when it has just become ACTIVE for the first time."""
    first = status == "ACTIVE" and zs.active_at is None
    if first:
        zs.active_at = now
    zs.status = status
    return first


@dataclass
class PollSchedule:
    """When to poll a secondary's SOA next (20 ms, doubling to 100 ms; every 5 s once the
    propagation timeout passed) and when to NOTIFY it again: `renotify` seconds after the change,
    then after twice as long, up to RENOTIFY_MAX (0: never). A NOTIFY only prompts a check of the
    SOA (RFC 1996 §3), so an answered one is not a transfer done: a secondary can drop the transfer
    it started (a busy primary, an IXFR it gave up on) and would otherwise wait for its SOA refresh
    timer, an hour by default."""

    started: float
    renotify: float
    timeout: float
    delay: float = POLL_FIRST
    renotify_at: float | None = None

    def __post_init__(self) -> None:
        if self.renotify > 0:
            self.renotify_at = self.started + self.renotify

    def renotify_due(self, now: float) -> bool:
        """Whether to NOTIFY again at `now`; if so the next re-NOTIFY is scheduled."""
        if self.renotify_at is None or now < self.renotify_at:
            return False
        self.renotify_at = now + min(RENOTIFY_MAX, now - self.started)
        return True

    def timed_out(self, now: float) -> bool:
        return now - self.started > self.timeout

    def next_delay(self, now: float) -> float:
        """Seconds until the next SOA poll after one at `now` that found the secondary behind."""
        self.delay = POLL_AFTER_ERROR if self.timed_out(now) else min(POLL_MAX, self.delay * 2)
        return self.delay
