"""How RRsets are kept in rows of table `rrsets`: the columns, a record's stored wire form (TYPE TTL
RDLENGTH RDATA, as zones/snapshot.py reads it), the SOA row a zone's fields make (RFC 1035
§3.3.13) and the upsert every write of an RRset row uses."""

from __future__ import annotations

import functools
import uuid
from struct import pack

import dns.name
import dns.rdata
import dns.rdataclass
import orjson

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


# The RRset rows at (zone id, owner) pairs $1, $2 (lowercase wire), but those of type $3 (the SOA,
# kept in the zone's row). The pairs come as arrays even for one zone: joined to them, each pair is
# looked up in the (zone_id, owner, type) index — with the zone as a constant instead, the planner
# reads all the zone's rows while its statistics lag behind a zone that grew (a fresh import, a
# burst of writes): 0.6 ms instead of 0.07 for 32 owners of a 4,000-name zone, growing with it.
AT_OWNERS = (
    "SELECT r.* FROM rrsets r JOIN unnest($1::uuid[], $2::bytea[]) AS w (zone_id, owner)"
    " ON r.zone_id = w.zone_id AND r.owner = w.owner WHERE r.type <> $3"
)


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
_ON_CONFLICT = UPSERT[UPSERT.index("ON CONFLICT"):]
_ARRAY_TYPES = ("uuid", "uuid", "text", "bytea", "int", "int", "text", "bytea", "text", "bool", "text", "text", "text",
                "text", "text")  # fmt: skip
_FROM_JSON = {"records": "ARRAY(SELECT jsonb_array_elements_text(u.records::jsonb))", "managed_extra": "u.managed_extra::jsonb"}
# Many RRset rows written by one statement: the columns as arrays, unnested — each row's records (an
# array itself: PostgreSQL has no array of arrays of different lengths) and its managed_extra as
# JSON text (many_rows makes them).
UPSERT_MANY = (
    f"INSERT INTO rrsets ({', '.join(RRSET_COLUMNS)}) SELECT "
    + ", ".join(_FROM_JSON.get(c, f"u.{c}") for c in RRSET_COLUMNS)
    + " FROM unnest(" + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_ARRAY_TYPES))
    + f") AS u ({', '.join(RRSET_COLUMNS)})\n" + _ON_CONFLICT
)
DELETE_MANY = ("DELETE FROM rrsets r USING unnest($1::uuid[], $2::bytea[], $3::int[]) AS d (zone_id, owner, type)"
               " WHERE r.zone_id = d.zone_id AND r.owner = d.owner AND r.type = d.type")


def many_rows(rows: list[tuple]) -> list[list]:
    """Rows (RRSET_COLUMNS) as UPSERT_MANY's parameters."""
    cols = columns(rows, len(RRSET_COLUMNS))
    records, extra = RRSET_COLUMNS.index("records"), RRSET_COLUMNS.index("managed_extra")
    cols[records] = [orjson.dumps(r).decode() for r in cols[records]]
    cols[extra] = [None if x is None else orjson.dumps(x).decode() for x in cols[extra]]
    return cols


def columns(keys: list[tuple], n: int) -> list[list]:
    """Tuples of n parts as n arrays (unnest's parameters), empty ones for no tuples."""
    return [list(c) for c in zip(*keys)] or [[] for _ in range(n)]


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
    """The SOA RDATA the zone's fields make (RFC 1035 §3.3.13): MNAME and RNAME uncompressed."""
    return _soa_names(z["mname"], z["email"]) + pack("!IIIII", serial, z["refresh"], z["retry"], z["expire"], z["minimum"])


@functools.lru_cache(maxsize=4096)
def _soa_names(mname: str, email: str) -> bytes:
    return dns.name.from_text(mname).to_wire() + email_to_rname(email).to_wire()


def soa_row(z: dict, apex: bytes, soa: bytes) -> tuple:
    """The zone's SOA row (RRSET_COLUMNS) holding SOA RDATA `soa`."""
    text = dns.rdata.from_wire(dns.rdataclass.IN, SOA, soa, 0, len(soa)).to_text()
    wire = pack_rr(SOA, z["ttl"], soa)
    return (uuid.uuid4(), z["id"], z["name"], apex, SOA, z["ttl"], [text], wire, None, False, None, None, None, None, None)
