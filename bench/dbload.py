#!/usr/bin/env python3
"""Start-up load from PostgreSQL: load time and resident memory of `minidns serve --database-url`,
next to NSD loading the same data from zone files.

  python3 bench/dbload.py                               # (a) 1,000,000 records in one zone, (b) 100,000 zones
  python3 bench/dbload.py --records 100000 --zones 10000   # quick
  python3 bench/dbload.py --only records                # just (a); --only zones for just (b)
  python3 bench/dbload.py --profile                     # also run each start under cProfile (slower; separate run)

Each part starts a private embedded PostgreSQL in a fresh directory, fills it, pins PostgreSQL to
--pg-cpu (default 1), then starts `python -m minidns serve --database-url URL` from this checkout
pinned to CPU 0 and measures: the load time it logs ("loaded N zone(s), M names from the database
in X.XXs"), the wall time from spawn until it answers the probe record (interpreter start,
imports and listeners included), and VmRSS / VmHWM from /proc 1 s after that. The server is
started --starts times (default 2: the first start reads freshly COPYed rows, the later ones a
database that has been read once); the bars use the last start.

(a) the zone bench.test. of bench/memory.py — SOA, two NS with glue, h0 … h{N-1} IN A 10.x.y.z —
    inserted with one Store.create_zone(rrsets=[RRsetData …]) (COPY). NSD loads the same data from
    bench/out/mem-N.zone (memory.py's file and NSD code). Probe: h{N-1} A.
(b) --zones zones z{i}.test., each SOA, NS ns1, and 8 A records (@, ns1, www, mail, h1-h4).
    Inserted with --insert api (default): Store.create_zone per zone, 4 at a time (about 1,000
    zones/s here, so under two minutes for 100k); or --insert copy: rows COPYed straight into zones /
    rrsets / zone_changes in the exact form Store.create_zone writes them (its own helpers build the
    SOA rows), checked first against a zone made by Store.create_zone (about 4x faster). NSD loads one zone file per zone (bench/out/dbload-zones-N/), one zone: entry each in
    nsd.conf (via a pattern). Probe: www.z{N-1}.test. A.

Bars: (a) 1M-record load ≤ 8 s; (b) 100k-zone load ≤ 30 s; minidns VmRSS ≤ 2× NSD's (sum of its
processes' VmRSS, as memory.py counts it). Writes bench/out/dbload.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory  # noqa: E402
from common import OUT, answers_a, free_port, mib, proc_pss, proc_status, read_log, stop  # noqa: E402
from dbcommon import (LOADED_DB, PG, a_rrsets, command_line, open_store, pin_self, print_profile,  # noqa: E402
                      start_server, wait_until, wire_name)

BIG = memory.ORIGIN  # "bench.test.", the zone memory.py loads into NSD
BAR_RECORDS_S, BAR_ZONES_S, BAR_RSS = 8.0, 30.0, 2.0


# --- measuring the server ----------------------------------------------------------------------

def measure_minidns(url: str, probe: tuple[str, str], cpu: str, timeout: float, tag: str, extra: tuple[str, ...],
                    profile: str | None = None) -> dict:
    port = free_port()
    log = os.path.join(OUT, f"dbload-{tag}-server.log")
    name, addr = probe
    started = time.monotonic()
    proc = start_server(url, f"127.0.0.1:{port}", log, cpu=cpu, extra=extra, profile=profile)
    try:
        wait_until(proc, lambda: answers_a("127.0.0.1", port, name, addr), timeout, "minidns", log, every=0.01)
        wall = time.monotonic() - started
        ready = proc_status(proc.pid)
        time.sleep(1.0)
        st = proc_status(proc.pid)
        pss = proc_pss(proc.pid) or 0
    finally:
        stop(proc, timeout=60)
    text = read_log(log)
    m = LOADED_DB.search(text)
    return {"wall": wall, "logged": float(m.group(3)) if m else None, "zones": int(m.group(1)) if m else None,
            "names": int(m.group(2)) if m else None, "rss": st["VmRSS"], "hwm": st["VmHWM"],
            "rss_ready": ready["VmRSS"], "pss": pss, "log": log}


def run_starts(pg: PG, probe, a, tag: str) -> list[dict]:
    pin_self(a.pg_cpu)  # this process only polls for the first answer; keep it off the server's CPU
    runs = []
    for i in range(a.starts):
        r = measure_minidns(pg.url, probe, a.cpu, a.timeout, tag, tuple(a.server_arg))
        runs.append(r)
        print(f"  minidns start {i + 1}: logged 'loaded {r['zones']} zone(s), {r['names']} names ... in {r['logged']}s'; "
              f"spawn to first answer {r['wall']:.2f}s; VmRSS {mib(r['rss'])} (at first answer {mib(r['rss_ready'])}), "
              f"VmHWM {mib(r['hwm'])}, Pss {mib(r['pss'])}", flush=True)
    if a.profile:
        prof = os.path.join(OUT, f"dbload-{tag}.prof")
        r = measure_minidns(pg.url, probe, a.cpu, a.timeout, tag + "-profiled", tuple(a.server_arg), profile=prof)
        print(f"  profiled start (cProfile, slower): logged load {r['logged']}s, spawn to answer {r['wall']:.2f}s; "
              f"profile in {prof}")
        print_profile(prof, 25)
    return runs


def report_nsd(nsd: dict) -> None:
    print(f"  NSD answered after {nsd['load']:.2f}s; its processes 1 s later:")
    for pid, name, rss, hwm, pss in nsd["procs"]:
        print(f"    pid {pid:7d}  VmRSS {mib(rss):>10s}  VmHWM {mib(hwm):>10s}  Pss {mib(pss):>10s}  {name}")
    print(f"    NSD total: sum of VmRSS {mib(nsd['rss'])}; sum of Pss {mib(nsd['pss'])}", flush=True)


# --- (a) one zone of N A records -----------------------------------------------------------------

def big_rrsets(n: int) -> list:
    """memory.ensure_zone's records (SOA aside) as RRsetData."""
    from minidns.store.records import RRsetData

    ow = wire_name(BIG)
    ns = RRsetData(ow, BIG, 2, 300, [f"ns1.{BIG}", f"ns2.{BIG}"], [wire_name(f"ns1.{BIG}"), wire_name(f"ns2.{BIG}")])
    glue = a_rrsets(BIG, [("ns1", "192.0.2.1"), ("ns2", "192.0.2.2")])
    return [ns, *glue, *a_rrsets(BIG, ((f"h{i}", memory.address(i)) for i in range(n)))]


async def fill_big(url: str, n: int) -> float:
    db = await open_store(url)
    try:
        t = time.monotonic()
        rrsets = big_rrsets(n)
        built = time.monotonic() - t
        await db.store.create_zone(BIG, email=f"hostmaster@{BIG.rstrip('.')}", mname=f"ns1.{BIG}", ttl=300, serial=2026112201,
                                   refresh=3600, retry=600, expire=604800, minimum=300, rrsets=rrsets, source="bench")
        took = time.monotonic() - t
        print(f"  inserted {n + 4} records with Store.create_zone(rrsets=…) in {took:.1f}s "
              f"({built:.1f}s of it building the RRsetData)", flush=True)
        return took
    finally:
        await db.close()


def part_records(a) -> dict:
    n = a.records
    print(f"\n--- (a) one zone, {n} A records ---", flush=True)
    zone = memory.ensure_zone(n)
    pg = PG("dbload-records", keep=a.keep)
    try:
        print(f"  embedded PostgreSQL in {pg.dir} (pid {pg.pid})", flush=True)
        insert = asyncio.run(fill_big(pg.url, n))
        print(f"  {pg.pin(a.pg_cpu)} PostgreSQL processes pinned to CPU {a.pg_cpu}", flush=True)
        probe = (f"h{n - 1}.{BIG}", memory.address(n - 1))
        runs = run_starts(pg, probe, a, "records")
    finally:
        pg.close()
    nsd = None
    if not a.no_nsd:
        print(f"  NSD from {zone} ...", flush=True)
        nsd = memory.measure_nsd(zone, probe[0], probe[1], a.cpu, a.timeout)
        report_nsd(nsd)
    return {"records": n, "insert_s": insert, "starts": runs, "nsd": nsd}


# --- (b) many small zones -----------------------------------------------------------------------

def small_zone(i: int, name: str | None = None):
    """(name, SOA fields, rrsets) of zone i: NS ns1, and A at @, ns1, www, mail, h1-h4."""
    from minidns.store.records import RRsetData

    name = name or f"z{i}.test."
    base = f"10.{(i >> 8) & 255}.{i & 255}"
    ow = wire_name(name)
    rrsets = [RRsetData(ow, name, 2, 3600, [f"ns1.{name}"], [wire_name(f"ns1.{name}")]),
              RRsetData(ow, name, 1, 3600, [f"{base}.1"], [socket.inet_aton(f"{base}.1")])]
    rrsets += a_rrsets(name, [(lab, f"{base}.{j + 2}") for j, lab in enumerate(("ns1", "www", "mail", "h1", "h2", "h3", "h4"))], 3600)
    soa = {"email": f"hostmaster@{name.rstrip('.')}", "mname": f"ns1.{name}", "ttl": 3600, "refresh": 3600,
           "retry": 600, "expire": 1209600, "minimum": 300, "serial": 2026112201}
    return name, soa, rrsets


def copy_rows(names_soas_rrsets):
    """Rows for zones, rrsets and zone_changes exactly as Store.create_zone writes them
    (minidns/store/creation.py; schema minidns/store/migrations/0001_initial.sql)."""
    from minidns.store.rows import soa_rdata, soa_row

    zones, rrsets, changes = [], [], []
    for name, soa, rrs in names_soas_rrsets:
        z = {"id": uuid.uuid4(), "name": name, "project_id": "", "email": soa["email"], "mname": soa["mname"],
             "ttl": soa["ttl"], "refresh": soa["refresh"], "retry": soa["retry"], "expire": soa["expire"],
             "minimum": soa["minimum"], "serial": soa["serial"], "serial_policy": "increment", "description": None}
        zones.append(tuple(z.values()))
        rrsets += [(uuid.uuid4(), z["id"], r.name, r.owner, r.rtype, r.ttl, r.records, r.wire(),
                    None, False, None, None, None, None, None) for r in rrs]
        rrsets.append(soa_row(z, wire_name(name), soa_rdata(z, z["serial"])))
        changes.append((z["id"], None, z["serial"], b"", b"", "bench"))
    return zones, rrsets, changes


ZONE_COLUMNS = ("id", "name", "project_id", "email", "mname", "ttl", "refresh", "retry", "expire", "minimum",
                "serial", "serial_policy", "description")
CHANGE_COLUMNS = ("zone_id", "serial_from", "serial_to", "removed", "added", "source")


async def copy_zones(conn, items) -> None:
    from minidns.store.rows import RRSET_COLUMNS

    zones, rrsets, changes = copy_rows(items)
    async with conn.transaction():
        await conn.copy_records_to_table("zones", records=zones, columns=ZONE_COLUMNS)
        await conn.copy_records_to_table("rrsets", records=rrsets, columns=RRSET_COLUMNS)
        await conn.copy_records_to_table("zone_changes", records=changes, columns=CHANGE_COLUMNS)


async def check_copy_form(db) -> bool:
    """Write one zone with Store.create_zone and the same content under a same-length name with
    copy_zones; their rows must match but for ids, times and the name."""
    store = db.store
    name, soa, rrs = small_zone(7, "ca.test.")
    await store.create_zone(name, **soa, rrsets=rrs, source="bench")
    async with db.pool.acquire() as conn:
        await copy_zones(conn, [small_zone(7, "cc.test.")])

        async def rows(zname: str):
            zid = await conn.fetchval("SELECT id FROM zones WHERE name = $1", zname)
            z = dict(await conn.fetchrow("SELECT * FROM zones WHERE id = $1", zid))
            for k in ("id", "created_at", "updated_at"):
                z.pop(k)
            rr = [dict(r) for r in await conn.fetch("SELECT * FROM rrsets WHERE zone_id = $1 ORDER BY owner, type", zid)]
            for r in rr:
                for k in ("id", "zone_id", "created_at", "updated_at"):
                    r.pop(k)
            ch = [dict(r) for r in await conn.fetch("SELECT * FROM zone_changes WHERE zone_id = $1", zid)]
            for r in ch:
                for k in ("seq", "zone_id", "created_at"):
                    r.pop(k)
            return repr((z, rr, ch))

        api, copied = await rows("ca.test."), await rows("cc.test.")
    same = api.replace("ca.test", "cc.test").replace("\\x02ca\\x04test", "\\x02cc\\x04test") == copied
    await store.delete_zone("ca.test.")
    await store.delete_zone("cc.test.")
    return same


async def fill_zones(url: str, n: int, how: str, batch: int = 5000) -> dict:
    db = await open_store(url)
    try:
        t = time.monotonic()
        if how == "copy":
            same = await check_copy_form(db)
            print(f"  COPY rows identical to Store.create_zone's (checked on one zone): {'yes' if same else 'NO'}", flush=True)
            if not same:
                sys.exit("the COPY row form differs from Store.create_zone's; fix bench/dbload.py copy_rows")
            t = time.monotonic()
            async with db.pool.acquire() as conn:
                for lo in range(0, n, batch):
                    await copy_zones(conn, [small_zone(i) for i in range(lo, min(n, lo + batch))])
        else:
            sem = asyncio.Semaphore(4)

            async def one(i: int) -> None:
                async with sem:
                    name, soa, rrs = small_zone(i)
                    await db.store.create_zone(name, **soa, rrsets=rrs, source="bench")

            done = 0
            for lo in range(0, n, batch):
                await asyncio.gather(*(one(i) for i in range(lo, min(n, lo + batch))))
                done = min(n, lo + batch)
                print(f"    {done} zones, {done / (time.monotonic() - t):.0f}/s", flush=True)
        took = time.monotonic() - t
        how_text = "COPY straight into zones/rrsets/zone_changes" if how == "copy" else "Store.create_zone per zone, 4 at a time"
        print(f"  inserted {n} zones ({n * 10} records) by {how_text} in {took:.1f}s ({n / took:.0f} zones/s)", flush=True)
        return {"insert_s": took, "insert": how_text}
    finally:
        await db.close()


def ensure_zone_files(n: int) -> str:
    d = os.path.join(OUT, f"dbload-zones-{n}")
    done = os.path.join(d, ".complete")
    if os.path.exists(done):
        return d
    os.makedirs(d, exist_ok=True)
    t = time.monotonic()
    for i in range(n):
        name, soa, rrs = small_zone(i)
        lines = [f"$ORIGIN {name}\n$TTL 3600\n",
                 f"@ IN SOA {soa['mname']} hostmaster.{name} {soa['serial']} {soa['refresh']} {soa['retry']} "
                 f"{soa['expire']} {soa['minimum']}\n"]
        for r in rrs:
            for text in r.records:
                lines.append(f"{r.name} {r.ttl} IN {r.type_text} {text}\n")
        with open(os.path.join(d, f"{name}zone"), "w") as f:
            f.write("".join(lines))
    open(done, "w").close()
    print(f"  wrote {n} zone files into {d} in {time.monotonic() - t:.1f}s", flush=True)
    return d


def part_zones(a) -> dict:
    n = a.zones
    print(f"\n--- (b) {n} zones x 10 records ---", flush=True)
    pg = PG("dbload-zones", keep=a.keep)
    try:
        print(f"  embedded PostgreSQL in {pg.dir} (pid {pg.pid})", flush=True)
        ins = asyncio.run(fill_zones(pg.url, n, a.insert))
        print(f"  {pg.pin(a.pg_cpu)} PostgreSQL processes pinned to CPU {a.pg_cpu}", flush=True)
        probe = (f"www.z{n - 1}.test.", f"10.{((n - 1) >> 8) & 255}.{(n - 1) & 255}.3")
        runs = run_starts(pg, probe, a, "zones")
    finally:
        pg.close()
    nsd = None
    if not a.no_nsd:
        d = ensure_zone_files(n)
        conf = f'pattern:\n  name: "bench"\n  zonefile: "{d}/%s.zone"\n'
        conf += "".join(f"zone:\n  name: z{i}.test\n  include-pattern: \"bench\"\n" for i in range(n))
        print(f"  NSD with {n} zone: entries ...", flush=True)
        nsd = memory.measure_nsd("", probe[0], probe[1], a.cpu, a.timeout, zones_conf=conf)
        report_nsd(nsd)
    return {"zones": n, **ins, "starts": runs, "nsd": nsd}


# --- summary ------------------------------------------------------------------------------------

def summary(label: str, part: dict, bar_s: float) -> dict:
    last = part["starts"][-1]
    nsd = part["nsd"]
    loads = ", ".join(f"{r['logged']}s" for r in part["starts"])
    walls = ", ".join(f"{r['wall']:.2f}s" for r in part["starts"])
    print(f"{label}: minidns logged load {loads} (start 1..{len(part['starts'])}); spawn to first answer {walls}")
    load_met = last["logged"] is not None and last["logged"] <= bar_s
    print(f"  bar load <= {bar_s:g}s (last start, logged): {'met' if load_met else 'NOT MET'} ({last['logged']}s; "
          f"spawn to answer {last['wall']:.2f}s)")
    out = {"load_s": last["logged"], "wall_s": last["wall"], "load_met": load_met, "rss_kib": last["rss"], "hwm_kib": last["hwm"]}
    if nsd:
        ratio = last["rss"] / nsd["rss"]
        print(f"  RSS: minidns {mib(last['rss'])} (peak {mib(last['hwm'])}), NSD {mib(nsd['rss'])} (Pss sum {mib(nsd['pss'])}, "
              f"answered after {nsd['load']:.2f}s)")
        print(f"  bar RSS <= {BAR_RSS:g}x NSD: {'met' if ratio <= BAR_RSS else 'NOT MET'} ({ratio:.2f}x; peak/NSD "
              f"{last['hwm'] / nsd['rss']:.2f}x)")
        out.update(nsd_rss_kib=nsd["rss"], nsd_load_s=nsd["load"], rss_ratio=ratio, rss_met=ratio <= BAR_RSS)
    else:
        print(f"  RSS: minidns {mib(last['rss'])} (peak {mib(last['hwm'])}); NSD not measured")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="A records in the one-zone part (default 1000000)")
    ap.add_argument("--zones", type=int, default=100_000, help="zones in the many-zones part (default 100000)")
    ap.add_argument("--only", choices=["records", "zones"], help="run one part only")
    ap.add_argument("--insert", choices=["copy", "api"], default="api",
                    help="how the many zones are written: Store.create_zone each, 4 at a time (default), or COPY rows")
    ap.add_argument("--starts", type=int, default=2, help="server starts measured per part (default 2; the bars use the last)")
    ap.add_argument("--no-nsd", action="store_true", help="skip NSD")
    ap.add_argument("--profile", action="store_true", help="one more start under cProfile; print the top functions")
    ap.add_argument("--cpu", default="0", help="CPU minidns and NSD are pinned to (default 0)")
    ap.add_argument("--pg-cpu", default="1", help="CPU PostgreSQL (and this process) is pinned to while measuring (default 1)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for a server to answer")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL directories")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG", help="extra argument for `minidns serve`")
    a = ap.parse_args()
    print(f"command: {command_line()}", flush=True)
    os.makedirs(OUT, exist_ok=True)

    result = {"command": command_line()}
    parts = []
    if a.only in (None, "records"):
        result["records"] = part_records(a)
        parts.append(("(a) " + f"{a.records} records, one zone", "records", BAR_RECORDS_S))
    if a.only in (None, "zones"):
        result["zones"] = part_zones(a)
        parts.append(("(b) " + f"{a.zones} zones x 10 records", "zones", BAR_ZONES_S))

    print(f"\n=== dbload summary ===\ncommand: {command_line()}")
    result["summary"] = {}
    for label, key, bar in parts:
        result["summary"][key] = summary(label, result[key], bar)
    path = os.path.join(OUT, "dbload.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
