"""Nova's notifications (compute.instance.create.end, compute.instance.delete.start/end) read as
the instance they describe: which instance, deleted or not, its name, project and fixed IPs."""

from __future__ import annotations

from dataclasses import dataclass

from .naming import safe_label
from .outcome import BadEvent, Ignore
from .payload import add_address, payload_of, required

CREATE = ("compute.instance.create.end",)
DELETE = ("compute.instance.delete.start", "compute.instance.delete.end")


@dataclass(frozen=True, slots=True)
class InstanceNotice:
    """What happened to which instance."""

    deleted: bool
    instance_id: str
    tenant: str | None  # the project id


@dataclass(frozen=True, slots=True)
class Instance:
    """An instance as Nova says it exists."""

    instance_id: str
    tenant: str | None
    hostname: str  # a label: hostname, else display_name
    display_name: str | None  # as Nova sent it
    project: str | None  # the project's name
    addresses: tuple[str, ...]  # its fixed IPs

    def data(self, zone: str) -> dict:
        """What the sink remembers of it (event_resources.data)."""
        return {"hostname": self.hostname, "display_name": self.display_name, "project": self.project,
                "addresses": list(self.addresses), "zone": zone}  # fmt: skip

    def template_fields(self, zone: str) -> dict:
        tenant = self.tenant or ""
        return {"hostname": self.hostname, "display_name": safe_label(self.display_name) or self.hostname,
                "id": self.instance_id, "instance_id": self.instance_id, "project": safe_label(self.project or self.tenant),
                "project_id": tenant, "tenant_id": tenant, "zone": zone}  # fmt: skip


def notice(ev: dict) -> InstanceNotice | Ignore:
    """Which instance the notification is about, and whether it is gone; Ignore for the others."""
    et = ev["event_type"]
    if et not in CREATE + DELETE:
        return Ignore(f"{et} is not an event the sink acts on")
    p = payload_of(ev)
    iid = required(p, "instance_id", "the payload")
    tenant = p.get("tenant_id") or ev.get("_context_project_id") or ev.get("_context_tenant")
    return InstanceNotice(et in DELETE, iid, tenant)


def instance(ev: dict, news: InstanceNotice) -> Instance:
    """The instance a create notification describes."""
    p = ev["payload"]
    addresses = fixed_ips(p.get("fixed_ips") or [])
    host = safe_label(p.get("hostname") or p.get("display_name"))
    if not host:
        raise BadEvent("the instance has neither a usable hostname nor display_name")
    project = ev.get("_context_project_name") or ev.get("_context_tenant_name")
    return Instance(news.instance_id, news.tenant, host, p.get("display_name"), project, tuple(addresses))


def fixed_ips(fixed) -> list[str]:
    """The addresses of payload.fixed_ips, each once."""
    if not isinstance(fixed, list):
        raise BadEvent("payload.fixed_ips must be a list")
    addresses: list[str] = []
    for f in fixed:
        if not isinstance(f, dict):
            raise BadEvent("payload.fixed_ips entries must be objects")
        add_address(addresses, f.get("address"), "payload.fixed_ips")
    return addresses
