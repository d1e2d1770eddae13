#!/usr/bin/env python3
"""Soak: everything at once for --minutes (default 10); no errors, p99 latency and resident memory flat.

  python3 bench/soak.py                       # 10 minutes
  python3 bench/soak.py --minutes 1           # a short check of the set-up
  python3 bench/soak.py --workers 2 --cpu 0,1 # minidns with two DNS processes

Starts a private embedded PostgreSQL with peerbench's 10,000-host zone bench.test. (`minidns zone
import` of bench/out/bench.test.zone, written by `peerbench.py --gen-zone 10000` when missing) and
the events zone cloud.test., and `minidns serve --database-url` with its API and the secondaries in
its configuration (NOTIFY on). minidns is pinned to CPU 0 (--cpu); PostgreSQL, the secondaries,
dnsperf and every load generator and probe of this script run on CPU 1 (--other-cpu), as in the
other benches. Then, all at the same time for --minutes:

- dnsperf over UDP at full rate (peerbench's settings: 16 clients, 200 outstanding, the standard
  query mix bench/out/queries.txt) and dnsperf over TCP (-m tcp, 4 clients, 40 outstanding), each
  as consecutive --interval-second runs, so qps, lost and response codes come per interval; both
  at nice 10 (--dnsperf-nice): unthrottled, they take all the CPU 1 time that PostgreSQL, the
  secondaries and the probe leave, and do not starve them (they share a CPU only because the
  machine has two);
- a latency probe in its own process: --probe-rate queries/s over UDP and as many over one TCP
  connection (names and types from the same mix), each timed; its p50/p99 per interval are the
  latency figures (dnsperf only gives the full-rate pressure: it prints no percentiles);
- --changes API changes per second (default 100) to bench.test. through the Designate v2 API
  (admin token): in turn a POST of a new recordset, a PUT of an existing one (new address) and a
  DELETE of the oldest, on a fixed timetable by concurrent tasks, so the zone's size stays the
  same (a pool of 300 recordsets made beforehand; an update or delete finding no recordset free,
  which happens only when creates fail, is counted and skipped); status and latency of each (30 s
  client timeout), and the latency minidns logs for it;
- --events Nova events per second (default 20) to /v1/events (ingest token): in turn
  compute.instance.create.end of a new instance and compute.instance.delete.end of the instance
  created 15 s before (150 made beforehand), into cloud.test.;
- the secondaries (--secondaries, default Knot, NSD, BIND and PowerDNS from the Debian packages,
  tests/interop/secondaries.py, default settings) hold bench.test. and cloud.test., get NOTIFY and
  keep current by IXFR; every second each one's SOA serial is compared with minidns's (asked every
  0.2 s): the serial lag (serials behind) and the time lag (seconds since minidns first served a
  serial newer than the one the secondary serves);
- every 30 s, an AXFR of both zones from minidns and from each secondary (dnspython, in a separate
  process): serial, record count, time, and the records in which each secondary differs from
  minidns next to its serial lag (none allowed at equal serials);
- every --interval seconds: VmRSS of minidns (and of its worker processes), of PostgreSQL (all its
  processes), CPU use of both CPUs.

After the load stops: every secondary must reach minidns's last serials within 120 s and then hold
exactly what minidns serves (full AXFR compared), and the transfers each one logged (AXFR/IXFR)
are counted. Errors (must be 0): dnsperf lost queries or response codes other than NOERROR and
NXDOMAIN, probe timeouts or such codes, API or event replies other than 2xx (or an event not
applied), AXFR failures from minidns, a secondary differing at an equal serial or at the end,
ERROR lines or tracebacks in minidns's log. Verdict "flat": minidns's RSS at the end within 5% of
its RSS after the first minute (warm-up), and the probe's UDP and TCP p99 in the last minute at
most 1.5x the second minute's.

Writes bench/out/soak.json (every series), bench/out/soak.png (the plot: p99 latency, RSS, qps,
API/event latency, secondary lag and CPU use by role over time; matplotlib, the `bench` extra) and
minidns's log bench/out/soak-server.log (--name changes "soak").
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import copy
import datetime
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "interop"))
from common import OUT, ROOT, children, free_port, peerbench_path, proc_cpu_seconds, proc_name, read_log, stop  # noqa: E402
from dbcommon import PG, command_line, open_store, percentile, pin_self, start_server, wait_until  # noqa: E402

ZONE, EZONE = "bench.test.", "cloud.test."
ADMIN, INGEST = "bench-soak-admin-0123456789", "bench-soak-ingest-0123456789"
FIXTURES = os.path.join(ROOT, "tests", "admin", "events")
KINDS = ("knot", "nsd", "bind", "pdns")
SOURCES = {"knot": "127.0.0.11", "nsd": "127.0.0.12", "bind": "127.0.0.13", "pdns": "127.0.0.14"}  # their transfers come from
POOL, INSTANCES = 300, 150  # recordsets and instances made before the timed run
OK_RCODES = {"NOERROR", "NXDOMAIN"}
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


# --- small DNS helpers ----------------------------------------------------------------------

def qwire(name: str, qtype: int, qid: int) -> bytes:
    wire = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".") if p) + b"\0"
    return struct.pack("!6H", qid, 0, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)


QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33, "ANY": 255}


def _skip_name(data: bytes, off: int) -> int:
    while data[off]:
        if data[off] & 0xC0 == 0xC0:
            return off + 2
        off += data[off] + 1
    return off + 1


def reply_serial(data: bytes) -> int | None:
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
        await loop.sock_sendto(sock, qwire(zone, 6, qid), ("127.0.0.1", port))
        while True:
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)
            if struct.unpack_from("!H", data)[0] == qid:
                return reply_serial(data)
    except (asyncio.TimeoutError, OSError, IndexError, struct.error):
        return None
    finally:
        sock.close()


def serial_diff(a: int, b: int) -> int:
    """a - b in RFC 1982 arithmetic (positive when a is newer)."""
    d = (a - b) & 0xFFFFFFFF
    return d - (1 << 32) if d >= 0x80000000 else d


# --- the latency probe (a process of its own) ----------------------------------------------

def _probe_thread(proto: str, port: int, mix: list, rate: float, t_end: float, q, timeout: float = 1.0) -> None:
    rng = random.Random(proto)
    sock = None
    batch, flushed = [], time.monotonic()

    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def recv_exact(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    start = time.monotonic()
    i = 0
    while True:
        due = start + i / rate
        if due >= t_end:
            break
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        i += 1
        name, qtype = rng.choice(mix)
        qid = rng.getrandbits(16)
        msg = qwire(name, qtype, qid)
        t0 = time.monotonic()
        lat, rcode = None, None
        try:
            if proto == "udp":
                if sock is None:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    sock.connect(("127.0.0.1", port))
                sock.settimeout(timeout)
                sock.send(msg)
                deadline = t0 + timeout
                while True:
                    sock.settimeout(max(0.001, deadline - time.monotonic()))
                    data = sock.recv(65535)
                    if struct.unpack_from("!H", data)[0] == qid:
                        break
            else:
                if sock is None:
                    sock = connect()
                    t0 = time.monotonic()  # the connection's set-up is not the query's latency
                sock.settimeout(timeout)
                sock.sendall(struct.pack("!H", len(msg)) + msg)
                n = struct.unpack("!H", recv_exact(sock, 2))[0]
                data = recv_exact(sock, n)
                if struct.unpack_from("!H", data)[0] != qid:
                    raise ConnectionError("id mismatch")
            lat = (time.monotonic() - t0) * 1000
            rcode = data[3] & 0xF
        except (OSError, ConnectionError, struct.error):
            if proto == "tcp" and sock is not None:
                sock.close()
                sock = None
        batch.append((round(t0, 4), lat, rcode))
        if time.monotonic() - flushed >= 1.0:
            q.put((proto, batch))
            batch, flushed = [], time.monotonic()
    q.put((proto, batch))
    if sock is not None:
        sock.close()


def probe_main(port: int, mix: list, rate: float, t_end: float, q) -> None:
    threads = [threading.Thread(target=_probe_thread, args=(p, port, mix, rate, t_end, q)) for p in ("udp", "tcp")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q.put(("done", []))


# --- AXFR rounds (a process of its own, so that parsing does not stall the load generators) --

def axfr_records(host: str, port: int, zone: str, timeout: float = 30.0) -> tuple[int | None, set]:
    """`zone` by a full AXFR with kdig (fast enough that no server drops it as a slow reader, as
    Knot does after its tcp-io-timeout with a Python client on a busy CPU), as a set of
    normalised "name ttl type rdata" lines, and its SOA serial."""
    r = subprocess.run(["kdig", "-p", str(port), f"@{host}", "AXFR", zone, "+nocomments", "+nostats", f"+timeout={int(timeout)}",
                        "+retry=0"], capture_output=True, text=True, timeout=timeout * 2)  # fmt: skip
    out, serial, soa_seen = set(), None, 0
    for line in r.stdout.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        parts = line.split()
        if len(parts) < 4:
            continue
        name, ttl, _cls, rtype, rdata = parts[0].lower(), parts[1], parts[2], parts[3], " ".join(parts[4:]).lower()
        if rtype == "SOA" and name == zone.lower():
            soa_seen += 1
            serial = int(parts[6])
        out.add(f"{name} {ttl} {rtype} {rdata}")
    if r.returncode != 0 or soa_seen < 2:
        raise RuntimeError(f"kdig AXFR {zone} from {host}@{port}: status {r.returncode}, {soa_seen} SOA: "
                           f"{(r.stderr or r.stdout)[-300:]}")
    return serial, out


def axfr_round(primary_port: int, secondaries: dict, zones: list[str]) -> dict:
    """AXFR each zone from minidns, then from each secondary: serial, count, seconds, and the
    records in which each secondary differs from minidns."""
    res = {}
    for zone in zones:
        r = {}
        t = time.monotonic()
        try:
            p_serial, p_set = axfr_records("127.0.0.1", primary_port, zone)
            r["minidns"] = {"serial": p_serial, "records": len(p_set), "seconds": round(time.monotonic() - t, 3)}
        except Exception as e:  # noqa: BLE001
            r["minidns"] = {"error": repr(e)[:300]}
            p_set, p_serial = None, None
        for kind, port in secondaries.items():
            t = time.monotonic()
            try:
                s_serial, s_set = axfr_records("127.0.0.1", port, zone)
                x = {"serial": s_serial, "records": len(s_set), "seconds": round(time.monotonic() - t, 3)}
                if p_set is not None:
                    x["serial_lag"] = serial_diff(p_serial, s_serial)
                    x["only_minidns"] = len(p_set - s_set)
                    x["only_secondary"] = len(s_set - p_set)
                    # the SOA differs whenever the serial does; count the other records
                    soa = lambda ss: {s for s in ss if s.startswith(zone.lower() + " ") and " SOA " in s}  # noqa: E731
                    x["differing"] = len((p_set ^ s_set) - soa(p_set) - soa(s_set))
                r[kind] = x
            except Exception as e:  # noqa: BLE001
                r[kind] = {"error": repr(e)[:300]}
        res[zone] = r
    return res


# --- dnsperf -----------------------------------------------------------------------------

def dnsperf_figures(out: str) -> dict:
    fig: dict = {}
    for key, rx in (("sent", r"Queries sent:\s+(\d+)"), ("completed", r"Queries completed:\s+(\d+)"),
                    ("lost", r"Queries lost:\s+(\d+)"), ("qps", r"Queries per second:\s+([0-9.]+)"),
                    ("run_s", r"Run time \(s\):\s+([0-9.]+)"),
                    ("latency_avg_ms", r"Average Latency \(s\):\s+([0-9.]+)"),
                    ("latency_max_ms", r"Average Latency \(s\):.*max ([0-9.]+)")):  # fmt: skip
        m = re.search(rx, out)
        fig[key] = float(m.group(1)) if m else None
    for k in ("latency_avg_ms", "latency_max_ms"):
        if fig[k] is not None:
            fig[k] = round(fig[k] * 1000, 3)
    m = re.search(r"Response codes:\s+(.*)", out)
    fig["rcodes"] = {k: int(v) for k, v in re.findall(r"([A-Z]+) (\d+)", m.group(1))} if m else {}
    return fig


def dnsperf_loop(proto: str, cmd: list[str], seconds: int, t0: float, t_end: float, runs: list) -> None:
    """Consecutive `seconds`-long dnsperf runs until t_end; each run's figures appended to runs."""
    while True:
        start = time.monotonic()
        left = t_end - start
        if left < 2:
            break
        length = int(min(seconds, round(left)))
        r = subprocess.run(cmd + ["-l", str(length)], capture_output=True, text=True)
        fig = dnsperf_figures(r.stdout)
        fig.update(proto=proto, start=round(start - t0, 2), end=round(time.monotonic() - t0, 2), length=length)
        if r.returncode != 0 or fig["sent"] is None:
            fig["failed"] = (r.stdout + r.stderr)[-500:]
        runs.append(fig)


# --- process figures ---------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                vals = [int(v) for v in parts[1:9]]
                idle = vals[3] + vals[4]
                out[parts[0]] = (sum(vals) - idle, sum(vals))
    return out


# --- the soak itself ---------------------------------------------------------------------

def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            total += proc_cpu_seconds(p)
        except (OSError, ValueError, IndexError):
            pass
    return total


class Soak:
    def __init__(self, a, base: str, dns_port: int, secs: dict, zone_ids: dict, pid: int, pg_pid: int, t0: float):
        self.a, self.base, self.port, self.secs, self.zone_ids = a, base, dns_port, secs, zone_ids
        self.pid, self.pg_pid, self.t0 = pid, pg_pid, t0
        self.t_end = t0 + a.minutes * 60
        self.api: list[tuple] = []  # (t, kind, status, ms, late ms)
        self.events: list[tuple] = []  # (t, kind, status, ms, outcome)
        self.primary_seen = {z: [] for z in (ZONE, EZONE)}  # (serial, first seen t)
        self.primary_timeouts = 0
        self.lag: dict = {k: {z: [] for z in (ZONE, EZONE)} for k in secs}  # (t, serial lag, seconds)
        self.sec_timeouts = {k: 0 for k in secs}
        self.axfr: list[dict] = []
        self.samples: list[dict] = []
        self.pool: collections.deque = collections.deque()
        self.busy: set = set()
        self.skipped = {"update": 0, "delete": 0}  # no recordset of the pool free to change
        self.pg_sessions: list[tuple] = []  # (t, {what: count}) every second
        self.pg_url = ""
        self.failures: list[str] = []
        self.template = {k: json.load(open(os.path.join(FIXTURES, f"nova_compute.instance.{k}.end.json")))
                         for k in ("create", "delete")}  # fmt: skip

    def now(self) -> float:
        return time.monotonic() - self.t0

    # API changes
    async def _req(self, s, method: str, path: str, body: dict | None, kind: str, due: float, log: list, token=ADMIN):
        headers = {"X-Auth-Token": token}
        if token == ADMIN:
            headers["X-Auth-All-Projects"] = "true"
        t = time.monotonic()
        late = (t - due) * 1000
        payload, status = None, 0
        try:
            async with s.request(method, self.base + path, data=None if body is None else json.dumps(body),
                                 headers=headers) as r:  # fmt: skip
                status = r.status
                text = await r.text()
                try:
                    payload = json.loads(text) if text else None
                except ValueError:
                    payload = None
        except Exception as e:  # noqa: BLE001
            text = repr(e)
        ms = (time.monotonic() - t) * 1000
        if not 200 <= status < 300 and len(self.failures) < 50:
            self.failures.append(f"{self.now():.1f}s {kind} {method} {path}: {status} {text[:200]}")
        return t - self.t0, status, ms, late, payload

    async def create_rs(self, s, i: int, due: float, record: bool = True):
        zid = self.zone_ids[ZONE]
        body = {"name": f"s{i}.{ZONE}", "type": "A", "records": [f"198.18.{(i >> 8) & 255}.{i & 255}"], "ttl": 60}
        t, status, ms, late, p = await self._req(s, "POST", f"/v2/zones/{zid}/recordsets", body, "create", due, self.api)
        if 200 <= status < 300 and p:
            self.pool.append(p["id"])
        if record:
            self.api.append((t, "create", status, ms, late))

    async def update_rs(self, s, i: int, due: float):
        live = [x for x in list(self.pool)[len(self.pool) // 2:] if x not in self.busy]
        if not live:  # only when creates fail or time out: skipped, so that the zone does not grow
            self.skipped["update"] += 1
            return
        rid = random.choice(live)
        self.busy.add(rid)
        try:
            body = {"records": [f"198.19.{(i >> 8) & 255}.{i & 255}"]}
            t, status, ms, late, _ = await self._req(s, "PUT", f"/v2/zones/{self.zone_ids[ZONE]}/recordsets/{rid}", body,
                                                     "update", due, self.api)  # fmt: skip
        finally:
            self.busy.discard(rid)
        self.api.append((t, "update", status, ms, late))

    async def delete_rs(self, s, i: int, due: float):
        rid = None
        for _ in range(len(self.pool)):
            x = self.pool.popleft()
            if x not in self.busy:
                rid = x
                break
            self.pool.append(x)
        if rid is None:
            self.skipped["delete"] += 1
            return
        t, status, ms, late, _ = await self._req(s, "DELETE", f"/v2/zones/{self.zone_ids[ZONE]}/recordsets/{rid}", None,
                                                 "delete", due, self.api)  # fmt: skip
        self.api.append((t, "delete", status, ms, late))

    async def changes(self, s):
        tasks, i, rate = [], 0, self.a.changes
        ops = (self.create_rs, self.update_rs, self.delete_rs)
        while True:
            due = self.t0 + i / rate
            if due >= self.t_end:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.ensure_future(ops[i % 3](s, POOL + i, due)))
            i += 1
            if len(tasks) > 1000:
                tasks = [t for t in tasks if not t.done()]
        await asyncio.gather(*tasks)

    # events
    def event(self, kind: str, n: int) -> dict:
        ev = copy.deepcopy(self.template[kind])
        ev["message_id"] = str(uuid.uuid4())
        ev["timestamp"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        p = ev["payload"]
        p["instance_id"] = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"vm{n}.soak"))
        p["hostname"] = p["display_name"] = f"vm{n}"
        if kind == "create":
            p["fixed_ips"] = [{**p["fixed_ips"][0], "address": f"10.{100 + ((n >> 16) & 63)}.{(n >> 8) & 255}.{n & 255}",
                               "version": 4}]  # fmt: skip
        return ev

    async def post_event(self, s, kind: str, n: int, due: float, record: bool = True):
        t, status, ms, late, p = await self._req(s, "POST", "/v1/events", self.event(kind, n), f"event {kind}", due,
                                                 self.events, INGEST)  # fmt: skip
        outcome = (p or {}).get("status") if isinstance(p, dict) else None
        if record:
            self.events.append((t, kind, status, ms, outcome, late))
        elif not 200 <= status < 300:
            raise RuntimeError(f"seeding event {kind} vm{n}: {status} {p}")

    async def event_stream(self, s):
        tasks, j, rate = [], 0, self.a.events
        while True:
            due = self.t0 + j / rate
            if due >= self.t_end:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if j % 2 == 0:
                tasks.append(asyncio.ensure_future(self.post_event(s, "create", INSTANCES + j // 2, due)))
            else:
                tasks.append(asyncio.ensure_future(self.post_event(s, "delete", j // 2, due)))
            j += 1
            if len(tasks) > 1000:
                tasks = [t for t in tasks if not t.done()]
        await asyncio.gather(*tasks)

    # serials
    async def poll_primary(self):
        while time.monotonic() < self.t_end:
            for z in (ZONE, EZONE):
                serial = await ask_serial(self.port, z)
                if serial is None:
                    self.primary_timeouts += 1
                    continue
                seen = self.primary_seen[z]
                if not seen or serial_diff(serial, seen[-1][0]) > 0:
                    seen.append((serial, self.now()))
            await asyncio.sleep(0.2)

    def lag_seconds(self, zone: str, serial: int, t: float) -> float:
        """Seconds since minidns first served a serial newer than `serial` (0 when it is current)."""
        for s, ts in self.primary_seen[zone]:
            if serial_diff(s, serial) > 0:
                return max(0.0, t - ts)
        return 0.0

    async def poll_secondaries(self):
        k_next = 1
        while time.monotonic() < self.t_end:
            await asyncio.sleep(max(0.0, self.t0 + k_next - time.monotonic()))
            k_next += 1
            for kind, sec in self.secs.items():
                for z in (ZONE, EZONE):
                    serial = await ask_serial(sec.port, z)
                    t = self.now()
                    if serial is None:
                        self.sec_timeouts[kind] += 1
                        continue
                    seen = self.primary_seen[z]
                    primary = seen[-1][0] if seen else serial
                    self.lag[kind][z].append((round(t, 2), max(0, serial_diff(primary, serial)),
                                              round(self.lag_seconds(z, serial, t), 2)))

    async def axfr_rounds(self, pool):
        loop = asyncio.get_running_loop()
        k = 1
        ports = {kind: sec.port for kind, sec in self.secs.items()}
        while True:
            due = self.t0 + k * self.a.axfr_every
            if due >= self.t_end:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            t = self.now()
            res = await loop.run_in_executor(pool, axfr_round, self.port, ports, [ZONE, EZONE])
            res["t"] = round(t, 1)
            self.axfr.append(res)
            k += 1

    async def sampler(self):
        k = 1
        last_cpu = cpu_times()
        last_g = self.cpu_seconds()
        while True:
            due = self.t0 + k * self.a.interval
            if due > self.t_end + 0.5:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            pids = tree(self.pid)
            cpu = cpu_times()
            g_now = self.cpu_seconds()
            dt = self.a.interval
            busy = {c: round(100 * (cpu[c][0] - last_cpu[c][0]) / max(1, cpu[c][1] - last_cpu[c][1]), 1) for c in cpu}
            ours = {g: round(max(0.0, 100 * (g_now[g] - last_g.get(g, g_now[g])) / dt), 1) for g in g_now}
            machine = sum(cpu[c][0] - last_cpu[c][0] for c in cpu) / os.sysconf("SC_CLK_TCK") / dt * 100
            ours["others (not this bench)"] = round(max(0.0, machine - sum(ours.values())), 1)
            sample = {"t": round(self.now(), 1), "rss_kib": sum(rss_kib(p) for p in pids), "processes": len(pids),
                      "pg_rss_kib": sum(rss_kib(p) for p in tree(self.pg_pid)), "cpu_busy_pct": busy,
                      "cpu_pct_by": ours, "minidns_cpu_pct": ours["minidns"],
                      "loadavg": open("/proc/loadavg").read().split()[0]}  # fmt: skip
            last_cpu, last_g = cpu, g_now
            self.samples.append(sample)
            lo = sample["t"] - self.a.interval
            api = [x for x in self.api if lo <= x[0] < sample["t"]]
            evs = [x for x in self.events if lo <= x[0] < sample["t"]]
            bad = sum(1 for x in api + evs if not 200 <= x[2] < 300)
            lags = {kind: max([x[2] for z in (ZONE, EZONE) for x in self.lag[kind][z] if x[0] >= lo] or [0]) for kind in self.secs}
            print(f"  t={sample['t']:5.0f}s  minidns RSS {sample['rss_kib'] / 1024:6.1f} MiB  PG {sample['pg_rss_kib'] / 1024:6.1f} MiB"
                  f"  CPU0 {busy.get('cpu0', 0):3.0f}% CPU1 {busy.get('cpu1', 0):3.0f}% (% of a CPU: "
                  f"{', '.join(f'{g} {v:.0f}' for g, v in ours.items())})  API {len(api)} (p99 "
                  f"{percentile([x[3] for x in api], 99):.0f} ms)  events {len(evs)} (p99 {percentile([x[3] for x in evs], 99):.0f} ms)"
                  f"  non-2xx {bad}  lag s {lags}", flush=True)  # fmt: skip
            k += 1

    async def pg_activity(self):
        """Every second, minidns's PostgreSQL sessions by what they do: running a statement
        ("active"), waiting for a lock ("lock wait": the zone's row, which each write to a zone
        takes), or in a transaction waiting for minidns's next statement ("idle in transaction")."""
        import asyncpg

        conn = await asyncpg.connect(self.pg_url)
        try:
            k = 1
            while True:
                due = self.t0 + k
                if due >= self.t_end:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                k += 1
                rows = await conn.fetch(
                    "SELECT state, wait_event_type FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid() AND datname = current_database()")  # fmt: skip
                c = {"sessions": len(rows), "active": 0, "lock wait": 0, "idle in transaction": 0}
                for r in rows:
                    if r["wait_event_type"] == "Lock":
                        c["lock wait"] += 1
                    elif r["state"] == "active":
                        c["active"] += 1
                    elif r["state"] and r["state"].startswith("idle in transaction"):
                        c["idle in transaction"] += 1
                self.pg_sessions.append((round(self.now(), 1), c))
        finally:
            await conn.close()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by role: minidns (its workers too), PostgreSQL, each secondary
        (their whole process trees), and the load generators: this process, the dnsperf runs that
        ended (waited for) and the live probe and AXFR worker processes."""
        out = {"minidns": tree_cpu(self.pid), "postgresql": tree_cpu(self.pg_pid)}
        taken = set(tree(self.pid)) | set(tree(self.pg_pid))
        for kind, sec in self.secs.items():
            out[kind] = tree_cpu(sec.proc.pid)
            taken |= set(tree(sec.proc.pid))
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        gen = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        for p in set(tree(os.getpid())) - taken - {os.getpid()}:
            if proc_name(p) != "dnsperf":  # a live dnsperf is counted once it ends (RUSAGE_CHILDREN)
                try:
                    gen += proc_cpu_seconds(p)
                except (OSError, ValueError, IndexError):
                    pass
        out["load generators"] = gen
        return out

    async def run(self, pool):
        import aiohttp

        conn = aiohttp.TCPConnector(limit=128)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30),
                                         headers={"Content-Type": "application/json"}) as s:  # fmt: skip
            await asyncio.gather(self.changes(s), self.event_stream(s), self.poll_primary(), self.poll_secondaries(),
                                 self.axfr_rounds(pool), self.sampler(), self.pg_activity())  # fmt: skip


async def own_zone(url: str) -> None:
    """`minidns zone import` makes a zone of no project (project_id ''), whose quotas — Designate's
    defaults, 500 recordsets a zone, which the 10,000-host zone is past already — /v2/quotas/{project}
    cannot address; they are lifted here through the store (minidns.services.policy.set_quotas)."""
    from minidns.services import policy

    db = await open_store(url)
    try:
        await policy.set_quotas(db.pool, "", {"zones": -1, "zone_recordsets": -1, "zone_records": -1, "recordset_records": -1})
    finally:
        await db.close()


async def prepare(base: str, url: str, zone_ids: dict) -> None:
    """Zone ids, no quotas in the way, the recordset pool and the first instances."""
    import aiohttp

    from minidns.store.writer import Edit

    db = await open_store(url)
    try:
        await db.store.create_zone(EZONE, email="h@cloud.test", project_id="bench", edits=[Edit("add", "@", "NS", None, ("ns1.bench.test.",))])
    finally:
        await db.close()
    h = {"X-Auth-Token": ADMIN, "X-Auth-All-Projects": "true"}
    async with aiohttp.ClientSession(headers=h) as s:
        async with s.get(f"{base}/v2/zones?limit=100") as r:
            zones = (await r.json())["zones"]
        for z in zones:
            zone_ids[z["name"]] = z["id"]
        for proj in {z.get("project_id") for z in zones if z.get("project_id")} | {"bench"}:
            body = {"zones": -1, "zone_recordsets": -1, "zone_records": -1, "recordset_records": -1}
            async with s.patch(f"{base}/v2/quotas/{proj}", json=body) as r:
                if r.status >= 300:
                    print(f"  (quotas of {proj} not raised: {r.status} {await r.text()})", flush=True)


async def seed(soak: Soak) -> None:
    import aiohttp

    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as s:
        sem = asyncio.Semaphore(16)

        async def one(coro):
            async with sem:
                await coro

        await asyncio.gather(*(one(soak.create_rs(s, i, time.monotonic(), record=False)) for i in range(POOL)))
        await asyncio.gather(*(one(soak.post_event(s, "create", n, time.monotonic(), record=False)) for n in range(INSTANCES)))
    if len(soak.pool) != POOL:
        raise RuntimeError(f"only {len(soak.pool)} of {POOL} recordsets made: {soak.failures[:5]}")
    soak.failures.clear()


# --- figures -----------------------------------------------------------------------------

API_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO minidns\.api: \S+ (\w+) (\S+) -> (\d+) in ([0-9.]+) ms")
XFR_LINES = (("IXFR", re.compile(r"IXFR of (\S+) \d+ -> \d+ to ([0-9.]+):")),
             ("IXFR answered with the whole zone", re.compile(r"IXFR of (\S+) from serial \d+ to ([0-9.]+): the whole zone")),
             ("AXFR", re.compile(r"AXFR of (\S+) serial \d+ to ([0-9.]+):")))  # fmt: skip


def server_api_times(log: str, wall_t0: float) -> list[tuple]:
    """(t, "api" | "events", status, ms) of each request minidns's access log shows."""
    out = []
    for line in log.splitlines():
        m = API_LINE.match(line)
        if m:
            wall = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(m.group(2)) / 1000
            kind = "events" if m.group(4).startswith("/v1/events") else "api"
            out.append((wall - wall_t0, kind, int(m.group(5)), float(m.group(6))))
    return out


def server_transfers(log: str) -> dict:
    """Transfers minidns served, per client (by the source address each secondary uses) and kind."""
    by_addr = {v: k for k, v in SOURCES.items()}
    out: dict = {}
    for line in log.splitlines():
        if "minidns.xfr" not in line:
            continue
        for kind, rx in XFR_LINES:
            m = rx.search(line)
            if m:
                who = by_addr.get(m.group(2), "soak AXFR checks" if m.group(2) == "127.0.0.1" else m.group(2))
                c = out.setdefault(who, {})
                c[kind] = c.get(kind, 0) + 1
                break
    return out

def stats(ms: list[float]) -> dict:
    return {"n": len(ms), "p50": round(percentile(ms, 50), 3), "p99": round(percentile(ms, 99), 3),
            "max": round(max(ms), 3) if ms else None}


def figures(soak: Soak, probe: dict, runs: list, a, server_api: list) -> dict:
    iv, total = a.interval, a.minutes * 60
    n_iv = int(round(total / iv))
    series = []
    for k in range(n_iv):
        lo, hi = k * iv, (k + 1) * iv
        row: dict = {"t": hi}
        for proto in ("udp", "tcp"):
            xs = [x for x in probe[proto] if lo <= x[0] < hi]
            lat = [x[1] for x in xs if x[1] is not None]
            row[f"probe_{proto}"] = {**stats(lat), "sent": len(xs), "timeouts": sum(1 for x in xs if x[1] is None),
                                     "bad_rcodes": sum(1 for x in xs if x[2] is not None
                                                       and RCODE_NAMES.get(x[2], str(x[2])) not in OK_RCODES)}  # fmt: skip
            run = [r for r in runs if r["proto"] == proto and lo <= r["start"] < hi]
            row[f"dnsperf_{proto}"] = ({k2: run[0].get(k2) for k2 in ("qps", "sent", "completed", "lost", "rcodes",
                                                                         "latency_avg_ms", "start", "length")}
                                       if run else None)  # fmt: skip
        for name, rows in (("api", soak.api), ("events", soak.events)):
            xs = [x for x in rows if lo <= x[0] < hi]
            row[name] = {**stats([x[3] for x in xs]), "non_2xx": sum(1 for x in xs if not 200 <= x[2] < 300),
                         "late_max_ms": round(max([x[-1] for x in xs] or [0]), 1)}
        for name in ("api", "events"):
            xs = [x for x in server_api if x[1] == name and lo <= x[0] < hi]
            row[f"{name}_server"] = stats([x[3] for x in xs])
        pgs = [c for t, c in soak.pg_sessions if lo <= t < hi]
        row["pg_sessions_mean"] = {k: round(sum(c[k] for c in pgs) / len(pgs), 2) for k in pgs[0]} if pgs else {}
        row["lag_s"] = {kind: round(max([x[2] for z in (ZONE, EZONE) for x in soak.lag[kind][z] if lo <= x[0] < hi] or [0]), 2)
                        for kind in soak.secs}  # fmt: skip
        row["lag_serials"] = {kind: max([x[1] for z in (ZONE, EZONE) for x in soak.lag[kind][z] if lo <= x[0] < hi] or [0])
                              for kind in soak.secs}  # fmt: skip
        sm = next((s for s in soak.samples if abs(s["t"] - hi) < iv / 2), None)
        if sm:
            row.update(rss_mib=round(sm["rss_kib"] / 1024, 1), pg_rss_mib=round(sm["pg_rss_kib"] / 1024, 1),
                       cpu_busy_pct=sm["cpu_busy_pct"], cpu_pct_by=sm["cpu_pct_by"], loadavg=sm["loadavg"])
        series.append(row)
    minutes = []
    for m in range(int(total // 60) or 1):
        lo, hi = m * 60, min(total, (m + 1) * 60)
        row = {"minute": m + 1}
        for proto in ("udp", "tcp"):
            row[f"probe_{proto}"] = stats([x[1] for x in probe[proto] if lo <= x[0] < hi and x[1] is not None])
        row["api"] = stats([x[3] for x in soak.api if lo <= x[0] < hi])
        row["events"] = stats([x[3] for x in soak.events if lo <= x[0] < hi])
        for name in ("api", "events"):
            row[f"{name}_server"] = stats([x[3] for x in server_api if x[1] == name and lo <= x[0] < hi])
        minutes.append(row)
    return {"series": series, "minutes": minutes}


def plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = res["series"]
    t = [r["t"] / 60 for r in s]
    fig, ax = plt.subplots(6, 1, figsize=(8, 14), sharex=True)
    for proto, c in (("udp", "tab:blue"), ("tcp", "tab:orange")):
        ax[0].plot(t, [r[f"probe_{proto}"]["p99"] for r in s], color=c, label=f"{proto.upper()} p99")
        ax[0].plot(t, [r[f"probe_{proto}"]["p50"] for r in s], color=c, ls="--", label=f"{proto.upper()} p50")
    ax[0].set_ylabel("probe latency (ms)")
    ax[0].set_yscale("log")
    ax[0].set_title(f"minidns soak: {res['minutes_run']:g} min, {res['started_utc']} UTC", fontsize=10)
    ax[1].plot(t, [r.get("rss_mib") for r in s], color="tab:green", label="minidns VmRSS")
    ax[1].plot(t, [r.get("pg_rss_mib") for r in s], color="tab:gray", ls="--", label="PostgreSQL (all processes)")
    ax[1].set_ylabel("resident memory (MiB)")
    ax[1].set_ylim(bottom=0)
    for proto, c in (("udp", "tab:blue"), ("tcp", "tab:orange")):
        ax[2].plot(t, [(r[f"dnsperf_{proto}"] or {}).get("qps") for r in s], color=c, label=f"dnsperf {proto.upper()}")
    ax[2].set_ylabel("queries/s")
    ax[2].set_ylim(bottom=0)
    ax[3].plot(t, [r["api"]["p99"] for r in s], color="tab:red", label="API change p99")
    ax[3].plot(t, [r["api"]["p50"] for r in s], color="tab:red", ls="--", label="API change p50")
    ax[3].plot(t, [r["events"]["p99"] for r in s], color="tab:purple", label="event POST p99")
    ax[3].plot(t, [r["events"]["p50"] for r in s], color="tab:purple", ls="--", label="event POST p50")
    ax[3].set_ylabel("HTTP latency (ms)")
    ax[3].set_yscale("log")
    for kind in res["secondaries"]:
        ax[4].plot(t, [r["lag_s"].get(kind) for r in s], label=kind)
    ax[4].set_ylabel("secondary lag, max (s)")
    roles = list((s[0].get("cpu_pct_by") or {}).keys()) if s else []
    for role in roles:
        ax[5].plot(t, [(r.get("cpu_pct_by") or {}).get(role) for r in s], label=role)
    ax[5].set_ylabel("CPU (% of one CPU)")
    ax[5].set_xlabel("minutes")
    for x in ax:
        x.grid(alpha=0.3)
        x.legend(fontsize=7, loc="upper right", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def summarize(res: dict, a) -> list[str]:
    s, mins = res["series"], res["minutes"]
    lines = []
    tot = res["totals"]
    lines.append(f"dnsperf UDP: {tot['dnsperf_udp']['completed']:,} queries answered, {tot['dnsperf_udp']['qps']:,.0f} qps on average, "
                 f"lost {tot['dnsperf_udp']['lost']}, rcodes {tot['dnsperf_udp']['rcodes']}")
    lines.append(f"dnsperf TCP: {tot['dnsperf_tcp']['completed']:,} queries answered, {tot['dnsperf_tcp']['qps']:,.0f} qps on average, "
                 f"lost {tot['dnsperf_tcp']['lost']}, rcodes {tot['dnsperf_tcp']['rcodes']}")
    for proto in ("udp", "tcp"):
        p = tot[f"probe_{proto}"]
        lines.append(f"probe {proto.upper()}: {p['n']:,} queries, p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms, max {p['max']:.1f} ms, "
                     f"timeouts {p['timeouts']}, bad rcodes {p['bad_rcodes']}")
    for name in ("api", "events"):
        p = tot[name]
        lines.append(f"{name}: {p['n']:,} requests ({p['by_kind']}), {p['rate']:.1f}/s, p50 {p['p50']:.1f} ms, p99 {p['p99']:.1f} ms, "
                     f"max {p['max']:.0f} ms, non-2xx {p['non_2xx']}, outcomes {p.get('outcomes', '')}; "
                     f"as minidns logs them: p50 {tot[name + '_server']['p50']:.1f} ms, p99 {tot[name + '_server']['p99']:.1f} ms; "
                     f"timetable slip max {p['late_max_ms']:.0f} ms")
    for kind, x in res["secondaries_summary"].items():
        lines.append(f"secondary {kind}: lag max {x['lag_s_max']:.1f} s (p99 {x['lag_s_p99']:.1f} s, {x['lag_serials_max']} serials), "
                     f"transfers served {res['transfers_served'].get(kind, {})}, its log {x['transfers']}, converged {x['converged_s']} s after the load, at the end "
                     f"{'identical to minidns' if x['identical_at_end'] else 'DIFFERENT from minidns'}")
    ax = res["axfr_summary"]
    lines.append(f"AXFR rounds: {ax['rounds']}; from minidns {ax['minidns_ok']} ok, {ax['minidns_failed']} failed, "
                 f"{ZONE} {ax['records_min']}-{ax['records_max']} records in {ax['seconds_max']:.2f} s at most; "
                 f"secondary differing at an equal serial: {ax['mismatch_equal_serial']}")
    cpu = [r["cpu_pct_by"] for r in s if r.get("cpu_pct_by")]
    if cpu:
        mean = {k: sum(c.get(k, 0) for c in cpu) / len(cpu) for k in cpu[0]}
        others = [c.get("others (not this bench)", 0) for c in cpu]
        lines.append("CPU, % of one CPU on average: " + ", ".join(f"{k} {v:.0f}" for k, v in mean.items())
                     + f" (others' processes at most {max(others):.0f}); load average "
                     + f"{min(float(r['loadavg']) for r in s if 'loadavg' in r):.2f}-{max(float(r['loadavg']) for r in s if 'loadavg' in r):.2f}")
    pgs = [r["pg_sessions_mean"] for r in s if r.get("pg_sessions_mean")]
    if pgs:
        lines.append("minidns's PostgreSQL sessions (of its pool), on average: " + ", ".join(
            f"{k} {sum(p[k] for p in pgs) / len(pgs):.2f}" for k in pgs[0]) + "; lock wait per interval: "
            + " ".join(f"{p['lock wait']:.1f}" for p in pgs))
    late = res["server_requests_after_load"]
    if late["n"]:
        lines.append(f"minidns answered {late['n']} API/event requests after the load had stopped, the last "
                     f"{late['last_s_after_load']:.0f} s after it, taking up to {late['max_ms'] / 1000:.1f} s each; over the run it "
                     f"finished {late['abandoned_whole_run']} requests after more than 30 s, when their client had given up")
    if any(res["api_skipped_no_recordset"].values()):
        lines.append(f"API changes not sent for want of a recordset to change (creates failing): {res['api_skipped_no_recordset']}")
    lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in res["errors"].items()) + f"  (total {res['errors_total']})")
    first, last = mins[0], mins[-1]
    second = mins[1] if len(mins) > 1 else mins[0]
    for proto in ("udp", "tcp"):
        lines.append(f"probe {proto.upper()} p99: minute 1 {first[f'probe_{proto}']['p99']:.2f} ms, minute {second['minute']} "
                     f"{second[f'probe_{proto}']['p99']:.2f} ms, last minute {last[f'probe_{proto}']['p99']:.2f} ms")
    for name in ("api", "events"):
        lines.append(f"{name} p99: minute 1 {first[name]['p99']:.1f} ms, minute {second['minute']} {second[name]['p99']:.1f} ms, "
                     f"last minute {last[name]['p99']:.1f} ms")
    r = res["rss"]
    lines.append(f"minidns RSS: {r['start_mib']:.1f} MiB at {r['start_t']:.0f} s, {r['warm_mib']:.1f} MiB after warm-up "
                 f"(t={r['warm_t']:.0f} s), {r['end_mib']:.1f} MiB at the end: {r['growth_mib']:+.1f} MiB ({r['growth_pct']:+.1f}%); "
                 f"max {r['max_mib']:.1f} MiB; PostgreSQL {r['pg_warm_mib']:.1f} -> {r['pg_end_mib']:.1f} MiB")
    v = res["verdict"]
    lines.append(f"verdict: {v['verdict']} (RSS growth after warm-up {r['growth_pct']:+.1f}% < 5%: {v['rss_flat']}; "
                 f"last-minute p99 <= 1.5x minute {second['minute']}'s: UDP {v['p99_udp_ratio']:.2f}x, TCP {v['p99_tcp_ratio']:.2f}x: "
                 f"{v['p99_flat']}; errors {res['errors_total']})")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=1, help="minidns --workers (DNS processes; default 1)")
    ap.add_argument("--cpu", default="0", help="CPU(s) minidns is pinned to (default 0)")
    ap.add_argument("--other-cpu", default="1", help="CPU for everything else (default 1)")
    ap.add_argument("--changes", type=float, default=100, help="API changes per second (default 100)")
    ap.add_argument("--events", type=float, default=20, help="events per second (default 20)")
    ap.add_argument("--probe-rate", type=float, default=200, help="probe queries per second, each of UDP and TCP")
    ap.add_argument("--interval", type=int, default=10, help="seconds per interval (and per dnsperf run)")
    ap.add_argument("--axfr-every", type=float, default=30)
    ap.add_argument("--secondaries", default=",".join(KINDS), help="comma-separated, of knot,nsd,bind,pdns")
    ap.add_argument("--tcp-clients", type=int, default=4)
    ap.add_argument("--tcp-outstanding", type=int, default=40)
    ap.add_argument("--dnsperf", default="udp,tcp", help="dnsperf loads to run (default udp,tcp; '' for none)")
    ap.add_argument("--dnsperf-nice", type=int, default=10,
                    help="niceness of the two dnsperf processes (default 10: they take all the CPU that PostgreSQL, the "
                         "secondaries and the probe leave, without starving them)")
    ap.add_argument("--name", default="soak", help="output names: bench/out/NAME.json, NAME.png, NAME-server.log")
    a = ap.parse_args()
    print(f"command: {command_line()}", flush=True)
    kinds = [k for k in a.secondaries.split(",") if k]
    started_utc = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    peerbench = peerbench_path()
    zone_file, queries = os.path.join(OUT, "bench.test.zone"), os.path.join(OUT, "queries.txt")
    if not (os.path.exists(zone_file) and os.path.exists(queries)):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run([sys.executable, peerbench, "--gen-zone", "10000", "--out", OUT], check=True)
    mix = []
    with open(queries) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[1] in QTYPES:
                mix.append((parts[0], QTYPES[parts[1]]))
    import secondaries as peers  # tests/interop/secondaries.py

    pin_self(a.other_cpu)
    pg = PG("soak")
    d = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    proc, secs, probe_proc = None, {}, None
    log_path = os.path.join(OUT, f"{a.name}-server.log")
    try:
        pg.pin(a.other_cpu)
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t = time.monotonic()
        subprocess.run([sys.executable, "-m", "minidns", "zone", "import", zone_file, "--database-url", pg.url], check=True,
                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"{ZONE} imported in {time.monotonic() - t:.1f}s (PostgreSQL in {pg.dir}, CPU {a.other_cpu})", flush=True)
        asyncio.run(own_zone(pg.url))
        ports = {k: peers.free_port() for k in kinds}
        port, api_port = free_port(), free_port()
        conf = d / "minidns.toml"
        conf.write_text(f'events_zone = "{EZONE}"\napi_tokens = [\n  {{ token = "{ADMIN}", project = "bench", role = "admin" }},\n'
                        f'  {{ token = "{INGEST}", project = "bench", role = "ingest" }},\n]\n'
                        "secondaries = [\n" + "".join(f'  {{ address = "127.0.0.1", port = {p} }},\n' for p in ports.values())
                        + "]\n")  # fmt: skip
        proc = start_server(pg.url, f"127.0.0.1:{port}", log_path, cpu=a.cpu,
                            extra=("--config", str(conf), "--api-listen", f"127.0.0.1:{api_port}", "--workers", str(a.workers)))
        base = f"http://127.0.0.1:{api_port}"

        def ready():
            try:
                return urllib.request.urlopen(base + "/readyz", timeout=1).status == 200
            except OSError:
                return False

        wait_until(proc, ready, 120, "minidns", log_path)
        wait_until(proc, lambda: asyncio.run(ask_serial(port, ZONE)) is not None, 60, "minidns", log_path)
        zone_ids: dict = {}
        asyncio.run(prepare(base, pg.url, zone_ids))
        wait_until(proc, lambda: asyncio.run(ask_serial(port, EZONE)) is not None, 30, "minidns", log_path)
        print(f"minidns (pid {proc.pid}, --workers {a.workers}, CPU {a.cpu}) on 127.0.0.1:{port}, API {api_port}", flush=True)
        for k in kinds:
            t = time.monotonic()
            secs[k] = peers.start_secondary(k, d / k, ("127.0.0.1", port), [ZONE, EZONE], port=ports[k], source=SOURCES[k])
            if not all(peers.wait_serial(secs[k], z, None, timeout=120) for z in (ZONE, EZONE)):
                sys.exit(f"{k} did not load the zones:\n{secs[k].log()[-3000:]}")
            print(f"{k} secondary on port {ports[k]} holds both zones after {time.monotonic() - t:.1f}s", flush=True)
        soak = Soak(a, base, port, secs, zone_ids, proc.pid, pg.pid, time.monotonic())
        soak.pg_url = pg.url
        asyncio.run(seed(soak))
        print(f"pool of {POOL} recordsets in {ZONE} and {INSTANCES} instances in {EZONE} made", flush=True)
        log_mark = len(read_log(log_path))
        xfr_marks = {k: len(peers._transfers(s)) for k, s in secs.items()}

        # go
        pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        pool.submit(time.sleep, 0).result()  # started before the clock runs
        t0 = time.monotonic() + 1.0
        wall_t0 = time.time() + (t0 - time.monotonic())
        t_end = t0 + a.minutes * 60
        soak.t0, soak.t_end = t0, t_end
        q = multiprocessing.get_context("fork").Queue()
        probe_proc = multiprocessing.get_context("fork").Process(target=probe_main, args=(port, mix, a.probe_rate, t_end, q),
                                                                 daemon=True)  # fmt: skip
        runs: list = []
        nice = ["nice", "-n", str(a.dnsperf_nice)] if a.dnsperf_nice else []
        common = [*nice, "taskset", "-c", a.other_cpu, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries, "-t", "2"]
        cmds = {"udp": common + ["-c", "16", "-T", "1", "-q", "200"],
                "tcp": common + ["-m", "tcp", "-c", str(a.tcp_clients), "-T", "1", "-q", str(a.tcp_outstanding)]}
        print(f"\nsoak for {a.minutes:g} min from {datetime.datetime.now(datetime.timezone.utc):%H:%M:%S} UTC: dnsperf UDP "
              f"`{' '.join(cmds['udp'])}` and TCP `{' '.join(cmds['tcp'])}` in {a.interval}-s runs; probe {a.probe_rate:g}/s "
              f"UDP + TCP; {a.changes:g} API changes/s; {a.events:g} events/s; secondaries {', '.join(kinds)}", flush=True)  # fmt: skip
        while time.monotonic() < t0 - 0.3:
            time.sleep(0.01)
        probe_proc.start()
        threads = [threading.Thread(target=dnsperf_loop, args=(p, cmds[p], a.interval, t0, t_end, runs), daemon=True)
                   for p in ("udp", "tcp") if p in a.dnsperf.split(",")]  # fmt: skip
        while time.monotonic() < t0:
            time.sleep(0.001)
        for th in threads:
            th.start()
        asyncio.run(soak.run(pool))
        probe = {"udp": [], "tcp": []}
        done = False
        deadline = time.monotonic() + 30
        while not done and time.monotonic() < deadline:
            try:
                kind, batch = q.get(timeout=5)
            except Exception:  # noqa: BLE001
                continue
            if kind == "done":
                done = True
            else:
                probe[kind].extend((x[0] - t0, x[1], x[2]) for x in batch)
        probe_proc.join(10)
        for th in threads:
            th.join(30)
        print(f"load stopped at {datetime.datetime.now(datetime.timezone.utc):%H:%M:%S} UTC", flush=True)

        # after: convergence and exact comparison
        final = {z: asyncio.run(ask_serial(port, z)) for z in (ZONE, EZONE)}
        conv = {}
        t_stop = time.monotonic()
        conv = {k: None for k in secs}
        while time.monotonic() - t_stop < 120 and any(v is None for v in conv.values()):
            for k, sec in secs.items():  # each secondary timed on its own, all asked every 50 ms
                if conv[k] is None and all((lambda got: got is not None and peers.serial_ge(got, final[z]))(
                        peers.soa_serial(sec, z, timeout=0.5)) for z in (ZONE, EZONE)):
                    conv[k] = round(time.monotonic() - t_stop, 2)
            time.sleep(0.05)
        identical = {}
        for k, sec in secs.items():
            same = True
            for z in (ZONE, EZONE):
                for attempt in range(3):
                    try:
                        same = same and axfr_records("127.0.0.1", sec.port, z) == axfr_records("127.0.0.1", port, z)
                        break
                    except Exception as e:  # noqa: BLE001
                        print(f"  AXFR compare {k} {z} (attempt {attempt + 1}): {e!r}", flush=True)
                        time.sleep(1)
                else:
                    same = False
            identical[k] = same
        transfers = {}
        for k, sec in secs.items():
            n = len(peers._transfers(sec)) - xfr_marks[k]
            if k == "nsd":  # NSD 4.6 logs no AXFR/IXFR: minidns's log (transfers_served) tells
                transfers[k] = {"updates": n}
            else:
                log = peers.transfer_log(sec)[xfr_marks[k]:]
                transfers[k] = dict(collections.Counter(kind for _, kind in log))
        pool.shutdown()
        alive = proc.poll() is None
        end_rss = sum(rss_kib(p) for p in tree(proc.pid)) if alive else 0

        # figures
        res = {"command": command_line(), "started_utc": started_utc, "minutes_run": a.minutes, "workers": a.workers,
               "layout": f"minidns on CPU {a.cpu}; PostgreSQL, the secondaries, dnsperf, the probe and the API/event "
                         f"clients on CPU {a.other_cpu}",
               "dnsperf_commands": {p: " ".join(c) for p, c in cmds.items()}, "secondaries": kinds,
               "rates": {"changes_per_s": a.changes, "events_per_s": a.events, "probe_per_s_each": a.probe_rate},
               "final_serials": final}  # fmt: skip
        log = read_log(log_path)[log_mark:]
        server_api = server_api_times(log, wall_t0)
        res.update(figures(soak, probe, runs, a, server_api))
        res["transfers_served"] = server_transfers(log)
        late = [x for x in server_api if x[0] > a.minutes * 60 + 0.5]
        res["server_requests_after_load"] = {"n": len(late), "last_s_after_load": round(max([x[0] for x in late] or [a.minutes * 60])
                                                                                         - a.minutes * 60, 1),
                                             "max_ms": max([x[3] for x in late] or [0]),
                                             "abandoned_whole_run": sum(1 for x in server_api if x[3] > 30000)}  # fmt: skip
        tot: dict = {}
        for p in ("udp", "tcp"):
            rr = [r for r in runs if r["proto"] == p and r.get("sent") is not None]
            rc = collections.Counter()
            for r in rr:
                rc.update(r["rcodes"])
            secs_run = sum(r["run_s"] or 0 for r in rr)
            tot[f"dnsperf_{p}"] = {"runs": len(rr), "failed_runs": sum(1 for r in runs if r["proto"] == p and "failed" in r),
                                   "sent": int(sum(r["sent"] for r in rr)), "completed": int(sum(r["completed"] for r in rr)),
                                   "lost": int(sum(r["lost"] for r in rr)), "rcodes": dict(rc),
                                   "qps": sum(r["completed"] for r in rr) / secs_run if secs_run else 0}  # fmt: skip
            xs = probe[p]
            lat = [x[1] for x in xs if x[1] is not None]
            tot[f"probe_{p}"] = {**stats(lat), "sent": len(xs), "timeouts": sum(1 for x in xs if x[1] is None),
                                 "bad_rcodes": sum(1 for x in xs if x[2] is not None and RCODE_NAMES.get(x[2], str(x[2])) not in OK_RCODES)}
        for name, rows in (("api", soak.api), ("events", soak.events)):
            tot[name] = {**stats([x[3] for x in rows]), "rate": len(rows) / (a.minutes * 60),
                         "by_kind": dict(collections.Counter(x[1] for x in rows)),
                         "statuses": dict(collections.Counter(str(x[2]) for x in rows)),
                         "non_2xx": sum(1 for x in rows if not 200 <= x[2] < 300),
                         "late_max_ms": round(max([x[-1] for x in rows] or [0]), 1)}  # fmt: skip
        for name in ("api", "events"):
            xs = [x for x in server_api if x[1] == name and 0 <= x[0] < a.minutes * 60]
            tot[f"{name}_server"] = stats([x[3] for x in xs])
        tot["events"]["outcomes"] = dict(collections.Counter(str(x[4]) for x in soak.events))
        res["totals"] = tot
        sec_sum = {}
        for k in kinds:
            pts = [x for z in (ZONE, EZONE) for x in soak.lag[k][z]]
            sec_sum[k] = {"lag_s_max": max([x[2] for x in pts] or [0]), "lag_s_p99": percentile([x[2] for x in pts], 99) if pts else 0,
                          "lag_s_p50": percentile([x[2] for x in pts], 50) if pts else 0,
                          "lag_serials_max": max([x[1] for x in pts] or [0]), "soa_timeouts": soak.sec_timeouts[k],
                          "transfers": transfers[k], "converged_s": conv[k], "identical_at_end": identical[k]}  # fmt: skip
        res["secondaries_summary"] = sec_sum
        res["lag_points"] = {k: {z: soak.lag[k][z] for z in (ZONE, EZONE)} for k in kinds}
        mism = [(r["t"], z, k) for r in soak.axfr for z in (ZONE, EZONE) for k in kinds
                if isinstance(r[z].get(k), dict) and r[z][k].get("serial_lag") == 0 and r[z][k].get("differing")]
        p_ok = [r[z]["minidns"] for r in soak.axfr for z in (ZONE,) if "error" not in r[z]["minidns"]]
        res["axfr"] = soak.axfr
        res["axfr_summary"] = {"rounds": len(soak.axfr),
                               "minidns_ok": sum(1 for r in soak.axfr for z in (ZONE, EZONE) if "error" not in r[z]["minidns"]),
                               "minidns_failed": sum(1 for r in soak.axfr for z in (ZONE, EZONE) if "error" in r[z]["minidns"]),
                               "secondary_failed": sum(1 for r in soak.axfr for z in (ZONE, EZONE) for k in kinds
                                                       if "error" in r[z].get(k, {})),
                               "records_min": min([x["records"] for x in p_ok] or [0]), "records_max": max([x["records"] for x in p_ok] or [0]),
                               "seconds_max": max([x["seconds"] for x in p_ok] or [0]), "mismatch_equal_serial": len(mism),
                               "mismatches": mism}  # fmt: skip
        err_lines = [ln for ln in log.splitlines() if " ERROR " in ln or "Traceback" in ln or '"level": "error"' in ln]
        warn_lines = [ln for ln in log.splitlines() if " WARNING " in ln or '"level": "warning"' in ln]
        res["server_log"] = {"errors": err_lines[:30], "error_count": len(err_lines), "warning_count": len(warn_lines),
                             "warnings": warn_lines[:30]}
        tu, tt = tot["dnsperf_udp"], tot["dnsperf_tcp"]
        errors = {
            "dnsperf_lost": tu["lost"] + tt["lost"],
            "dnsperf_bad_rcodes": sum(v for p in (tu, tt) for k, v in p["rcodes"].items() if k not in OK_RCODES),
            "dnsperf_failed_runs": tu["failed_runs"] + tt["failed_runs"],
            "probe_timeouts": tot["probe_udp"]["timeouts"] + tot["probe_tcp"]["timeouts"],
            "probe_bad_rcodes": tot["probe_udp"]["bad_rcodes"] + tot["probe_tcp"]["bad_rcodes"],
            "soa_poll_timeouts_minidns": soak.primary_timeouts,
            "api_non_2xx": tot["api"]["non_2xx"],
            "events_non_2xx": tot["events"]["non_2xx"],
            "events_not_applied": sum(v for k, v in tot["events"]["outcomes"].items() if k != "applied"),
            "axfr_failed_minidns": res["axfr_summary"]["minidns_failed"],
            "secondary_mismatch_equal_serial": len(mism),
            "secondary_not_converged": sum(1 for v in conv.values() if v is None),
            "secondary_different_at_end": sum(1 for v in identical.values() if not v),
            "server_log_errors": len(err_lines),
            "server_died": 0 if alive else 1,
        }
        res["errors"] = errors
        res["api_skipped_no_recordset"] = soak.skipped
        res["errors_total"] = sum(errors.values())
        res["failure_samples"] = soak.failures
        series = res["series"]
        rss_pts = [(r["t"], r["rss_mib"], r["pg_rss_mib"]) for r in series if "rss_mib" in r]
        warm = next((p for p in rss_pts if p[0] >= 60), rss_pts[0]) if a.minutes >= 2 else rss_pts[0]
        endp = rss_pts[-1]
        res["rss"] = {"start_t": rss_pts[0][0], "start_mib": rss_pts[0][1], "warm_t": warm[0], "warm_mib": warm[1],
                      "end_t": endp[0], "end_mib": endp[1], "end_mib_after_stop": round(end_rss / 1024, 1),
                      "growth_mib": round(endp[1] - warm[1], 1), "growth_pct": round(100 * (endp[1] - warm[1]) / warm[1], 2),
                      "max_mib": max(p[1] for p in rss_pts), "pg_warm_mib": warm[2], "pg_end_mib": endp[2]}  # fmt: skip
        mins = res["minutes"]
        second = mins[1] if len(mins) > 1 else mins[0]
        ratio = {p: mins[-1][f"probe_{p}"]["p99"] / second[f"probe_{p}"]["p99"] for p in ("udp", "tcp")}
        rss_flat = res["rss"]["growth_pct"] < 5
        p99_flat = all(v <= 1.5 for v in ratio.values())
        res["verdict"] = {"rss_flat": rss_flat, "p99_flat": p99_flat, "p99_udp_ratio": ratio["udp"], "p99_tcp_ratio": ratio["tcp"],
                          "verdict": "flat" if rss_flat and p99_flat else "NOT flat"}  # fmt: skip
        os.makedirs(OUT, exist_ok=True)
        out_json, out_png = os.path.join(OUT, f"{a.name}.json"), os.path.join(OUT, f"{a.name}.png")
        text = json.dumps(res, indent=1, default=str)
        # lists of numbers on one line each (the per-second lag points are most of the file)
        text = re.sub(r"\[\s*(-?[0-9.]+(?:,\s*-?[0-9.]+)*)\s*\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
        with open(out_json, "w") as f:
            f.write(text)
        try:
            plot(res, out_png)
            png = f", {out_png} ({os.path.getsize(out_png) // 1024} KB)"
        except ImportError:
            png = " (no plot: matplotlib is not installed; pip install matplotlib, or the `bench` extra)"
        print(f"\n=== soak: {a.minutes:g} minutes, {started_utc} UTC ===")
        print(f"command: {command_line()}")
        print(f"layout: {res['layout']}")
        print("per-interval (t s: probe p99 UDP/TCP ms, dnsperf qps UDP/TCP, minidns RSS MiB, API p99 ms, events p99 ms, lag s):")
        for r in series:
            print(f"  {r['t']:5.0f}: {r['probe_udp']['p99']:6.2f} / {r['probe_tcp']['p99']:6.2f}   "
                  f"{(r['dnsperf_udp'] or {}).get('qps') or 0:9.0f} / {(r['dnsperf_tcp'] or {}).get('qps') or 0:9.0f}   "
                  f"{r.get('rss_mib', 0):6.1f}   {r['api']['p99']:6.1f}   {r['events']['p99']:6.1f}   {r['lag_s']}")
        for line in summarize(res, a):
            print(line)
        if err_lines:
            print(f"minidns logged {len(err_lines)} error line(s), e.g.:\n  " + "\n  ".join(err_lines[:5]))
        if warn_lines:
            print(f"minidns logged {len(warn_lines)} warning line(s), e.g.:\n  " + "\n  ".join(warn_lines[:5]))
        if soak.failures:
            print("failed requests, e.g.:\n  " + "\n  ".join(soak.failures[:5]))
        print(f"wrote {out_json}{png}; minidns's log {log_path}")
    finally:
        if probe_proc is not None and probe_proc.is_alive():
            probe_proc.terminate()
        for s in secs.values():
            peers.stop_secondary(s)
            src = s.dir / "xfer-in.log" if s.kind == "bind" else s.log_path
            for path, dest in ((s.log_path, f"{a.name}-{s.kind}.log"), (src, f"{a.name}-{s.kind}-xfer.log")):
                if path.exists() and (dest.endswith("-xfer.log") is False or path != s.log_path):
                    shutil.copyfile(path, os.path.join(OUT, dest))
        if proc is not None:
            stop(proc)
        pg.close()
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
