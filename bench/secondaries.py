#!/usr/bin/env python3
"""Propagation to real secondaries: a change committed in PostgreSQL → answered by BIND, Knot, NSD
and PowerDNS secondaries of minidns, and the zone's status ACTIVE.

  python3 bench/secondaries.py                          # all three parts
  python3 bench/secondaries.py --seconds 20 --zones 200 # quicker
  python3 bench/secondaries.py --only steady            # or isolated, many

Starts a private embedded PostgreSQL, `minidns serve --database-url` pinned to CPU 0 with the four
secondaries in its configuration (NOTIFY, transfers by address), and the four secondaries from the
Debian packages through tests/interop/secondaries.py, on loopback. Two throttles of the peers
are opened as an operator who wants changes out fast would: NSD's xfrd-reload-timeout 0 (default
one reload a second) and BIND's serial-query-rate 1000 (default 20, which paces a zone's refreshes
to about two a second). Knot (one refresh of a zone a second when NOTIFYs come faster) and
PowerDNS (its communicator looks at received NOTIFYs once a second) have no such setting. This
process, PostgreSQL and the secondaries run on CPU 1.

(steady) --rate changes per second (default 10) for --seconds (default 60) to prop.test.
    (1,000 A records), each one Store.change (add, replace or delete an A record) on a fixed
    timetable. One prober per secondary asks it for the zone's SOA every 5 ms and notes when each
    serial first appears; a change's latency at a secondary is from its commit to the first
    answer with its serial or a later one. Bar: p99 ≤ 250 ms at every secondary.
(isolated) --isolated changes (default 20) 1.5 s apart: commit → the zone's status ACTIVE in
    the database (all four secondaries confirmed by minidns's SOA polling). Bar: ≤ 1 s.
(many) --zones zones (default 1,000; z0.many.test. …), each held by every secondary, all changed
    at once (one transaction each, 16 at a time): time until every secondary serves every zone's
    new serial, and that none is missing.
Writes bench/out/secondaries.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "interop"))
import secondaries as peers  # noqa: E402
from common import OUT, free_port, stop  # noqa: E402
from dbcommon import PG, command_line, open_store, percentile, pin_self, start_server, wait_until  # noqa: E402

ZONE = "prop.test."
KINDS = ("bind", "knot", "nsd", "pdns")
BAR_MS, BAR_ACTIVE_S = 250.0, 1.0


def _tune_peers():
    """What an operator chasing fast propagation sets on the secondaries: NSD reloads after every
    transfer (xfrd-reload-timeout 0; default at most one reload a second), BIND refreshes at once
    (serial-query-rate 1000; default 20 paces refreshes of a zone to about two a second)."""
    nsd_conf, bind_conf = peers._nsd_conf, peers._bind_conf
    peers._nsd_conf = lambda sec: nsd_conf(sec).replace("server:\n", "server:\n  xfrd-reload-timeout: 0\n", 1)
    peers._bind_conf = lambda sec, secret: bind_conf(sec, secret).replace(
        "  recursion no;\n", "  recursion no;\n  serial-query-rate 1000;\n", 1)


def soa_query(zone: str, qid: int) -> bytes:
    name = b"".join(bytes([len(p)]) + p.encode() for p in zone.rstrip(".").split(".")) + b"\0"
    return struct.pack("!6H", qid, 0, 1, 0, 0, 0) + name + struct.pack("!HH", 6, 1)


def _skip_name(data: bytes, off: int) -> int:
    while data[off]:
        if data[off] & 0xC0 == 0xC0:
            return off + 2
        off += data[off] + 1
    return off + 1


def reply_serial(data: bytes) -> int | None:
    """The serial of the first answer record (our SOA query's) of a NOERROR reply."""
    if len(data) < 12 or data[3] & 0xF or struct.unpack_from("!H", data, 6)[0] < 1:
        return None
    off = _skip_name(data, 12) + 4
    off = _skip_name(data, off)
    rtype, _, _, rdlen = struct.unpack_from("!HHIH", data, off)
    if rtype != 6:
        return None
    return struct.unpack_from("!I", data, off + 10 + rdlen - 20)[0]


async def ask_serial(port: int, zone: str, timeout: float = 0.5) -> int | None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        qid = random.getrandbits(16)
        await loop.sock_sendto(sock, soa_query(zone, qid), ("127.0.0.1", port))
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)
        return reply_serial(data) if struct.unpack_from("!H", data)[0] == qid else None
    except (asyncio.TimeoutError, OSError, IndexError, struct.error):
        return None
    finally:
        sock.close()


async def prober(port: int, seen: dict[int, float], stop_at: list[bool]) -> None:
    """Ask for the SOA every 5 ms; note when each serial is first seen."""
    last = None
    while not stop_at[0]:
        serial = await ask_serial(port, ZONE)
        if serial is not None and serial != last:
            seen.setdefault(serial, time.monotonic())
            last = serial
        await asyncio.sleep(0.005)


def serial_ge(a: int, b: int) -> bool:
    return a == b or ((a - b) & 0xFFFFFFFF) < 0x80000000


async def steady(url: str, secs: dict, a) -> dict:
    from minidns.store.writer import Edit

    db = await open_store(url)
    seen = {k: {} for k in secs}
    halt = [False]
    probes = [asyncio.ensure_future(prober(s.port, seen[k], halt)) for k, s in secs.items()]
    rng = random.Random(1)
    commits: list[tuple[int, float]] = []
    n = int(a.rate * a.seconds)
    start = time.monotonic() + 0.5
    live = set(range(1000))
    for i in range(n):
        due = start + i / a.rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        r = rng.random()
        h = rng.choice(sorted(live))
        if r < 0.4:
            edit = Edit("add", f"n{i}", "A", 300, (f"10.1.{i // 250 % 250}.{i % 250}",))
        elif r < 0.8:
            edit = Edit("replace", f"h{h}", "A", 300, (f"10.2.{i // 250 % 250}.{i % 250}",))
        else:
            live.discard(h)
            edit = Edit("delete", f"h{h}", "A")
        ch = await db.store.change(ZONE, [edit], source="bench")
        commits.append((ch.serial_to, time.monotonic()))
    deadline = time.monotonic() + 10
    last = commits[-1][0]
    while time.monotonic() < deadline and not all(any(serial_ge(s, last) for s in seen[k]) for k in secs):
        await asyncio.sleep(0.05)
    halt[0] = True
    await asyncio.gather(*probes)
    await db.close()
    out = {}
    for k in secs:
        lat, missed = [], 0
        obs = sorted(seen[k].items(), key=lambda x: x[1])
        for serial, t0 in commits:
            t1 = next((t for s, t in obs if serial_ge(s, serial) and t >= t0 - 0.001), None)
            if t1 is None:
                missed += 1
            else:
                lat.append(max(0.0, t1 - t0) * 1000)
        out[k] = {"n": len(lat), "missed": missed, "p50": percentile(lat, 50), "p90": percentile(lat, 90),
                  "p99": percentile(lat, 99), "max": max(lat) if lat else None}
    return out


async def isolated(url: str, a) -> list[float]:
    from minidns.store.writer import Edit

    db = await open_store(url)
    out = []
    for i in range(a.isolated):
        ch = await db.store.change(ZONE, [Edit("add", f"iso{i}", "A", 300, ("192.0.2.1",))], source="bench")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            z = await db.store.zone(ZONE)
            if z["serial"] == ch.serial_to and z["status"] == "ACTIVE":
                break
            await asyncio.sleep(0.01)
        out.append(time.monotonic() - t0)
        await asyncio.sleep(1.5)
    await db.close()
    return out


async def many(url: str, secs: dict, zones: list[str]) -> dict:
    from minidns.store.writer import Edit

    db = await open_store(url)
    sem = asyncio.Semaphore(16)
    targets = {}

    async def one(z):
        async with sem:
            ch = await db.store.change(z, [Edit("add", "changed", "A", 60, ("192.0.2.9",))], source="bench")
            targets[z] = ch.serial_to

    t0 = time.monotonic()
    await asyncio.gather(*(one(z) for z in zones))
    committed = time.monotonic() - t0
    done = {k: {} for k in secs}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pending = [(k, z) for k in secs for z in zones if z not in done[k]]
        if not pending:
            break
        for i in range(0, len(pending), 200):
            batch = pending[i : i + 200]
            serials = await asyncio.gather(*(ask_serial(secs[k].port, z) for k, z in batch))
            now = time.monotonic()
            for (k, z), s in zip(batch, serials):
                if s is not None and serial_ge(s, targets[z]):
                    done[k][z] = now - t0
        await asyncio.sleep(0.05)
    await db.close()
    return {"committed_s": committed, **{k: {"have": len(done[k]), "of": len(zones),
                                             "all_by_s": max(done[k].values()) if len(done[k]) == len(zones) else None}
                                         for k in secs}}


async def make_zones(url: str, n_many: int) -> list[str]:
    from minidns.store.writer import Edit

    db = await open_store(url)
    edits = [Edit("add", "@", "NS", None, ("ns1",)), Edit("add", "ns1", "A", None, ("192.0.2.53",))]
    await db.store.create_zone(ZONE, email="h@prop.test", edits=edits + [
        Edit("add", f"h{i}", "A", 300, (f"10.0.{i // 250}.{i % 250}",)) for i in range(1000)], source="bench")
    names = [f"z{i}.many.test." for i in range(n_many)]
    sem = asyncio.Semaphore(8)

    async def one(z):
        async with sem:
            await db.store.create_zone(z, email="h@many.test", edits=edits, source="bench")

    await asyncio.gather(*(one(z) for z in names))
    await db.close()
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--isolated", type=int, default=20)
    ap.add_argument("--zones", type=int, default=1000)
    ap.add_argument("--only", choices=["steady", "isolated", "many"])
    ap.add_argument("--cpu", default="0", help="CPU minidns is pinned to (default 0)")
    ap.add_argument("--other-cpu", default="1", help="CPU for everything else (default 1)")
    a = ap.parse_args()
    print(f"command: {command_line()}", flush=True)
    pin_self(a.other_cpu)
    _tune_peers()
    n_many = a.zones if a.only in (None, "many") else 0
    pg = PG("secondaries")
    d = Path(tempfile.mkdtemp(prefix="bench-secondaries-"))
    procs, secs = [], {}
    result = {"command": command_line()}
    try:
        pg.pin(a.other_cpu)
        t = time.monotonic()
        many_zones = asyncio.run(make_zones(pg.url, n_many))
        print(f"zones created in {time.monotonic() - t:.1f}s: {ZONE} (1,000 A) and {n_many} small ones", flush=True)
        ports = {k: peers.free_port() for k in KINDS}
        port = free_port()
        conf = d / "minidns.toml"
        conf.write_text("secondaries = [\n" + "".join(
            f'  {{ address = "127.0.0.1", port = {p} }},\n' for p in ports.values()) + "]\npropagation_timeout = 10.0\n")
        log = str(d / "minidns.log")
        proc = start_server(pg.url, f"127.0.0.1:{port}", log, cpu=a.cpu, extra=("--config", str(conf)))
        procs.append(proc)
        wait_until(proc, lambda: asyncio.run(ask_serial(port, ZONE)) is not None, 120, "minidns", log)
        for k in KINDS:
            t = time.monotonic()
            secs[k] = peers.start_secondary(k, d / k, ("127.0.0.1", port), [ZONE, *many_zones], port=ports[k])
            ok = peers.wait_serial(secs[k], ZONE, None, timeout=300)
            for z in many_zones:
                ok = ok and peers.wait_serial(secs[k], z, None, timeout=300)
            if not ok:
                sys.exit(f"{k} did not load the zones:\n{secs[k].log()[-3000:]}")
            print(f"{k} secondary on port {ports[k]} holds the zones after {time.monotonic() - t:.1f}s", flush=True)
        if a.only in (None, "steady"):
            print(f"\n(steady) {a.rate:g} changes/s for {a.seconds:g}s ...", flush=True)
            res = asyncio.run(steady(pg.url, secs, a))
            result["steady"] = res
            for k, r in res.items():
                print(f"  {k:5s} n {r['n']}  missed {r['missed']}  p50 {r['p50']:.0f} ms  p90 {r['p90']:.0f} ms"
                      f"  p99 {r['p99']:.0f} ms  max {r['max']:.0f} ms  bar p99 <= {BAR_MS:.0f} ms:"
                      f" {'met' if r['p99'] <= BAR_MS and not r['missed'] else 'NOT MET'}", flush=True)
        if a.only in (None, "isolated"):
            print(f"\n(isolated) {a.isolated} changes, commit -> status ACTIVE ...", flush=True)
            res = asyncio.run(isolated(pg.url, a))
            result["isolated"] = res
            print(f"  p50 {statistics.median(res) * 1000:.0f} ms  max {max(res) * 1000:.0f} ms"
                  f"  bar <= {BAR_ACTIVE_S:.0f} s: {'met' if max(res) <= BAR_ACTIVE_S else 'NOT MET'}", flush=True)
        if n_many:
            print(f"\n(many) {n_many} zones changed at once ...", flush=True)
            res = asyncio.run(many(pg.url, secs, many_zones))
            result["many"] = res
            print(f"  committed in {res['committed_s']:.2f}s", flush=True)
            for k in KINDS:
                r = res[k]
                print(f"  {k:5s} has {r['have']}/{r['of']} new serials"
                      + (f", all by {r['all_by_s']:.2f}s after the first commit" if r["all_by_s"] is not None else ""), flush=True)
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "secondaries.json"), "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {os.path.join(OUT, 'secondaries.json')}")
    finally:
        for s in secs.values():
            peers.stop_secondary(s)
        for p in procs:
            stop(p)
        pg.close()
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
