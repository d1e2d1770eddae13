"""Reading a notification's fields (sink/payload.py): table tests of the payload object, required
strings and IP addresses (RFC 5952 canonical text), each refused with the reason."""

import pytest

from minidns.sink.outcome import BadEvent
from minidns.sink.payload import add_address, address, payload_of, required


@pytest.mark.parametrize("event, payload", [
    ({"payload": {"instance_id": "i-1"}}, {"instance_id": "i-1"}),
    ({"payload": {}}, {}),
])  # fmt: skip
def test_the_payload_object(event, payload):
    assert payload_of(event) == payload


@pytest.mark.parametrize("event", [{}, {"payload": None}, {"payload": "text"}, {"payload": [1]}])
def test_no_payload_object_is_refused(event):
    with pytest.raises(BadEvent, match="no payload object"):
        payload_of(event)


def test_a_required_string():
    assert required({"hostname": "vm1"}, "hostname", "the instance") == "vm1"
    for d in ({}, {"hostname": ""}, {"hostname": 7}, {"hostname": None}, "not a dict"):
        with pytest.raises(BadEvent, match="the instance has no hostname"):
            required(d, "hostname", "the instance")


@pytest.mark.parametrize("value, text", [
    ("192.0.2.1", "192.0.2.1"),
    ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
    ("2001:db8:0000:0000:1:0:0:1", "2001:db8::1:0:0:1"),
    ("::ffff:192.0.2.1", "::ffff:c000:201"),
])  # fmt: skip
def test_an_address_in_canonical_text(value, text):
    assert address(value, "fixed IP") == text


@pytest.mark.parametrize("value", ["192.0.2.300", "vm1.example.", "", None, 3.5, ["192.0.2.1"]])
def test_not_an_address_is_refused(value):
    with pytest.raises(BadEvent, match="fixed IP: .* is not an IP address"):
        address(value, "fixed IP")


def test_addresses_are_added_once_in_the_clouds_order():
    found: list[str] = []
    for value in ("192.0.2.2", "2001:DB8::1", "192.0.2.1", "192.0.2.2", "2001:db8::1"):
        add_address(found, value, "fixed IP")
    assert found == ["192.0.2.2", "2001:db8::1", "192.0.2.1"]
    with pytest.raises(BadEvent):
        add_address(found, "nonsense", "fixed IP")
    assert found == ["192.0.2.2", "2001:db8::1", "192.0.2.1"]
