"""The sink on the clouds' message buses as a service of `minidns serve`, in the main process only:
the configured sources (minidns/bus) built and run as tasks, stopped cleanly with the server;
their state kept in `server.bus` (for /readyz and /metrics) and written to `bus_status` every few
seconds (for `minidns events status`)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from functools import partial

from ..bus.apply import apply_messages
from ..bus.amqp import AmqpSource
from ..bus.cloudstack_api import CloudStackAPI
from ..bus.cloudstack_events import Directory, enrich
from ..bus.cloudstack_source import cloudstack_source
from ..bus.kafka import KafkaSource
from ..bus.openstack import openstack_source
from ..bus.status import BusStatus
from ..bus.status_table import write_status
from ..sink.settings import EventSettings
from .scheduler import Job

log = logging.getLogger("minidns.bus")
STATUS_EVERY = 5.0  # seconds between writes of bus_status
STOP_WAIT = 10.0  # seconds a source may take to finish its batch at shutdown before it is cancelled


def wanted(config) -> bool:
    """Whether the configuration names a bus to consume."""
    return bool(config.openstack_transport_url or config.cloudstack_transport_url or config.cloudstack_kafka_bootstrap)


def quorum_queues(sources: list, quorum: bool) -> list:
    """With bus_quorum_queues, the queue of every source that declares one (AMQP) is declared as a
    quorum queue, replicated over the RabbitMQ cluster (x-queue-type; a queue keeps the type it was
    declared with)."""
    for s in sources if quorum else ():
        if hasattr(s, "queue_arguments"):
            s.queue_arguments["x-queue-type"] = "quorum"
    return sources


class BusService:
    def __init__(self, config):
        self.config = config
        self.status = BusStatus()
        self.sources: list = []
        self.tasks: list[asyncio.Task] = []
        self.host = f"{socket.gethostname()}:{os.getpid()}"
        self.pool = None
        self.directory: Directory | None = None  # the CloudStack API, shared by CloudStack's sources

    async def start(self, server) -> None:
        if server.database is None:
            log.warning("the message-bus sink needs the database; it is not started (zone files only)")
            return
        server.bus = self.status
        self.pool = server.database.pool
        self.sources = quorum_queues(self.build(server.database.store, EventSettings.from_config(self.config)),
                                     self.config.bus_quorum_queues)  # fmt: skip
        self.tasks = [asyncio.ensure_future(self.run(s)) for s in self.sources]
        server.scheduler.add(Job("bus status", STATUS_EVERY, self.write, first=0))

    def build(self, store, settings: EventSettings) -> list:
        """The sources the configuration names, each applying into `store` with `settings`."""
        c, out = self.config, []
        if c.openstack_transport_url:
            st = self.status.add("openstack", "amqp")
            apply = partial(apply_messages, store, settings, status=st)
            out.append(openstack_source(st, apply, list(c.openstack_transport_url), list(c.openstack_exchanges),
                                        list(c.openstack_topics), list(c.openstack_priorities), c.bus_pool,
                                        c.bus_prefetch, c.bus_dead_letter_exchange, c.openstack_amqp_durable_queues))  # fmt: skip
        if c.cloudstack_transport_url:
            out.append(self.cloudstack_rabbitmq(store, settings))
        if c.cloudstack_kafka_bootstrap:
            out.append(self.cloudstack_kafka(store, settings))
        return out

    def cloudstack_directory(self) -> Directory:
        """The CloudStack API (with its short-lived cache of accounts and domains) that completes VM events."""
        if self.directory is None:
            c = self.config
            self.directory = Directory(CloudStackAPI(c.cloudstack_api_url, c.cloudstack_api_key, c.cloudstack_secret_key))
        return self.directory

    def cloudstack_kafka(self, store, settings: EventSettings) -> KafkaSource:
        """CloudStack's Kafka event bus: each VM event completed from the CloudStack API, then applied."""
        c, st = self.config, self.status.add("cloudstack-kafka", "kafka")
        apply = partial(apply_messages, store, settings, enrich=partial(enrich, self.cloudstack_directory()), status=st)
        return KafkaSource(st, list(c.cloudstack_kafka_bootstrap), c.cloudstack_kafka_topic, c.cloudstack_kafka_group,
                           apply, c.bus_prefetch)  # fmt: skip

    def cloudstack_rabbitmq(self, store, settings: EventSettings) -> AmqpSource:
        """CloudStack's RabbitMQ event bus: each VM event completed from the CloudStack API, then applied."""
        c, st = self.config, self.status.add("cloudstack", "amqp")
        apply = partial(apply_messages, store, settings, status=st)
        return cloudstack_source(st, apply, list(c.cloudstack_transport_url), c.cloudstack_exchange, self.cloudstack_directory(),
                                 c.bus_pool, c.bus_prefetch, c.bus_dead_letter_exchange)  # fmt: skip

    async def run(self, source) -> None:
        try:
            await source.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # logged; the source stays down, and says so
            log.exception("bus %s: stopped by an error", source.status.name)
            source.status.down("stopped by an error (see the log)")

    async def write(self) -> None:
        await write_status(self.pool, self.host, self.status)

    async def stop(self) -> None:
        """Each source finishes the batch in hand (acknowledged once committed), then stops; one that
        takes longer than STOP_WAIT is cancelled (its unacknowledged messages go back to the broker)."""
        for s in self.sources:
            s.stop()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=STOP_WAIT)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for st in self.status.sources.values():
            st.stopped()
        if self.directory is not None:
            await self.directory.api.close()
        if self.pool is not None:
            try:
                await self.write()
            except Exception as e:  # noqa: BLE001 - the last state is a courtesy
                log.warning("bus status not written at stop: %s", e)
