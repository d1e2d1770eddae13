"""Where a resource's records go: the zone (per project, or the events zone), the owner name (the
template's, else `<label>-<address>` when someone else holds it), and the PTR in the reverse zone
(made when events_create_ptr_zones)."""

from __future__ import annotations

import functools
import ipaddress

import dns.name
import dns.reversename

from ..store.records import zone_name
from .naming import fallback_name, safe_label
from .outcome import BadEvent
from .sync import Ident, Run, Want



async def openstack_zone(run: Run, tenant: str | None, project: str | None):
    """The zone of a project's records: <project id>.<events_zone_suffix> when that zone exists,
    else events_zone; None when neither is configured."""
    s, tried = run.settings, []
    for name in zone_names(s, tenant, project):
        z = await run.zone(name)
        if z is not None:
            return z
        tried.append(zone_name(name).to_text().lower())
    if tried:
        raise BadEvent(f"zone {' nor '.join(tried)} does not exist")
    if s.zone_suffix:
        raise BadEvent("the event names no project, and the zone is per project (events_zone_suffix)")
    return None


def zone_names(s, tenant: str | None, project: str | None):
    """The names tried in turn (a generator: events_zone is only rendered when reached)."""
    if s.zone_suffix and tenant:
        yield f"{safe_label(tenant)}.{s.zone_suffix}"
    if s.zone:
        yield events_zone(s.zone, tenant, project)


def events_zone(template: str, tenant: str | None, project: str | None) -> str:
    """events_zone with the project's id and name put in."""
    try:
        return template % {"project_id": tenant or "", "tenant_id": tenant or "", "project": safe_label(project or tenant)}
    except (KeyError, TypeError, ValueError) as e:
        raise BadEvent(f"events_zone {template!r}: {e}") from None


@functools.lru_cache(maxsize=8192)
def reverse_zone_names(address: str) -> tuple[str, ...]:
    """The names the address's reverse zone may have, the longest first (RFC 1035 §3.5, RFC 3596 §2.5)."""
    labels = ipaddress.ip_address(address).reverse_pointer.split(".")
    return tuple(".".join(labels[i:]) + "." for i in range(len(labels) - 1))


async def reverse_zone(run: Run, address: str, forward) -> dict | None:
    """The closest enclosing reverse zone of the address, made as a /24 or /64 in the forward
    zone's pool when none exists and events_create_ptr_zones is set."""
    names = reverse_zone_names(address)
    await run.log.prefetch_zones(run.conn, names)
    row = next((run.log.rows[n] for n in names if n in run.log.rows), None)
    if row is None and run.settings.create_ptr_zones:
        row = await create_reverse_zone(run, dns.reversename.from_address(address), ipaddress.ip_address(address).version, forward)
    return row


async def create_reverse_zone(run: Run, rev: dns.name.Name, version: int, forward) -> dict:
    keep = 16 if version == 6 else 1  # a /64 or a /24
    name = dns.name.Name(rev.labels[keep:]).to_text().lower()
    await run.store.create_zone(
        name, email=forward["email"], source=f"event:{run.source}", pool_id=forward["pool_id"], conn=run.conn,
        description="reverse zone made for event records",  # in the forward zone's pool, with its NS
    )  # fmt: skip
    run.changes.append({"op": "create_zone", "zone": name})
    run.log.made(name)
    return await run.zone(name)


async def free(run: Run, zone_id, owner: dns.name.Name, ident: Ident) -> bool:
    """Nothing at `owner` belongs to anyone but `ident`."""
    rows = await run.log.rrsets_at(run.conn, zone_id, [owner.to_wire().lower()])
    return all(ident.owns(r) for r in rows)


async def address_wants(run: Run, ident: Ident, zone, name: dns.name.Name, addresses: list[str]) -> list[Want]:
    """A/AAAA at `name` (else each address at its fallback name) and a PTR for each address."""
    origin = zone_name(zone["name"])
    if not name.is_subdomain(origin) or name == origin:
        raise BadEvent(f"{name} is not a name inside the zone {zone['name']}")
    wants = []
    for owner, addrs in (await owners(run, ident, zone, name, addresses)).items():
        wants += address_rrsets(zone, owner, addrs)
        if run.settings.ptr:
            wants += await ptr_wants(run, ident, zone, owner, addrs)
    return wants


async def owners(run: Run, ident: Ident, zone, name: dns.name.Name, addresses: list[str]) -> dict:
    """owner → the addresses placed there: all at `name` when it is free, else each at its own
    fallback name (or nowhere, noted, when that is taken too)."""
    if await free(run, zone["id"], name, ident):
        return {name: list(addresses)}
    placed: dict[dns.name.Name, list[str]] = {}
    for a in addresses:
        fb = fallback_name(name, a)
        if await free(run, zone["id"], fb, ident):
            placed.setdefault(fb, []).append(a)
            run.notes.append(f"{name} is taken; {a} is at {fb}")
        else:
            run.notes.append(f"{name} and {fb} are taken; no record for {a}")
    return placed


def address_rrsets(zone, owner: dns.name.Name, addresses) -> list[Want]:
    """The A and the AAAA RRset of these addresses at `owner`."""
    wants = []
    for rtype, version in (("A", 4), ("AAAA", 6)):
        recs = tuple(sorted({a for a in addresses if (6 if ":" in a else 4) == version}))  # checked addresses
        if recs:
            wants.append(Want(zone["id"], zone["name"], owner, rtype, recs))
    return wants


async def ptr_wants(run: Run, ident: Ident, zone, owner: dns.name.Name, addresses: list[str]) -> list[Want]:
    """A PTR to `owner` for each address whose reverse zone is here and whose reverse name is free."""
    wants = []
    for a in addresses:
        rz = await reverse_zone(run, a, zone)
        if rz is None:
            continue
        rname = dns.reversename.from_address(a)
        if await free(run, rz["id"], rname, ident):
            wants.append(Want(rz["id"], rz["name"], rname, "PTR", (owner.to_text(),)))
        else:
            run.notes.append(f"{rname} is taken; no PTR for {a}")
    return wants
