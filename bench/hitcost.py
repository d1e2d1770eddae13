#!/usr/bin/env python3
"""CPU instructions per reply-cache hit on the UDP path, before and after a change, counted by
valgrind's callgrind — a count, not a time, so it is the same on a busy machine as on a quiet one.

  python3 bench/hitcost.py --before /path/to/old/checkout --after . [--hits 200000]

Each checkout's own code answers the standard query mix (bench/out/, made by bench/qps.py) in one
process: the queries go twice through its UdpProtocol.datagram_received to fill the reply cache (a
missing name is cached from its second time), then `--hits` more, all hits. The run is counted
twice, with no hits and with `--hits`; the difference over `--hits` is what one hit costs (start-up
and loading the zone cancel out; what differs between two counts by address layout, about 10 M
instructions, is 50 per hit at 200,000). Python's hash seed is fixed (PYTHONHASHSEED=0) so both
count the same dict probes."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ZONE, QUERIES = os.path.join(HERE, "out", "bench.test.zone"), os.path.join(HERE, "out", "queries.txt")

# Runs inside a checkout (cwd): its minidns answers; both layouts of the engine are accepted.
DRIVER = r"""
import sys, dns.message
from minidns.zones.loader import load_zone_file
try:
    from minidns.answer.engine import Engine
except ImportError:
    from minidns.server.engine import Engine
from minidns.server.transport import UdpProtocol
zone, queries, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = Engine()
engine.set_zones([load_zone_file(zone, "bench.test.")])
qs = []
for i, line in enumerate(open(queries)):
    name, qtype = line.split()
    m = dns.message.make_query(name, qtype, use_edns=False)  # dnsperf's queries carry no OPT
    m.id = i & 0xFFFF
    qs.append(m.to_wire())
    if len(qs) >= 20000:
        break
class Transport:
    def sendto(self, data, addr): pass
    def is_closing(self): return False
p = UdpProtocol(engine)
p.transport = Transport()
addr = ("127.0.0.1", 40000)
for q in qs + qs:  # twice: a missing name's reply is cached when it is asked the second time
    p.datagram_received(q, addr)
hits = p.hits
for i in range(n):
    p.datagram_received(qs[i % len(qs)], addr)
assert p.hits - hits == n, "every query of the second pass must be a cache hit"
"""


def count(checkout: str, hits: int) -> int:
    """Instructions callgrind counts for the driver in `checkout` with `hits` cache hits."""
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=os.path.abspath(checkout))
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", DRIVER,
                        ZONE, QUERIES, str(hits)], cwd=checkout, env=env, capture_output=True, text=True)  # fmt: skip
    m = re.search(r"Collected : (\d+)", r.stderr)
    if r.returncode != 0 or m is None:
        sys.exit(f"{checkout}: the count failed (status {r.returncode}):\n{r.stderr[-2000:]}")
    return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=".")
    ap.add_argument("--hits", type=int, default=200_000)
    args = ap.parse_args()
    if not (os.path.exists(ZONE) and os.path.exists(QUERIES)):
        sys.exit("no bench/out/bench.test.zone and queries.txt: run bench/qps.py once first")
    sides = (("before", args.before), ("after", args.after))
    with ThreadPoolExecutor(2) as pool:  # callgrind's counts do not depend on what runs beside them
        counts = {(side, n): pool.submit(count, checkout, n) for side, checkout in sides for n in (0, args.hits)}
        per = {side: (counts[side, args.hits].result() - counts[side, 0].result()) / args.hits for side, _ in sides}
    for side, checkout in sides:
        print(f"{side:6s} {checkout}: {per[side]:,.0f} instructions per cache hit")
    print(f"after/before: {per['after'] / per['before']:.3f} (< 1 is cheaper)")


if __name__ == "__main__":
    main()
