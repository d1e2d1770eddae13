#!/usr/bin/env python3
"""The ceiling of a signed random-subdomain flood for any Python asyncio server on this machine.

  python3 bench/flood_floor.py [--seconds 10]

A uvloop UDP server with no DNS in it (pinned to CPU 0): for each query it makes one P-256
signature over the query (cryptography, as minidns signs) and sends back the query with QR set
and the 64-octet signature appended — the least work a signed denial can take: receive, one
signature, send. dnsperf (CPU 1, the flood's settings and names from bench/dnssec.py --flood)
measures it; then the same server without the signature (the loop and the kernel alone). The
bar of #6 (25,000 signed replies/s per core) leaves 40 µs per reply for everything; this prints
how much of that these two steps alone take here.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = HERE / "out" / "dnssec-flood-names.txt"

SERVER = r"""
import asyncio, os, sys, uvloop
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
algo = ec.ECDSA(hashes.SHA256())
sign = sys.argv[1] == "sign"
class P(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, data, addr):
        reply = data[:2] + bytes([data[2] | 0x80]) + data[3:]
        if sign:
            reply += key.sign(data, algo)[:64]
        self.t.sendto(reply, addr)
async def main():
    loop = asyncio.get_running_loop()
    t, _ = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
    print(t.get_extra_info("sockname")[1], flush=True)
    await asyncio.Event().wait()
uvloop.run(main())
"""


def run(mode: str, seconds: int) -> float:
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", SERVER, mode], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        out = subprocess.run(["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(NAMES),
                              "-l", str(seconds), "-c", "16", "-T", "1", "-q", "200", "-D", "-n", "1"],
                             capture_output=True, text=True, timeout=seconds + 60).stdout  # fmt: skip
        return float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    finally:
        server.kill()
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    if not NAMES.exists():
        sys.exit(f"{NAMES} is missing: run `python3 bench/dnssec.py --flood` once first (it writes the names)")
    bare = run("bare", a.seconds)
    signed = run("sign", a.seconds)
    print(f"receive + send only (uvloop, no DNS): {bare:,.0f}/s = {1e6 / bare:.1f} µs a query")
    print(f"receive + one P-256 signature + send: {signed:,.0f}/s = {1e6 / signed:.1f} µs a query")
    print(f"the flood bar, 25,000/s: 40.0 µs a reply; these two steps alone take {100 * 1e6 / signed / 40:.0f}% of it")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
