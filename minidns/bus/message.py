"""A message as a bus delivered it (Message), the id recorded for one that cannot be opened
(message_key), and Unreachable: what a lookup raises while the service it asks cannot answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    body: bytes  # as delivered
    source: str  # the configured source's name: "openstack", "cloudstack", "cloudstack-kafka"
    message_id: str | None  # the bus's own id when it gives one (AMQP message_id property), else None
    routing_key: str | None = None
    redelivered: bool = False


class Unreachable(Exception):
    """A service an event needs (the CloudStack API) cannot answer now: the batch waits and is
    tried again; nothing of it is acknowledged meanwhile."""


def message_key(msg: Message) -> str:
    """The id recorded for `msg` when its body gives none: the bus's id, else a hash of routing
    key and body — the same on every redelivery, so recording it again changes nothing."""
    if msg.message_id:
        return msg.message_id[:255]
    digest = hashlib.sha256((msg.routing_key or "").encode() + b"\0" + msg.body)
    return f"sha256:{digest.hexdigest()}"
