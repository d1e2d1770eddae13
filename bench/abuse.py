#!/usr/bin/env python3
"""What abuse resistance costs on the query path: UDP qps of one minidns with RRL off (the default)
and on, and of queries carrying a DNS cookie (only a client cookie: a server cookie is made for
each; a valid server cookie: checked once, then from memory), in one run.

  python3 bench/abuse.py                    # 3 rounds of 5 s per mode
  python3 bench/abuse.py --rounds 5 --seconds 10

Uses the standard bench zone and query mix (bench/out/, made by qps.py / peerbench.py). minidns is
pinned to CPU 0 and dnsperf to CPU 1 (16 clients, 200 outstanding). RRL "on" is a rate no client
reaches here (every reply is counted, none limited), so the figure is the accounting's cost. The
modes run interleaved, each round in a fresh server. Prints one line per mode: the median qps and
its ratio to RRL off.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import dns.edns
import dns.message
import dns.query

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, answers_soa, free_port, peerbench_path, read_log, start_minidns, stop  # noqa: E402

ORIGIN = "bench.test."
HOST = "127.0.0.1"
CLIENT = "0123456789abcdef"
MODES = {
    "RRL off (default)": ((), None),
    "RRL on (accounting, nothing limited)": (("--rrl-responses-per-second", "100000000"), None),
    "cookie: client cookie only": ((), "client"),
    "cookie: valid server cookie": ((), "server"),
}


def dnsperf(port: int, datafile: str, seconds: int, option: str | None) -> float | None:
    cmd = ["taskset", "-c", "1", "dnsperf", "-s", HOST, "-p", str(port), "-d", datafile, "-l", str(seconds),
           "-c", "16", "-T", "1", "-q", "200"] + (["-E", f"10:{option}"] if option else [])  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    m = re.search(r"Queries per second:\s+([0-9.]+)", out)
    if m is None:
        print(out)
    return float(m.group(1)) if m else None


def server_cookie(port: int) -> str:
    q = dns.message.make_query(ORIGIN, "SOA", use_edns=0, options=[dns.edns.GenericOption(10, bytes.fromhex(CLIENT))])
    r = dns.query.udp(q, HOST, port=port, timeout=3)
    return next(o.to_wire() for o in r.options if o.otype == 10).hex()


def start(zone: str, extra: tuple) -> tuple[subprocess.Popen, int]:
    """minidns on a free port (tried again when another process takes the port first)."""
    log = os.path.join(OUT, "abuse-server.log")
    for _ in range(5):
        port = free_port()
        proc = start_minidns(f"{ORIGIN}={zone}", f"{HOST}:{port}", log, cpu="0", extra=(*extra, "--no-api"))
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if answers_soa(HOST, port, ORIGIN):
                return proc, port
            time.sleep(0.2)
        stop(proc)
        if "address already in use" not in read_log(log):
            break
    sys.exit(f"minidns did not start; log {log}:\n{read_log(log)}")


def run_mode(zone: str, datafile: str, seconds: int, extra: tuple, cookie: str | None) -> float | None:
    proc, port = start(zone, extra)
    try:
        option = None if cookie is None else CLIENT if cookie == "client" else server_cookie(port)
        dnsperf(port, datafile, 1, option)  # warm the reply cache
        return dnsperf(port, datafile, seconds, option)
    finally:
        stop(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    zone, datafile = os.path.join(OUT, "bench.test.zone"), os.path.join(OUT, "queries.txt")
    if not (os.path.exists(zone) and os.path.exists(datafile)):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run([sys.executable, peerbench_path(), "--gen-zone", "10000", "--out", OUT], check=True)
    figures: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(a.rounds):
        for mode, (extra, cookie) in MODES.items():
            qps = run_mode(zone, datafile, a.seconds, extra, cookie)
            if qps is not None:
                figures[mode].append(qps)
    base = statistics.median(figures["RRL off (default)"]) if figures["RRL off (default)"] else None
    print(f"{'mode':40} {'qps (median)':>14}  ratio   runs")
    for mode, runs in figures.items():
        if not runs:
            print(f"{mode:40} {'-':>14}")
            continue
        med = statistics.median(runs)
        ratio = f"{med / base:.2f}×" if base else "-"
        print(f"{mode:40} {med:14,.0f}  {ratio:6}  {', '.join(f'{r:,.0f}' for r in runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
