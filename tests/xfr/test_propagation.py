"""Propagation decisions (xfr/propagation.py): a secondary's serial against the change's (RFC 1982),
the zone's status from the share that has it, and the SOA-poll and re-NOTIFY timetable."""

import pytest

from minidns.xfr.propagation import (POLL_AFTER_ERROR, POLL_FIRST, POLL_MAX, RENOTIFY_MAX, PollSchedule, SecondaryState,
                                     ZoneState, decide_status, mark_error, observe_serial, set_status, zone_changed)  # fmt: skip


@pytest.mark.parametrize("seen, target, has_it", [
    (7, 7, True),
    (8, 7, True),  # already past it (a newer change)
    (6, 7, False),
    (0, 4294967295, True),  # wrapped past 2^32 - 1: ahead (RFC 1982 §3.2)
    (4294967295, 0, False),
    (None, 7, False),  # no SOA in the reply
])  # fmt: skip
def test_a_secondary_has_the_change_when_its_serial_is_not_below(seen, target, has_it):
    st = SecondaryState(serial=3)
    assert observe_serial(st, seen, target, 100.0) is has_it
    assert st.state == ("OK" if has_it else "PENDING")
    assert st.serial == (seen if seen is not None else 3)
    assert st.seen_at == (100.0 if has_it else None)


def test_a_timed_out_secondary_turns_error_once():
    st = SecondaryState()
    assert mark_error(st) is True and st.state == "ERROR"
    assert mark_error(st) is False and st.state == "ERROR"


def _zone(*states):
    return ZoneState("z.", 7, 0.0, secondaries={f"s{i}": SecondaryState(state=s) for i, s in enumerate(states)})


@pytest.mark.parametrize("states, share, status", [
    (("OK",), 1.0, "ACTIVE"),
    (("PENDING",), 1.0, None),
    (("ERROR",), 1.0, "ERROR"),
    (("OK", "PENDING"), 1.0, None),
    (("OK", "PENDING"), 0.5, "ACTIVE"),
    (("OK", "OK", "PENDING"), 2 / 3, "ACTIVE"),
    (("OK", "ERROR", "PENDING"), 2 / 3, None),  # 2 of 3 can still have it
    (("OK", "ERROR", "ERROR"), 2 / 3, "ERROR"),
    (("OK", "ERROR", "PENDING", "PENDING"), 0.5, None),  # 3 of 4 can still have it
    (("ERROR", "ERROR", "PENDING", "PENDING"), 0.5, None),  # 2 of 4 can still have it
    (("ERROR", "ERROR", "ERROR", "PENDING"), 0.5, "ERROR"),
    ((), 1.0, None),
])  # fmt: skip
def test_the_zone_status_follows_the_share_of_secondaries_with_the_change(states, share, status):
    assert decide_status(_zone(*states), share) == status


def test_a_zone_becomes_active_once():
    zs = _zone("OK")
    assert set_status(zs, "ACTIVE", 5.0) is True and (zs.status, zs.active_at) == ("ACTIVE", 5.0)
    assert set_status(zs, "ACTIVE", 9.0) is False and zs.active_at == 5.0
    assert set_status(zs, "ERROR", 9.0) is False and (zs.status, zs.active_at) == ("ERROR", 5.0)


def test_a_change_keeps_the_serial_last_seen_at_each_secondary():
    old = ZoneState("z.", 6, 0.0, "ACTIVE", {"a#53": SecondaryState(6, 1.0, "OK", "answered")})
    zs = zone_changed("z.", 7, 10.0, ["a#53", "b#53"], old)
    assert (zs.name, zs.serial, zs.changed_at, zs.status) == ("z.", 7, 10.0, "PENDING")
    assert zs.secondaries == {"a#53": SecondaryState(serial=6), "b#53": SecondaryState()}
    assert zone_changed("z.", 7, 10.0, ["a#53"], None).secondaries == {"a#53": SecondaryState()}


@pytest.mark.parametrize("renotify, polls, expected", [
    # (seconds after the change of each poll that finds the secondary behind) -> (re-NOTIFY?, next delay)
    (10.0, [0.02, 0.06, 0.14], [(False, 0.04), (False, 0.08), (False, POLL_MAX)]),
    (0.4, [0.3, 0.45, 0.6, 0.9, 1.3], [(False, 0.04), (True, 0.08), (False, POLL_MAX), (True, POLL_MAX), (False, POLL_MAX)]),
    (0.0, [0.5, 5.0, 50.0], [(False, 0.04), (False, 0.08), (False, POLL_MAX)]),
    (10.0, [61.0, 66.0], [(True, POLL_AFTER_ERROR), (False, POLL_AFTER_ERROR)]),  # past the 60 s timeout
])  # fmt: skip
def test_polls_back_off_and_renotifies_double_their_interval(renotify, polls, expected):
    plan = PollSchedule(100.0, renotify, 60.0)
    assert plan.delay == POLL_FIRST
    assert [(plan.renotify_due(100.0 + t), plan.next_delay(100.0 + t)) for t in polls] == [
        (due, pytest.approx(delay)) for due, delay in expected
    ]


def test_renotifies_are_at_most_renotify_max_apart():
    plan = PollSchedule(0.0, 10.0, 1e9)
    assert plan.renotify_due(10.0) and plan.renotify_at == 20.0  # 10 s after the first: twice the interval
    assert plan.renotify_due(20.0) and plan.renotify_at == 40.0
    assert plan.renotify_due(1000.0) and plan.renotify_at == 1000.0 + RENOTIFY_MAX
    assert not plan.renotify_due(1000.0 + RENOTIFY_MAX - 1)


@pytest.mark.parametrize("now, out", [(160.0, False), (160.5, True)])
def test_the_propagation_timeout_counts_from_the_change(now, out):
    assert PollSchedule(100.0, 0.0, 60.0).timed_out(now) is out
