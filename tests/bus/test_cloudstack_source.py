"""CloudStack's event bus into a real `minidns serve` (minidns/bus/cloudstack_source.py): messages
published on a real RabbitMQ as CloudStack's RabbitMQ plugin publishes them (exchange
cloudstack-events, topic and durable; routing key management-server.ActionEvent.<EVENT>.VirtualMachine.<uuid>;
text/plain, persistent, no message id; a body with no id, no VM name, no address), the VMs looked up
from the stand-in CloudStack API that checks signatures, and the records asked for over DNS. The same
message twice is applied once; while the API is down the events wait unacknowledged in the broker
and none is lost; an event that carries its details (the HTTP shape) needs no lookup; a routing key
not bound never reaches minidns."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
import uuid
from pathlib import Path

import amqp
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from cloudstack_standin import API_KEY, SECRET_KEY, CloudStackStandIn

from minidns.bus.apply import apply_messages
from minidns.bus.cloudstack_api import CloudStackAPI
from minidns.bus.cloudstack_events import ROUTING_KEYS, Directory, routing_key
from minidns.bus.cloudstack_source import binding, cloudstack_source, queue_name
from minidns.bus.message import Message, message_key
from minidns.bus.status import SourceStatus
from minidns.store import db
from minidns.store.writer import Edit, Store

PAYLOADS = Path(__file__).parent.parent / "sink" / "payloads"
EVENTS = Path(__file__).parent.parent / "admin" / "events"
APP1 = "8a1a4f5c-5cf0-4b4f-9d59-5cfb1d1e0a11"  # the recorded VM: app1, 10.1.1.21, 2001:db8:1::21, account shop (acct.test)
ZONES = ("acct.test.", "1.1.10.in-addr.arpa.", "1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.")


def test_the_exchange_routing_keys_and_queue():
    assert binding() == binding("cloudstack-events")
    assert (binding().exchange, binding().type, binding().durable, binding().routing_keys) == (
        "cloudstack-events", "topic", True, ROUTING_KEYS)  # fmt: skip
    directory = Directory(CloudStackAPI("http://mgmt:8080/client/api", API_KEY, SECRET_KEY))
    source = cloudstack_source(SourceStatus("cloudstack", "amqp"), apply_messages, ["rabbit://u:p@mq1:5672/cs"], "cs-events",
                               directory, "dc1")  # fmt: skip
    assert (source.queue, source.durable_queue, [b.exchange for b in source.bindings]) == ("cloudstack.dc1", True, ["cs-events"])
    assert source.apply.func is apply_messages and source.apply.keywords["enrich"].args == (directory,)  # lookups from this API
    assert queue_name("minidns") == "cloudstack.minidns"


def body(sample: str, **changes) -> bytes:
    """A message body as CloudStack's plugin sends it (the sample's bytes when nothing changes)."""
    raw = (PAYLOADS / f"cloudstack_bus_{sample}.json").read_bytes()
    return json.dumps({**json.loads(raw), **changes}, separators=(",", ":")).encode() if changes else raw


def vm_body(event: str, vm_id: str) -> bytes:
    return body(event, entityuuid=vm_id, VirtualMachine=vm_id)


def publish(rabbit, messages: list[tuple[str, bytes]]) -> None:
    """Published as RabbitMQEventBus.publish does: the exchange declared topic and durable,
    MessageProperties.PERSISTENT_TEXT_PLAIN (text/plain, delivery mode 2) and no message id. py-amqp
    (kombu's client, which oslo.messaging brings) sends the properties it is given; aiormq would add
    a random message id to each message, which CloudStack's Java client never sends."""
    with amqp.Connection(f"127.0.0.1:{rabbit.port}", userid="guest", password="guest") as conn:
        channel = conn.channel()
        channel.exchange_declare("cloudstack-events", "topic", durable=True, auto_delete=False)
        for key, payload in messages:
            channel.basic_publish(amqp.Message(payload, content_type="text/plain", delivery_mode=2), "cloudstack-events", key)


def dig(port: int, name: str, rdtype: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=2)


def answers(r: dns.message.Message, rdtype: str) -> set[str]:
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype) for rd in rrset}


def wait_dns(port: int, name: str, rdtype: str, expected: set[str], timeout: float = 20) -> None:
    """Wait (with a deadline) until `name` answers exactly `expected` (empty: no such data)."""
    deadline = time.monotonic() + timeout
    while (got := answers(dig(port, name, rdtype), rdtype)) != expected:
        assert time.monotonic() < deadline, f"{name} {rdtype}: {got}, not {expected}"
        time.sleep(0.05)


def db_run(url: str, fn):
    async def go():
        pool = await db.create_pool(url, size=2)
        try:
            return await fn(pool)
        finally:
            await pool.close()

    return asyncio.run(go())


def events_rows(url: str) -> dict:
    """message id → (source, event type, status, attempts) of every recorded event."""
    rows = db_run(url, lambda pool: pool.fetch("SELECT message_id, source, event_type, status, attempts FROM events"))
    return {r["message_id"]: (r["source"], r["event_type"], r["status"], r["attempts"]) for r in rows}


def unacked(rabbit, queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages of the queue, as the broker counts them."""
    for line in rabbit.ctl("list_queues", "-q", "name", "messages_ready", "messages_unacknowledged").splitlines():
        parts = line.split()
        if parts and parts[0] == queue:
            return int(parts[1]), int(parts[2])
    raise AssertionError(f"no queue {queue}")


def status(cli, database_url: str) -> str:
    return cli("events", "status", "--database-url", database_url).stdout


def until(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def standin():
    s = CloudStackStandIn()
    s.add_vm("6e6e6e6e-0000-4000-8000-000000000003", "app3", ("10.1.1.23", "2001:db8:1::23"))
    s.add_vm("6e6e6e6e-0000-4000-8000-000000000004", "app4", ("10.1.1.24", "2001:db8:1::24"))
    s.start()
    yield s
    s.close()


@pytest.fixture
def cloudstack_serve(serve, database_url, rabbit, standin, tmp_path):
    """A `minidns serve` consuming CloudStack's event bus (its own pool, so its own queue), with the
    zones of the recorded VM made."""

    async def zones(pool):
        store = Store(pool)
        for name in ZONES:
            await store.create_zone(name, email=f"hostmaster@{name.rstrip('.')}", edits=[Edit("add", "@", "NS", 300, ("ns1.example.",))])

    db_run(database_url, zones)
    pool_name = f"t{uuid.uuid4().hex[:8]}"
    config = tmp_path / "minidns.toml"
    config.write_text(f"""
cloudstack_transport_url = ["{rabbit.url}"]
cloudstack_api_url = "{standin.url}"
cloudstack_api_key = "{API_KEY}"
cloudstack_secret_key = "{SECRET_KEY}"
bus_pool = "{pool_name}"
""")
    served = serve("--database-url", database_url, "--config", str(config))
    served.wait_for(r"bus cloudstack: connected", 30)
    return served, queue_name(pool_name)


def test_cloudstack_events_from_the_bus_become_records(cloudstack_serve, rabbit, standin, database_url, cli):
    served, queue = cloudstack_serve
    port = served.port
    create = body("VM.CREATE")
    create_key = routing_key("VM.CREATE", APP1)
    publish(rabbit, [(create_key, create)])
    wait_dns(port, "app1.acct.test", "A", {"10.1.1.21"})
    wait_dns(port, "app1.acct.test", "AAAA", {"2001:db8:1::21"})
    wait_dns(port, "21.1.1.10.in-addr.arpa", "PTR", {"app1.acct.test."})
    create_id = message_key(Message(create, "cloudstack", None, create_key))
    assert events_rows(database_url) == {create_id: ("cloudstack", "VM.CREATE", "applied", 1)}

    # The same message again (as a redelivery would bring it), routing keys not bound, and an event
    # with its details (the HTTP shape, with its eventUuid) behind them in the queue.
    http = json.loads((EVENTS / "cloudstack_VM.CREATE.json").read_text())
    app2 = "6e6e6e6e-0000-4000-8000-000000000002"
    http["vm"] = {**copy.deepcopy(http["vm"]), "id": app2, "name": "app2", "nic": [{"ipaddress": "10.1.1.22"}]}
    http.update(entityuuid=app2, VirtualMachine=app2)
    volume = b'{"event":"VOLUME.CREATE","status":"Completed","entity":"com.cloud.storage.Volume","entityuuid":"7f7f7f7f-0000-4000-8000-000000000001"}'
    publish(rabbit, [
        (create_key, create),
        ("management-server.ActionEvent.VOLUME-CREATE.Volume.7f7f7f7f-0000-4000-8000-000000000001", volume),
        (routing_key("VM.STOP", APP1), body("VM.START", event="VM.STOP", description="Successfully completed stopping Vm")),
        (routing_key("VM.CREATE", app2), json.dumps(http).encode()),
    ])  # fmt: skip
    wait_dns(port, "app2.acct.test", "A", {"10.1.1.22"})
    assert events_rows(database_url) == {create_id: ("cloudstack", "VM.CREATE", "applied", 1),
                                         http["eventUuid"]: ("cloudstack", "VM.CREATE", "applied", 1)}  # fmt: skip
    assert not [a for a in standin.asked if a[1] == app2]  # its details were used as they came
    wait_dns(port, "app1.acct.test", "A", {"10.1.1.21"})

    # The API away: the events wait in the broker, delivered and not acknowledged; back, they are applied.
    standin.stop()
    try:
        publish(rabbit, [(routing_key("VM.CREATE", v), vm_body("VM.CREATE", v))
                         for v in ("6e6e6e6e-0000-4000-8000-000000000003", "6e6e6e6e-0000-4000-8000-000000000004")])  # fmt: skip
        until(lambda: unacked(rabbit, queue) == (0, 2))
        # the operator sees why (bus_status is written every few seconds); still nothing applied or acknowledged
        until(lambda: "waiting: CloudStack API at http://127.0.0.1" in status(cli, database_url))
        assert answers(dig(port, "app3.acct.test", "A"), "A") == set() and unacked(rabbit, queue) == (0, 2)
        assert len(events_rows(database_url)) == 2
    finally:
        standin.start()
    wait_dns(port, "app3.acct.test", "A", {"10.1.1.23"})
    wait_dns(port, "app4.acct.test", "AAAA", {"2001:db8:1::24"})
    until(lambda: unacked(rabbit, queue) == (0, 0))
    assert [r[2] for r in events_rows(database_url).values()] == ["applied"] * 4

    # VM.EXPUNGE takes app1's records away, and only them.
    publish(rabbit, [(routing_key("VM.EXPUNGE", APP1), body("VM.EXPUNGE"))])
    wait_dns(port, "app1.acct.test", "A", set())
    wait_dns(port, "app1.acct.test", "AAAA", set())
    wait_dns(port, "21.1.1.10.in-addr.arpa", "PTR", set())
    assert answers(dig(port, "app3.acct.test", "A"), "A") == {"10.1.1.23"}
    until(lambda: "received 6, applied 5, ignored 0, failed 0, duplicates 1, redelivered 0" in status(cli, database_url))
    assert re.search(r"cloudstack \(amqp\) on \S+: connected to 127\.0\.0\.1:\d+", status(cli, database_url))
    assert served.stop() == 0 and "Unclosed client session" not in served.log  # the API's session closed at stop
