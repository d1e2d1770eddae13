"""Neutron's notifications (floatingip.create/update/delete, port.delete.end) read as the floating
IP or port they describe: where a floating IP points, or which resource is gone."""

from __future__ import annotations

from dataclasses import dataclass

from .outcome import BadEvent, Ignore
from .payload import address, payload_of, required

FIP_UPDATE = ("floatingip.create.end", "floatingip.update.end")
FIP_DELETE = ("floatingip.delete.start", "floatingip.delete.end")
PORT_DELETE = ("port.delete.end",)


@dataclass(frozen=True, slots=True)
class PortDeleted:
    port_id: str
    tenant: str | None


@dataclass(frozen=True, slots=True)
class FloatingIPDeleted:
    floatingip_id: str
    tenant: str | None


@dataclass(frozen=True, slots=True)
class FloatingIP:
    """A floating IP as Neutron says it is: its address and the fixed IP (and port) it points at,
    or none when unassociated."""

    floatingip_id: str
    address: str
    fixed_ip: str | None
    port_id: str | None
    tenant: str | None
    project: str | None  # the project's name

    def data(self) -> dict:
        """What the sink remembers of it (event_resources.data)."""
        return {"address": self.address, "fixed_ip": self.fixed_ip, "port_id": self.port_id, "project": self.project}


def decode(ev: dict) -> PortDeleted | FloatingIPDeleted | FloatingIP | Ignore:
    et = ev["event_type"]
    if et not in FIP_UPDATE + FIP_DELETE + PORT_DELETE:
        return Ignore(f"{et} is not an event the sink acts on")
    p = payload_of(ev)
    if et in PORT_DELETE:
        return port_deleted(ev, p)
    if et in FIP_DELETE:
        return floatingip_deleted(ev, p)
    return floatingip(ev, p)


def port_deleted(ev: dict, p: dict) -> PortDeleted:
    pid = p.get("port_id") or (p.get("port") or {}).get("id")
    if not isinstance(pid, str) or not pid:
        raise BadEvent("the payload has no port_id")
    return PortDeleted(pid, ev.get("_context_project_id"))


def floatingip_deleted(ev: dict, p: dict) -> FloatingIPDeleted:
    fid = p.get("floatingip_id") or (p.get("floatingip") or {}).get("id")
    if not isinstance(fid, str) or not fid:
        raise BadEvent("the payload has no floatingip_id")
    return FloatingIPDeleted(fid, ev.get("_context_project_id"))


def floatingip(ev: dict, p: dict) -> FloatingIP:
    fip = p.get("floatingip")
    if not isinstance(fip, dict):
        raise BadEvent("the payload has no floatingip object")
    fid = required(fip, "id", "payload.floatingip")
    floating = address(fip.get("floating_ip_address"), "payload.floatingip.floating_ip_address")
    fixed = fip.get("fixed_ip_address")
    fixed = address(fixed, "payload.floatingip.fixed_ip_address") if fixed else None
    tenant = fip.get("tenant_id") or fip.get("project_id") or ev.get("_context_project_id")
    project = ev.get("_context_project_name") or ev.get("_context_tenant_name")
    return FloatingIP(fid, floating, fixed, fip.get("port_id") if fixed else None, tenant, project)
