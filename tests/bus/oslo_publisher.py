"""OpenStack services' notifications as they publish them: oslo.messaging's own Notifier (driver
messagingv2, topic notifications) on the service's control exchange (nova, neutron), with its
publisher id and a request context, to a RabbitMQ transport URL."""

from __future__ import annotations

import json
from pathlib import Path

import oslo_messaging
from oslo_config import cfg
from oslo_context import context

EVENTS = Path(__file__).parent.parent / "admin" / "events"


class ServiceContext(context.RequestContext):
    """A request context as nova's and neutron's (subclasses of oslo.context's) serialise it: with
    the project's and user's names (oslo's Notifier drops a plain dict context)."""

    def __init__(self, project_name=None, user_name=None, **kwargs):
        super().__init__(**kwargs)
        self.project_name, self.user_name = project_name, user_name

    def to_dict(self) -> dict:
        return {**super().to_dict(), "project_name": self.project_name, "user_name": self.user_name}


def sample(name: str) -> dict:
    """A recorded notification (tests/admin/events): its event type, payload and context."""
    return json.loads((EVENTS / name).read_text())


class Service:
    """One OpenStack service's notifier: `Service(url, "nova", "compute.host1")`."""

    def __init__(self, url: str, exchange: str, publisher_id: str):
        conf = cfg.ConfigOpts()
        conf([], project=exchange)
        oslo_messaging.set_transport_defaults(exchange)  # what nova and neutron call at start
        self.transport = oslo_messaging.get_notification_transport(conf, url=url)
        self.notifier = oslo_messaging.Notifier(self.transport, publisher_id=publisher_id, driver="messagingv2",
                                                topics=["notifications"])  # fmt: skip

    def send(self, event_type: str, payload: dict, ctxt: ServiceContext) -> None:
        self.notifier.info(ctxt, event_type, payload)

    def send_sample(self, name: str, **payload_changes) -> None:
        """A recorded notification sent again: its payload (changed as asked), in its context."""
        ev = sample(name)
        ctxt = ServiceContext(user_id=ev.get("_context_user_id"), project_id=ev.get("_context_project_id"),
                              project_name=ev.get("_context_project_name"), user_name=ev.get("_context_user_name"),
                              roles=ev.get("_context_roles") or [], auth_token="secret-token")  # fmt: skip
        self.send(ev["event_type"], {**ev["payload"], **payload_changes}, ctxt)

    def close(self) -> None:
        self.transport.cleanup()
