"""The CloudStack event-bus source: CloudStack's exchange as its RabbitMQ plugin declares it (topic,
durable), bound with the VM events' routing keys alone, to one durable queue per pool; each batch
completed from the CloudStack API (cloudstack_events.enrich) before it is applied.

CloudStack's plugin publishes to its exchange whether or not a queue is bound, and the broker drops
what no queue takes: the durable queue `cloudstack.<pool>` keeps the VM events while minidns is
down, and processes of one pool share it (competing consumers)."""

from __future__ import annotations

from functools import partial

from .amqp import AmqpSource, Binding
from .cloudstack_events import EXCHANGE, ROUTING_KEYS, Directory, enrich
from .status import SourceStatus

SOURCE = "cloudstack"


def binding(exchange: str = EXCHANGE) -> Binding:
    """RabbitMQEventBus.createExchange declares the exchange topic and durable; only the VM events
    the sink acts on are bound (the others never reach minidns)."""
    return Binding(exchange, "topic", True, ROUTING_KEYS)


def queue_name(pool: str) -> str:
    return f"{SOURCE}.{pool}"


def cloudstack_source(status: SourceStatus, apply, urls: list[str], exchange: str, directory: Directory, pool: str,
                      prefetch: int = 100, dead_letter: str | None = None) -> AmqpSource:  # fmt: skip
    """The source; `apply` is bus.apply.apply_messages with its store and settings bound, and is
    given the enrich hook here: while the API `directory` asks cannot answer, the batch waits
    unacknowledged. The caller closes the API (it may be shared with CloudStack's Kafka source)."""
    completed = partial(apply, enrich=partial(enrich, directory))
    return AmqpSource(status, urls, [binding(exchange)], queue_name(pool), completed, prefetch=prefetch, dead_letter=dead_letter)
