"""What became of an event (sink/outcome.py): the Outcome's JSON as the API answers it, and the
errors' HTTP status and type (answered by admin/errors.py)."""

import pytest

from minidns.sink.outcome import BadEvent, Ignore, Outcome, Unavailable


@pytest.mark.parametrize("outcome, json", [
    (Outcome("m1", "nova", "compute.instance.create.end", "applied", changes=[{"name": "vm.cloud.test.", "type": "A"}]),
     {"message_id": "m1", "source": "nova", "event_type": "compute.instance.create.end", "status": "applied",
      "reason": None, "changes": [{"name": "vm.cloud.test.", "type": "A"}], "duplicate": False}),
    (Outcome("m2", "neutron", "floatingip.update.end", "ignored", "no fixed IP", duplicate=True),
     {"message_id": "m2", "source": "neutron", "event_type": "floatingip.update.end", "status": "ignored",
      "reason": "no fixed IP", "changes": [], "duplicate": True}),
])  # fmt: skip
def test_an_outcome_as_json(outcome, json):
    assert outcome.to_json() == json


def test_each_outcome_has_its_own_changes():
    a, b = Outcome("a", "nova", "x", "applied"), Outcome("b", "nova", "x", "applied")
    a.changes.append({"name": "a."})
    assert b.to_json()["changes"] == []


@pytest.mark.parametrize("error, status, kind", [
    (BadEvent("the notification has no payload object"), 400, "invalid_event"),
    (Unavailable("the database is not reachable"), 503, "service_unavailable"),
])  # fmt: skip
def test_errors_carry_their_status(error, status, kind):
    assert (error.status, error.type) == (status, kind)
    assert Unavailable.retry_after == 5 and isinstance(BadEvent("x"), ValueError)


def test_an_ignore_says_why_and_is_a_value():
    assert Ignore("not for us") == Ignore("not for us") != Ignore("other")
    with pytest.raises(AttributeError):
        Ignore("x").reason = "y"
