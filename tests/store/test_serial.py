"""SOA serial arithmetic (RFC 1982) and the serial policies, as pure functions."""

import calendar
import random

import pytest

from minidns.store.writer import SERIAL_MOD, initial_serial, next_serial, serial_gt

MAX = SERIAL_MOD - 1
HALF = 2**31


def day(y, m, d, hh=12, mm=0):
    return calendar.timegm((y, m, d, hh, mm, 0, 0, 0, 0))


@pytest.mark.parametrize(
    "a, b, gt",
    [
        (1, 0, True),
        (0, 1, False),
        (5, 5, False),
        (0, MAX, True),  # the wrap: 4294967295 → 0
        (MAX, 0, False),
        (1, MAX, True),
        (100, MAX - 100, True),
        (HALF - 1, 0, True),  # just under half way
        (0, HALF - 1, False),
        (HALF, 0, False),  # exactly 2^31 apart: undefined, neither way
        (0, HALF, False),
        (HALF + 7, 7, False),
        (7, HALF + 7, False),
        (HALF + 1, 0, False),  # past half way: 0 is the greater
        (0, HALF + 1, True),
        (MAX, MAX - 1, True),
        (2026112201, 2026112200, True),
    ],
)
def test_serial_gt(a, b, gt):
    assert serial_gt(a, b) is gt


def test_serial_gt_is_a_strict_order_locally():
    rnd = random.Random(1982)
    for _ in range(2000):
        a = rnd.randrange(SERIAL_MOD)
        d = rnd.randrange(1, HALF)
        b = (a + d) % SERIAL_MOD
        assert serial_gt(b, a) and not serial_gt(a, b)
        assert not serial_gt(a, a)
        c = (a + HALF) % SERIAL_MOD
        assert not serial_gt(a, c) and not serial_gt(c, a)


NOW = day(2026, 11, 22)  # 1795...: a unixtime below 2^31
CLOCKS = [0, 1, NOW, NOW - 86400 * 365, NOW + 86400 * 3650, 2**31 - 1, 2**31 + 5, 2**32 - 3, 2**32 + 10]
OLDS = [0, 1, 2, 1000, NOW - 1, NOW, NOW + 1, NOW + 10**6, 2026112200, 2026112299, 2099010100,
        HALF - 1, HALF, HALF + 1, MAX - 1, MAX]  # fmt: skip


@pytest.mark.parametrize("policy", ["increment", "unixtime", "date"])
def test_next_serial_always_moves_forward(policy):
    for old in OLDS:
        for now in CLOCKS:
            new = next_serial(old, policy, now)
            assert 0 <= new <= MAX
            assert serial_gt(new, old), (old, now, new)


def test_increment_adds_one_and_wraps():
    assert next_serial(1, "increment", NOW) == 2
    assert next_serial(MAX - 1, "increment", NOW) == MAX
    assert next_serial(MAX, "increment", NOW) == 0
    assert next_serial(0, "increment", NOW) == 1
    assert next_serial(NOW - 5, "increment", NOW) == NOW - 4  # the clock is not used


def test_unixtime_policy():
    assert next_serial(1000, "unixtime", NOW) == NOW
    assert next_serial(1000, "unixtime", NOW + 0.9) == NOW  # whole seconds
    assert next_serial(NOW, "unixtime", NOW) == NOW + 1  # twice in one second
    assert next_serial(NOW + 1, "unixtime", NOW) == NOW + 2  # still ahead of the clock
    assert next_serial(NOW + 10**6, "unixtime", NOW) == NOW + 10**6 + 1  # far ahead of the clock
    assert next_serial(NOW, "unixtime", NOW - 3600) == NOW + 1  # clock went back
    assert next_serial(MAX, "unixtime", NOW) == NOW  # NOW is "after" MAX in serial arithmetic
    assert next_serial(MAX, "unixtime", MAX - 10) == 0  # clock behind: wrap to 0
    # Exactly 2^31 ahead of the clock: the clock's value compares neither way, so +1.
    assert next_serial((NOW + HALF) % SERIAL_MOD, "unixtime", NOW) == (NOW + HALF + 1) % SERIAL_MOD


def test_unixtime_clock_past_2_to_the_32_wraps():
    now = SERIAL_MOD + 50
    assert next_serial(MAX - 5, "unixtime", now) == 50


def test_date_policy():
    today = day(2026, 11, 22)
    assert next_serial(1, "date", today) == 2026112200  # fresh
    assert next_serial(2026112100, "date", today) == 2026112200  # a new day
    assert next_serial(2026112117, "date", today) == 2026112200
    assert next_serial(2026112200, "date", today) == 2026112201  # within the day
    assert next_serial(2026112241, "date", today) == 2026112242
    assert next_serial(2026112299, "date", today) == 2026112300  # 100 changes in a day run on
    assert next_serial(2026112300, "date", today) == 2026112301  # ahead of the clock: +1
    assert next_serial(2026112205, "date", day(2026, 11, 21)) == 2026112206  # clock went back
    assert next_serial(2026112205, "date", day(2026, 11, 22, 23, 59)) == 2026112206  # same UTC day
    assert next_serial(2026112205, "date", day(2026, 11, 23, 0, 1)) == 2026112300
    assert next_serial(2026123105, "date", day(2027, 1, 1)) == 2027010100  # across a year


def test_date_many_changes_in_a_day_stay_increasing():
    serial, now = 2026112100, day(2026, 11, 22)
    seen = []
    for _ in range(250):
        new = next_serial(serial, "date", now)
        assert serial_gt(new, serial)
        seen.append(new)
        serial = new
    assert seen[0] == 2026112200 and seen == list(range(2026112200, 2026112200 + 250))


def test_initial_serial():
    assert initial_serial("increment", NOW) == 1
    assert initial_serial("unixtime", NOW) == NOW
    assert initial_serial("date", day(2026, 11, 22)) == 2026112200
