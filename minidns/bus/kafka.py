"""CloudStack's Kafka event bus consumed: records of one topic taken in batches by a consumer group,
applied, and their offsets committed only after `apply(batch)` has returned (at-least-once, and the
stable message id makes a redelivered record change nothing); reconnects with backoff for ever."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from .backoff import BACKOFF, delay, pause
from .cloudstack_events import VM_EVENTS
from .message import Message
from .status import SourceStatus

log = logging.getLogger("minidns.bus.kafka")
LAG_EVERY = 5.0  # seconds between two measures of the lag (which also tell whether the broker answers)
LAG_TIMEOUT = 5.0  # a broker that has not told the lag after this long is said not to answer
POLL_MS = 1000  # how long one fetch waits for records when none are at hand
Apply = Callable[[list[Message]], Awaitable[list]]


def message(record, source: str) -> Message:
    """A Kafka record as a bus Message. CloudStack's plugin sends the event's JSON as the value and
    the resource's uuid as the key; Kafka gives no message id (topic/partition/offset would change
    if the event were published again), so the id is message_key's hash of the body."""
    return Message(record.value or b"", source, None, None, False)


def wanted(record) -> bool:
    """Whether the record goes to the sink. CloudStack's Kafka bus has no routing key to bind: every
    action event, alert and resource state change comes on the one topic. A JSON object that is
    not a VM event (VM.CREATE, VM.START, VM.DESTROY, VM.EXPUNGE — what the RabbitMQ binding lets
    through) is passed over without a row; anything else, poison included, goes to apply, which
    records what it cannot use as failed."""
    try:
        ev = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return True
    return not isinstance(ev, dict) or ev.get("event") in VM_EVENTS


def next_offsets(batch: dict) -> dict:
    """What to commit after a batch: for each partition, the offset of the record after its last."""
    return {tp: records[-1].offset + 1 for tp, records in batch.items() if records}


class KafkaSource:
    """One topic of a Kafka cluster consumed by the consumer group `group`: processes with the same
    group share the topic's partitions (each record goes to one of them), and what none has
    committed waits in the topic (for as long as the topic's retention keeps it)."""

    def __init__(self, status: SourceStatus, bootstrap: list[str], topic: str, group: str, apply: Apply,
                 prefetch: int = 100, backoff=BACKOFF, source: str = "cloudstack-kafka", lag_every: float = LAG_EVERY):  # fmt: skip
        self.status, self.bootstrap, self.topic, self.group = status, list(bootstrap), topic, group
        self.apply, self.prefetch, self.backoff, self.source = apply, prefetch, backoff, source
        self.lag_every = lag_every
        self.stopping = asyncio.Event()
        self.failures = 0  # connection attempts failed in a row

    def stop(self) -> None:
        """Stop after the batch in hand (applied and committed, or neither)."""
        self.stopping.set()

    async def run(self) -> None:
        """Consume until stopped: connect, consume, and after any loss of the broker connect again
        (pausing 0.5, 1, 2, 5, 5 … s between failed attempts)."""
        while not self.stopping.is_set():
            try:
                await self.session()
            except (KafkaError, OSError) as e:
                await self.lost(e)
            except Exception as e:  # noqa: BLE001 - a fault of ours: logged, and the source goes on
                log.exception("bus %s: consuming failed", self.source)
                await self.lost(e)

    async def lost(self, error: Exception) -> None:
        self.failures += 1
        self.status.down(f"{type(error).__name__}: {error}")
        log.warning("bus %s: %s; connecting again", self.source, self.status.reason)
        await pause(self.stopping, delay(self.failures, self.backoff))

    def consumer(self) -> AIOKafkaConsumer:
        # auto_offset_reset earliest: a group that has committed nothing yet (its first start) takes
        # the topic from its oldest record, so no event published before is missed.
        return AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, group_id=self.group,
                                client_id=f"minidns-{self.group}", enable_auto_commit=False,
                                auto_offset_reset="earliest")  # fmt: skip

    async def session(self) -> None:
        """One connection's life: join the group, then batches until stopped or the broker fails."""
        consumer = self.consumer()
        try:
            await consumer.start()
            self.failures = 0
            self.status.up(",".join(self.bootstrap))
            log.info("bus %s: consuming topic %s as group %s from %s", self.source, self.topic, self.group, self.status.broker)
            watch = asyncio.create_task(self.watch(consumer))
            try:
                await self.consume(consumer)
            finally:
                watch.cancel()
        finally:
            with contextlib.suppress(KafkaError, OSError):
                await consumer.stop()

    async def consume(self, consumer: AIOKafkaConsumer) -> None:
        """Batches of up to `prefetch` records, each applied and then committed."""
        while not self.stopping.is_set():
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=self.prefetch)
            records = [r for rs in batch.values() for r in rs]
            if records:
                await self.apply_wanted(records)
                await consumer.commit(next_offsets(batch))

    async def apply_wanted(self, records: list) -> None:
        """The batch's wanted records applied; the others counted as received and ignored."""
        chosen = [r for r in records if wanted(r)]
        passed = len(records) - len(chosen)
        self.status.received += passed
        self.status.ignored += passed
        if chosen:
            await self.apply([message(r, self.source) for r in chosen])

    async def watch(self, consumer: AIOKafkaConsumer) -> None:
        """Every `lag_every` seconds: the lag measured, which also tells whether the broker answers
        (the consumer itself reconnects without saying so)."""
        while True:
            try:
                self.status.lag = await asyncio.wait_for(lag(consumer), LAG_TIMEOUT)
            except TimeoutError:
                self.status.down(f"the broker has not answered in {LAG_TIMEOUT:g} s")
            except KafkaError as e:
                self.status.down(f"the broker does not answer: {type(e).__name__}: {e}")
            else:
                if not self.status.connected:
                    self.status.up(",".join(self.bootstrap))
            await asyncio.sleep(self.lag_every)


async def lag(consumer: AIOKafkaConsumer) -> int:
    """Records not yet committed by the group on this consumer's partitions: for each, its end
    offset less the group's committed offset (the partition's first offset when none is)."""
    partitions = sorted(consumer.assignment())
    if not partitions:
        return 0
    ends = await consumer.end_offsets(partitions)
    firsts = await consumer.beginning_offsets(partitions)
    total = 0
    for tp in partitions:
        committed = await consumer.committed(tp)
        total += max(0, ends[tp] - (firsts[tp] if committed is None else committed))
    return total
