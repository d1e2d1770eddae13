#!/usr/bin/env python3
"""Commit → answered latency: how long after a change commits in PostgreSQL minidns serves it.

  python3 bench/propagation.py                         # 60 s at 100 changes/s on a 10,000-record zone
  python3 bench/propagation.py --seconds 10 --rate 50  # quick
  python3 bench/propagation.py --records 1000000       # the same against a 1M-record zone

Starts a private embedded PostgreSQL in a fresh directory (pinned to --pg-cpu, default 1), creates
the zone prop.test. (SOA, NS, ns1 A, and h0 … h{N-1} A) with Store.create_zone, then starts
`python -m minidns serve --database-url URL --listen 127.0.0.1:PORT` from this checkout pinned to
CPU 0 and waits until it answers the last record. This process (pinned to --cpu, default 1) then
commits --rate changes per second for --seconds through Store.change, on a fixed timetable (change k
is due at start + k/rate, whatever the previous ones took; each runs as its own task over the
store's pool), one edit per change:

  25% add A at a new name     30% replace A at an existing name   15% add TXT at an existing name
  10% add TXT at a new name   20% delete the A RRset at an existing name

No two changes in flight touch the same name. For each change, t0 = when Store.change returned
(committed) and t1 = when a UDP reply first shows the new data (the new address / TXT string; for
a delete, NXDOMAIN or no A). Each pending change is queried at once, then again ~1 ms (--poll) after
each reply that still shows the old data (a lost query is re-sent after 50 ms), for at most --limit
seconds, after which it counts as a failure.

Prints count, failures, p50/p90/p99/max of t1 - t0 in ms overall and per 10-second window (by due
time), the commit time and schedule lag, and the probe's floor (the round trip of an unchanged
query). Writes bench/out/propagation.json.
Bar: p99 ≤ 20 ms, and no growth: every 10-second window's p99 ≤ 20 ms too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, free_port, mib, proc_cpu_seconds, proc_status, read_log, stop  # noqa: E402
from dbcommon import (PG, a_rrsets, address, command_line, open_store, percentile, pin_self,  # noqa: E402
                      start_server, wait_until)

ORIGIN = "prop.test."
BAR_MS = 20.0
KINDS = (("add-A-new", 25), ("replace-A", 30), ("add-TXT-existing", 15), ("add-TXT-new", 10), ("delete-A", 20))
RESEND = 0.05  # a query with no reply in this long is sent again


# --- a raw UDP DNS client --------------------------------------------------------------------

def qname(name: str) -> bytes:
    return b"".join(bytes([len(lab)]) + lab.encode() for lab in name.rstrip(".").split(".")) + b"\0"


def skip_name(msg: bytes, i: int) -> int:
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def parse(reply: bytes):
    """(rcode, [(type, rdata)] of the answer section)."""
    flags, qd, an = struct.unpack_from("!HHH", reply, 2)
    i = 12
    for _ in range(qd):
        i = skip_name(reply, i) + 4
    out = []
    for _ in range(an):
        i = skip_name(reply, i)
        rtype, _c, _t, rdlen = struct.unpack_from("!HHIH", reply, i)
        out.append((rtype, reply[i + 10:i + 10 + rdlen]))
        i += 10 + rdlen
    return flags & 0xF, out


def sync_query(port: int, name: str, qtype: int, timeout: float = 1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        qid = random.randrange(65536)
        s.send(struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + qname(name) + struct.pack("!HH", qtype, 1))
        while True:
            r = s.recv(65535)
            if r[:2] == struct.pack("!H", qid):
                return parse(r)
    except OSError:
        return None
    finally:
        s.close()


# --- the changes --------------------------------------------------------------------------------

class Names:
    """A set with O(1) random choice."""

    def __init__(self, items=()):
        self.items = list(items)
        self.pos = {x: i for i, x in enumerate(self.items)}

    def add(self, x) -> None:
        if x not in self.pos:
            self.pos[x] = len(self.items)
            self.items.append(x)

    def remove(self, x) -> None:
        i = self.pos.pop(x)
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.pos[last] = i

    def pick(self, rng: random.Random, busy: set):
        for _ in range(100):
            x = rng.choice(self.items)
            if x not in busy:
                return x
        return None


class Change:
    __slots__ = ("k", "kind", "label", "edit", "qtype", "want", "question", "due", "start", "t0", "t1",
                 "error", "done", "qid", "timer", "queries", "serial")

    def __init__(self, k, kind, label, edit, qtype, want):
        self.k, self.kind, self.label, self.edit, self.qtype, self.want = k, kind, label, edit, qtype, want
        self.question = qname(f"{label}.{ORIGIN}") + struct.pack("!HH", qtype, 1)
        self.due = self.start = self.t0 = self.t1 = None
        self.error = None
        self.done = False
        self.qid = None
        self.timer = None
        self.queries = 0
        self.serial = None

    def seen(self, reply: bytes) -> bool:
        rcode, answers = parse(reply)
        if self.want is None:  # deleted: NXDOMAIN, or no A left at the name
            return rcode == 3 or (rcode == 0 and not any(t == 1 for t, _ in answers))
        return rcode == 0 and (self.qtype, self.want) in answers


class Planner:
    """Picks each change: its kind by weight, a name no change in flight touches, and its edit."""

    def __init__(self, records: int, seed: int):
        from minidns.store.writer import Edit

        self.Edit = Edit
        self.rng = random.Random(seed)
        self.with_a = Names(f"h{i}" for i in range(records))
        self.busy: set[str] = set()
        self.kinds = [k for k, _ in KINDS]
        self.weights = [w for _, w in KINDS]

    def next(self, k: int) -> Change:
        Edit = self.Edit
        kind = self.rng.choices(self.kinds, self.weights)[0]
        label = None
        if kind in ("replace-A", "add-TXT-existing", "delete-A"):
            label = self.with_a.pick(self.rng, self.busy)
            if label is None:
                kind = "add-A-new"
        addr = address(k, first=172)  # a fresh address per change, so a new answer is unmistakable
        txt = f"chg{k}"
        if kind == "add-A-new":
            label = f"n{k}"
            ch = Change(k, kind, label, Edit("add", label, "A", 300, (addr,)), 1, socket.inet_aton(addr))
            self.with_a.add(label)
        elif kind == "replace-A":
            ch = Change(k, kind, label, Edit("replace", label, "A", 300, (addr,)), 1, socket.inet_aton(addr))
        elif kind == "add-TXT-new":
            label = f"t{k}"
            ch = Change(k, kind, label, Edit("add", label, "TXT", 300, (f'"{txt}"',)), 16, bytes([len(txt)]) + txt.encode())
        elif kind == "add-TXT-existing":
            ch = Change(k, kind, label, Edit("add", label, "TXT", 300, (f'"{txt}"',)), 16, bytes([len(txt)]) + txt.encode())
        else:
            ch = Change(k, kind, label, Edit("delete", label, "A"), 1, None)
            self.with_a.remove(label)
        self.busy.add(label)
        return ch


class Prober(asyncio.DatagramProtocol):
    """Queries every pending change until its reply shows the new data."""

    def __init__(self, poll: float, on_done):
        self.loop = asyncio.get_running_loop()
        self.poll = poll
        self.on_done = on_done
        self.by_qid: dict[int, Change] = {}
        self.qid = 0
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, ch: Change) -> None:
        if ch.done:
            return
        self.qid = (self.qid + 1) & 0xFFFF
        qid = self.qid
        if ch.qid is not None:
            self.by_qid.pop(ch.qid, None)
        ch.qid = qid
        self.by_qid[qid] = ch
        ch.queries += 1
        self.transport.sendto(struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + ch.question)
        ch.timer = self.loop.call_later(RESEND, self._lost, ch, qid)

    def _lost(self, ch: Change, qid: int) -> None:
        if not ch.done and ch.qid == qid:
            self.send(ch)

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.perf_counter()
        if len(data) < 12:
            return
        ch = self.by_qid.pop(struct.unpack_from("!H", data)[0], None)
        if ch is None or ch.done:
            return
        ch.qid = None
        if ch.timer is not None:
            ch.timer.cancel()
        if ch.seen(data):
            ch.t1 = now
            self.on_done(ch)
        else:
            self.loop.call_later(self.poll, self.send, ch)

    def error_received(self, exc) -> None:  # ICMP unreachable and the like: the resend timer covers it
        pass


async def run_changes(a, store, port: int, planner: Planner, server_pid: int) -> tuple[list[Change], float, list]:
    loop = asyncio.get_running_loop()
    rss: list[tuple[float, int]] = []  # (seconds since start, server VmRSS KiB), sampled each second
    n = int(a.seconds * a.rate)
    changes: list[Change] = []
    left = {"n": n}
    all_done = loop.create_future()

    def finish(ch: Change) -> None:
        if ch.done:
            return
        ch.done = True
        if ch.timer is not None:
            ch.timer.cancel()
        planner.busy.discard(ch.label)
        left["n"] -= 1
        if left["n"] == 0 and not all_done.done():
            all_done.set_result(None)

    def give_up(ch: Change) -> None:
        if not ch.done:
            ch.error = f"not answered within {a.limit:g}s"
            finish(ch)

    transport, prober = await loop.create_datagram_endpoint(lambda: Prober(a.poll, finish), remote_addr=("127.0.0.1", port))

    async def commit(ch: Change) -> None:
        ch.start = time.perf_counter()
        try:
            c = await store.change(ORIGIN, [ch.edit], source="bench")
        except Exception as e:  # noqa: BLE001 - counted as a failure and reported
            ch.error = f"commit failed: {type(e).__name__}: {e}"
            finish(ch)
            return
        ch.t0 = time.perf_counter()
        ch.serial = c.serial_to
        if c.serial_to == c.serial_from:
            ch.error = "the change changed nothing"
            finish(ch)
            return
        prober.send(ch)
        loop.call_later(a.limit, give_up, ch)

    tasks = set()
    t_start = time.perf_counter() + 0.05

    async def sample() -> None:
        while True:
            try:
                rss.append((time.perf_counter() - t_start, proc_status(server_pid)["VmRSS"]))
            except OSError:
                return
            await asyncio.sleep(1.0)

    sampler = asyncio.ensure_future(sample())
    for k in range(n):
        due = t_start + k / a.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        ch = planner.next(k)
        ch.due = due
        changes.append(ch)
        t = asyncio.ensure_future(commit(ch))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if n:
        await asyncio.wait_for(all_done, timeout=a.limit + 120)
    sampler.cancel()
    transport.close()
    return changes, t_start, rss


def stats(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values) if values else float("nan")}


def fmt(s: dict) -> str:
    return f"p50 {s['p50']:.2f}  p90 {s['p90']:.2f}  p99 {s['p99']:.2f}  max {s['max']:.2f}"


async def main_async(a) -> int:
    print(f"command: {command_line()}", flush=True)
    pin_self(a.cpu)
    pg = PG("propagation", keep=a.keep)
    print(f"embedded PostgreSQL in {pg.dir} (pid {pg.pid}, started in {pg.started_in:.2f}s); "
          f"{pg.pin(a.pg_cpu)} processes pinned to CPU {a.pg_cpu}", flush=True)
    proc = None
    db = None
    try:
        db = await open_store(pg.url)
        store = db.store
        from minidns.store.writer import Edit

        t = time.monotonic()
        rrsets = a_rrsets(ORIGIN, ((f"h{i}", address(i)) for i in range(a.records)))
        await store.create_zone(ORIGIN, email="hostmaster@prop.test", rrsets=rrsets,
                                edits=[Edit("add", "@", "NS", 3600, ("ns1",)), Edit("add", "ns1", "A", 3600, ("192.0.2.1",))])
        print(f"zone {ORIGIN}: {a.records} A records + SOA, NS, ns1 A created in {time.monotonic() - t:.2f}s", flush=True)

        port = free_port()
        log = os.path.join(OUT, "propagation-server.log")
        t = time.monotonic()
        extra = ("--log-level", "info", *a.server_arg)
        proc = start_server(pg.url, f"127.0.0.1:{port}", log, cpu=a.server_cpu, extra=extra)
        last, last_addr = f"h{a.records - 1}.{ORIGIN}", socket.inet_aton(address(a.records - 1))

        def ready() -> bool:
            r = sync_query(port, last, 1, 0.2)
            return bool(r) and r[0] == 0 and (1, last_addr) in r[1]

        up = wait_until(proc, ready, a.timeout, "minidns", log)
        print(f"minidns (pid {proc.pid}, CPU {a.server_cpu}) answering on 127.0.0.1:{port} after {up:.2f}s", flush=True)

        # the probe's floor: round trips of a query whose answer does not change
        floor = []
        for i in range(300):
            t1 = time.perf_counter()
            sync_query(port, f"h{i % a.records}.{ORIGIN}", 1)
            floor.append((time.perf_counter() - t1) * 1000)
        floor_s = stats(floor)

        cpu0, rss0 = proc_cpu_seconds(proc.pid), proc_status(proc.pid)["VmRSS"]
        planner = Planner(a.records, a.seed)
        print(f"committing {int(a.seconds * a.rate)} changes at {a.rate:g}/s for {a.seconds:g}s ...", flush=True)
        wall = time.monotonic()
        changes, t_start, rss = await run_changes(a, store, port, planner, proc.pid)
        wall = time.monotonic() - wall
        cpu1, st = proc_cpu_seconds(proc.pid), proc_status(proc.pid)
        server_log = read_log(log)
    finally:
        if proc is not None:
            stop(proc)
        if db is not None:
            await db.close()
        pg.close()

    ok = [c for c in changes if c.t1 is not None]
    failed = [c for c in changes if c.t1 is None]
    lat = [(c.t1 - c.t0) * 1000 for c in ok]
    commit_ms = [(c.t0 - c.start) * 1000 for c in changes if c.t0 is not None]
    lag_ms = [(c.start - c.due) * 1000 for c in changes if c.start is not None]
    overall = stats(lat)
    windows = []
    for w in range(int(-(-a.seconds // a.window))):
        lo, hi = w * a.window, (w + 1) * a.window
        vals = [(c.t1 - c.t0) * 1000 for c in ok if lo <= c.due - t_start < hi]
        fails = sum(1 for c in failed if lo <= c.due - t_start < hi)
        in_w = [kib for t, kib in rss if t < hi]
        windows.append({"from": lo, "to": hi, **stats(vals), "failures": fails, "rss_kib_end": in_w[-1] if in_w else None})
    by_kind = {k: stats([(c.t1 - c.t0) * 1000 for c in ok if c.kind == k]) for k, _ in KINDS}
    queries = sum(c.queries for c in changes)
    whole_loads = server_log.count("loading it whole") + server_log.count(": loaded serial")
    errors = [line for line in server_log.splitlines() if " ERROR " in line or " WARNING " in line]

    print(f"\n=== propagation: {len(changes)} changes to a {a.records}-record zone at {a.rate:g}/s for {a.seconds:g}s ===")
    print(f"command: {command_line()}")
    print(f"answered {len(ok)}, failures {len(failed)} (limit {a.limit:g}s)"
          + (f": e.g. {failed[0].kind} {failed[0].label}: {failed[0].error}" if failed else ""))
    print(f"commit -> answered (ms): {fmt(overall)}")
    print("per kind:")
    for k, s in by_kind.items():
        print(f"  {k:17s} n {s['n']:5d}  {fmt(s)}")
    print(f"per {a.window:g}-second window (by due time):")
    for w in windows:
        print(f"  {w['from']:4g}-{w['to']:<4g}s  n {w['n']:5d}  p50 {w['p50']:6.2f}  p99 {w['p99']:6.2f}  "
              f"max {w['max']:7.2f}  failures {w['failures']}  server VmRSS at end {mib(w['rss_kib_end'] or 0)}")
    cs, ls = stats(commit_ms), stats(lag_ms)
    print(f"Store.change duration (ms): {fmt(cs)}")
    print(f"schedule lag, start - due (ms): p50 {ls['p50']:.2f}  p99 {ls['p99']:.2f}  max {ls['max']:.2f}; "
          f"ran {wall:.1f}s for {a.seconds:g}s of timetable")
    print(f"probe floor, round trip of an unchanged query (ms): {fmt(floor_s)}; {queries} probe queries "
          f"({queries / max(1, len(changes)):.1f} per change)")
    print(f"server: CPU {cpu1 - cpu0:.1f}s over the run ({(cpu1 - cpu0) / wall:.0%} of one core), "
          f"VmRSS {mib(rss0)} -> {mib(st['VmRSS'])}; zones loaded whole during the run: {whole_loads}; "
          f"warnings/errors logged: {len(errors)}")
    for line in errors[:5]:
        print(f"  {line}")
    wp99 = [w["p99"] for w in windows if w["n"]]
    bar_p99 = overall["p99"] <= BAR_MS and not failed
    bar_growth = bool(wp99) and max(wp99) <= BAR_MS
    print(f"bar p99 <= {BAR_MS:g} ms with no failures: {'met' if bar_p99 else 'NOT MET'} (p99 {overall['p99']:.2f} ms, "
          f"{len(failed)} failures)")
    print(f"bar no growth (every window's p99 <= {BAR_MS:g} ms): {'met' if bar_growth else 'NOT MET'} "
          f"(window p99 {min(wp99) if wp99 else float('nan'):.2f} .. {max(wp99) if wp99 else float('nan'):.2f} ms; "
          f"last/first {wp99[-1] / wp99[0] if wp99 and wp99[0] else float('nan'):.2f}x)")

    os.makedirs(OUT, exist_ok=True)
    out = os.path.join(OUT, "propagation.json")
    with open(out, "w") as f:
        json.dump({
            "command": command_line(), "records": a.records, "rate": a.rate, "seconds": a.seconds, "poll_ms": a.poll * 1000,
            "count": len(changes), "answered": len(ok), "failures": len(failed),
            "failure_examples": [{"k": c.k, "kind": c.kind, "name": c.label, "error": c.error} for c in failed[:20]],
            "latency_ms": overall, "by_kind_ms": by_kind, "windows_ms": windows, "commit_ms": cs, "schedule_lag_ms": ls,
            "probe_floor_ms": floor_s, "probe_queries": queries,
            "server_args": a.server_arg, "server_rss_kib": rss,
            "server": {"cpu_seconds": cpu1 - cpu0, "rss_kib_before": rss0, "rss_kib_after": st["VmRSS"], "whole_loads": whole_loads},
            "bars": {"p99_ms": BAR_MS, "p99_met": bar_p99, "no_growth_met": bar_growth},
            "changes": [[round(c.due - t_start, 4), c.kind, c.label,
                         None if c.t1 is None else round((c.t1 - c.t0) * 1000, 3)] for c in changes],
        }, f, indent=1)
    print(f"wrote {out}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60, help="length of the timetable (default 60)")
    ap.add_argument("--rate", type=float, default=100, help="changes per second (default 100)")
    ap.add_argument("--records", type=int, default=10_000, help="A records in the zone at start (default 10000)")
    ap.add_argument("--poll", type=float, default=0.001, help="seconds between a stale reply and the next query (default 0.001)")
    ap.add_argument("--limit", type=float, default=5.0, help="seconds after commit before a change counts as failed (default 5)")
    ap.add_argument("--window", type=float, default=10.0, help="window length for the p99-over-time table (default 10)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the change mix (default 1)")
    ap.add_argument("--server-cpu", default="0", help="CPU minidns is pinned to (default 0)")
    ap.add_argument("--cpu", default="1", help="CPU this process (writer and prober) is pinned to (default 1)")
    ap.add_argument("--pg-cpu", default="1", help="CPU PostgreSQL is pinned to (default 1)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for the server to answer")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL directory")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `minidns serve`, repeat for more (e.g. --server-arg=--cache-entries --server-arg=2)")
    a = ap.parse_args()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(a))
    return uvloop.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
