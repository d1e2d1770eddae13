"""What the sink knows of a resource decides whether an event about it applies
(minidns/sink/resources.py skip_reason): a tombstone, or a newer event applied already."""

import datetime

import pytest

from minidns.sink.resources import deleted_already, skip_reason

T0 = datetime.datetime(2024, 3, 5, 10, 14, 48, tzinfo=datetime.UTC)
LATER = T0 + datetime.timedelta(minutes=5)


def row(state: str, event_time=T0) -> dict:
    return {"state": state, "event_time": event_time, "last_message_id": "m-1"}


SKIPS = [
    (None, LATER, None),  # never heard of: applies
    (row("live"), LATER, None),  # newer news: applies
    (row("live"), T0, None),  # the same time: applies (a repeat is caught by its message id)
    (row("live"), T0 - datetime.timedelta(seconds=1), "instance i-1 has a newer event applied already (m-1)"),
    (row("live", None), T0, None),  # nothing to compare with
    (row("live"), None, None),
    (row("deleted"), LATER, "instance i-1 was deleted (by m-1) before this event arrived"),
    (row("deleted", None), None, "instance i-1 was deleted (by m-1) before this event arrived"),
]


@pytest.mark.parametrize("known, event_time, reason", SKIPS)
def test_skip_reason(known, event_time, reason):
    assert skip_reason(known, "instance i-1", event_time) == reason


def test_deleted_already():
    assert deleted_already(row("deleted")) and not deleted_already(row("live")) and not deleted_already(None)
