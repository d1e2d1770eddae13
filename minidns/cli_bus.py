"""The flags of `serve` for the sink on the clouds' message buses (minidns/bus), each naming its TOML key."""

from __future__ import annotations

SECRET = "; it holds a password: better in the --config file, which others cannot read"

BUS_FLAGS = (
    (("--openstack-transport-url",), dict(action="append", metavar="URL",
     help="consume OpenStack notifications from this oslo.messaging transport URL, as in nova.conf: "
          "rabbit://USER:PASS@HOST:5672[,USER:PASS@HOST2:5672]/VHOST[?ssl=1&ssl_ca_file=FILE]; repeat for more" + SECRET
          + " [openstack_transport_url]")),
    (("--openstack-exchange",), dict(action="append", dest="openstack_exchanges", metavar="NAME",
     help="an oslo control exchange to bind; repeat for more (default nova and neutron) [openstack_exchanges]")),
    (("--openstack-topic",), dict(action="append", dest="openstack_topics", metavar="TOPIC",
     help="a notification topic, as [oslo_messaging_notifications] topics (default notifications) [openstack_topics]")),
    (("--openstack-priority",), dict(action="append", dest="openstack_priorities", metavar="PRIORITY",
     help="a notification priority to consume (default info) [openstack_priorities]")),
    (("--openstack-amqp-durable-queues",), dict(action="store_const", const=True,
     help="the services set [oslo_messaging_rabbit] amqp_durable_queues = true, so their exchanges are durable: "
          "minidns declares a missing one the same way (default false, as oslo) [openstack_amqp_durable_queues]")),
    (("--bus-pool",), dict(metavar="NAME",
     help="names the durable queues (notifications.info.NAME, cloudstack.NAME): processes of one pool share "
          "the stream (default minidns) [bus_pool]")),
    (("--bus-prefetch",), dict(type=int, metavar="N",
     help="unacknowledged messages per source, the bound of a batch (default 100) [bus_prefetch]")),
    (("--bus-quorum-queues",), dict(action="store_const", const=True,
     help="declare minidns's queues as quorum queues, replicated over the RabbitMQ cluster (a queue that exists "
          "already keeps its type) [bus_quorum_queues]")),
    (("--bus-dead-letter-exchange",), dict(metavar="NAME",
     help="failed messages (recorded as failed either way) are dead-lettered to this exchange, kept in the "
          "queue <queue>.dead (default: acknowledged and dropped) [bus_dead_letter_exchange]")),
    (("--bus-required",), dict(action="store_const", const=True,
     help="/readyz answers 503 while a configured bus source is disconnected (default: 200, with the bus "
          "state in the body, so a bus outage does not take DNS out of service) [bus_required]")),
    (("--cloudstack-transport-url",), dict(action="append", metavar="URL",
     help="consume CloudStack's RabbitMQ event bus at this URL (rabbit://USER:PASS@HOST:5672/VHOST); repeat "
          "for more" + SECRET + " [cloudstack_transport_url]")),
    (("--cloudstack-exchange",), dict(metavar="NAME",
     help="the exchange of CloudStack's event bus (default cloudstack-events) [cloudstack_exchange]")),
    (("--cloudstack-api-url",), dict(metavar="URL",
     help="CloudStack's API, e.g. http://mgmt:8080/client/api: VM events are completed from it [cloudstack_api_url]")),
    (("--cloudstack-api-key",), dict(metavar="KEY", help="the API key of a CloudStack account [cloudstack_api_key]")),
    (("--cloudstack-secret-key",), dict(metavar="KEY",
     help="its secret key" + SECRET + " [cloudstack_secret_key]")),
    (("--cloudstack-kafka-bootstrap",), dict(action="append", metavar="HOST:PORT",
     help="consume CloudStack's Kafka event bus from these brokers; repeat for more [cloudstack_kafka_bootstrap]")),
    (("--cloudstack-kafka-topic",), dict(metavar="TOPIC", help="its topic (default cloudstack) [cloudstack_kafka_topic]")),
    (("--cloudstack-kafka-group",), dict(metavar="GROUP", help="the consumer group (default minidns) [cloudstack_kafka_group]")),
)  # fmt: skip
