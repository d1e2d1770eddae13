#!/usr/bin/env python3
"""AXFR of a large zone to `kdig`: minidns next to NSD and Knot serving the same zone, in one run.

  python3 bench/axfr.py                       # 1,000,000 A records, 3 rounds
  python3 bench/axfr.py --records 100000      # quick

The zone is bench/memory.py's bench.test. (SOA, two NS with glue, h0 … h{N-1} IN A). NSD and Knot
load it from the zone file with transfers allowed to 127.0.0.1; minidns serves it from a private
embedded PostgreSQL, filled with Store.create_zone (COPY), with `minidns serve --database-url`.
All three servers are pinned to CPU 0 (--cpu) and idle while another is measured; kdig runs on
CPU 1 (--client-cpu). Each round transfers the zone once from each server, in turn:

  taskset -c 1 kdig @127.0.0.1 -p PORT AXFR bench.test. +noall +stats

timing kdig from spawn to exit and reading the record count from its summary, which must equal the
zone's (N + 6: the SOA twice, two NS, two glue A). Prints each round, the medians and minidns's
ratio to NSD's and Knot's time. Bar: minidns ≤ 3× NSD. Writes bench/out/axfr.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memory  # noqa: E402
from common import OUT, answers_a, free_port, read_log, stop  # noqa: E402
from dbcommon import PG, command_line, pin_self, start_server, wait_until  # noqa: E402
from dbload import fill_big  # noqa: E402

ZONE = memory.ORIGIN
BAR = 3.0


def start_nsd(d: str, zone: str, cpu: str) -> tuple[subprocess.Popen, int, str]:
    port = free_port()
    zones = f'zone:\n  name: {ZONE.rstrip(".")}\n  zonefile: "{zone}"\n  provide-xfr: 127.0.0.1 NOKEY\n'
    conf = memory.nsd_config(d, port, zone, zones)
    log = os.path.join(d, "nsd-stderr.log")
    proc = subprocess.Popen(["taskset", "-c", cpu, "nsd", "-c", conf, "-d"], stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)
    return proc, port, log


def start_knot(d: str, zone: str, cpu: str) -> tuple[subprocess.Popen, int, str]:
    port = free_port()
    kd = os.path.join(d, "knot")
    os.makedirs(kd, exist_ok=True)
    conf = os.path.join(kd, "knot.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1@{port}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
  rundir: "{kd}"
  user: root
log:
  - target: stderr
    any: warning
database:
  storage: "{kd}"
acl:
  - id: local
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "{kd}"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: "{ZONE}"
    file: "{zone}"
    acl: local
""")
    log = os.path.join(d, "knot-stderr.log")
    proc = subprocess.Popen(["taskset", "-c", cpu, "knotd", "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True)
    return proc, port, log


def kdig_axfr(port: int, cpu: str) -> tuple[float, int]:
    started = time.monotonic()
    p = subprocess.run(["taskset", "-c", cpu, "kdig", f"@127.0.0.1", "-p", str(port), "AXFR", ZONE, "+noall", "+stats"],
                       capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    m = re.search(r"\((\d+) messages?, (\d+) records?\)", p.stdout + p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"kdig failed on port {port}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return took, int(m.group(2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="A records in the zone (default 1000000)")
    ap.add_argument("--rounds", type=int, default=3, help="transfers per server (default 3)")
    ap.add_argument("--cpu", default="0", help="CPU the servers are pinned to (default 0)")
    ap.add_argument("--client-cpu", default="1", help="CPU kdig (and PostgreSQL) is pinned to (default 1)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for a server to answer")
    a = ap.parse_args()
    print(f"command: {command_line()}", flush=True)
    n = a.records
    zone = memory.ensure_zone(n)
    last = (f"h{n - 1}.{ZONE}", memory.address(n - 1))
    expect = n + 6  # the SOA twice, two NS, two glue A, N hosts
    pin_self(a.client_cpu)
    pg = PG("axfr")
    procs = []
    with tempfile.TemporaryDirectory(prefix="bench-axfr-") as d:
        try:
            pg.pin(a.client_cpu)
            asyncio.run(fill_big(pg.url, n))
            servers = {}
            for name, start in (("nsd", start_nsd), ("knot", start_knot)):
                proc, port, log = start(d, zone, a.cpu)
                procs.append(proc)
                took = wait_until(proc, lambda: answers_a("127.0.0.1", port, *last), a.timeout, name, log)
                print(f"{name} answering on port {port} after {took:.1f}s", flush=True)
                servers[name] = port
            port = free_port()
            log = os.path.join(d, "minidns.log")
            proc = start_server(pg.url, f"127.0.0.1:{port}", log, cpu=a.cpu, extra=("--no-notify",))
            procs.append(proc)
            took = wait_until(proc, lambda: answers_a("127.0.0.1", port, *last), a.timeout, "minidns", log)
            print(f"minidns answering on port {port} after {took:.1f}s", flush=True)
            servers["minidns"] = port
            times: dict[str, list[float]] = {k: [] for k in servers}
            for r in range(a.rounds):
                line = []
                for name, port in servers.items():
                    took, count = kdig_axfr(port, a.client_cpu)
                    if count != expect:
                        sys.exit(f"{name}: AXFR gave {count} records, expected {expect}")
                    times[name].append(took)
                    line.append(f"{name} {took:.2f}s")
                print(f"round {r + 1}: " + ", ".join(line), flush=True)
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"\n=== AXFR of {ZONE} ({expect} records) to kdig, median of {a.rounds} ===")
            print(f"command: {command_line()}")
            for k, v in med.items():
                print(f"  {k:8s} {v:.2f}s  ({expect / v / 1e6:.2f}M records/s)")
            ratio_nsd, ratio_knot = med["minidns"] / med["nsd"], med["minidns"] / med["knot"]
            print(f"minidns / NSD {ratio_nsd:.2f}x, minidns / Knot {ratio_knot:.2f}x")
            print(f"bar minidns <= {BAR:.0f}x NSD: {'met' if ratio_nsd <= BAR else 'NOT MET'}")
            os.makedirs(OUT, exist_ok=True)
            with open(os.path.join(OUT, "axfr.json"), "w") as f:
                json.dump({"records": expect, "times": times, "median": med, "ratio_nsd": ratio_nsd,
                           "ratio_knot": ratio_knot}, f, indent=1)
        finally:
            for proc in procs:
                stop(proc)
            pg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
