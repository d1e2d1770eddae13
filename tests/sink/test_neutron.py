"""Neutron's notifications read as the floating IP or port they describe (minidns/sink/neutron.py):
real payloads, from Designate's sink tests and the fixtures the API tests post, each to its
resource state or the reason it is refused."""

import copy
import json
import re
from pathlib import Path

import pytest

from minidns.sink import neutron
from minidns.sink.outcome import BadEvent, Ignore

HERE = Path(__file__).parent
FIP = "f38ff2b6-cd4d-433e-8a9c-9e00dfc05b1e"
PORT = "289ed46b-274c-444d-9fd4-bddf8acc7d7c"
DESIGNATE_PROJECT = "c97027dd880d4c129ae7a4ba7edade05"
PROJECT = "33a88272e06a49c1a0f653abc374b56b"


def load(name: str) -> dict:
    path = HERE / "payloads" / name if (HERE / "payloads" / name).exists() else HERE.parent / "admin" / "events" / name
    return json.loads(path.read_text())


def edited(name: str, change) -> dict:
    ev = copy.deepcopy(load(name))
    change(ev)
    return ev


ASSOCIATE = "designate_neutron_floatingip.update.end_associate.json"

DECODED = [
    (load(ASSOCIATE),
     neutron.FloatingIP(FIP, "192.168.5.201", "172.16.59.10", PORT, DESIGNATE_PROJECT, None)),
    (load("designate_neutron_floatingip.update.end_disassociate.json"),
     neutron.FloatingIP(FIP, "192.0.2.201", None, None, DESIGNATE_PROJECT, None)),
    (load("designate_neutron_floatingip.delete.start.json"), neutron.FloatingIPDeleted(FIP, DESIGNATE_PROJECT)),
    (load("neutron_floatingip.update.end_associate.json"),
     neutron.FloatingIP(FIP, "203.0.113.10", "10.0.0.5", PORT, PROJECT, "web-team")),
    (load("neutron_floatingip.update.end_disassociate.json"),
     neutron.FloatingIP(FIP, "203.0.113.10", None, None, PROJECT, "web-team")),
    (load("neutron_floatingip.delete.end.json"), neutron.FloatingIPDeleted(FIP, PROJECT)),
    (load("neutron_port.delete.end.json"), neutron.PortDeleted(PORT, PROJECT)),
    # floatingip.create.end reads as an update; a port's id may come in a port object
    (edited(ASSOCIATE, lambda ev: ev.update(event_type="floatingip.create.end")),
     neutron.FloatingIP(FIP, "192.168.5.201", "172.16.59.10", PORT, DESIGNATE_PROJECT, None)),
    (edited("neutron_port.delete.end.json", lambda ev: ev.update(payload={"port": {"id": PORT}})),
     neutron.PortDeleted(PORT, PROJECT)),
    (edited("designate_neutron_floatingip.delete.start.json", lambda ev: ev.update(payload={"floatingip": {"id": FIP}})),
     neutron.FloatingIPDeleted(FIP, DESIGNATE_PROJECT)),
    # the project: the floating IP's tenant, else its project, else the request context's
    (edited(ASSOCIATE, lambda ev: ev["payload"]["floatingip"].pop("tenant_id")),
     neutron.FloatingIP(FIP, "192.168.5.201", "172.16.59.10", PORT, None, None)),
    (edited("neutron_floatingip.update.end_associate.json", lambda ev: [ev["payload"]["floatingip"].pop(k) for k in ("tenant_id", "project_id")]),
     neutron.FloatingIP(FIP, "203.0.113.10", "10.0.0.5", PORT, PROJECT, "web-team")),
    # no fixed IP: no port either, whatever the payload says
    (edited(ASSOCIATE, lambda ev: ev["payload"]["floatingip"].update(fixed_ip_address="")),
     neutron.FloatingIP(FIP, "192.168.5.201", None, None, DESIGNATE_PROJECT, None)),
    (edited(ASSOCIATE, lambda ev: ev["payload"]["floatingip"].update(floating_ip_address="2001:DB8::0A")),
     neutron.FloatingIP(FIP, "2001:db8::a", "172.16.59.10", PORT, DESIGNATE_PROJECT, None)),
    (edited(ASSOCIATE, lambda ev: ev.update(event_type="router.update.end")), Ignore("router.update.end is not an event the sink acts on")),
    (edited(ASSOCIATE, lambda ev: ev.update(event_type="floatingip.update.start")),
     Ignore("floatingip.update.start is not an event the sink acts on")),
    (edited(ASSOCIATE, lambda ev: ev.pop("payload")), "the notification has no payload object"),
    (edited(ASSOCIATE, lambda ev: ev.update(payload={"floatingip": None})), "the payload has no floatingip object"),
    (edited(ASSOCIATE, lambda ev: ev["payload"]["floatingip"].pop("id")), "payload.floatingip has no id"),
    (edited(ASSOCIATE, lambda ev: ev["payload"]["floatingip"].pop("floating_ip_address")),
     "payload.floatingip.floating_ip_address: None is not an IP address"),
    (edited(ASSOCIATE, lambda ev: ev["payload"]["floatingip"].update(fixed_ip_address="10.0.0")),
     "payload.floatingip.fixed_ip_address: '10.0.0' is not an IP address"),
    (edited("neutron_port.delete.end.json", lambda ev: ev.update(payload={})), "the payload has no port_id"),
    (edited("neutron_floatingip.delete.end.json", lambda ev: ev.update(payload={"floatingip_id": 7})), "the payload has no floatingip_id"),
]  # fmt: skip


@pytest.mark.parametrize("ev, expected", DECODED)
def test_decode(ev, expected):
    if isinstance(expected, str):
        with pytest.raises(BadEvent, match=f"^{re.escape(expected)}$"):
            neutron.decode(ev)
    else:
        assert neutron.decode(ev) == expected


def test_what_the_sink_keeps_of_a_floating_ip():
    fip = neutron.decode(load("neutron_floatingip.update.end_associate.json"))
    assert fip.data() == {"address": "203.0.113.10", "fixed_ip": "10.0.0.5", "port_id": PORT, "project": "web-team"}
