"""Floating IPs and their PTR records (Designate's /v2/reverse/floatingips). The floating IPs a
project holds are registered here (by an admin through the API; region, id, address, project),
and a project sets or unsets the PTR for an address it holds. The PTR is written into the most
specific in-addr.arpa / ip6.arpa zone served for the address, through the one write path
(Store.change), in the same transaction as the floating IP row: both or neither."""

from __future__ import annotations

import ipaddress
import re
import uuid

import dns.name
import dns.reversename

from ..store.records import Invalid, check_ttl
from ..store.writer import Edit, NotFound, Store

REGION_RE = re.compile(r"^[A-Za-z0-9.\-_]{1,100}$")
KEY_RE = re.compile(
    r"^(?P<region>[A-Za-z0-9.\-_]{1,100}):(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
RESOURCE_TYPE = "ptr:floatingip"  # Designate's managed_resource_type for these PTRs
_COLUMNS = "id, region, host(address) AS address, project_id, ptrdname, description, ttl, created_at, updated_at"


class NoReverseZone(NotFound):
    """No in-addr.arpa / ip6.arpa zone is served for the address (Designate: 400)."""

    status, type = 400, "bad_request"


class FloatingIpNotFound(NotFound):
    status, type = 404, "floatingip_not_found"


class BadFloatingIpKey(Invalid):
    """Not "region:uuid" (Designate: 400 bad_request)."""

    status, type = 400, "bad_request"


def parse_key(key: str) -> tuple[str, uuid.UUID]:
    """"region:uuid" → (region, id); Invalid when not of that form (Designate: 400)."""
    m = KEY_RE.match(key)
    if m is None:
        raise BadFloatingIpKey(f"Floating IP {key} is not in the format of <region>:<uuid>")
    return m.group("region"), uuid.UUID(m.group("id"))


def ptr_name(address: str) -> str:
    return dns.reversename.from_address(address).to_text().lower()


async def list_fips(pool, project_id: str | None) -> list[dict]:
    """The floating IPs `project_id` holds (None: every project's), by region and address."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM floatingips WHERE ($1::text IS NULL OR project_id = $1) ORDER BY region, address",
        project_id,
    )
    return [dict(r) for r in rows]


async def get_fip(pool, region: str, fip_id: uuid.UUID, project_id: str | None) -> dict:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM floatingips WHERE region = $1 AND id = $2 AND ($3::text IS NULL OR project_id = $3)",
        region, fip_id, project_id,
    )  # fmt: skip
    if row is None:
        raise FloatingIpNotFound(f"Floating IP {region}:{fip_id} could not be found")
    return dict(row)


async def _reverse_zone(conn, name: str):
    """The id and name of the most specific zone holding the reverse name `name`, else NoReverseZone."""
    n = dns.name.from_text(name)
    candidates = []
    while len(n) > 1:
        candidates.append(n.to_text().lower())
        n = n.parent()
    row = await conn.fetchrow(
        "SELECT id, name FROM zones WHERE name = ANY($1::text[]) AND type <> 'CATALOG' ORDER BY length(name) DESC LIMIT 1",
        candidates,
    )
    if row is None:
        raise NoReverseZone(f"no reverse zone is served for {name}: create the in-addr.arpa / ip6.arpa zone first")
    return row


def _check_holder(region: str, address: str, project_id: str):
    if not isinstance(region, str) or not REGION_RE.match(region):
        raise Invalid("region must be 1 to 100 letters, digits, '.', '-', '_'")
    try:
        addr = ipaddress.ip_address(address)
    except (ValueError, TypeError):
        raise Invalid(f"{address!r} is not an IP address") from None
    if not isinstance(project_id, str) or not 0 < len(project_id) <= 255:
        raise Invalid("project_id must be 1 to 255 characters")
    return addr


def api_writer(store: Store, conn):
    """How the API writes a PTR change: a change of its own (new serial) in the caller's transaction."""
    return lambda zone_id, edits: store.change(zone_id, edits, source="api:floatingip", conn=conn)


async def hold(conn, write, region: str, fip_id: uuid.UUID, address: str, project_id: str,
               take_over: bool = False) -> dict:  # fmt: skip
    """Inside the caller's transaction: `project_id` holds floating IP `region:fip_id` at
    `address`. A new holder or address drops the PTR set for the old one. Another floating IP
    registered at the address is an error, unless `take_over` (Neutron said so: that one is stale
    and goes, PTR and all). `write(zone_id, edits)` writes PTR changes."""
    addr = _check_holder(region, address, project_id)
    old = await conn.fetchrow(f"SELECT {_COLUMNS} FROM floatingips WHERE region = $1 AND id = $2 FOR UPDATE",
                              region, fip_id)  # fmt: skip
    taken = await conn.fetchval("SELECT id FROM floatingips WHERE region = $1 AND address = $2 AND id <> $3",
                                region, addr, fip_id)  # fmt: skip
    if taken is not None:
        if not take_over:
            raise Invalid(f"{addr} is floating IP {region}:{taken} already")
        await release(conn, write, region, taken)
    if old is not None and old["ptrdname"] and (old["address"] != str(addr) or old["project_id"] != project_id):
        await _write_ptr(conn, write, old["address"], None, None, None, f"{region}:{fip_id}", old["project_id"])
    row = await conn.fetchrow(
        "INSERT INTO floatingips (id, region, address, project_id) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (region, id) DO UPDATE SET address = EXCLUDED.address, project_id = EXCLUDED.project_id,"
        " ptrdname = CASE WHEN floatingips.address = EXCLUDED.address AND floatingips.project_id = EXCLUDED.project_id"
        " THEN floatingips.ptrdname END, updated_at = now()"
        f" RETURNING {_COLUMNS}",
        fip_id, region, addr, project_id,
    )  # fmt: skip
    return dict(row)


async def release(conn, write, region: str, fip_id: uuid.UUID) -> bool:
    """Inside the caller's transaction: the floating IP is gone, and its PTR with it. False when it
    was not registered."""
    old = await conn.fetchrow(f"SELECT {_COLUMNS} FROM floatingips WHERE region = $1 AND id = $2 FOR UPDATE",
                              region, fip_id)  # fmt: skip
    if old is None:
        return False
    if old["ptrdname"]:
        await _write_ptr(conn, write, old["address"], None, None, None, f"{region}:{fip_id}", old["project_id"])
    await conn.execute("DELETE FROM floatingips WHERE region = $1 AND id = $2", region, fip_id)
    return True


async def register(store: Store, region: str, fip_id: uuid.UUID, address: str, project_id: str) -> dict:
    """Record that `project_id` holds floating IP `region:fip_id` with `address` (an admin's
    act; a new holder or address drops the PTR set for the old one)."""
    _check_holder(region, address, project_id)
    async with store.pool.acquire() as conn, conn.transaction():
        return await hold(conn, api_writer(store, conn), region, fip_id, address, project_id)


async def unregister(store: Store, region: str, fip_id: uuid.UUID) -> None:
    """The floating IP is gone: its PTR goes too."""
    async with store.pool.acquire() as conn, conn.transaction():
        if not await release(conn, api_writer(store, conn), region, fip_id):
            raise FloatingIpNotFound(f"Floating IP {region}:{fip_id} could not be found")


async def set_ptr(store: Store, region: str, fip_id: uuid.UUID, project_id: str | None, ptrdname: str | None,
                  description: str | None = None, ttl: int | None = None) -> dict:  # fmt: skip
    """Set (ptrdname absolute) or unset (None) the PTR of a floating IP `project_id` holds (None: any
    project's). Returns the floating IP row after. NotFound when the project does not hold it,
    NoReverseZone when no reverse zone is served for the address, Invalid for bad data."""
    if ptrdname is not None:
        if not isinstance(ptrdname, str) or not ptrdname.endswith(".") or len(ptrdname) > 255:
            raise Invalid(f"ptrdname {ptrdname!r} must be a fully qualified name, ending with a dot")
        try:
            ptrdname = dns.name.from_text(ptrdname).to_text()
        except Exception as e:  # noqa: BLE001 - dnspython's name errors
            raise Invalid(f"ptrdname {ptrdname!r}: {e}") from None
        if ttl is not None:
            if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1:
                raise Invalid("ttl must be a whole number from 1")
            check_ttl(ttl)
    else:
        description = ttl = None
    async with store.pool.acquire() as conn, conn.transaction():
        fip = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM floatingips WHERE region = $1 AND id = $2 AND ($3::text IS NULL OR project_id = $3)"
            " FOR UPDATE",
            region, fip_id, project_id,
        )  # fmt: skip
        if fip is None:
            raise FloatingIpNotFound(f"Floating IP {region}:{fip_id} could not be found")
        await _write_ptr(conn, api_writer(store, conn), fip["address"], ptrdname, description, ttl, f"{region}:{fip_id}",
                         fip["project_id"])  # fmt: skip
        row = await conn.fetchrow(
            "UPDATE floatingips SET ptrdname = $3, description = $4, ttl = $5, updated_at = now()"
            f" WHERE region = $1 AND id = $2 RETURNING {_COLUMNS}",
            region, fip_id, ptrdname, description, ttl,
        )  # fmt: skip
    return dict(row)


async def _write_ptr(conn, write, address: str, ptrdname, description, ttl, key: str, project_id: str) -> None:
    name = ptr_name(address)
    try:
        zone = await _reverse_zone(conn, name)
    except NoReverseZone:
        if ptrdname is None:  # nothing to remove: the zone is gone
            return
        raise
    if ptrdname is None:
        edit = Edit("replace", name, "PTR")
    else:
        managed = {"source": "api", "resource_type": RESOURCE_TYPE, "resource_id": key, "tenant_id": project_id}
        edit = Edit("replace", name, "PTR", ttl, (ptrdname,), description=description, managed=managed)
    await write(zone["id"], [edit])
