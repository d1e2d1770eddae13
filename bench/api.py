#!/usr/bin/env python3
"""The admin API under load: recordset creates per second, and paging through a large zone.

  python3 bench/api.py                      # 20 s of creates, then list 100,000 recordsets
  python3 bench/api.py --seconds 5 --list 20000

Starts a private embedded PostgreSQL and `minidns serve --database-url` with its API, minidns
pinned to CPU 0 (--cpu), PostgreSQL and this client on CPU 1. (create) --clients concurrent
clients (default 32) POST /v2/zones/{id}/recordsets (one A record each, a new name each) into
--zones zones (default 1) for --seconds; counts 2xx replies per second, reports errors, and
checks a sample of the names over DNS. Bar: ≥ 1,000 creates/s sustained with minidns on one core.
(list) a zone filled with --list recordsets (through the API's own write path in bulk, i.e. the
store's COPY), then GET /v2/zones/{id}/recordsets?limit=1000 page by page to the end: time per
page, total, and minidns's peak RSS during the walk (bounded memory: it must not grow with the
zone). Writes bench/out/api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, proc_status, stop  # noqa: E402
from dbcommon import PG, command_line, open_store, pin_self, start_api_server  # noqa: E402

TOKEN = "bench-admin-token-0123456789"


async def make_zones(url: str, zones: list[str], big: str | None, n_big: int) -> None:
    from dbcommon import a_rrsets

    db = await open_store(url)
    try:
        for z in zones:
            await db.store.create_zone(z, email=f"h@{z.rstrip('.')}", project_id="bench", source="bench")
        if big:
            rrsets = a_rrsets(big, ((f"r{i}", f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}") for i in range(n_big)))
            await db.store.create_zone(big, email="h@big.test", rrsets=rrsets, project_id="bench", source="bench")
    finally:
        await db.close()


async def create_load(base: str, zone_ids: list[str], seconds: float, clients: int) -> dict:
    headers = {"X-Auth-Token": TOKEN, "Content-Type": "application/json"}
    done: list[float] = []
    errors: dict[int, int] = {}
    lat: list[float] = []
    stop_at = time.monotonic() + seconds
    counter = iter(range(10**9))

    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=clients)) as s:
        async def worker(w: int):
            while time.monotonic() < stop_at:
                i = next(counter)
                zid = zone_ids[i % len(zone_ids)]
                body = json.dumps({"name": f"c{i}.{zones_by_id[zid]}", "type": "A", "records": [f"10.9.{i // 250 % 250}.{i % 250}"], "ttl": 300})
                t0 = time.monotonic()
                async with s.post(f"{base}/v2/zones/{zid}/recordsets", data=body) as r:
                    await r.read()
                    if 200 <= r.status < 300:
                        done.append(time.monotonic())
                        lat.append(time.monotonic() - t0)
                    else:
                        errors[r.status] = errors.get(r.status, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        took = time.monotonic() - started
    per_s = [sum(1 for t in done if started + k <= t < started + k + 1) for k in range(int(seconds))]
    return {"created": len(done), "seconds": took, "rate": len(done) / took, "per_second": per_s, "errors": errors,
            "p50_ms": statistics.median(lat) * 1000 if lat else None,
            "p99_ms": sorted(lat)[int(len(lat) * 0.99) - 1] * 1000 if lat else None}


zones_by_id: dict[str, str] = {}


async def list_walk(base: str, zid: str, pid: int) -> dict:
    headers = {"X-Auth-Token": TOKEN}
    pages, count, peak = [], 0, 0
    url = f"{base}/v2/zones/{zid}/recordsets?limit=1000"
    async with aiohttp.ClientSession(headers=headers) as s:
        started = time.monotonic()
        while url:
            t0 = time.monotonic()
            async with s.get(url) as r:
                body = await r.json()
                if r.status != 200:
                    sys.exit(f"list failed: {r.status} {body}")
            pages.append(time.monotonic() - t0)
            count += len(body["recordsets"])
            url = body["links"].get("next")
            peak = max(peak, proc_status(pid).get("VmRSS", 0))
        took = time.monotonic() - started
    return {"recordsets": count, "pages": len(pages), "seconds": took, "page_p50_ms": statistics.median(pages) * 1000,
            "page_max_ms": max(pages) * 1000, "peak_rss_kib": peak}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--zones", type=int, default=1)
    ap.add_argument("--list", type=int, default=100_000, help="recordsets in the zone listed (0: skip)")
    ap.add_argument("--cpu", default="0")
    ap.add_argument("--other-cpu", default="1")
    a = ap.parse_args()
    print(f"command: {command_line()}", flush=True)
    pin_self(a.other_cpu)
    pg = PG("api")
    proc = None
    result = {"command": command_line()}
    try:
        pg.pin(a.other_cpu)
        zones = [f"load{i}.test." for i in range(a.zones)]
        big = "big.test." if a.list else None
        t = time.monotonic()
        asyncio.run(make_zones(pg.url, zones, big, a.list))
        print(f"zones made in {time.monotonic() - t:.1f}s", flush=True)
        config = f'api_tokens = [{{ token = "{TOKEN}", project = "bench", role = "admin" }}]\n'
        proc, base, dns_port = start_api_server(pg, config, a.cpu)

        async def ids():
            async with aiohttp.ClientSession(headers={"X-Auth-Token": TOKEN, "X-Auth-All-Projects": "true"}) as s:
                async with s.get(f"{base}/v2/zones?limit=1000") as r:
                    return {z["name"]: z["id"] for z in (await r.json())["zones"]}

        found = asyncio.run(ids())

        async def no_quota():  # Designate's default quotas (500 recordsets a zone) would stop the run
            async with aiohttp.ClientSession(headers={"X-Auth-Token": TOKEN}) as s:
                body = {"zones": -1, "zone_recordsets": -1, "zone_records": -1, "recordset_records": -1}
                async with s.patch(f"{base}/v2/quotas/bench", json=body) as r:
                    if r.status >= 300:
                        print(f"  (quotas not raised: {r.status} {await r.text()})", flush=True)

        asyncio.run(no_quota())
        for z in zones:
            zones_by_id[found[z]] = z
        print(f"\n(create) {a.clients} clients for {a.seconds:g}s into {a.zones} zone(s) ...", flush=True)
        res = asyncio.run(create_load(base, [found[z] for z in zones], a.seconds, a.clients))
        result["create"] = res
        if not res["created"]:
            sys.exit(f"no recordset was created: errors {res['errors']}\n" + open(os.path.join(pg.dir, "minidns.log")).read()[-3000:])
        print(f"  {res['created']} created in {res['seconds']:.1f}s: {res['rate']:.0f}/s "
              f"(per second: min {min(res['per_second'] or [0])}, max {max(res['per_second'] or [0])}); "
              f"p50 {res['p50_ms']:.1f} ms p99 {res['p99_ms']:.1f} ms; errors {res['errors']}")
        print(f"  bar >= 1000/s: {'met' if res['rate'] >= 1000 and not res['errors'] else 'NOT MET'}", flush=True)
        if big:
            print(f"\n(list) {a.list} recordsets, 1000 a page ...", flush=True)
            before = proc_status(proc.pid).get("VmRSS", 0)
            res = asyncio.run(list_walk(base, found[big], proc.pid))
            res["rss_before_kib"] = before
            result["list"] = res
            print(f"  {res['recordsets']} recordsets in {res['pages']} pages, {res['seconds']:.1f}s; page p50 "
                  f"{res['page_p50_ms']:.0f} ms, max {res['page_max_ms']:.0f} ms; minidns RSS {before / 1024:.0f} MiB "
                  f"before, peak {res['peak_rss_kib'] / 1024:.0f} MiB during", flush=True)
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "api.json"), "w") as f:
            json.dump(result, f, indent=1)
    finally:
        if proc is not None:
            stop(proc)
        pg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
