"""The notification handlers: each cloud's event, decoded (nova, neutron, cloudstack), becomes the
resource's state in `event_resources` and its records, by desired state (sync.Run.sync). A delete
wants nothing, so it removes exactly what that resource made; a deleted resource stays as a
tombstone, so a create arriving after its delete, or any event older than the newest applied, is
ignored."""

from __future__ import annotations

import uuid

from ..services import floatingips as fips
from . import cloudstack, neutron, nova, resources
from .naming import group_label, make_name, render, safe_label
from .outcome import BadEvent, Ignore
from .placement import address_rrsets, address_wants, free, openstack_zone
from .sync import Ident, Run, Want

Result = tuple[str, "str | None"]  # (applied | ignored, reason)


# -- Nova ---------------------------------------------------------------------------------------------


async def handle_nova(run: Run, ev: dict) -> Result:
    news = nova.notice(ev)
    if isinstance(news, Ignore):
        return "ignored", news.reason
    row = await run.resource("nova", "instance", news.instance_id)
    if news.deleted:
        return await instance_deleted(run, news, row)
    skip = run.skip_reason(row, f"instance {news.instance_id}")
    if skip:
        return "ignored", skip
    return await instance_created(run, nova.instance(ev, news))


async def instance_deleted(run: Run, news: nova.InstanceNotice, row) -> Result:
    iid, tenant = news.instance_id, news.tenant
    if resources.deleted_already(row):
        return "ignored", f"instance {iid} is deleted already"
    await run.put("nova", "instance", iid, "deleted", tenant, dict(row["data"]) if row else {})
    await run.sync(Ident("nova", "instance", iid, tenant), [])
    await resync_floatingips(run, (row["data"] or {}).get("addresses", []) if row else [])
    return "applied", None if run.changes else "nothing to remove (tombstone kept for a late create)"


def instance_name(settings, inst: nova.Instance, zone: str):
    """The owner of the instance's records in the zone, by the nova template."""
    return render(settings.template("nova"), inst.template_fields(zone))


async def instance_created(run: Run, inst: nova.Instance) -> Result:
    zone = await openstack_zone(run, inst.tenant, inst.project)
    if zone is None:
        return "ignored", "no zone for instance records: set events_zone or events_zone_suffix"
    await run.put("nova", "instance", inst.instance_id, "live", inst.tenant, inst.data(zone["name"]))
    ident = Ident("nova", "instance", inst.instance_id, inst.tenant)
    await run.sync(ident, await address_wants(run, ident, zone, instance_name(run.settings, inst, zone["name"]), list(inst.addresses)))
    await resync_floatingips(run, list(inst.addresses))
    return "applied", None


# -- Neutron ------------------------------------------------------------------------------------------


async def handle_neutron(run: Run, ev: dict) -> Result:
    news = neutron.decode(ev)
    if isinstance(news, Ignore):
        return "ignored", news.reason
    if isinstance(news, neutron.PortDeleted):
        return await port_deleted(run, news)
    if isinstance(news, neutron.FloatingIPDeleted):
        return await floatingip_deleted(run, news)
    return await floatingip_updated(run, news)


async def port_deleted(run: Run, news: neutron.PortDeleted) -> Result:
    """The floating IPs on the port lose their fixed IP; anything else made for the port goes."""
    pid = news.port_id
    await run.put("neutron", "port", pid, "deleted", news.tenant, {})
    for fid in await run.resources.floatingips_on_port(pid):
        row = await run.resource("neutron", "floatingip", fid)
        await run.put("neutron", "floatingip", fid, "live", row["tenant_id"], {**row["data"], "port_id": None, "fixed_ip": None})
        await sync_floatingip(run, fid)
    await run.log.settle(run.conn)
    for r in await run.conn.fetch(
        "SELECT DISTINCT managed_source, managed_resource_type, managed_resource_id FROM rrsets"
        " WHERE managed AND managed_extra->>'port_id' = $1", pid,
    ):  # fmt: skip
        await run.sync(Ident(r["managed_source"], r["managed_resource_type"], r["managed_resource_id"]), [])
    return "applied", None if run.changes else "nothing to remove"


async def floatingip_deleted(run: Run, news: neutron.FloatingIPDeleted) -> Result:
    fid = news.floatingip_id
    row = await run.resource("neutron", "floatingip", fid)
    if resources.deleted_already(row):
        return "ignored", f"floating IP {fid} is deleted already"
    await run.put("neutron", "floatingip", fid, "deleted", news.tenant, dict(row["data"]) if row else {})
    await run.sync(Ident("neutron", "floatingip", fid), [])
    if run.settings.region and as_uuid(fid):
        await fips.release(run.conn, run.write, run.settings.region, as_uuid(fid))
    return "applied", None if run.changes else "nothing to remove (tombstone kept for a late update)"


async def floatingip_updated(run: Run, fip: neutron.FloatingIP) -> Result:
    fid = fip.floatingip_id
    skip = run.skip_reason(await run.resource("neutron", "floatingip", fid), f"floating IP {fid}")
    if skip:
        return "ignored", skip
    if fip.port_id:
        port = await run.resource("neutron", "port", fip.port_id)
        if resources.deleted_already(port):
            return "ignored", f"port {fip.port_id} was deleted (by {port['last_message_id']}) before this event arrived"
    await run.put("neutron", "floatingip", fid, "live", fip.tenant, fip.data())
    if run.settings.region:
        await hold_floatingip(run, fid, fip.address, fip.tenant)
    await sync_floatingip(run, fid, strict=True)
    return "applied", None


def as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def hold_floatingip(run: Run, fid: str, address: str, tenant: str | None) -> None:
    """The floating IP is its project's in /v2/reverse/floatingips, where the project may set the
    PTR for it, as Designate offers the floating IPs Neutron says a project holds."""
    if as_uuid(fid) is None or not tenant:
        run.notes.append(f"floating IP {fid} not offered for reverse DNS: {'its id is not a UUID' if tenant else 'no project'}")
        return
    await fips.hold(run.conn, run.write, run.settings.region, as_uuid(fid), address, tenant, take_over=True)


async def sync_floatingip(run: Run, fid: str, strict: bool = False) -> None:
    """Make floating IP `fid`'s records match what is known of it: an A record named after the
    instance behind its fixed IP (or after its own address), or nothing when it is unassociated."""
    row = await run.resource("neutron", "floatingip", fid)
    data = row["data"] if row else {}
    if row is None or row["state"] != "live" or not data.get("fixed_ip"):
        await run.sync(Ident("neutron", "floatingip", fid, row["tenant_id"] if row else None), [])
        return
    try:
        zone = await openstack_zone(run, row["tenant_id"], data.get("project"))
    except BadEvent as e:
        if strict:
            raise
        run.notes.append(f"floating IP {fid} not renamed: {e}")
        return
    if zone is None:
        run.notes.append("no zone for floating IP records: set events_zone or events_zone_suffix")
        return
    await name_floatingip(run, fid, row, zone)


async def name_floatingip(run: Run, fid: str, row, zone) -> None:
    """The floating IP's A record (and PTR), named after the instance behind it when it is known."""
    data, tenant = row["data"], row["tenant_id"]
    inst = await run.resources.instance_at(data["fixed_ip"], tenant)
    extra = {"port_id": data.get("port_id"), "fixed_ip": data["fixed_ip"], "instance_id": inst["resource_id"] if inst else None}
    ident = Ident("neutron", "floatingip", fid, tenant, extra)
    fields = {"id": fid, "zone": zone["name"], "project_id": tenant or "", "tenant_id": tenant or "",
              "project": safe_label(data.get("project") or tenant)}  # fmt: skip
    if inst is not None:
        d = inst["data"]
        fields.update(hostname=d["hostname"], display_name=safe_label(d.get("display_name")) or d["hostname"],
                      instance_id=inst["resource_id"])  # fmt: skip
    name = render(run.settings.template("neutron" if inst is not None else "neutron_unknown"), fields, data["address"])
    await run.sync(ident, await address_wants(run, ident, zone, name, [data["address"]]))


async def resync_floatingips(run: Run, addresses: list[str]) -> None:
    """Floating IPs pointing at these fixed IPs take the instance's new name (or lose it)."""
    if not addresses:
        return
    for fid in await run.resources.floatingips_at(addresses):
        await sync_floatingip(run, fid)


# -- CloudStack ---------------------------------------------------------------------------------------


async def handle_cloudstack(run: Run, ev: dict) -> Result:
    news = cloudstack.notice(ev)
    if isinstance(news, Ignore):
        return "ignored", news.reason
    row = await run.resource("cloudstack", "vm", news.vm_id)
    if news.deleted:
        return await vm_deleted(run, news.vm_id, row)
    skip = run.skip_reason(row, f"VM {news.vm_id}")
    if skip:
        return "ignored", skip
    return await vm_up(run, cloudstack.vm(ev, news), dict(row["data"]) if row else {})


async def vm_deleted(run: Run, vid: str, row) -> Result:
    if resources.deleted_already(row):
        return "ignored", f"VM {vid} is deleted already"
    data = dict(row["data"]) if row else {}
    await run.put("cloudstack", "vm", vid, "deleted", row["tenant_id"] if row else None, data)
    await run.sync(Ident("cloudstack", "vm", vid), [])
    if data.get("group"):
        await sync_group(run, data["account_id"], data["group"])
    return "applied", None if run.changes else "nothing to remove (tombstone kept for a late create)"


async def vm_zone(run: Run, vm: cloudstack.VM):
    """The first zone of the VM's candidates that exists; None when it has no candidate."""
    tried = vm.zone_candidates(run.settings.cloudstack_common_zone)
    for candidate in tried:
        zone = await run.zone(candidate)
        if zone is not None:
            return zone
    if tried:
        raise BadEvent(f"none of the zones {', '.join(tried)} exists")
    return None


async def vm_up(run: Run, vm: cloudstack.VM, previous: dict) -> Result:
    zone = await vm_zone(run, vm)
    if zone is None:
        return "ignored", "neither the account nor the domain has a network domain, and cloudstack_common_zone is not set"
    await run.put("cloudstack", "vm", vm.vm_id, "live", vm.account_id, vm.data(zone["name"]))
    ident = Ident("cloudstack", "vm", vm.vm_id, vm.account_id)
    name = render(run.settings.template("cloudstack"), vm.template_fields(zone["name"]))
    await run.sync(ident, await address_wants(run, ident, zone, name, list(vm.addresses)))
    for g in {vm.group, previous.get("group")} - {None}:
        await sync_group(run, vm.account_id if g == vm.group else previous.get("account_id", vm.account_id), g)
    return "applied", None


async def sync_group(run: Run, account_id: str, group: str) -> None:
    """The group's records hold every live VM of the group (of that account), per zone."""
    ident = Ident("cloudstack", "vm_group", f"{account_id}/{group}", account_id)
    per_zone: dict[str, list[str]] = {}
    for m in await run.resources.group_members(account_id, group):
        per_zone.setdefault(m["zone"], []).extend(m["addresses"])
    wants = []
    for zname, addrs in sorted(per_zone.items()):
        wants += await group_wants(run, ident, zname, group, addrs)
    await run.sync(ident, wants)


async def group_wants(run: Run, ident: Ident, zname: str, group: str, addrs: list[str]) -> list[Want]:
    """The group's A and AAAA RRsets in one zone, at `<group label>.<zone>` when that is free."""
    zone = await run.zone(zname)
    if zone is None:
        return []
    owner = make_name(f"{group_label(group, ident.tenant)}.{zone['name']}")
    if not await free(run, zone["id"], owner, ident):
        run.notes.append(f"{owner} is taken; no group records there")
        return []
    return address_rrsets(zone, owner, addrs)


HANDLERS = {"nova": handle_nova, "neutron": handle_neutron, "cloudstack": handle_cloudstack}
