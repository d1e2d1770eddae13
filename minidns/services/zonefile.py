"""Zone files in and out of the store: `zone import` reads a master file (RFC 1035 §5) with
dnspython and creates the zone through the write path in one transaction; `zone export` writes
zone-file text that imports back to the same data."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import multiprocessing
import os
import re
import uuid
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype

from ..wire import SOA
from ..zones.loader import ZoneFileError, file_origin, paused_gc, read_records
from ..store.records import GENERATED, MAX_TTL, RRsetData, check_owner_types, check_ttl, rname_to_email
from ..store.writer import Change, Store

PROGRESS_EVERY = 20000  # records between progress reports
PARALLEL_MIN_OCTETS = 4 << 20  # smaller files are parsed in one pass
PIECE_OCTETS = 1 << 20  # pieces of about this size, so progress moves and the workers stay busy
MAX_PIECES = 64


@dataclass
class ZoneContent:
    """A parsed zone file: its SOA fields and every other RRset."""

    origin: str
    soa: dict
    rrsets: list[RRsetData]
    skipped: int  # DNSSEC records left out: minidns signs zones itself
    records: int


def read_zone_file(path: str, origin: str | None = None, progress=None, workers: int | None = None) -> ZoneContent:
    """Parse a zone file into RRsets ready to store. `progress(done_octets, total_octets)` is
    called as it goes (an exception it raises stops the parse). Raises ZoneFileError naming
    file, line and reason.

    A large file is parsed by several processes at once (`workers`, default one per CPU this
    process may use), each from a line where the parser's state is known (see `_split`); the
    result is the same as one pass over the whole file, errors included."""
    try:
        origin = origin or file_origin(path)
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ZoneFileError(f"{path}: {e.strerror or e}") from None
    try:
        origin_name = dns.name.from_text(origin)
    except dns.exception.DNSException as e:
        raise ZoneFileError(f"{path}: bad origin {origin!r}: {e}") from None
    total = len(data)
    workers = workers or len(os.sched_getaffinity(0))
    chunks = _split(data, origin_name, workers) if workers > 1 and total >= PARALLEL_MIN_OCTETS else None
    del data
    with paused_gc():
        return _read_zone_file(path, origin, origin_name, total, chunks, progress, workers)


def _read_zone_file(path, origin, origin_name, total, chunks, progress, workers) -> ZoneContent:
    if not chunks:
        rrsets, records, skipped = _parse(path, origin, None, progress)
    else:
        rrsets, records, skipped = {}, 0, 0
        # fork: the workers need nothing but this module, and `python -m minidns` must not re-run.
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(chunks)), mp_context=ctx) as pool:
            futures = [pool.submit(_parse_piece, path, origin, chunk) for chunk in chunks]
            try:
                for chunk, fut in zip(chunks, futures):
                    part, n, k = fut.result()  # in file order, so the first bad line is the one reported
                    records += n
                    skipped += k
                    _merge(rrsets, part)
                    if progress:
                        progress(chunk[1], total)
            finally:
                for fut in futures:
                    fut.cancel()
    if progress:
        progress(total, total)
    apex = origin_name.to_wire().lower()
    soa = rrsets.pop((apex, SOA), None)
    if soa is None or len(soa.rdata) != 1:
        raise ZoneFileError(f"{path}: the zone {origin} needs exactly one SOA record at its apex")
    owners: dict[bytes, tuple[str, dict[int, int]]] = {}
    for (owner, rtype), rr in rrsets.items():
        owners.setdefault(owner, (rr.name, {}))[1][rtype] = len(rr.rdata)
    for owner, (name, types) in owners.items():
        try:
            check_owner_types(name, types, owner == apex)
        except ValueError as e:
            raise ZoneFileError(f"{path}: {e}") from None
    rd = dns.rdata.from_wire(1, SOA, soa.rdata[0], 0, len(soa.rdata[0]))
    fields = {
        "mname": rd.mname.to_text(), "email": rname_to_email(rd.rname), "ttl": soa.ttl, "serial": rd.serial,
        "refresh": rd.refresh, "retry": rd.retry, "expire": rd.expire, "minimum": rd.minimum,
    }  # fmt: skip
    return ZoneContent(origin_name.to_text(), fields, list(rrsets.values()), skipped, records)


def _parse(path: str, origin: str, chunk: tuple | None, progress=None) -> tuple[dict, int, int]:
    """Parse the whole file (chunk None) or one chunk (start, end, header, line_offset) of it:
    (RRsets by (owner, type), records, DNSSEC records skipped)."""
    rrsets: dict[tuple[bytes, int], RRsetData] = {}
    counts = [0, 0]
    if chunk is None:
        f = open(path, encoding="utf-8")
        total = os.fstat(f.fileno()).st_size
        line_offset = 0
    else:
        start, end, header, line_offset = chunk
        with open(path, "rb") as raw:
            raw.seek(start)
            f = io.StringIO(header + raw.read(end - start).decode("utf-8"))

    def add(name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        rtype = rdata.rdtype
        if rtype in GENERATED and rtype != SOA:
            counts[1] += 1
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
        counts[0] += 1
        if progress and counts[0] % PROGRESS_EVERY == 0:
            progress(f.buffer.tell(), total)

    with f, paused_gc():
        read_records(f, path, origin, add, line_offset)
    return rrsets, counts[0], counts[1]


def _parse_piece(path: str, origin: str, chunk: tuple) -> tuple[list, int, int]:
    """`_parse` of one piece in a worker process, its RRsets as plain tuples (several times
    cheaper to send back than the objects)."""
    rrsets, records, skipped = _parse(path, origin, chunk)
    return [(k, rr.name, rr.ttl, rr.rdata, rr.records) for k, rr in rrsets.items()], records, skipped


def _merge(into: dict, part: list) -> None:
    """Add one piece's RRsets to those of the pieces before it, as one pass would have."""
    for key, name, ttl, rdata, records in part:
        have = into.get(key)
        if have is None:
            into[key] = RRsetData(key[0], name, key[1], ttl, records, rdata)
            continue
        have.ttl = min(have.ttl, ttl)
        for wire, text in zip(rdata, records):
            if wire not in have.rdata:
                have.rdata.append(wire)
                have.records.append(text)


_SPLITTABLE_START = frozenset(b" \t;$\r\n")
_DIRECTIVE = re.compile(rb"^\$(ORIGIN|TTL)[ \t]+([^\s;]+)", re.M | re.I)
_NOT_SPLITTABLE = re.compile(rb"^\$(INCLUDE|GENERATE)", re.M | re.I)


def _split(data: bytes, origin: dns.name.Name, workers: int) -> list[tuple] | None:
    """Where the file can be cut so that each piece parses on its own to exactly what one pass
    gives: (start, end, header, line_offset) per piece, or None to parse it whole.

    A cut goes at the start of a line that names its owner (not blank, not a comment, not a
    directive, not a continuation), after the last parenthesis in the file (so never inside a
    multi-line record) and after a $TTL directive (so a record without a TTL gets the default
    one pass would give it: RFC 1035 §5.1 leaves it to the last $TTL). Each piece but the first
    starts with the $ORIGIN and $TTL in force at its cut. Files with $INCLUDE or $GENERATE are
    parsed whole."""
    if _NOT_SPLITTABLE.search(data):
        return None
    floor = max(data.rfind(b"("), data.rfind(b")")) + 1
    directives = list(_DIRECTIVE.finditer(data))
    ttls = [m.start() for m in directives if m.group(1).upper() == b"TTL"]
    if not ttls:
        return None
    floor = max(floor, ttls[0] + 1)
    pieces = min(MAX_PIECES, max(workers, len(data) // PIECE_OCTETS))
    cuts = []
    for i in range(1, pieces):
        at = data.find(b"\n", max(floor, len(data) * i // pieces, cuts[-1] if cuts else 0))
        for _ in range(1000):  # to the next line that names its owner
            if at < 0 or at + 1 >= len(data):
                at = -1
                break
            if data[at + 1] not in _SPLITTABLE_START and data[max(0, at - 1)] != 0x5C and data[at - 2 : at] != b"\\\r":
                break
            at = data.find(b"\n", at + 1)
        if at > 0 and (not cuts or at + 1 > cuts[-1]):
            cuts.append(at + 1)
    if not cuts:
        return None
    chunks = []
    bounds = [0, *cuts, len(data)]
    current, ttl, d, lines = origin, None, 0, 0
    for i in range(len(bounds) - 1):
        start, end = bounds[i], bounds[i + 1]
        header = ""
        if i:
            while d < len(directives) and directives[d].start() < start:
                kind, value = directives[d].group(1).upper(), directives[d].group(2).decode("utf-8")
                if kind == b"TTL":
                    ttl = value
                else:
                    try:
                        current = dns.name.from_text(value, origin=current)
                    except dns.exception.DNSException:
                        return None  # let one pass report it
                d += 1
            header = f"$ORIGIN {current.to_text()}\n$TTL {ttl}\n"
        chunks.append((start, end, header, lines - header.count("\n")))
        lines += data.count(b"\n", start, end)
    return chunks


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
