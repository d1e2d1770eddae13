#!/usr/bin/env python3
"""Queries per second of `minidns serve --workers 1` and `--workers 2`, in one run, and the scaling.

  python3 bench/workers.py                  # the standard mix, then unique missing names
  python3 bench/workers.py --rounds 5 --seconds 10

The standard bench zone (10,000 hosts, bench/out, from peerbench.py --gen-zone 10000) served from
its file on 127.0.0.1. Two loads, each run against 1 and 2 workers in interleaved rounds:
- mix: peerbench's standard query mix (bench/out/queries.txt): mostly reply-cache hits;
- miss: every query a new missing name (NXDOMAIN), so each one takes the whole answer path;
- signed: the zone signed (`minidns dnssec enable`, from the database) and every query a new
  missing name with the DO bit: a freshly signed compact denial each (bench/dnssec.py --flood),
  where the server's work per query far outweighs dnsperf's.
dnsperf runs pinned to CPU 1 with peerbench's settings (16 clients, 200 outstanding). One worker is
pinned to CPU 0; two workers may use CPUs 0 and 1 — on this 2-CPU machine the second worker
shares CPU 1 with dnsperf, so the scaling shown is what one more CPU gives when the load
generator takes part of it, not the scaling of a machine with a CPU to spare. The server's CPU
seconds (all its processes) are printed next to each figure.
Figures go to bench/out/workers.json. Exit status 0 when the runs completed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, answers_soa, children, free_port, peerbench_path, proc_cpu_seconds, read_log, start_minidns, stop  # noqa: E402
from dbcommon import start_server  # noqa: E402
from dnssec import SignedServer, check_signed, flood_names  # noqa: E402

ORIGIN = "bench.test."
HOST = "127.0.0.1"


def server_cpu(pid: int) -> float:
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            total += proc_cpu_seconds(p)
        except OSError:
            pass
    return total


def ensure_zone(peerbench: str) -> tuple[str, str]:
    zone, queries = os.path.join(OUT, "bench.test.zone"), os.path.join(OUT, "queries.txt")
    if not (os.path.exists(zone) and os.path.exists(queries)):
        subprocess.run([sys.executable, peerbench, "--gen-zone", "10000", "--out", OUT], check=True)
    return zone, queries


def miss_names(n: int) -> str:
    path = os.path.join(OUT, "workers-miss-names.txt")
    rnd = random.Random()
    with open(path, "w") as f:
        for _ in range(n):
            f.write("m%012x.%s A\n" % (rnd.getrandbits(48), ORIGIN))
    return path


def dnsperf(port: int, datafile: str, seconds: int, once: bool, do: bool = False) -> dict:
    cmd = ["taskset", "-c", "1", "dnsperf", "-s", HOST, "-p", str(port), "-d", datafile, "-l", str(seconds),
           "-c", "16", "-T", "1", "-q", "200"] + (["-n", "1"] if once else []) + (["-D"] if do else [])  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    fig = {}
    for key, rx in (("qps", r"Queries per second:\s+([0-9.]+)"), ("lost", r"Queries lost:\s+(\d+)"),
                    ("completed", r"Queries completed:\s+(\d+)")):
        m = re.search(rx, out)
        fig[key] = float(m.group(1)) if m else None
    if fig["qps"] is None:
        print(out)
    return fig


def start(zone: str, workers: int) -> tuple[subprocess.Popen, int, str]:
    port = free_port()
    log = os.path.join(OUT, f"workers-{workers}.log")
    cpu = "0" if workers == 1 else "0,1"
    proc = start_minidns(f"{ORIGIN}={zone}", f"{HOST}:{port}", log, cpu=cpu, extra=("--workers", str(workers), "--no-api"))
    deadline = time.monotonic() + 120
    while not re.search(r"INFO minidns: serving", read_log(log)):
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"minidns --workers {workers} did not start; log {log}:\n{read_log(log)}")
        time.sleep(0.1)
    if not answers_soa(HOST, port, ORIGIN):
        sys.exit(f"minidns --workers {workers} does not answer; log {log}")
    if len(children(proc.pid)) != workers - 1:
        sys.exit(f"minidns --workers {workers}: {len(children(proc.pid))} worker processes")
    return proc, port, log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    os.environ["MINIDNS_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()  # for the signed zone, fresh per run
    zone, queries = ensure_zone(peerbench_path())
    servers = {n: start(zone, n) for n in (1, 2)}
    loads = ("mix", "miss", "signed")
    results: dict = {load: {1: [], 2: []} for load in loads}
    signed = None
    try:
        for load in loads:
            if load == "signed":
                for proc, _, _ in servers.values():
                    stop(proc)
                signed = SignedServer("workers", zone, free_port())
                signed.start(cpu="0", extra=("--workers", "1"))
                port2, log2 = free_port(), os.path.join(OUT, "workers-signed-2.log")
                proc2 = start_server(signed.pg.url, f"{HOST}:{port2}", log2, cpu="0,1",
                                     extra=("--no-api", "--no-notify", "--workers", "2"))  # fmt: skip
                deadline = time.monotonic() + 120
                while not re.search(r"INFO minidns: serving", read_log(log2)):
                    if proc2.poll() is not None or time.monotonic() > deadline:
                        sys.exit(f"signed minidns --workers 2 did not start; log {log2}")
                    time.sleep(0.1)
                servers = {1: (signed.proc, signed.port, signed.log), 2: (proc2, port2, log2)}
                for n, (_, port, _) in servers.items():
                    print(f"signed, {n} worker(s): " + check_signed(port, "zz%010x.%s" % (random.getrandbits(40), ORIGIN)))
            for r in range(a.rounds):
                for n in (1, 2):
                    proc, port, _ = servers[n]
                    if load == "mix":
                        datafile = queries
                    elif load == "miss":
                        datafile = miss_names(100_000 * a.seconds)
                    else:
                        datafile = flood_names(40_000 * a.seconds)
                    cpu0 = server_cpu(proc.pid)
                    fig = dnsperf(port, datafile, a.seconds, once=load != "mix", do=load == "signed")
                    fig["server_cpu_s"] = round(server_cpu(proc.pid) - cpu0, 2)
                    results[load][n].append(fig)
                    print(f"{load} round {r + 1}: {n} worker(s) {fig['qps']:>10,.0f} qps  lost {fig['lost']:.0f}  "
                          f"server CPU {fig['server_cpu_s']:.1f}s of {a.seconds}s", flush=True)
    finally:
        for proc, _, _ in servers.values():
            if proc.poll() is None:
                stop(proc)
        if signed is not None:
            signed.close()
    summary = {}
    print("\n=== minidns --workers 1 vs 2 (median of rounds) ===")
    for load in loads:
        med = {n: sorted(f["qps"] for f in results[load][n])[len(results[load][n]) // 2] for n in (1, 2)}
        # Queries answered per second of server CPU (all its processes): whether a worker does as
        # much with a CPU as one process alone, which is what scaling onto more CPUs rests on.
        per_cpu = {n: sorted(f["qps"] * a.seconds / f["server_cpu_s"] for f in results[load][n] if f["server_cpu_s"])
                   for n in (1, 2)}  # fmt: skip
        per_cpu = {n: v[len(v) // 2] if v else None for n, v in per_cpu.items()}
        cpu = {n: sorted(f["server_cpu_s"] / a.seconds for f in results[load][n])[len(results[load][n]) // 2] for n in (1, 2)}
        summary[load] = {"workers_1_qps": med[1], "workers_2_qps": med[2], "scaling": med[2] / med[1],
                         "per_cpu_second": per_cpu, "server_cpus_used": cpu}  # fmt: skip
        print(f"{load:6s} 1 worker {med[1]:>9,.0f} qps ({cpu[1]:.2f} CPUs, {per_cpu[1] or 0:,.0f}/CPU-s)   "
              f"2 workers {med[2]:>9,.0f} qps ({cpu[2]:.2f} CPUs, {per_cpu[2] or 0:,.0f}/CPU-s)   scaling {med[2] / med[1]:.2f}x")
    with open(os.path.join(OUT, "workers.json"), "w") as f:
        json.dump({"summary": summary, "runs": results, "rounds": a.rounds, "seconds": a.seconds,
                   "cpus": len(os.sched_getaffinity(0))}, f, indent=2)  # fmt: skip
    print(f"\nwrote {os.path.join(OUT, 'workers.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
