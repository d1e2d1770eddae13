"""The envelope of an event (minidns/sink/envelope.py): the body forms POST /v1/events takes,
oslo.messaging's 1.0 (plain) and 2.0 (wrapped) envelopes, and each event's header — real
notifications from Nova, Neutron and CloudStack."""

import datetime
import json
import re
from pathlib import Path

import orjson
import pytest

from minidns.sink.envelope import (
    Header,
    body_events,
    describe,
    event_time,
    kept,
    open_event,
    unwrap,
)
from minidns.sink.outcome import BadEvent

HERE = Path(__file__).parent
UTC = datetime.UTC


def load(name: str) -> dict:
    path = HERE / "payloads" / name if (HERE / "payloads" / name).exists() else HERE.parent / "admin" / "events" / name
    return json.loads(path.read_text())


def oslo2(ev: dict) -> dict:
    """oslo.messaging's 2.0 envelope, as its RabbitMQ driver sends a notification."""
    return {"oslo.version": "2.0", "oslo.message": json.dumps(ev)}


NOVA = load("nova_compute.instance.create.end.json")
CLOUDSTACK = load("cloudstack_VM.CREATE.json")

BODIES = [
    (NOVA, [NOVA], False),
    ([NOVA, CLOUDSTACK], [NOVA, CLOUDSTACK], True),
    ({"events": [NOVA]}, [NOVA], True),
    ([], [], True),
    ({"events": [], "event_type": "x"}, [{"events": [], "event_type": "x"}], False),  # a notification with an "events" field
    (oslo2(NOVA), [oslo2(NOVA)], False),
]


@pytest.mark.parametrize("body, events, batch", BODIES)
def test_body_events(body, events, batch):
    assert body_events(body) == (events, batch)


UNWRAPPED = [
    (NOVA, NOVA),
    (oslo2(NOVA), NOVA),
    ({"oslo.message": json.dumps(NOVA)}, NOVA),
    ({"oslo.version": "1.0", "oslo.message": "{}"}, "oslo.version '1.0' is not 2.0"),
    ({"oslo.version": "2.0", "oslo.message": NOVA}, "oslo.message must be a string holding the JSON notification"),
    ({"oslo.version": "2.0", "oslo.message": "[1]"}, "oslo.message must hold a JSON object"),
    ([NOVA], "an event is a JSON object"),
    ("compute.instance.create.end", "an event is a JSON object"),
]


@pytest.mark.parametrize("raw, expected", UNWRAPPED)
def test_unwrap(raw, expected):
    if isinstance(expected, str):
        with pytest.raises(BadEvent, match=f"^{re.escape(expected)}$"):
            unwrap(raw)
    else:
        assert unwrap(raw) == expected


def test_a_wrapped_message_that_is_not_json():
    with pytest.raises(BadEvent, match="^oslo.message is not JSON: "):
        unwrap({"oslo.version": "2.0", "oslo.message": "{"})


def at(*args, tz=UTC) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=tz)


HEADERS = [
    ("nova_compute.instance.create.end.json",
     Header("nova", "compute.instance.create.end", "af100d58-7a9c-41a1-9311-8c52b44ca294", at(2024, 3, 5, 10, 14, 48, 797009))),
    ("designate_nova_compute.instance.delete.start.json",
     Header("nova", "compute.instance.delete.start", "bc6841d3-73fc-4f17-aede-20802b9e388d", at(2012, 11, 3, 18, 1, 59, 882973))),
    ("designate_neutron_floatingip.update.end_associate.json",
     Header("neutron", "floatingip.update.end", "281218d3-0764-4397-b844-936c93fb89e6", at(2012, 11, 18, 1, 29, 29, 497899))),
    ("neutron_port.delete.end.json",
     Header("neutron", "port.delete.end", "5a4c2e1f-33c1-4e0b-9a65-0d5f3a1b7c21", at(2024, 3, 5, 10, 30, 0, 123456))),
    # Nova's versioned notifications: another OpenStack event as far as the sink goes; no message id or time in the sample
    ("nova_versioned_instance-create-end.json", Header("openstack", "instance.create.end", None, None)),
    ("cloudstack_VM.CREATE.json",
     Header("cloudstack", "VM.CREATE", "6b2f8d0e-6a1c-4f3e-9c4d-7e2b1a0c9d11", at(2024, 3, 5, 10, 0, 5))),
    ("cloudstack_VM.DESTROY.json",
     Header("cloudstack", "VM.DESTROY", "0c9d8e7f-1a2b-4c3d-8e9f-0a1b2c3d4e5f", at(2024, 3, 5, 12, 0, 0))),
]  # fmt: skip


@pytest.mark.parametrize("name, expected", HEADERS)
def test_describe(name, expected):
    assert describe(load(name)) == expected


BAD_HEADERS = [
    ({"payload": {}}, "neither an oslo.messaging notification (event_type) nor a CloudStack event (event)"),
    ({"event_type": 7, "payload": {}}, "neither an oslo.messaging notification (event_type) nor a CloudStack event (event)"),
    ({**NOVA, "message_id": ""}, "message_id must be a non-empty string of at most 255 characters"),
    ({**NOVA, "message_id": 42}, "message_id must be a non-empty string of at most 255 characters"),
    ({**NOVA, "message_id": "m" * 256}, "message_id must be a non-empty string of at most 255 characters"),
]


@pytest.mark.parametrize("ev, reason", BAD_HEADERS)
def test_describe_refuses(ev, reason):
    with pytest.raises(BadEvent, match=f"^{re.escape(reason)}$"):
        describe(ev)


def test_cloudstack_message_ids():
    """message_id, else CloudStack's eventUuid, else uuid; the bus message itself carries none."""
    base = {k: v for k, v in CLOUDSTACK.items() if k != "eventUuid"}
    assert describe({**base, "message_id": "m-1", "eventUuid": "e-1"}).message_id == "m-1"
    assert describe({**base, "uuid": "u-1"}).message_id == "u-1"
    assert describe(base).message_id is None
    with pytest.raises(BadEvent, match=r"^the event has no message_id \(nor eventUuid\)$"):
        open_event(base)


TIMES = [
    ("2024-03-05 10:14:48.797009", at(2024, 3, 5, 10, 14, 48, 797009)),  # oslo: UTC, no zone named
    ("2024-03-05 10:00:05 +0000", at(2024, 3, 5, 10, 0, 5)),  # CloudStack: yyyy-MM-dd HH:mm:ss Z
    ("2024-03-05 12:00:05 +0200", at(2024, 3, 5, 12, 0, 5, tz=datetime.timezone(datetime.timedelta(hours=2)))),
    ("2024-03-05T10:19:02Z", at(2024, 3, 5, 10, 19, 2)),
    ("yesterday", None),
    (1709632805, None),
    (None, None),
]


@pytest.mark.parametrize("text, expected", TIMES)
def test_event_time(text, expected):
    assert event_time(text) == expected


def test_open_event():
    ev, header = open_event(oslo2(NOVA))
    assert ev == NOVA and header.source == "nova"
    with pytest.raises(BadEvent, match=r"^the event holds a NUL character \(U\+0000\), which cannot be stored$"):
        open_event({**NOVA, "payload": {**NOVA["payload"], "display_name": "a\x00b"}})
    with pytest.raises(BadEvent, match="NUL character"):
        open_event(orjson.loads(orjson.dumps({**NOVA, "payload": {"a\x00": 1}})))


def test_kept_leaves_the_credentials_out():
    """An oslo context carries the caller's token and service catalog: the stored event does not."""
    ev = load("designate_nova_compute.instance.create.end.json")
    stored = kept(ev)
    assert "_context_auth_token" in ev and "_context_service_catalog" in ev
    assert "_context_auth_token" not in stored and "_context_service_catalog" not in stored
    assert stored == {k: v for k, v in ev.items() if k not in ("_context_auth_token", "_context_service_catalog")}
