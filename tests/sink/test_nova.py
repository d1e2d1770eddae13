"""Nova's notifications read as the instance they describe (minidns/sink/nova.py): real payloads,
from Designate's sink tests and the fixtures the API tests post, each to its resource state or the
reason it is refused."""

import copy
import json
import re
from pathlib import Path

import pytest

from minidns.sink import nova
from minidns.sink.outcome import BadEvent, Ignore

HERE = Path(__file__).parent
IID = "3e301a55-fbbe-478d-92d0-eefabf135c38"
PROJECT = "33a88272e06a49c1a0f653abc374b56b"


def load(name: str) -> dict:
    path = HERE / "payloads" / name if (HERE / "payloads" / name).exists() else HERE.parent / "admin" / "events" / name
    return json.loads(path.read_text())


def edited(name: str, change) -> dict:
    ev = copy.deepcopy(load(name))
    change(ev)
    return ev


CREATE = "designate_nova_compute.instance.create.end.json"
FIXTURE_CREATE = "nova_compute.instance.create.end.json"

NOTICES = [
    (load(CREATE), nova.InstanceNotice(False, IID, PROJECT)),
    (load("designate_nova_compute.instance.delete.start.json"), nova.InstanceNotice(True, IID, PROJECT)),
    (load(FIXTURE_CREATE), nova.InstanceNotice(False, IID, PROJECT)),
    (load("nova_compute.instance.delete.end.json"), nova.InstanceNotice(True, IID, PROJECT)),
    (load("designate_nova_compute.instance.shutdown.end.json"),
     Ignore("compute.instance.shutdown.end is not an event the sink acts on")),
    # The project comes from the payload, else the request context.
    (edited(CREATE, lambda ev: ev["payload"].pop("tenant_id")), nova.InstanceNotice(False, IID, PROJECT)),
    (edited(CREATE, lambda ev: (ev["payload"].pop("tenant_id"), ev.pop("_context_project_id"))),
     nova.InstanceNotice(False, IID, None)),
    (edited(CREATE, lambda ev: ev.pop("payload")), "the notification has no payload object"),
    (edited(CREATE, lambda ev: ev.update(payload=[])), "the notification has no payload object"),
    (edited(CREATE, lambda ev: ev["payload"].pop("instance_id")), "the payload has no instance_id"),
    (edited(CREATE, lambda ev: ev["payload"].update(instance_id="")), "the payload has no instance_id"),
]  # fmt: skip


@pytest.mark.parametrize("ev, expected", NOTICES)
def test_notice(ev, expected):
    if isinstance(expected, str):
        with pytest.raises(BadEvent, match=f"^{re.escape(expected)}$"):
            nova.notice(ev)
    else:
        assert nova.notice(ev) == expected


INSTANCES = [
    (load(CREATE), nova.Instance(IID, PROJECT, "testinstance", "TestInstance", "tenant-name", ("172.16.0.14",))),
    (load(FIXTURE_CREATE), nova.Instance(IID, PROJECT, "web1", "Web 1", "web-team", ("10.0.0.5", "2001:db8:10::5"))),
    # hostname first, else display_name, made a label
    (edited(FIXTURE_CREATE, lambda ev: ev["payload"].pop("hostname")),
     nova.Instance(IID, PROJECT, "web-1", "Web 1", "web-team", ("10.0.0.5", "2001:db8:10::5"))),
    # the project's name from the context's project, else its tenant name
    (edited(CREATE, lambda ev: (ev.pop("_context_project_name"), ev.update(_context_tenant_name="old-style"))),
     nova.Instance(IID, PROJECT, "testinstance", "TestInstance", "old-style", ("172.16.0.14",))),
    # each address once, in RFC 5952 form, in the order Nova gave them
    (edited(CREATE, lambda ev: ev["payload"]["fixed_ips"].extend([{"address": "2001:DB8:0:0::0001"}, {"address": "172.16.0.14"}])),
     nova.Instance(IID, PROJECT, "testinstance", "TestInstance", "tenant-name", ("172.16.0.14", "2001:db8::1"))),
    (edited(CREATE, lambda ev: ev["payload"].pop("fixed_ips")),
     nova.Instance(IID, PROJECT, "testinstance", "TestInstance", "tenant-name", ())),
    (edited(CREATE, lambda ev: ev["payload"].update(fixed_ips={"address": "172.16.0.14"})), "payload.fixed_ips must be a list"),
    (edited(CREATE, lambda ev: ev["payload"].update(fixed_ips=["172.16.0.14"])), "payload.fixed_ips entries must be objects"),
    (edited(CREATE, lambda ev: ev["payload"]["fixed_ips"][0].update(address="172.16.0.300")),
     "payload.fixed_ips: '172.16.0.300' is not an IP address"),
    (edited(CREATE, lambda ev: ev["payload"].update(display_name="--- ")),
     "the instance has neither a usable hostname nor display_name"),
]  # fmt: skip


@pytest.mark.parametrize("ev, expected", INSTANCES)
def test_instance(ev, expected):
    news = nova.notice(ev)
    if isinstance(expected, str):
        with pytest.raises(BadEvent, match=f"^{re.escape(expected)}$"):
            nova.instance(ev, news)
    else:
        assert nova.instance(ev, news) == expected


def test_what_the_sink_keeps_and_names_an_instance_by():
    inst = nova.instance(load(FIXTURE_CREATE), nova.notice(load(FIXTURE_CREATE)))
    assert inst.data("example.com.") == {"hostname": "web1", "display_name": "Web 1", "project": "web-team",
                                         "addresses": ["10.0.0.5", "2001:db8:10::5"], "zone": "example.com."}  # fmt: skip
    assert inst.template_fields("example.com.") == {
        "hostname": "web1", "display_name": "web-1", "id": IID, "instance_id": IID, "project": "web-team",
        "project_id": PROJECT, "tenant_id": PROJECT, "zone": "example.com.",
    }  # fmt: skip


def test_a_versioned_notification_is_not_a_nova_legacy_one():
    """Nova's versioned notifications (instance.create.end) carry a nova_object payload; the sink
    reads the legacy compute.instance.* ones (the envelope calls these "openstack", no handler)."""
    for name in ("nova_versioned_instance-create-end.json", "nova_versioned_instance-delete-end.json"):
        ev = load(name)
        assert nova.notice(ev) == Ignore(f"{ev['event_type']} is not an event the sink acts on")
