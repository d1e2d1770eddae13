"""The AMQP source on a real RabbitMQ (minidns/bus/amqp.py): nothing acknowledged before `apply`
returns (a consumer that dies mid-batch loses nothing: the broker delivers again, redelivered),
the queue drained after; failover past a dead host; an exchange that exists with other flags bound
to as it is; a quorum queue; failed messages dead-lettered when asked; TLS."""

import asyncio
import socket

import aio_pika
import pytest
from rabbit import make_certificates

from minidns.bus.amqp import AmqpSource, Binding
from minidns.bus.openstack import openstack_source
from minidns.bus.status import SourceStatus
from minidns.sink.outcome import Outcome


async def until(check, timeout=30.0):
    """Wait until check() is true (a deadline, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def depth(rabbit, queue: str) -> int:
    """Messages ready in `queue` (a passive queue.declare)."""
    conn = await aio_pika.connect(rabbit.amqp_url)
    try:
        q = await (await conn.channel()).declare_queue(queue, passive=True)
        return q.declaration_result.message_count
    finally:
        await conn.close()


async def publish(rabbit, exchange: str, bodies: list[bytes], key="notifications.info"):
    conn = await aio_pika.connect(rabbit.amqp_url)
    try:
        ex = await (await conn.channel()).get_exchange(exchange, ensure=False)
        for i, body in enumerate(bodies):
            await ex.publish(aio_pika.Message(body, delivery_mode=2, message_id=f"m{i}"), routing_key=key)
    finally:
        await conn.close()


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An `apply` that keeps what it was given; `hold` makes it wait until released; bodies
    starting with "bad" come out failed."""

    def __init__(self, hold=False):
        self.batches, self.released = [], asyncio.Event()
        if not hold:
            self.released.set()

    async def __call__(self, messages):
        self.batches.append(messages)
        await self.released.wait()
        return [Outcome(m.message_id, "x", "x", "failed" if m.body.startswith(b"bad") else "applied") for m in messages]

    @property
    def seen(self):
        return [m for b in self.batches for m in b]


async def test_nothing_is_acknowledged_before_apply_returns(rabbit):
    status = SourceStatus("openstack", "amqp")
    hold = Recorder(hold=True)
    source = AmqpSource(status, [rabbit.url], [Binding("ex-ack", "topic", False, ("notifications.info",))], "q-ack", hold, prefetch=8)
    task = asyncio.ensure_future(source.run())
    await until(lambda: status.connected)
    await publish(rabbit, "ex-ack", [b"e%d" % i for i in range(20)])
    await until(lambda: hold.batches)
    assert len(hold.seen) <= 8  # the prefetch bounds what is in hand
    task.cancel()  # the consumer dies mid-batch: nothing of it was acknowledged
    await asyncio.gather(task, return_exceptions=True)
    for _ in range(100):
        if await depth(rabbit, "q-ack") == 20:
            break
        await asyncio.sleep(0.1)
    assert await depth(rabbit, "q-ack") == 20

    status2, rec = SourceStatus("openstack", "amqp"), Recorder()
    source = AmqpSource(status2, [rabbit.url], [Binding("ex-ack", "topic", False, ("notifications.info",))], "q-ack", rec, prefetch=8)
    task = asyncio.ensure_future(source.run())
    await until(lambda: len(rec.seen) == 20)
    assert sorted(m.message_id for m in rec.seen) == sorted(f"m{i}" for i in range(20))
    again = {m.message_id for m in rec.seen if m.redelivered}  # what the dead consumer held: its batch and the next one
    assert {m.message_id for m in hold.seen} <= again and len(again) <= 2 * 8  # the broker's window: two batches
    assert all(len(b) <= 8 for b in rec.batches) and status2.lag is not None
    source.stop()
    await asyncio.wait_for(task, 10)
    assert await depth(rabbit, "q-ack") == 0  # every delivery acknowledged (the unacked ones would be back)
    assert (status2.connected, status2.reason) == (False, "stopped")


async def test_failover_flags_mismatch_and_dead_letters(rabbit):
    conn = await aio_pika.connect(rabbit.amqp_url)
    await (await conn.channel()).declare_exchange("ex-durable", "topic", durable=True)  # as amqp_durable_queues makes it
    await conn.close()
    status, rec = SourceStatus("openstack", "amqp"), Recorder()
    dead = dead_port()
    urls = [f"rabbit://guest:guest@127.0.0.1:{dead}/", rabbit.url]
    source = AmqpSource(status, urls, [Binding("ex-durable", "topic", False, ("notifications.info",))], "q-dead", rec,
                        dead_letter="minidns-dead", reconnect=(0.1,), queue_arguments={"x-queue-type": "quorum"})  # fmt: skip
    task = asyncio.ensure_future(source.run())
    await until(lambda: status.connected)
    assert status.broker == f"127.0.0.1:{rabbit.port}" and f"127.0.0.1:{dead}" in status.last_error
    await publish(rabbit, "ex-durable", [b"good1", b"bad1", b"good2", b"bad2"])
    await until(lambda: len(rec.seen) == 4)
    for _ in range(100):
        if await depth(rabbit, "q-dead.dead") == 2:
            break
        await asyncio.sleep(0.1)
    assert await depth(rabbit, "q-dead.dead") == 2
    source.stop()
    await asyncio.wait_for(task, 10)
    assert await depth(rabbit, "q-dead") == 0
    kinds = dict(line.split("\t") for line in rabbit.ctl("list_queues", "name", "type", "-q", "--no-table-headers").splitlines())
    assert (kinds["q-dead"], kinds["q-dead.dead"]) == ("quorum", "classic")


async def test_tls_checks_the_broker_certificate(rabbit, tmp_path):
    """rabbits:// with oslo's ssl_ca_file: connected when the broker's certificate is signed by it,
    refused (and why said) when it is not."""
    status, rec = SourceStatus("openstack", "amqp"), Recorder()
    source = AmqpSource(status, [rabbit.tls_url], [Binding("ex-tls", "topic", False, ("notifications.info",))], "q-tls", rec)
    task = asyncio.ensure_future(source.run())
    await until(lambda: status.connected)
    assert status.broker == f"127.0.0.1:{rabbit.tls_port}"
    await publish(rabbit, "ex-tls", [b"over tls"])
    await until(lambda: rec.seen)
    source.stop()
    await asyncio.wait_for(task, 10)
    make_certificates(tmp_path)  # another CA, which did not sign the broker's certificate
    status = SourceStatus("openstack", "amqp")
    url = rabbit.tls_url.replace(str(rabbit.root / "ca.pem"), str(tmp_path / "ca.pem"))
    source = AmqpSource(status, [url], [Binding("ex-tls", "topic", False, ("notifications.info",))], "q-tls", rec, reconnect=(5,))
    task = asyncio.ensure_future(source.run())
    await until(lambda: status.last_error)
    assert not status.connected and "CERTIFICATE_VERIFY_FAILED" in status.reason
    source.stop()
    await asyncio.wait_for(task, 10)


# The RabbitMQ permissions the README gives minidns's user (configure, write, read), for pool minidns.
PERMISSIONS = (r"^(nova|neutron|notifications\.info\.minidns)$", r"^notifications\.info\.minidns$",
               r"^(nova|neutron|notifications\.info\.minidns)$")  # fmt: skip


async def test_the_permissions_the_readme_gives_are_enough(rabbit):
    rabbit.ctl("add_user", "minidns", "secret")
    rabbit.ctl("set_permissions", "-p", "/", "minidns", *PERMISSIONS)
    status, rec = SourceStatus("openstack", "amqp"), Recorder()
    url = f"rabbit://minidns:secret@127.0.0.1:{rabbit.port}/"
    source = openstack_source(status, rec, [url], ["nova", "neutron"], ["notifications"], ["info"], "minidns")
    task = asyncio.ensure_future(source.run())
    await until(lambda: status.connected or "ACCESS_REFUSED" in (status.last_error or ""))
    assert status.connected, status.last_error
    await publish(rabbit, "neutron", [b"via neutron"])
    await until(lambda: rec.seen)
    source.stop()
    await asyncio.wait_for(task, 10)
    assert await depth(rabbit, "notifications.info.minidns") == 0
    conn = await aio_pika.connect(rabbit.amqp_url)
    await (await conn.channel()).queue_delete("notifications.info.minidns")
    await conn.close()


@pytest.fixture(autouse=True)
def _rabbit_present(rabbit):
    """Every test here needs the session's broker."""
