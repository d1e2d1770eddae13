"""The OpenStack bindings (minidns/bus/openstack.py): each control exchange as oslo declares it (topic,
not durable), bound with every <topic>.<priority>, to one durable queue named after the pool."""

from minidns.bus.amqp import Binding
from minidns.bus.openstack import bindings, openstack_source, queue_name
from minidns.bus.status import SourceStatus


def test_exchanges_topics_priorities_and_the_pool_queue():
    assert bindings(["nova", "neutron"], ["notifications"], ["info"]) == [
        Binding("nova", "topic", False, ("notifications.info",)), Binding("neutron", "topic", False, ("notifications.info",))]
    assert bindings(["nova"], ["notifications", "versioned_notifications"], ["info", "error"])[0].routing_keys == (
        "notifications.info", "notifications.error", "versioned_notifications.info", "versioned_notifications.error")
    assert [b.durable for b in bindings(["nova", "neutron"], ["notifications"], ["info"], durable=True)] == [True, True]
    assert queue_name(["notifications"], ["info"], "minidns") == "notifications.info.minidns"
    assert queue_name(["notifications"], ["info", "error"], "dc1") == "notifications.info+error.dc1"
    source = openstack_source(SourceStatus("openstack", "amqp"), None, ["rabbit://u:p@mq1,u:p@mq2/"], ["nova"], ["notifications"], ["info"], "p1")
    assert (source.queue, [b.label() for b in source.brokers], source.durable_queue) == ("notifications.info.p1", ["mq1:5672", "mq2:5672"], True)
    assert source.queue_arguments == {}
