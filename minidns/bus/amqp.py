"""An AMQP 0-9-1 source (aio-pika): a durable queue bound to the publishers' exchanges, consumed in
batches that are acknowledged only once `apply` has committed them.

Each connection (failover over the transport URLs' hosts, with backoff between rounds) declares
each exchange that does not exist exactly as its publisher does — so that a broker restart, which
drops a non-durable exchange and its bindings, is repaired at once — declares the queue (durable: events wait in the
broker while minidns is down; several processes of one pool share it as competing consumers),
binds it, and consumes with a bounded prefetch (basic.qos of two batches, so that the next batch
is arriving while one is applied: with a window of one batch, half the batches came in small).
What has arrived, up to `prefetch` messages, is one batch; after `apply(batch)` returns the batch is acknowledged (basic.ack, multiple when the
batch's delivery tags run on from the last ones acknowledged). A lost connection or channel leaves
the unacknowledged deliveries to the broker, which delivers them again (redelivered) — the
message-id idempotency of the sink makes that harmless. With a dead-letter exchange, a message
whose outcome is "failed" is rejected (requeue=false) into it instead of acknowledged (AMQP 0-9-1
basic.reject; RabbitMQ's x-dead-letter-exchange queue argument)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import aiormq

from .backoff import BACKOFF, delay, pause
from .message import Message
from .status import SourceStatus
from .transport_url import Broker, brokers

log = logging.getLogger("minidns.bus")
LAG_EVERY = 5.0  # seconds between looks at the queue's depth (a passive queue.declare)
CONNECT_TIMEOUT = 10
HEALTHY = 10.0  # seconds of consuming after which a lost connection is retried at once


@dataclass(frozen=True, slots=True)
class Binding:
    """An exchange as its publisher declares it, and the routing keys bound from it."""

    exchange: str
    type: str
    durable: bool
    routing_keys: tuple[str, ...]


class Lost(Exception):
    """The connection or channel closed under the consumer."""


class AmqpSource:
    def __init__(self, status: SourceStatus, urls: list[str], bindings: list[Binding], queue: str,
                 apply: Callable[[list[Message]], Awaitable[list]], prefetch: int = 100,
                 dead_letter: str | None = None, durable_queue: bool = True, queue_arguments: dict | None = None,
                 reconnect=BACKOFF):  # fmt: skip
        self.status, self.bindings, self.queue, self.apply = status, bindings, queue, apply
        self.brokers = brokers(urls)
        self.prefetch, self.dead_letter, self.durable_queue = max(1, prefetch), dead_letter, durable_queue
        self.queue_arguments = dict(queue_arguments or {})
        if dead_letter:
            self.queue_arguments["x-dead-letter-exchange"] = dead_letter
        self.reconnect = reconnect
        self.stopping = asyncio.Event()
        self.acked = 0  # the highest delivery tag settled on the current channel
        self.wire = None  # that channel, as aiormq has it (consume)
        self.settled = 0  # batches settled on the current connection

    async def run(self) -> None:
        """Consume until stop(): connect, declare, consume; on any loss, the next broker."""
        failures = 0
        for broker in itertools.cycle(self.brokers):
            if self.stopping.is_set():
                return
            if await self.session(broker):
                failures = 0
            else:
                failures += 1
            if failures and failures % len(self.brokers) == 0:  # a whole round failed: back off
                await pause(self.stopping, delay(failures // len(self.brokers), self.reconnect))

    def stop(self) -> None:
        """Stop after the batch in hand: it is acknowledged once committed; nothing else is."""
        self.stopping.set()

    async def session(self, broker: Broker) -> bool:
        """One connection's life; whether it went well (consumed a while, or settled a batch), so
        that a connection the broker closes at once, again and again, is retried with backoff."""
        consuming, began, self.settled = False, time.monotonic(), 0
        try:
            conn = await aio_pika.connect(**broker.connect_args(), timeout=CONNECT_TIMEOUT,
                                          client_properties={"connection_name": f"minidns {self.status.name}"})  # fmt: skip
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as e:
            self.status.down(f"{broker.label()}: {describe(e)}")
            log.warning("bus %s: cannot connect to %s: %s", self.status.name, broker.label(), describe(e))
            return False
        try:
            channel, queue = await self.declare(conn)
            consuming = True
            self.status.up(broker.label())
            log.info("bus %s: connected to %s, consuming queue %s", self.status.name, broker.label(), self.queue)
            await self.consume(conn, channel, queue)
        except (TimeoutError, Lost, OSError, aiormq.exceptions.AMQPError, RuntimeError) as e:
            self.status.down(f"{broker.label()}: {describe(e)}")
            log.warning("bus %s: connection to %s lost: %s", self.status.name, broker.label(), describe(e))
        except Exception as e:  # a fault of this process: logged, and the deliveries come again
            self.status.down(f"{broker.label()}: {describe(e)}")
            log.exception("bus %s: consuming from %s failed", self.status.name, broker.label())
            consuming = False  # back off before the next try
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
        if self.stopping.is_set():
            self.status.stopped()
        return consuming and (self.settled > 0 or time.monotonic() - began >= HEALTHY)

    async def declare(self, conn) -> tuple:
        """The exchanges (as their publishers declare them), the queue, the bindings; a channel with
        the prefetch set and the queue."""
        for b in self.bindings:
            await self.declare_exchange(conn, b.exchange, b.type, b.durable)
        if self.dead_letter:
            await self.declare_dead_letter(conn)
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=min(2 * self.prefetch, 65535))  # the next batch arrives while one is applied
        queue = await self.declare_queue(conn, channel)
        for b in self.bindings:
            for key in b.routing_keys:
                await queue.bind(b.exchange, routing_key=key)
        return channel, queue

    async def declare_exchange(self, conn, name: str, kind: str, durable: bool) -> None:
        """An exchange that exists is bound to as it is (a passive exchange.declare); one that does
        not is declared with its publisher's flags — so that the publisher, declaring it again as
        it does before each publish, is not refused (PRECONDITION_FAILED) by minidns's own. One
        made meanwhile with other flags is bound to as it is too."""
        if await self.exchange_exists(conn, name):
            return
        channel = await conn.channel()
        try:
            await channel.declare_exchange(name, kind, durable=durable)
        except aiormq.exceptions.ChannelPreconditionFailed as e:
            log.warning("bus %s: exchange %s exists with other flags (%s); binding to it as it is", self.status.name, name, e)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    @staticmethod
    async def exchange_exists(conn, name: str) -> bool:
        channel = await conn.channel()  # a passive declare of a missing exchange closes its channel (NOT_FOUND)
        try:
            await channel.declare_exchange(name, passive=True)
            return True
        except aiormq.exceptions.ChannelNotFoundEntity:
            return False
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def declare_queue(self, conn, channel):
        """The queue; when it exists with other arguments (PRECONDITION_FAILED), the existing one."""
        probe = await conn.channel()
        try:
            await probe.declare_queue(self.queue, durable=self.durable_queue, arguments=self.queue_arguments or None)
        except aiormq.exceptions.ChannelPreconditionFailed as e:
            self.status.error(f"queue {self.queue} exists with other arguments; consuming it as it is: {e}")
            log.warning("bus %s: %s", self.status.name, self.status.last_error)
        finally:
            with contextlib.suppress(Exception):
                await probe.close()
        return await channel.declare_queue(self.queue, passive=True)

    async def declare_dead_letter(self, conn) -> None:
        """The dead-letter exchange (topic, durable) and a durable queue `<queue>.dead` holding
        whatever reaches it (a message dead-lettered to an exchange with no queue bound is lost)."""
        await self.declare_exchange(conn, self.dead_letter, "topic", True)
        channel = await conn.channel()
        try:
            dead = await channel.declare_queue(f"{self.queue}.dead", durable=True)
            await dead.bind(self.dead_letter, routing_key="#")
        finally:
            await channel.close()

    async def consume(self, conn, channel, queue) -> None:
        """Deliveries gathered into batches, each applied then settled, until stop() or a loss."""
        inbox: asyncio.Queue = asyncio.Queue()
        lost = asyncio.get_running_loop().create_future()

        def on_close(_sender, exc=None):  # said at once, even while a batch waits for the database
            if not lost.done():
                lost.set_result(exc)
                if not self.stopping.is_set():
                    self.status.down(f"connection lost: {describe(exc) if exc else 'closed'}")

        conn.close_callbacks.add(on_close)
        channel.close_callbacks.add(on_close)
        self.acked = 0
        # Deliveries taken from aio-pika's underlying aiormq channel as they come off the wire:
        # aio-pika would wrap each in a message object and a task of its own, a good part of what a
        # delivery costs here, for properties the batch never reads.
        self.wire = await channel.get_underlay_channel()

        async def deliver(m) -> None:
            inbox.put_nowait(m)

        await self.wire.basic_consume(queue.name, deliver, no_ack=False)
        lag = asyncio.ensure_future(self.watch_lag(conn))
        try:
            while not self.stopping.is_set():
                batch = await self.next_batch(inbox, lost)
                if batch:
                    await self.settle(batch, await self.apply([self.message(m) for m in batch]))
        finally:
            lag.cancel()

    async def next_batch(self, inbox: asyncio.Queue, lost: asyncio.Future) -> list:
        """What has arrived, up to the prefetch; waits for the first delivery (or stop, or a loss)."""
        get, stop = asyncio.ensure_future(inbox.get()), asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({get, stop, lost}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not get.done():
            get.cancel()
            if lost.done():
                raise Lost(describe(lost.result()) if lost.result() else "closed by the broker")
            return []
        batch = [get.result()]
        while len(batch) < self.prefetch and not inbox.empty():
            batch.append(inbox.get_nowait())
        return batch

    def message(self, m) -> Message:
        """A delivery (aiormq's DeliveredMessage) as the batch takes it."""
        return Message(m.body, self.status.name, m.header.properties.message_id, m.routing_key, bool(m.redelivered))

    async def settle(self, batch: list, outcomes: list) -> None:
        """Acknowledge the committed batch — failed ones rejected into the dead-letter exchange
        when there is one; basic.ack multiple when the batch's tags run on from the last settled."""
        done = sorted(zip(batch, outcomes), key=lambda mo: mo[0].delivery_tag)
        dead = {id(m) for m, o in done if self.dead_letter and o.status == "failed" and not o.duplicate}
        for m, _ in done:
            if id(m) in dead:
                await self.wire.basic_reject(m.delivery_tag, requeue=False)
        kept = [m for m, _ in done if id(m) not in dead]
        tags = [m.delivery_tag for m, _ in done]
        if kept and tags == list(range(self.acked + 1, self.acked + 1 + len(tags))):
            await self.wire.basic_ack(kept[-1].delivery_tag, multiple=True)
        else:
            for m in kept:
                await self.wire.basic_ack(m.delivery_tag)
        self.acked = max(self.acked, tags[-1])
        self.settled += 1

    async def watch_lag(self, conn) -> None:
        """The queue's depth (messages ready) every LAG_EVERY seconds, from a passive declare."""
        with contextlib.suppress(Exception):
            channel = await conn.channel()
            while True:
                q = await channel.declare_queue(self.queue, passive=True)
                self.status.lag = q.declaration_result.message_count
                await asyncio.sleep(LAG_EVERY)


def describe(e: BaseException | None) -> str:
    text = str(e) if e is not None else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
