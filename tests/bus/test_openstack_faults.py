"""The faults a bus consumer meets, on a real RabbitMQ, a real `minidns serve` and oslo.messaging's
Notifier (minidns/bus/openstack.py end to end): PostgreSQL unreachable for 10 s and more (cut by a
TCP proxy: to minidns exactly a database that went away, and cheaper than stopping the session's
PostgreSQL, which every other test shares) while the broker is restarted mid-stream (same data,
same ports) with deliveries unacknowledged in minidns's hands; then minidns SIGKILLed mid-stream
and started again. In each, every event published is applied exactly once — one row per
message, applied, attempts 1 — its record answered, and the queue drained."""

import re
import signal
import threading
import time
import uuid

import requests
from bus_checks import (
    answer,
    api_base,
    created,
    delete_queue,
    depth,
    serve_openstack,
    until,
)
from event_zones import create_zones
from oslo_publisher import Service


def send(nova: Service, prefix: str, net: int, lo: int, hi: int) -> None:
    """Instances <prefix><i> created, i in [lo, hi), with the address 10.<net>.0.<i + 1>."""
    for i in range(lo, hi):
        nova.send_sample("nova_compute.instance.create.end.json", hostname=f"{prefix}{i}", instance_id=str(uuid.uuid4()),
                         fixed_ips=[{"address": f"10.{net}.0.{i + 1}", "version": 4, "type": "fixed"}])  # fmt: skip


def readyz(base: str) -> dict:
    r = requests.get(f"{base}/readyz", timeout=10)
    return {**r.json(), "code": r.status_code}


def all_applied(url: str, prefix: str, n: int) -> None:
    until(lambda: created(url, prefix), lambda c: c["applied"] >= n, 60, f"{prefix}* applied")
    assert created(url, prefix) == {"rows": n, "ids": n, "applied": n, "attempts": 1}


def test_broker_restart_kill_and_database_outage_lose_nothing_and_apply_nothing_twice(serve, rabbit, db_proxy, database_url):
    proxy, url = db_proxy  # minidns reaches the database through the proxy; the test looks at it directly
    create_zones(database_url)
    pool = f"f{uuid.uuid4().hex[:8]}"
    s = serve_openstack(serve, rabbit, url, pool)
    base = api_base(s)
    nova = Service(rabbit.url, "nova", "compute.host1")
    try:
        # PostgreSQL away (cut at the proxy) for 10 s and more, and meanwhile the broker restarted
        # (same data, same ports) while minidns holds deliveries it has not acknowledged: its batch
        # waits; once the database is back it commits, its acknowledgement dies with the old
        # channel, and the broker delivers the messages again — applied once all the same. minidns
        # reconnects by itself, re-declares oslo's non-durable exchanges and re-binds its queue.
        proxy.cut()
        cut = time.monotonic()
        send(nova, "r", 11, 0, 40)
        state = until(lambda: readyz(base), lambda j: j["bus"]["openstack"]["waiting"], what="readyz while the database is away")
        assert state["code"] == 503 and state["database"] == "unreachable" and state["bus"]["openstack"]["connected"] is True
        assert "not reachable" in state["bus"]["openstack"]["waiting"] and created(database_url, "r")["rows"] == 0
        mark = len(s.lines)
        rabbit.stop()
        until(lambda: readyz(base), lambda j: j["bus"]["openstack"]["connected"] is False, what="readyz while the broker is down")
        rabbit.start()
        time.sleep(max(0.0, 10 - (time.monotonic() - cut)))
        proxy.restore()
        s.wait_for(r"bus openstack: connected to", 60, after=mark)
        send(nova, "r", 11, 40, 80)
        all_applied(database_url, "r", 80)
        state = until(lambda: readyz(base), lambda j: j["code"] == 200, what="readyz after the faults")
        bus = state["bus"]["openstack"]
        assert state["status"] == "ready" and (bus["connected"], bus["reason"], bus["waiting"]) == (True, None, None)
        assert isinstance(bus["lag"], int)  # the queue's depth, read by a passive declare
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert int(re.search(r'outcome="duplicate"\} (\d+)', metrics).group(1)) >= 1  # the batch committed before its ack was lost came again
        assert int(re.search(r'outcome="applied"\} (\d+)', metrics).group(1)) == 80

        # minidns SIGKILLed mid-stream, started again: what it had not acknowledged comes again.
        sender = threading.Thread(target=send, args=(nova, "k", 12, 0, 80))
        sender.start()
        until(lambda: created(database_url, "k")["rows"], lambda n: n >= 10, what="k* begun")
        s.signal(signal.SIGKILL)
        s.proc.wait()
        s = serve_openstack(serve, rabbit, url, pool)
        sender.join()
        all_applied(database_url, "k", 80)
    finally:
        nova.close()
        if rabbit.proc is None:  # the session's broker back for the tests after this one, whatever happened
            rabbit.start()
    for name, address in (("r0", "10.11.0.1"), ("r79", "10.11.0.80"), ("k0", "10.12.0.1"), ("k79", "10.12.0.80")):
        assert answer(s.port, f"{name}.cloud.test.", "A") == {address}
    assert s.stop() == 0
    assert depth(rabbit.amqp_url, f"notifications.info.{pool}") == 0  # none ready, and none was unacknowledged
    delete_queue(rabbit.amqp_url, f"notifications.info.{pool}")
