#!/usr/bin/env python3
"""`minidns zone import` of a large zone file into PostgreSQL, end to end.

  python3 bench/import.py                   # 1,000,000 records
  python3 bench/import.py --records 100000  # quick

Writes bench/out/import-N.zone if it is missing: origin imp.test., SOA, two NS with glue, then N
records, one per distinct name r0 … r{N-1}, in a fixed mix by i mod 20: 40% A, 20% AAAA, 15% TXT,
10% MX (to names outside the zone), 15% CNAME (to an A name of the zone). Starts a private
embedded PostgreSQL in a fresh directory (pinned to --pg-cpu, default 1), applies the schema, and
runs

  /usr/bin/time -v taskset -c 0,1 python -m minidns zone import FILE --database-url URL --progress

(the import parses a large file with one process per CPU it may use, so it gets both CPUs; PostgreSQL
is idle while it parses. --cpu 0 measures a single parsing process.)

from this checkout, timing it from spawn to exit (the wall time; interpreter start and imports
included) and reading its peak RSS from /usr/bin/time (or, without it, getrusage of the children).
The --progress bar's 100% marks the end of parsing, which splits the wall time into reading the
file and writing to the database. Then it checks the zone in the database: RRsets and records by
type must be exactly what was written. Aim: ≤ 60 s for 1,000,000 records. Writes
bench/out/import.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, ROOT, mib  # noqa: E402
from dbcommon import PG, command_line, open_store, pin_self  # noqa: E402

ORIGIN = "imp.test."
AIM_S = 60.0
# i mod 20 → type: 8 A, 4 AAAA, 3 TXT, 2 MX, 3 CNAME
MIX = ["A"] * 8 + ["AAAA"] * 4 + ["TXT"] * 3 + ["MX"] * 2 + ["CNAME"] * 3
TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "MX": 15, "TXT": 16, "AAAA": 28}


def record(i: int) -> tuple[str, str]:
    t = MIX[i % 20]
    if t == "A":
        return t, f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    if t == "AAAA":
        return t, f"2001:db8::{(i >> 16) & 0xffff:x}:{i & 0xffff:x}"
    if t == "TXT":
        return t, f'"v=bench{i} record number {i}"'
    if t == "MX":
        return t, f"10 mail{i % 1000}.example.net."
    return t, f"r{i - i % 20}"  # CNAME → the first A name of its block of 20


def expected(n: int) -> dict[str, int]:
    counts = {"NS": 2, "A": 2}  # the apex NS pair and their glue
    for i in range(20):
        counts[MIX[i]] = counts.get(MIX[i], 0) + n // 20 + (1 if i < n % 20 else 0)
    return counts


def ensure_zone(n: int) -> str:
    path = os.path.join(OUT, f"import-{n}.zone")
    if os.path.exists(path):
        return path
    os.makedirs(OUT, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as z:
        z.write(f"$ORIGIN {ORIGIN}\n$TTL 300\n@ IN SOA ns1 hostmaster 2026112201 3600 600 604800 300\n")
        z.write("@ IN NS ns1\n@ IN NS ns2\nns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\n")
        for lo in range(0, n, 100_000):
            z.writelines(f"r{i} IN {t} {data}\n" for i in range(lo, min(n, lo + 100_000)) for t, data in (record(i),))
    os.replace(tmp, path)
    print(f"wrote {path} ({n} records, {os.path.getsize(path) / 1e6:.1f} MB)", flush=True)
    return path


async def schema(url: str) -> None:
    db = await open_store(url)
    await db.close()


async def count(url: str) -> dict:
    db = await open_store(url)
    try:
        async with db.pool.acquire() as conn:
            zid = await conn.fetchval("SELECT id FROM zones WHERE name = $1", ORIGIN)
            if zid is None:
                return {}
            rows = await conn.fetch("SELECT type, count(*) AS rrsets, sum(cardinality(records)) AS records,"
                                    " sum(octet_length(wire)) AS wire FROM rrsets WHERE zone_id = $1 GROUP BY type", zid)
            size = await conn.fetchval("SELECT pg_total_relation_size('rrsets')")
            return {"types": {r["type"]: (r["rrsets"], r["records"], r["wire"]) for r in rows}, "rrsets_table_bytes": size}
    finally:
        await db.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="records in the zone (default 1000000)")
    ap.add_argument("--cpu", default="0,1", help="CPUs `minidns zone import` may use (default 0,1: it parses"
                    " large files with one process per CPU it may use; --cpu 0 measures one)")
    ap.add_argument("--pg-cpu", default="1", help="CPU PostgreSQL (and this process) is pinned to (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL directory")
    a = ap.parse_args()
    print(f"command: {command_line()}", flush=True)
    zone = ensure_zone(a.records)
    pin_self(a.pg_cpu)
    pg = PG("import", keep=a.keep)
    try:
        print(f"embedded PostgreSQL in {pg.dir} (pid {pg.pid}); {pg.pin(a.pg_cpu)} processes pinned to CPU {a.pg_cpu}", flush=True)
        asyncio.run(schema(pg.url))
        timefile = os.path.join(OUT, "import-time.txt")
        argv = ["taskset", "-c", a.cpu, sys.executable, "-m", "minidns", "zone", "import", zone,
                "--database-url", pg.url, "--progress"]
        have_time = os.access("/usr/bin/time", os.X_OK)
        if have_time:
            argv = ["/usr/bin/time", "-v", "-o", timefile] + argv
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        print(f"running: {' '.join(argv)}", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        parsed_at = [None]
        err = []

        def watch() -> None:  # the progress bar's 100% is the end of parsing
            buf = b""
            while True:
                chunk = os.read(proc.stderr.fileno(), 65536)
                if not chunk:
                    return
                err.append(chunk)
                buf = (buf + chunk)[-200:]
                if parsed_at[0] is None and b"100.0%" in buf:
                    parsed_at[0] = time.monotonic() - started

        w = threading.Thread(target=watch, daemon=True)
        w.start()
        out = proc.stdout.read().decode(errors="replace")
        proc.wait()
        wall = time.monotonic() - started
        w.join(5)
        errors = b"".join(err).decode(errors="replace")
        if proc.returncode != 0:
            print(out, errors)
            sys.exit(f"minidns zone import exited with status {proc.returncode}")
        peak = None
        if have_time:
            tv = open(timefile).read()
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv)
            peak = int(m.group(1)) if m else None
            ut = float(re.search(r"User time \(seconds\): ([0-9.]+)", tv).group(1))
            st = float(re.search(r"System time \(seconds\): ([0-9.]+)", tv).group(1))
        else:
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            peak, ut, st = ru.ru_maxrss, ru.ru_utime, ru.ru_stime
        db = asyncio.run(count(pg.url))
    finally:
        pg.close()

    want = expected(a.records)
    got_records = {t: v[1] for t, v in db.get("types", {}).items() if t != 6}
    want_codes = {TYPE_CODES[t]: c for t, c in want.items()}
    total = sum(got_records.values())
    ok = got_records == want_codes and 6 in db.get("types", {})
    said = out.strip().splitlines()[-1] if out.strip() else ""
    print(f"\n=== import: {a.records} records ===")
    print(f"command: {command_line()}")
    print(f"minidns said: {said}")
    print(f"wall time (spawn to exit): {wall:.1f}s" + (f"; parsing done at {parsed_at[0]:.1f}s, database write "
          f"{wall - parsed_at[0]:.1f}s" if parsed_at[0] else ""))
    print(f"CPU: user {ut:.1f}s, system {st:.1f}s; peak RSS {mib(peak) if peak else 'n/a'}"
          + (" (/usr/bin/time -v)" if have_time else " (getrusage of children)"))
    print("in the database, per type (RRsets, records):")
    names = {v: k for k, v in TYPE_CODES.items()}
    names[6] = "SOA"
    for t, (rrsets, recs, wire) in sorted(db.get("types", {}).items()):
        print(f"  {names.get(t, t):6s} {rrsets:8d} {recs:8d}   expected {want_codes.get(t, 1 if t == 6 else 0)} records")
    print(f"record count check ({total} records besides the SOA, {a.records + 4} written): {'ok' if ok else 'MISMATCH'}; "
          f"rrsets table {db.get('rrsets_table_bytes', 0) / 1e6:.0f} MB")
    print(f"aim <= {AIM_S:g}s: {'met' if wall <= AIM_S else 'NOT MET'} ({wall:.1f}s)")
    path = os.path.join(OUT, "import.json")
    with open(path, "w") as f:
        json.dump({"command": command_line(), "records": a.records, "wall_s": wall, "parse_s": parsed_at[0],
                   "user_s": ut, "system_s": st, "peak_rss_kib": peak, "minidns_output": said,
                   "types": {str(k): v for k, v in db.get("types", {}).items()}, "count_ok": ok,
                   "aim_s": AIM_S, "aim_met": wall <= AIM_S}, f, indent=1)
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
