#!/usr/bin/env python3
"""Queries per second of minidns next to NSD, Knot, BIND and PowerDNS, in one run.

  python3 bench/qps.py                      # UDP
  python3 bench/qps.py --tcp                # TCP
  python3 bench/qps.py --rounds 5 --seconds 10
  python3 bench/qps.py --detail             # also one plain dnsperf run against minidns, full output
  python3 bench/qps.py --no-cache           # minidns without its reply cache: the miss path

Writes the standard bench zone (10,000 hosts) and query mix into bench/out/ with peerbench.py if
they are not there, starts minidns from this checkout pinned to CPU 0 on 127.0.0.1:5353, waits
until it serves, runs peerbench.py (../shared/tools/peerbench.py from the repository root, or
$PEERBENCH), stops minidns, and prints peerbench's table and a summary against the bars:
UDP minidns ≥ 0.6× NSD and ≥ 1.0× BIND; TCP minidns ≥ 0.6× NSD.
Exit status: 0 when the run completed (whether or not the bars are met), 1 when it could not run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (OUT, LOADED, answers_soa, peerbench_path, port_free, proc_cpu_seconds, proc_status,  # noqa: E402
                    read_log, start_minidns, stop, mib)

ORIGIN = "bench.test."
HOST, PORT = "127.0.0.1", 5353
PEER_PORTS = {"nsd": 5301, "knot": 5302, "bind": 5303, "pdns": 5304}  # as peerbench.py uses them
NAMES = {"nsd": "NSD", "bind": "BIND", "knot": "Knot", "pdns": "PowerDNS"}
BARS = {False: [("nsd", 0.6), ("bind", 1.0)], True: [("nsd", 0.6)]}  # keyed by tcp


def peerbench_options(peerbench: str) -> set[str]:
    help_text = subprocess.run([sys.executable, peerbench, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"(--[a-z][a-z-]*)", help_text))


def ensure_zone(peerbench: str) -> tuple[str, str]:
    zone, queries = os.path.join(OUT, "bench.test.zone"), os.path.join(OUT, "queries.txt")
    if not (os.path.exists(zone) and os.path.exists(queries)):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run([sys.executable, peerbench, "--gen-zone", "10000", "--out", OUT], check=True)
    return zone, queries


def wait_ready(proc: subprocess.Popen, log_path: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            sys.exit(f"minidns exited with status {proc.returncode} before serving:\n{read_log(log_path)}")
        if "serving" in read_log(log_path) and answers_soa(HOST, PORT, ORIGIN):
            return time.monotonic() - started
        time.sleep(0.2)
    stop(proc)
    sys.exit(f"minidns did not answer SOA {ORIGIN} within {timeout:.0f}s:\n{read_log(log_path)}")


def dnsperf_detail(queries: str, seconds: int, tcp: bool) -> None:
    """One dnsperf run against minidns with peerbench's settings, printed whole (peerbench keeps
    only the qps and the lost count)."""
    cmd = ["taskset", "-c", "1", "dnsperf", "-s", HOST, "-p", str(PORT), "-d", queries, "-l", str(seconds),
           "-c", "16", "-T", "1", "-q", "200"] + (["-m", "tcp"] if tcp else [])
    print(f"\n$ {' '.join(cmd)}", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(r.stdout.rstrip())
    if r.stderr.strip():
        print("stderr:\n" + r.stderr.rstrip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tcp", action="store_true", help="dnsperf over TCP")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (peerbench default 3)")
    ap.add_argument("--seconds", type=int, help="seconds per dnsperf run (peerbench default 5)")
    ap.add_argument("--no-cache", action="store_true",
                    help="run minidns with a 2-entry reply cache: every query takes the full resolve+encode path")
    ap.add_argument("--detail", action="store_true", help="afterwards, one dnsperf run against minidns, full output")
    ap.add_argument("--ready-timeout", type=float, default=120, help="seconds to wait for minidns to serve")
    a = ap.parse_args()

    peerbench = peerbench_path()
    zone, queries = ensure_zone(peerbench)
    supported = peerbench_options(peerbench)
    extra = []
    for flag, value in (("--tcp", a.tcp or None), ("--rounds", a.rounds), ("--seconds", a.seconds)):
        if value is None:
            continue
        if flag not in supported:
            print(f"note: {os.path.basename(peerbench)} has no {flag}; not passed", file=sys.stderr)
            continue
        extra += [flag] if value is True else [flag, str(value)]

    busy = [p for p in [PORT, *PEER_PORTS.values()] if not port_free(p)]
    if busy:
        sys.exit(f"ports in use on 127.0.0.1: {busy} (another benchmark running?); not starting")

    log_path = os.path.join(OUT, "minidns-qps.log")
    server_args = ("--cache-entries", "2") if a.no_cache else ()
    proc = start_minidns(f"{ORIGIN}={zone}", f"{HOST}:{PORT}", log_path, cpu="0", extra=server_args)
    lines: list[str] = []
    cpu_before = cpu_after = None
    status = {}
    try:
        ready = wait_ready(proc, log_path, a.ready_timeout)
        m = LOADED.search(read_log(log_path))
        print(f"minidns (pid {proc.pid}, CPU 0) serving after {ready:.2f}s"
              + (f"; zone loaded in {m.group(3)}s ({m.group(2)} names)" if m else ""), flush=True)
        cpu_before = proc_cpu_seconds(proc.pid)
        cmd = [sys.executable, peerbench, "--zone", f"{ORIGIN}={zone}", "--queries", queries,
               "--target", f"minidns={HOST}:{PORT}", *extra]
        print(f"$ {' '.join(cmd)}", flush=True)
        pb = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
        for line in pb.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
        pb.wait()
        if proc.poll() is None:
            cpu_after = proc_cpu_seconds(proc.pid)
            status = proc_status(proc.pid)
            if a.detail:
                dnsperf_detail(queries, a.seconds or 5, a.tcp)
        if pb.returncode != 0:
            print(f"peerbench exited with status {pb.returncode}", file=sys.stderr)
            return 1
    finally:
        died = proc.poll()
        stop(proc)

    log = read_log(log_path)
    if died is not None:
        print(f"\nminidns DIED during the run (status {died}); its log:\n{log}")
        return 1
    noisy = [l for l in log.splitlines() if " WARNING " in l or " ERROR " in l or "Traceback" in l]

    med: dict[str, float] = {}
    in_table = False
    for line in lines:
        if line.startswith("median qps"):
            in_table = True
            continue
        if in_table:
            parts = line.split()
            if len(parts) == 2 and line.startswith("  "):
                med[parts[0]] = float(parts[1])
            else:
                in_table = False
    lost = [l.split("lost", 1)[1].strip() for l in lines if re.match(r"round \d+ minidns ", l)]

    print("\n=== summary" + (" (TCP)" if a.tcp else " (UDP)") + " ===")
    if "minidns" not in med:
        print("no median for minidns in peerbench's output")
        return 1
    print(f"minidns     {med['minidns']:10.0f} qps   (lost per round: {'; '.join(lost) or 'n/a'})")
    for p in ("nsd", "bind", "knot", "pdns"):
        if p in med:
            ratio = f"{med['minidns'] / med[p]:.2f}x" if med[p] else "n/a"
            print(f"{NAMES[p]:10s}  {med[p]:10.0f} qps   minidns = {ratio}")
    if cpu_after is not None:
        print(f"minidns CPU time during peerbench: {cpu_after - cpu_before:.1f}s; VmRSS {mib(status.get('VmRSS', 0))}, "
              f"VmHWM {mib(status.get('VmHWM', 0))}")
    for p, bar in BARS[a.tcp]:
        if not med.get(p):
            print(f"bar minidns >= {bar}x {NAMES[p]}: no {NAMES[p]} figure")
            continue
        ratio = med["minidns"] / med[p]
        print(f"bar minidns >= {bar:.1f}x {NAMES[p]}: {ratio:.2f}x  {'met' if ratio >= bar else 'NOT MET'}")
    if noisy:
        print(f"\nminidns logged {len(noisy)} warning/error line(s) (full log: {log_path}):")
        for l in noisy[:20]:
            print("  " + l)
    return 0


if __name__ == "__main__":
    sys.exit(main())
