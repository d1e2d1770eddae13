"""CloudStack's event-bus events read as the VM they describe (minidns/sink/cloudstack.py): the
messages CloudStack's RabbitMQ and Kafka event buses publish (ActionEventUtils' map), and the
fixtures the API tests post (those messages with the VM's details added), each to its resource
state or the reason it is refused."""

import copy
import json
import re
from pathlib import Path

import pytest

from minidns.sink import cloudstack
from minidns.sink.outcome import BadEvent, Ignore

EVENTS = Path(__file__).parent.parent / "admin" / "events"
VM = "8a1a4f5c-5cf0-4b4f-9d59-5cfb1d1e0a11"
ACCOUNT = "e2c7ad16-7b1a-4a51-9f1b-3f3b8a9e5d70"


def bus_message(event: str, status: str, description: str) -> dict:
    """What ActionEventUtils.publishOnEventBus puts on the bus for a VM event."""
    return {"eventDateTime": "2024-03-05 10:00:05 +0000", "entityuuid": VM, "description": description, "event": event,
            "VirtualMachine": VM, "user": "f1d2c3b4-0000-4000-8000-000000000006", "account": ACCOUNT,
            "entity": "com.cloud.vm.VirtualMachine", "status": status}  # fmt: skip


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def edited(name: str, change) -> dict:
    ev = copy.deepcopy(load(name))
    change(ev)
    return ev


CREATE = "cloudstack_VM.CREATE.json"

NOTICES = [
    (load(CREATE), cloudstack.VMNotice(False, VM)),
    (load("cloudstack_VM.DESTROY.json"), cloudstack.VMNotice(True, VM)),
    (bus_message("VM.CREATE", "Completed", "Successfully completed deploying Vm. Vm Id: 14"), cloudstack.VMNotice(False, VM)),
    (bus_message("VM.START", "Completed", "Successfully completed starting Vm. Vm Id: 14"), cloudstack.VMNotice(False, VM)),
    (bus_message("VM.EXPUNGE", "Completed", "Successfully completed expunging Vm. Vm Id: 14"), cloudstack.VMNotice(True, VM)),
    (bus_message("VM.CREATE", "Scheduled", "deploying Vm"), Ignore("status Scheduled (only Completed events are acted on)")),
    (bus_message("VM.CREATE", "Started", "deploying Vm"), Ignore("status Started (only Completed events are acted on)")),
    (bus_message("VM.STOP", "Completed", "Successfully completed stopping Vm. Vm Id: 14"),
     Ignore("VM.STOP is not an event the sink acts on")),
    # the VM's id: vm.id, else entityuuid, else the VirtualMachine entry
    (edited(CREATE, lambda ev: ev.pop("vm")), cloudstack.VMNotice(False, VM)),
    (edited(CREATE, lambda ev: (ev.pop("vm"), ev.pop("entityuuid"))), cloudstack.VMNotice(False, VM)),
    (edited(CREATE, lambda ev: [ev.pop(k) for k in ("vm", "entityuuid", "VirtualMachine")]),
     "the event names no VM (vm.id or entityuuid)"),
]  # fmt: skip


@pytest.mark.parametrize("ev, expected", NOTICES)
def test_notice(ev, expected):
    if isinstance(expected, str):
        with pytest.raises(BadEvent, match=f"^{re.escape(expected)}$"):
            cloudstack.notice(ev)
    else:
        assert cloudstack.notice(ev) == expected


APP1 = cloudstack.VM(VM, ACCOUNT, "app1", "App 1", "Web Servers", "shop", "customers", ("10.1.1.21", "2001:db8:1::21"),
                     ("acct.test", "dom.test"))  # fmt: skip

VMS = [
    (load(CREATE), APP1),
    # the account: account_details.id, else vm.accountid, else the bus message's account
    (edited(CREATE, lambda ev: ev["account_details"].pop("id")), APP1),
    (edited(CREATE, lambda ev: (ev["account_details"].pop("id"), ev["vm"].pop("accountid"))), APP1),
    # the name: vm.name, else hostname, else displayname, made a label
    (edited(CREATE, lambda ev: ev["vm"].pop("name")),
     cloudstack.VM(VM, ACCOUNT, "app-1", "App 1", "Web Servers", "shop", "customers", ("10.1.1.21", "2001:db8:1::21"),
                   ("acct.test", "dom.test"))),
    # names from the details when the VM item has none; no group, no network domains
    (edited(CREATE, lambda ev: ([ev["vm"].pop(k) for k in ("account", "domain", "group")],
                                ev["account_details"].pop("networkdomain"), ev.pop("domain_details"))),
     cloudstack.VM(VM, ACCOUNT, "app1", "App 1", None, "shop", None, ("10.1.1.21", "2001:db8:1::21"), (None, None))),
    (edited(CREATE, lambda ev: ev["vm"]["nic"].append({"ipaddress": "10.1.1.21", "ip6address": None})), APP1),
    (edited(CREATE, lambda ev: ev["vm"].pop("nic")),
     cloudstack.VM(VM, ACCOUNT, "app1", "App 1", "Web Servers", "shop", "customers", (), ("acct.test", "dom.test"))),
    (bus_message("VM.CREATE", "Completed", "Successfully completed deploying Vm. Vm Id: 14"), "VM.CREATE carries no vm details"),
    (edited(CREATE, lambda ev: (ev["account_details"].pop("id"), ev["vm"].pop("accountid"), ev.pop("account"))),
     "the event names no account uuid"),
    (edited(CREATE, lambda ev: [ev["vm"].pop(k) for k in ("name", "displayname")]), "the VM has no usable name"),
    (edited(CREATE, lambda ev: ev["vm"].update(nic={"ipaddress": "10.1.1.21"})), "vm.nic must be a list"),
    (edited(CREATE, lambda ev: ev["vm"].update(nic=["10.1.1.21"])), "vm.nic entries must be objects"),
    (edited(CREATE, lambda ev: ev["vm"]["nic"][0].update(ip6address="2001:db8:1::g")),
     "vm.nic.ip6address: '2001:db8:1::g' is not an IP address"),
]  # fmt: skip


@pytest.mark.parametrize("ev, expected", VMS)
def test_vm(ev, expected):
    news = cloudstack.notice(ev)
    if isinstance(expected, str):
        with pytest.raises(BadEvent, match=f"^{re.escape(expected)}$"):
            cloudstack.vm(ev, news)
    else:
        assert cloudstack.vm(ev, news) == expected


def test_the_zones_tried_the_data_kept_and_the_template_fields():
    assert APP1.zone_candidates("common.test") == ["acct.test", "dom.test", "common.test"]
    assert APP1.zone_candidates(None) == ["acct.test", "dom.test"]
    ev = edited(CREATE, lambda ev: (ev["account_details"].pop("networkdomain"), ev.pop("domain_details")))
    bare = cloudstack.vm(ev, cloudstack.notice(ev))
    assert bare.zone_candidates(None) == [] and bare.zone_candidates("common.test") == ["common.test"]
    assert APP1.data("acct.test.") == {"hostname": "app1", "display_name": "App 1", "group": "Web Servers",
                                       "account_id": ACCOUNT, "account": "shop", "domain": "customers",
                                       "addresses": ["10.1.1.21", "2001:db8:1::21"], "zone": "acct.test."}  # fmt: skip
    assert APP1.template_fields("acct.test.") == {
        "hostname": "app1", "display_name": "app-1", "id": VM, "instance_id": VM, "project": "shop",
        "project_id": ACCOUNT, "tenant_id": ACCOUNT, "zone": "acct.test.", "group": "web-servers", "account": "shop",
        "domain": "customers",
    }  # fmt: skip
