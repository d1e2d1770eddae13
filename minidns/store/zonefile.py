"""Zone files in and out of the store: `zone import` reads a master file (RFC 1035 §5) with
dnspython and creates the zone through the write path in one transaction; `zone export` writes
zone-file text that imports back to the same data."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdatatype

from ..wire import SOA
from ..zones.loader import ZoneFileError, file_origin, read_records
from .records import GENERATED, MAX_TTL, RRsetData, check_owner_types, check_ttl, rname_to_email
from .writer import Change, Store

PROGRESS_EVERY = 20000  # records between progress reports


@dataclass
class ZoneContent:
    """A parsed zone file: its SOA fields and every other RRset."""

    origin: str
    soa: dict
    rrsets: list[RRsetData]
    skipped: int  # DNSSEC records left out: minidns signs zones itself
    records: int


def read_zone_file(path: str, origin: str | None = None, progress=None) -> ZoneContent:
    """Parse a zone file into RRsets ready to store. `progress(done_octets, total_octets)` is
    called as it goes. Raises ZoneFileError naming file, line and reason."""
    try:
        origin = origin or file_origin(path)
        total = os.path.getsize(path)
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise ZoneFileError(f"{path}: {e.strerror or e}") from None
    rrsets: dict[tuple[bytes, int], RRsetData] = {}
    counts = {"records": 0, "skipped": 0}

    def add(name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        rtype = rdata.rdtype
        if rtype in GENERATED and rtype != SOA:
            counts["skipped"] += 1
            return
        if not 0 <= ttl <= MAX_TTL:
            check_ttl(ttl)
        owner = name.to_wire().lower()
        rr = rrsets.get((owner, rtype))
        if rr is None:
            rr = rrsets[(owner, rtype)] = RRsetData(owner, name.to_text().lower(), rtype, ttl)
        wire = rdata.to_wire()
        if wire in rr.rdata:
            return
        rr.ttl = min(rr.ttl, ttl)  # RFC 2181 §5.2: one TTL per RRset; the lowest, as loading does
        rr.rdata.append(wire)
        rr.records.append(rdata.to_text())
        counts["records"] += 1
        if progress and counts["records"] % PROGRESS_EVERY == 0:
            progress(f.buffer.tell(), total)

    with f:
        read_records(f, path, origin, add)
    if progress:
        progress(total, total)
    apex = dns.name.from_text(origin).to_wire().lower()
    soa = rrsets.pop((apex, SOA), None)
    if soa is None or len(soa.rdata) != 1:
        raise ZoneFileError(f"{path}: the zone {origin} needs exactly one SOA record at its apex")
    owners: dict[bytes, dict[int, int]] = {}
    for (owner, rtype), rr in rrsets.items():
        owners.setdefault(owner, {})[rtype] = len(rr.rdata)
    for owner, types in owners.items():
        try:
            check_owner_types(dns.name.from_wire(owner, 0)[0].to_text(), types, owner == apex)
        except ValueError as e:
            raise ZoneFileError(f"{path}: {e}") from None
    rd = dns.rdata.from_wire(1, SOA, soa.rdata[0], 0, len(soa.rdata[0]))
    fields = {
        "mname": rd.mname.to_text(), "email": rname_to_email(rd.rname), "ttl": soa.ttl, "serial": rd.serial,
        "refresh": rd.refresh, "retry": rd.retry, "expire": rd.expire, "minimum": rd.minimum,
    }  # fmt: skip
    return ZoneContent(dns.name.from_text(origin).to_text(), fields, list(rrsets.values()), counts["skipped"], counts["records"])


async def import_zone(store: Store, path: str, origin: str | None = None, *, source: str = "import", progress=None) -> Change:
    """Create the zone of a zone file through the write path: all of it, or nothing."""
    content = await asyncio.to_thread(read_zone_file, path, origin, progress)
    return await store.create_zone(content.origin, **content.soa, rrsets=content.rrsets, source=source)


async def export_zone(store: Store, zone: str | uuid.UUID, write) -> int:
    """Write the zone as zone-file text (absolute names, SOA first) through `write(str)`;
    returns the number of records written."""
    z = await store.zone(zone)
    count = 0
    async with store.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        write(f"$ORIGIN {z['name']}\n")
        cur = conn.cursor(
            "SELECT name, type, ttl, records FROM rrsets WHERE zone_id = $1 ORDER BY type <> $2, name, type", z["id"], SOA
        )
        lines = []
        async for name, rtype, ttl, records in cur:
            type_text = dns.rdatatype.to_text(rtype)
            for text in records:
                lines.append(f"{name} {ttl} IN {type_text} {text}\n")
            count += len(records)
            if len(lines) >= 10000:
                write("".join(lines))
                lines = []
        write("".join(lines))
    return count
