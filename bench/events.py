#!/usr/bin/env python3
"""Event ingest under load: Nova `compute.instance.create.end` events posted to /v1/events at a
fixed rate; for each, the time from the 2xx reply (the event and its records committed) to the
instance's A record answered by minidns over DNS.

  python3 bench/events.py                    # 200 events/s for 30 s
  python3 bench/events.py --rate 50 --seconds 10

Starts a private embedded PostgreSQL and `minidns serve --database-url` with its API (minidns
pinned to CPU 0; PostgreSQL and this client on CPU 1), the zone cloud.test. as `events_zone`. The
events are tests/admin/events/nova_compute.instance.create.end.json with a new message id,
instance id, hostname h<i> and fixed IPv4 address each, posted one per request on a fixed
timetable by concurrent tasks. Prints accepted → answered percentiles, POST latency and errors.
Bar: p99 ≤ 50 ms at 200 events/s. Writes bench/out/events.json.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import socket
import struct
import sys
import time
import uuid

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import OUT, stop  # noqa: E402
from dbcommon import PG, command_line, open_store, percentile, pin_self, start_api_server  # noqa: E402

TOKEN = "bench-ingest-token-0123456789"
ZONE = "cloud.test."
FIXTURE = os.path.join(os.path.dirname(HERE), "tests", "admin", "events", "nova_compute.instance.create.end.json")


def a_query(name: str, qid: int) -> bytes:
    wire = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!6H", qid, 0, 1, 0, 0, 0) + wire + struct.pack("!HH", 1, 1)


async def answered(port: int, name: str, limit: float = 5.0) -> float | None:
    """Seconds until an A query for `name` gets a NOERROR reply with an answer (queries every ~1 ms)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    started = time.monotonic()
    try:
        while time.monotonic() - started < limit:
            qid = random.getrandbits(16)
            await loop.sock_sendto(sock, a_query(name, qid), ("127.0.0.1", port))
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.2)
            except asyncio.TimeoutError:
                continue
            if struct.unpack_from("!H", data)[0] == qid and data[3] & 0xF == 0 and struct.unpack_from("!H", data, 6)[0]:
                return time.monotonic()
            await asyncio.sleep(0.001)
        return None
    finally:
        sock.close()


def event(i: int, template: dict) -> dict:
    ev = copy.deepcopy(template)
    ev["message_id"] = str(uuid.uuid4())
    p = ev["payload"]
    p["instance_id"] = str(uuid.uuid4())
    p["hostname"] = p["display_name"] = f"h{i}"
    p["fixed_ips"] = [{**p["fixed_ips"][0], "address": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", "version": 4}]
    return ev


async def run(base: str, dns_port: int, rate: float, seconds: float) -> dict:
    template = json.load(open(FIXTURE))
    lat, post_lat, errors, lost, windows = [], [], {}, 0, {}
    n = int(rate * seconds)

    async with aiohttp.ClientSession(headers={"X-Auth-Token": TOKEN, "Content-Type": "application/json"},
                                     connector=aiohttp.TCPConnector(limit=256)) as s:  # fmt: skip
        async def one(i: int, due: float):
            nonlocal lost
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            body = json.dumps(event(i, template))
            t0 = time.monotonic()
            async with s.post(f"{base}/v1/events", data=body) as r:
                await r.read()
                status = r.status
            t_ok = time.monotonic()
            if status != 200:
                errors[status] = errors.get(status, 0) + 1
                return
            post_lat.append(t_ok - t0)
            windows.setdefault(int((t0 - start) // 5), []).append((t_ok - t0) * 1000)
            t1 = await answered(dns_port, f"h{i}.{ZONE}")
            if t1 is None:
                lost += 1
            else:
                lat.append(max(0.0, t1 - t_ok))

        start = time.monotonic() + 0.5
        await asyncio.gather(*(one(i, start + i / rate) for i in range(n)))
    ms = [x * 1000 for x in lat]
    pms = [x * 1000 for x in post_lat]
    return {"events": n, "answered": len(lat), "lost": lost, "errors": errors,
            "p50": percentile(ms, 50), "p90": percentile(ms, 90), "p99": percentile(ms, 99), "max": max(ms) if ms else None,
            "post_p50": percentile(pms, 50), "post_p99": percentile(pms, 99),
            "post_p99_per_5s": [round(percentile(windows[k], 99), 1) for k in sorted(windows)]}  # fmt: skip


async def make_zone(url: str) -> None:
    from minidns.store.writer import Edit

    db = await open_store(url)
    try:
        await db.store.create_zone(ZONE, email="h@cloud.test", edits=[Edit("add", "@", "NS", None, ("ns1.example.",))])
    finally:
        await db.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--cpu", default="0")
    ap.add_argument("--other-cpu", default="1")
    a = ap.parse_args()
    print(f"command: {command_line()}", flush=True)
    pin_self(a.other_cpu)
    pg = PG("events")
    proc = None
    try:
        pg.pin(a.other_cpu)
        asyncio.run(make_zone(pg.url))
        config = f'api_tokens = [{{ token = "{TOKEN}", project = "sink", role = "ingest" }}]\nevents_zone = "{ZONE}"\n'
        proc, base, dns_port = start_api_server(pg, config, a.cpu)
        print(f"posting {int(a.rate * a.seconds)} events at {a.rate:g}/s ...", flush=True)
        res = asyncio.run(run(base, dns_port, a.rate, a.seconds))
        print(f"\n=== events: {res['events']} Nova create events at {a.rate:g}/s ===")
        print(f"command: {command_line()}")
        print(f"answered {res['answered']}, not answered within 5 s {res['lost']}, HTTP errors {res['errors']}")
        print(f"accepted -> A answered (ms): p50 {res['p50']:.1f}  p90 {res['p90']:.1f}  p99 {res['p99']:.1f}  max {res['max']:.1f}")
        print(f"POST latency (ms): p50 {res['post_p50']:.1f}  p99 {res['post_p99']:.1f}")
        print(f"POST latency p99 per 5 s (ms): {res['post_p99_per_5s']}")
        ok = res["p99"] <= 50 and not res["lost"] and not res["errors"]
        print(f"bar p99 <= 50 ms with none lost: {'met' if ok else 'NOT MET'}")
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "events.json"), "w") as f:
            json.dump(res, f, indent=1)
    finally:
        if proc is not None:
            stop(proc)
        pg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
