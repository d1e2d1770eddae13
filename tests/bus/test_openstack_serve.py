"""OpenStack notifications published by oslo.messaging's own Notifier (messagingv2, the services'
control exchanges and publisher ids) to a real RabbitMQ become records in a real `minidns serve`,
answered over UDP (minidns/bus/openstack.py end to end): instance create and delete, floating IP
associate, disassociate and delete, port delete; poison between them recorded failed and never
blocking the queue; the operator's view (/readyz, /metrics, `minidns events status`); the queue
drained at the end."""

import uuid

import requests
from bus_checks import (
    answer,
    api_base,
    created,
    delete_queue,
    depth,
    publish_raw,
    serve_openstack,
    sql,
    until,
    wait_answer,
)
from event_zones import create_zones
from oslo_publisher import Service

FIP = "f38ff2b6-cd4d-433e-8a9c-9e00dfc05b1e"


def test_notifications_become_records_and_poison_never_blocks(serve, cli, rabbit, database_url):
    create_zones(database_url)
    pool = f"t{uuid.uuid4().hex[:8]}"
    s = serve_openstack(serve, rabbit, database_url, pool)
    nova, neutron = Service(rabbit.url, "nova", "compute.host1"), Service(rabbit.url, "neutron", "network.host1")
    try:
        nova.send_sample("nova_compute.instance.create.end.json")
        wait_answer(s.port, "web1.cloud.test.", "A", {"10.0.0.5"})
        assert answer(s.port, "web1.cloud.test.", "AAAA") == {"2001:db8:10::5"}
        assert answer(s.port, "5.0.0.10.in-addr.arpa.", "PTR") == {"web1.cloud.test."}
        neutron.send_sample("neutron_floatingip.update.end_associate.json")
        wait_answer(s.port, "web1.fip.cloud.test.", "A", {"203.0.113.10"})
        assert answer(s.port, "10.113.0.203.in-addr.arpa.", "PTR") == {"web1.fip.cloud.test."}
        neutron.send_sample("neutron_floatingip.update.end_disassociate.json")
        wait_answer(s.port, "web1.fip.cloud.test.", "A", None)
        neutron.send_sample("neutron_floatingip.update.end_associate.json")  # again, then the port goes
        wait_answer(s.port, "web1.fip.cloud.test.", "A", {"203.0.113.10"})
        neutron.send_sample("neutron_port.delete.end.json")
        wait_answer(s.port, "web1.fip.cloud.test.", "A", None)
        neutron.send_sample("neutron_floatingip.delete.end.json")
        nova.send_sample("nova_compute.instance.delete.end.json")
        wait_answer(s.port, "web1.cloud.test.", "A", None)
        assert answer(s.port, "5.0.0.10.in-addr.arpa.", "PTR") is None

        poison = [b"not json {", b'{"hello": "world"}', b"[1, 2, 3]", b'{"pad": "' + b"x" * (1 << 20) + b'"}']
        for i, bad in enumerate(poison):  # between good events
            publish_raw(rabbit.amqp_url, "nova", [bad])
            nova.send_sample("nova_compute.instance.create.end.json", hostname=f"p{i}", instance_id=str(uuid.uuid4()),
                             fixed_ips=[{"address": f"10.0.0.{50 + i}", "version": 4, "type": "fixed"}])  # fmt: skip
        for i in range(len(poison)):
            wait_answer(s.port, f"p{i}.cloud.test.", "A", {f"10.0.0.{50 + i}"})
        assert created(database_url, "p") == {"rows": 4, "ids": 4, "applied": 4, "attempts": 1}
        failed = until(lambda: sql(database_url, "SELECT reason FROM events WHERE status = 'failed' ORDER BY reason"),
                       lambda rows: len(rows) == 4, what="poison rows")  # fmt: skip
        reasons = [r["reason"] for r in failed]
        assert sum(r.startswith("the message is not JSON") for r in reasons) == 1
        assert sum(r == "the message is a JSON list, not an object" for r in reasons) == 1
        assert sum(r.startswith("neither an oslo.messaging notification") for r in reasons) == 2  # {"hello"} and the 1 MB one
        applied = sql(database_url, "SELECT count(*) AS n FROM events WHERE status = 'applied'")[0]["n"]
        assert applied == 7 + 4  # create, 2 associates, disassociate, port and FIP deletes, delete; 4 good between poison

        base = api_base(s)
        ready = requests.get(f"{base}/readyz", timeout=10).json()
        assert ready["status"] == "ready" and ready["bus"]["openstack"]["connected"] is True
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert 'minidns_bus_connected{source="openstack"} 1' in metrics
        assert 'minidns_bus_messages_total{source="openstack",outcome="failed"} 4' in metrics
        assert 'minidns_bus_messages_total{source="openstack",outcome="applied"} 11' in metrics
        out = until(lambda: cli("events", "status", "--database-url", database_url).stdout, lambda t: "applied 11" in t, what="events status")
        assert f"connected to 127.0.0.1:{rabbit.port}" in out and "failed 4" in out
    finally:
        nova.close()
        neutron.close()
    assert s.stop() == 0  # unacknowledged deliveries would now be back in the queue
    assert depth(rabbit.amqp_url, f"notifications.info.{pool}") == 0
    delete_queue(rabbit.amqp_url, f"notifications.info.{pool}")

