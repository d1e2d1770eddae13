"""How RRsets are kept in rows of table `rrsets`: the columns, a record's stored wire form (TYPE TTL
RDLENGTH RDATA, as zones/snapshot.py reads it), the SOA row a zone's fields make (RFC 1035
§3.3.13) and the upsert every write of an RRset row uses."""

from __future__ import annotations

import uuid
from struct import pack

import dns.rdata
import dns.rdataclass

from ..wire import SOA
from .records import email_to_rname

MANAGED = ("source", "resource_type", "resource_id", "tenant_id", "extra")
RRSET_COLUMNS = (
    "id", "zone_id", "name", "owner", "type", "ttl", "records", "wire", "description", "managed",
    "managed_source", "managed_resource_type", "managed_resource_id", "managed_tenant_id", "managed_extra",
)  # fmt: skip
BULK_COLUMNS = ("zone_id", "name", "owner", "type", "ttl", "records", "wire")
# Row attributes the API keeps beside an RRset's data (not DNS data: never in the change log).
ATTRIBUTES = ("ttl_default", "project_id", "description")


def upsert(first: int = 1) -> str:
    """The statement writing one RRset row (RRSET_COLUMNS), its parameters numbered from `first`
    (a statement that holds it among others: store/change.py)."""
    return f"""
INSERT INTO rrsets ({", ".join(RRSET_COLUMNS)}) VALUES ({", ".join(f"${i + first}" for i in range(len(RRSET_COLUMNS)))})
ON CONFLICT (zone_id, owner, type) DO UPDATE SET ttl = EXCLUDED.ttl, records = EXCLUDED.records,
  wire = EXCLUDED.wire, description = EXCLUDED.description, managed = EXCLUDED.managed,
  managed_source = EXCLUDED.managed_source, managed_resource_type = EXCLUDED.managed_resource_type,
  managed_resource_id = EXCLUDED.managed_resource_id, managed_tenant_id = EXCLUDED.managed_tenant_id,
  managed_extra = EXCLUDED.managed_extra, updated_at = now()
"""


UPSERT = upsert()


class RRset:
    """An RRset being edited: records as (dnspython rdata, wire) pairs, plus its row's metadata."""

    __slots__ = ("name", "ttl", "recs", "meta")

    def __init__(self, name: str, ttl: int, recs: list, meta: dict):
        self.name, self.ttl, self.recs, self.meta = name, ttl, recs, meta


def meta_default() -> dict:
    """The metadata of an RRset row no one described: not managed."""
    return {"description": None, "managed": False, **{"managed_" + m: None for m in MANAGED}}


def row_meta(row) -> dict:
    """The metadata columns of a stored RRset row."""
    return {k: row[k] for k in ("description", "managed") + tuple("managed_" + m for m in MANAGED)}


def pack_rr(rtype: int, ttl: int, rdata: bytes) -> bytes:
    """A record as a row's `wire` holds it: TYPE TTL RDLENGTH RDATA."""
    return pack("!HIH", rtype, ttl, len(rdata)) + rdata


def split_wire(wire: bytes) -> list[bytes]:
    """The RDATA of each record in an RRset's stored wire (TYPE TTL RDLENGTH RDATA each)."""
    out, off = [], 0
    while off < len(wire):
        rdlen = int.from_bytes(wire[off + 6 : off + 8], "big")
        out.append(bytes(wire[off + 8 : off + 8 + rdlen]))
        off += 8 + rdlen
    return out


def rrset_row(zone_id, key, rr: RRset) -> tuple:
    """The row (RRSET_COLUMNS) of RRset `rr` at `key` (owner wire, type)."""
    owner, rtype = key
    wire = b"".join(pack_rr(rtype, rr.ttl, w) for _, w in rr.recs)
    m = rr.meta
    return (
        uuid.uuid4(), zone_id, rr.name, owner, rtype, rr.ttl, [rd.to_text() for rd, _ in rr.recs], wire,
        m["description"], bool(m["managed"]), *(m["managed_" + k] for k in MANAGED),
    )  # fmt: skip


def soa_rdata(z: dict, serial: int) -> bytes:
    """The SOA RDATA the zone's fields make (RFC 1035 §3.3.13)."""
    rd = dns.rdata.from_text(
        dns.rdataclass.IN, SOA,
        f"{z['mname']} {email_to_rname(z['email'])} {serial} {z['refresh']} {z['retry']} {z['expire']} {z['minimum']}",
    )  # fmt: skip
    return rd.to_wire()


def soa_row(z: dict, apex: bytes, soa: bytes) -> tuple:
    """The zone's SOA row (RRSET_COLUMNS) holding SOA RDATA `soa`."""
    text = dns.rdata.from_wire(dns.rdataclass.IN, SOA, soa, 0, len(soa)).to_text()
    wire = pack_rr(SOA, z["ttl"], soa)
    return (uuid.uuid4(), z["id"], z["name"], apex, SOA, z["ttl"], [text], wire, None, False, None, None, None, None, None)
