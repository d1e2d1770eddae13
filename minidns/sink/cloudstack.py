"""CloudStack's event-bus events (VM.CREATE, VM.START, VM.DESTROY, VM.EXPUNGE) read as the VM they
describe, with the details the bridge adds: "vm" (a listVirtualMachines item), "account_details"
and "domain_details" ({id, name, networkdomain})."""

from __future__ import annotations

from dataclasses import dataclass

from .naming import safe_label
from .outcome import BadEvent, Ignore
from .payload import add_address

UP = ("VM.CREATE", "VM.START")
DOWN = ("VM.DESTROY", "VM.EXPUNGE")
LOOKUP_NOTE = "cloudstack_lookup"  # why the bus consumer could not add a detail (bus/cloudstack_events.py)


@dataclass(frozen=True, slots=True)
class VMNotice:
    """What happened to which VM."""

    deleted: bool
    vm_id: str


@dataclass(frozen=True, slots=True)
class VM:
    """A VM as CloudStack says it exists."""

    vm_id: str
    account_id: str
    hostname: str  # a label: name, else hostname, else displayname
    display_name: str | None
    group: str | None
    account: str | None  # the account's name
    domain: str | None  # the domain's name
    addresses: tuple[str, ...]  # its NICs' IPv4 and IPv6 addresses
    network_domains: tuple  # the account's, then the domain's network domain (the zone of its records)

    def zone_candidates(self, common_zone: str | None) -> list:
        """The zones tried in turn: the account's network domain, the domain's, the common zone."""
        return [c for c in (*self.network_domains, common_zone) if c]

    def data(self, zone: str) -> dict:
        """What the sink remembers of it (event_resources.data)."""
        return {"hostname": self.hostname, "display_name": self.display_name, "group": self.group,
                "account_id": self.account_id, "account": self.account, "domain": self.domain,
                "addresses": list(self.addresses), "zone": zone}  # fmt: skip

    def template_fields(self, zone: str) -> dict:
        return {"hostname": self.hostname, "display_name": safe_label(self.display_name) or self.hostname,
                "id": self.vm_id, "instance_id": self.vm_id, "project": safe_label(self.account or self.account_id),
                "project_id": self.account_id, "tenant_id": self.account_id, "zone": zone,
                "group": safe_label(self.group or ""), "account": safe_label(self.account or ""),
                "domain": safe_label(self.domain or "")}  # fmt: skip


def notice(ev: dict) -> VMNotice | Ignore:
    """Which VM the event is about, and whether it is gone; Ignore for the others and for events
    not yet Completed."""
    et = ev["event"]
    if et not in UP + DOWN:
        return Ignore(f"{et} is not an event the sink acts on")
    status = ev.get("status")
    if status is not None and status != "Completed":
        return Ignore(f"status {status} (only Completed events are acted on)")
    vid = vm_details(ev).get("id") or ev.get("entityuuid") or ev.get("VirtualMachine")
    if not isinstance(vid, str) or not vid:
        raise BadEvent("the event names no VM (vm.id or entityuuid)")
    return VMNotice(et in DOWN, vid)


def vm_details(ev: dict) -> dict:
    return ev.get("vm") if isinstance(ev.get("vm"), dict) else {}


def details(ev: dict, key: str) -> dict:
    return ev.get(key) if isinstance(ev.get(key), dict) else {}


def vm(ev: dict, news: VMNotice) -> VM:
    """The VM a VM.CREATE or VM.START event describes."""
    v = vm_details(ev)
    if not v:
        note = ev.get(LOOKUP_NOTE)
        raise BadEvent(f"{ev['event']} carries no vm details" + (f": {note}" if isinstance(note, str) and note else ""))
    acct, dom = details(ev, "account_details"), details(ev, "domain_details")
    account_id = acct.get("id") or v.get("accountid") or (ev.get("account") if isinstance(ev.get("account"), str) else None)
    if not account_id:
        raise BadEvent("the event names no account uuid")
    host = safe_label(v.get("name") or v.get("hostname") or v.get("displayname"))
    if not host:
        raise BadEvent("the VM has no usable name")
    return VM(news.vm_id, account_id, host, v.get("displayname"), v.get("group") or None, v.get("account") or acct.get("name"),
              v.get("domain") or dom.get("name"), tuple(nic_addresses(v.get("nic") or [])),
              (acct.get("networkdomain"), dom.get("networkdomain")))  # fmt: skip


def nic_addresses(nics) -> list[str]:
    """The addresses of vm.nic (ipaddress, ip6address), each once."""
    if not isinstance(nics, list):
        raise BadEvent("vm.nic must be a list")
    addresses: list[str] = []
    for nic in nics:
        if not isinstance(nic, dict):
            raise BadEvent("vm.nic entries must be objects")
        for k in ("ipaddress", "ip6address"):
            if nic.get(k):
                add_address(addresses, nic[k], f"vm.nic.{k}")
    return addresses
