"""The OpenStack bindings: oslo.messaging's notification exchanges (the services' control
exchanges, `nova` and `neutron` by default) as oslo declares them — topic exchanges, not durable —
bound with `<topic>.<priority>` (`notifications.info`) to one durable queue per pool.

oslo's own notification listener with a pool names its queue after the pool alone, non-durable;
minidns's queue is durable and named `<topic>.<priority>.<pool>` (`notifications.info.minidns`) so
that it never meets a queue an oslo listener declared with other flags."""

from __future__ import annotations

from .amqp import AmqpSource, Binding
from .status import SourceStatus

SOURCE = "openstack"


def bindings(exchanges: list[str], topics: list[str], priorities: list[str], durable: bool = False) -> list[Binding]:
    """Each exchange bound with each `<topic>.<priority>`. oslo declares its exchanges durable only
    when the services set [oslo_messaging_rabbit] amqp_durable_queues; `durable` must say the same,
    for minidns declares an exchange that does not exist yet as the services will."""
    keys = tuple(f"{t}.{p}" for t in topics for p in priorities)
    return [Binding(e, "topic", durable, keys) for e in exchanges]


def queue_name(topics: list[str], priorities: list[str], pool: str) -> str:
    """`notifications.info.minidns`; several topics or priorities joined by "+"."""
    return f"{'+'.join(topics)}.{'+'.join(priorities)}.{pool}"


def openstack_source(status: SourceStatus, apply, urls: list[str], exchanges: list[str], topics: list[str],
                     priorities: list[str], pool: str, prefetch: int = 100, dead_letter: str | None = None,
                     durable: bool = False) -> AmqpSource:  # fmt: skip
    return AmqpSource(status, urls, bindings(exchanges, topics, priorities, durable), queue_name(topics, priorities, pool),
                      apply, prefetch=prefetch, dead_letter=dead_letter)  # fmt: skip
