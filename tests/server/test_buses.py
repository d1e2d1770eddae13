"""The message-bus sink as a service of a real `minidns serve` (minidns/server/buses.py), its broker
unreachable: DNS and the API serve on; /readyz says "degraded" with the source's reason (503 only
with bus_required); /metrics and `minidns events status` say the same; a clean stop is recorded;
a transport URL that cannot be used is a configuration error; bus_quorum_queues reaches every AMQP
queue."""

import re
import socket
import time

import requests

from minidns.bus.openstack import openstack_source
from minidns.bus.status import SourceStatus
from minidns.server.buses import quorum_queues


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"rabbit://guest:guest@127.0.0.1:{s.getsockname()[1]}/"


def api(served) -> str:
    return re.search(r"(http://\S+?)/?$", served.wait_for(r"API listening on", 30).strip()).group(1)


def until(get, check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not check(r := get()):
        assert time.monotonic() < deadline, r
        time.sleep(0.1)
    return r


def test_a_bus_that_cannot_be_reached_degrades_but_does_not_take_dns_down(serve, cli, database_url):
    url = dead_url()
    s = serve("--database-url", database_url, "--openstack-transport-url", url, "--bus-pool", "t1")
    base = api(s)
    s.wait_for(r"bus openstack: cannot connect to 127\.0\.0\.1", 30)
    r = requests.get(f"{base}/readyz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "degraded", r.text
    bus = r.json()["bus"]["openstack"]
    assert bus["connected"] is False and "127.0.0.1" in bus["reason"] and "refused" in bus["reason"].lower()
    metrics = requests.get(f"{base}/metrics", timeout=10).text
    assert 'minidns_bus_connected{source="openstack"} 0' in metrics
    assert 'minidns_bus_messages_total{source="openstack",outcome="applied"} 0' in metrics
    said = re.compile(r"openstack \(amqp\) on \S+:\d+: not connected: 127\.0\.0\.1:\d+: \S*Connect")
    out = until(lambda: cli("events", "status", "--database-url", database_url), lambda p: said.search(p.stdout))  # written every 5 s
    assert "messages: received 0, applied 0" in out.stdout and "last error" in out.stdout
    assert s.stop() == 0 and "bus status not written" not in s.log
    out = cli("events", "status", "--database-url", database_url)
    assert "not connected: stopped" in out.stdout, out.stdout

    s = serve("--database-url", database_url, "--openstack-transport-url", url, "--bus-required")
    r = until(lambda: requests.get(f"{api(s)}/readyz", timeout=10), lambda r: "bus" in r.json())
    assert r.status_code == 503 and r.json()["status"] == "not ready" and r.json()["database"] == "ok"


def test_bus_quorum_queues_makes_every_amqp_queue_a_quorum_queue():
    status = SourceStatus("openstack", "amqp")
    sources = [openstack_source(status, None, ["rabbit://mq1"], ["nova"], ["notifications"], ["info"], "p1", dead_letter="dlx"),
               openstack_source(status, None, ["rabbit://mq1"], ["nova"], ["notifications"], ["info"], "p2"), object()]  # fmt: skip
    assert quorum_queues(sources, False)[0].queue_arguments == {"x-dead-letter-exchange": "dlx"}
    assert [s.queue_arguments for s in quorum_queues(sources, True)[:2]] == [
        {"x-dead-letter-exchange": "dlx", "x-queue-type": "quorum"}, {"x-queue-type": "quorum"}]


def test_a_transport_url_minidns_cannot_use_is_a_configuration_error(cli, database_url):
    out = cli("serve", "--database-url", database_url, "--openstack-transport-url", "kafka://k1:9092")
    assert out.returncode == 2 and "openstack_transport_url: kafka scheme" in out.stderr
    out = cli("serve", "--database-url", database_url, "--cloudstack-transport-url", "rabbit://u:p@mq/")
    assert out.returncode == 2 and "needs cloudstack_api_url" in out.stderr
