"""The state of a bus source (minidns/bus/status.py): connected or why not, the outcomes counted."""

import orjson

from minidns.bus.status import BusStatus
from minidns.sink.outcome import Outcome


def test_a_source_counts_outcomes_and_says_why_it_is_down():
    bus = BusStatus()
    s = bus.add("openstack", "amqp")
    assert bus.disconnected() == [s] and s.reason == "not connected yet"
    s.up("127.0.0.1:5672")
    s.receive(4, 1)
    s.count([Outcome("a", "nova", "x", "applied"), Outcome("b", "nova", "x", "ignored"),
             Outcome("c", "nova", "x", "failed"), Outcome("d", "nova", "x", "applied", duplicate=True)])  # fmt: skip
    assert (s.received, s.applied, s.ignored, s.failed, s.duplicates, s.redelivered) == (4, 1, 1, 1, 1, 1)
    assert bus.disconnected() == [] and s.last_event_at is not None
    s.down("connection refused")
    j = orjson.loads(orjson.dumps(bus.to_json()))["openstack"]
    assert (j["connected"], j["reason"], j["last_error"], j["applied"], j["kind"]) == (False, "connection refused", "connection refused", 1, "amqp")
