"""The envelope of an event: the HTTP body forms, oslo.messaging's envelopes (1.0 plain, 2.0
wrapped), and what every event carries — source, event type, message id, time."""

from __future__ import annotations

import datetime
import re
from typing import NamedTuple

import orjson

from .outcome import BadEvent

NEUTRON_RESOURCES = ("floatingip", "port")  # the first word of the Neutron event types the sink reads


class Header(NamedTuple):
    """What the envelope says of an event, whatever its cloud."""

    source: str  # nova, neutron, openstack (another OpenStack service) or cloudstack
    event_type: str
    message_id: str | None
    time: datetime.datetime | None


def body_events(body) -> tuple[list, bool]:
    """The events of a POST /v1/events body, and whether it was a batch: one event, a JSON array of
    events, or {"events": [...]}."""
    batch = isinstance(body, list) or (isinstance(body, dict) and isinstance(body.get("events"), list) and "event_type" not in body)
    items = body if isinstance(body, list) else body["events"] if batch else [body]
    return items, batch


def unwrap(raw) -> dict:
    """The notification itself: oslo.messaging's 2.0 envelope opened, anything else as it is."""
    if not isinstance(raw, dict):
        raise BadEvent("an event is a JSON object")
    if "oslo.message" not in raw:
        return raw
    msg = raw["oslo.message"]
    if raw.get("oslo.version") not in (None, "2.0"):
        raise BadEvent(f"oslo.version {raw.get('oslo.version')!r} is not 2.0")
    if not isinstance(msg, str):
        raise BadEvent("oslo.message must be a string holding the JSON notification")
    try:
        inner = orjson.loads(msg)
    except orjson.JSONDecodeError as e:
        raise BadEvent(f"oslo.message is not JSON: {e}") from None
    if not isinstance(inner, dict):
        raise BadEvent("oslo.message must hold a JSON object")
    return inner


def describe(ev: dict) -> Header:
    """The header of an unwrapped event: an oslo.messaging notification (event_type) or a
    CloudStack event-bus event (event)."""
    if isinstance(ev.get("event_type"), str):
        header = oslo_header(ev)
    elif isinstance(ev.get("event"), str):
        header = cloudstack_header(ev)
    else:
        raise BadEvent("neither an oslo.messaging notification (event_type) nor a CloudStack event (event)")
    mid = header.message_id
    if mid is not None and (not isinstance(mid, str) or not mid or len(mid) > 255):
        raise BadEvent("message_id must be a non-empty string of at most 255 characters")
    return header


def oslo_header(ev: dict) -> Header:
    et = ev["event_type"]
    return Header(openstack_source(et), et, ev.get("message_id"), event_time(ev.get("timestamp")))


def openstack_source(event_type: str) -> str:
    """nova for compute.*, neutron for the floating IP and port events, openstack otherwise."""
    if event_type.startswith("compute."):
        return "nova"
    return "neutron" if event_type.split(".")[0] in NEUTRON_RESOURCES else "openstack"


def cloudstack_header(ev: dict) -> Header:
    mid = ev.get("message_id") or ev.get("eventUuid") or ev.get("uuid")
    return Header("cloudstack", ev["event"], mid, event_time(ev.get("eventDateTime")))


def event_time(value) -> datetime.datetime | None:
    """An ISO 8601 time (oslo's "2024-03-05 10:20:41.456481", CloudStack's "2024-03-05 10:00:05
    +0000"); UTC when it names no zone; None when it is not a time."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"\s+([+-]\d{2}:?\d{2})$", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        t = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=datetime.UTC)


def has_nul(value) -> bool:
    """A U+0000 anywhere in the JSON value (PostgreSQL's text and jsonb cannot hold it). JSON text
    writes it `\\u0000`: where that is not in the value's text, there is none (one C call)."""
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return False
    except TypeError:
        pass
    return holds_nul(value)


def holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_nul(v) for v in value)
    return False


def open_event(raw) -> tuple[dict, Header]:
    """The notification in `raw` and its header, or BadEvent: an event the sink can record."""
    ev = unwrap(raw)
    if has_nul(ev):
        raise BadEvent("the event holds a NUL character (U+0000), which cannot be stored")
    header = describe(ev)
    if header.message_id is None:
        raise BadEvent("the event has no message_id (nor eventUuid)")
    return ev, header


def kept(ev: dict) -> dict:
    """The event as stored: without the credentials an oslo context carries."""
    return {k: v for k, v in ev.items() if "auth_token" not in k and k not in ("_context_service_catalog",)}


def publisher(ev: dict) -> str | None:
    return ev.get("publisher_id") if isinstance(ev.get("publisher_id"), str) else None
