"""SOA serial arithmetic (RFC 1982) and the serial policies a zone may choose: increment, unixtime, date."""

from __future__ import annotations

import time

SERIAL_MOD = 2**32
POLICIES = ("increment", "unixtime", "date")


def serial_gt(a: int, b: int) -> bool:
    """a > b in serial number arithmetic (RFC 1982 §3.2). Serials 2^31 apart compare neither way."""
    return a != b and (a - b) % SERIAL_MOD < 2**31


def next_serial(old: int, policy: str, now: float) -> int:
    """The serial after `old`: the clock's value under `unixtime` (seconds) or `date`
    (YYYYMMDDnn) when that is greater than `old` in serial arithmetic, else `old` + 1 — so a serial
    always moves forward, across the 2^32 wrap and when the clock goes back."""
    if policy == "unixtime":
        candidate = int(now) % SERIAL_MOD
    elif policy == "date":
        candidate = int(time.strftime("%Y%m%d", time.gmtime(now))) * 100 % SERIAL_MOD
    else:
        candidate = None
    if candidate is not None and serial_gt(candidate, old):
        return candidate
    return (old + 1) % SERIAL_MOD


def initial_serial(policy: str, now: float) -> int:
    return next_serial(0, policy, now) if policy != "increment" else 1
