#!/usr/bin/env python3
"""Resident memory and load time of minidns against NSD on one large zone.

  python3 bench/memory.py                        # 1,000,000 A records
  python3 bench/memory.py --records 200000
  python3 bench/memory.py --with-dnspython       # also dns.zone.from_file on the same file (slow: ~76 s at 1M)

Writes bench/out/mem-N.zone (SOA, two NS with glue, then h0 … h{N-1} IN A 10.x.y.z, origin
bench.test.) if it is missing. Then, one after the other, each pinned to CPU 0:

- NSD 4 with a config shaped like peerbench.py's (server-count 1, no database file, no remote
  control). Once it answers the last record, the resident memory of every process of its session
  (xfrd, main, one server) is read from /proc. NSD's figure is the SUM of their VmRSS; pages the
  server child shares copy-on-write with main are counted twice by that sum, so the sum of their
  PSS (shared pages split among the sharers) is printed next to it as the fair lower figure.
- minidns from this checkout: wall time from start until it answers the last record (the load time),
  the "loaded zone … in N.NNs" it logs, and VmRSS (now) and VmHWM (peak) from /proc/PID/status.

Bar: minidns VmRSS / NSD summed VmRSS ≤ 2.0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (OUT, LOADED, answers_a, free_port, mib, proc_name, proc_pss, proc_status,  # noqa: E402
                    read_log, session_pids, start_minidns, stop)

ORIGIN = "bench.test."
BAR = 2.0


def address(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def ensure_zone(n: int) -> str:
    path = os.path.join(OUT, f"mem-{n}.zone")
    if os.path.exists(path):
        return path
    os.makedirs(OUT, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as z:
        z.write(f"$ORIGIN {ORIGIN}\n$TTL 300\n@ IN SOA ns1 hostmaster 2026112201 3600 600 604800 300\n")
        z.write("@ IN NS ns1\n@ IN NS ns2\nns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\n")
        z.writelines(f"h{i} IN A {address(i)}\n" for i in range(n))
    os.replace(tmp, path)
    print(f"wrote {path} ({n} A records, {os.path.getsize(path) / 1e6:.1f} MB)")
    return path


def wait_answer(proc: subprocess.Popen, port: int, name: str, addr: str, timeout: float, what: str, log: str) -> float:
    """Seconds from now until name A addr is answered on 127.0.0.1:port."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode} before answering:\n{read_log(log)}")
        if answers_a("127.0.0.1", port, name, addr):
            return time.monotonic() - started
        time.sleep(0.05)
    stop(proc)
    sys.exit(f"{what} did not answer {name} A within {timeout:.0f}s:\n{read_log(log)}")


def nsd_config(d: str, port: int, zone: str, zones_conf: str | None = None) -> str:
    """NSD's config in directory d. `zones_conf`, when given, replaces the one zone: block (for
    dbload.py's many zones); it is appended as is, not dedented."""
    conf = f"""\
        server:
          ip-address: 127.0.0.1@{port}
          server-count: 1
          username: ""
          database: ""
          pidfile: "{d}/nsd.pid"
          xfrdfile: "{d}/xfrd.state"
          zonelistfile: "{d}/zone.list"
          logfile: "{d}/nsd.log"
          verbosity: 0
          rrl-ratelimit: 0
          rrl-whitelist-ratelimit: 0
        remote-control:
          control-enable: no
        """
    if zones_conf is None:
        zones_conf = f'zone:\n  name: {ORIGIN.rstrip(".")}\n  zonefile: "{zone}"\n'
    path = os.path.join(d, "nsd.conf")
    with open(path, "w") as f:
        f.write(textwrap.dedent(conf) + zones_conf)
    return path


def measure_nsd(zone: str, last: str, addr: str, cpu: str, timeout: float, zones_conf: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-mem-nsd-") as d:
        port = free_port()
        conf = nsd_config(d, port, zone, zones_conf)
        log = os.path.join(d, "stderr.log")
        proc = subprocess.Popen(["taskset", "-c", cpu, "nsd", "-c", conf, "-d"], stdout=subprocess.DEVNULL,
                                stderr=open(log, "w"), start_new_session=True)
        try:
            load = wait_answer(proc, port, last, addr, timeout, "nsd", log)
            time.sleep(1.0)  # let main and the server child settle after the fork
            procs = []
            for pid in session_pids(proc.pid):
                try:
                    st = proc_status(pid)
                except OSError:
                    continue
                procs.append((pid, proc_name(pid), st.get("VmRSS", 0), st.get("VmHWM", 0), proc_pss(pid) or 0))
        finally:
            stop(proc)
    return {"load": load, "procs": procs, "rss": sum(p[2] for p in procs), "pss": sum(p[4] for p in procs)}


def measure_minidns(zone: str, last: str, addr: str, cpu: str, timeout: float) -> dict:
    port = free_port()
    log = os.path.join(OUT, "minidns-memory.log")
    started = time.monotonic()
    proc = start_minidns(f"{ORIGIN}={zone}", f"127.0.0.1:{port}", log, cpu=cpu)
    try:
        wait_answer(proc, port, last, addr, timeout, "minidns", log)
        load = time.monotonic() - started
        st_ready = proc_status(proc.pid)
        time.sleep(1.0)
        st = proc_status(proc.pid)
        pss = proc_pss(proc.pid)
    finally:
        stop(proc)
    m = LOADED.search(read_log(log))
    return {"load": load, "logged": float(m.group(3)) if m else None, "names": int(m.group(2)) if m else None,
            "rss": st["VmRSS"], "hwm": st["VmHWM"], "rss_ready": st_ready["VmRSS"], "pss": pss or 0}


DNSPYTHON = """\
import sys, time
def status():
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0])
    return out
import dns.zone
base = status()["VmRSS"]
t = time.monotonic()
z = dns.zone.from_file(sys.argv[1], sys.argv[2])
took = time.monotonic() - t
st = status()
print(took, base, st["VmRSS"], st["VmHWM"], len(z.nodes))
"""


def measure_dnspython(zone: str, cpu: str) -> dict:
    r = subprocess.run(["taskset", "-c", cpu, sys.executable, "-c", DNSPYTHON, zone, ORIGIN],
                       capture_output=True, text=True, check=True)
    took, base, rss, hwm, nodes = r.stdout.split()
    return {"load": float(took), "base": int(base), "rss": int(rss), "hwm": int(hwm), "nodes": int(nodes)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="A records in the zone (default 1000000)")
    ap.add_argument("--with-dnspython", action="store_true", help="also time dns.zone.from_file on the file (slow)")
    ap.add_argument("--cpu", default="0", help="CPU the servers are pinned to (default 0)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for a server to answer")
    a = ap.parse_args()

    zone = ensure_zone(a.records)
    last, addr = f"h{a.records - 1}.{ORIGIN}", address(a.records - 1)
    print(f"zone {zone}: {a.records} A records; readiness = an answer to {last} A {addr}", flush=True)

    nsd = measure_nsd(zone, last, addr, a.cpu, a.timeout)
    print(f"\nNSD answered after {nsd['load']:.2f}s; its processes 1 s later:")
    for pid, name, rss, hwm, pss in nsd["procs"]:
        print(f"  pid {pid:7d}  VmRSS {mib(rss):>10s}  VmHWM {mib(hwm):>10s}  Pss {mib(pss):>10s}  {name}")
    print(f"  NSD total: sum of VmRSS {mib(nsd['rss'])} (pages main and server share copy-on-write "
          f"are counted in both); sum of Pss {mib(nsd['pss'])}", flush=True)

    md = measure_minidns(zone, last, addr, a.cpu, a.timeout)
    print(f"\nminidns answered after {md['load']:.2f}s (start to first answer of the last record); "
          f"logged 'loaded zone ... in {md['logged']}s' ({md['names']} names)")
    print(f"  VmRSS {mib(md['rss'])} (at first answer {mib(md['rss_ready'])}), VmHWM (peak) {mib(md['hwm'])}, "
          f"Pss {mib(md['pss'])}", flush=True)

    dp = None
    if a.with_dnspython:
        print("\ndns.zone.from_file ...", flush=True)
        dp = measure_dnspython(zone, a.cpu)
        print(f"  {dp['load']:.2f}s, VmRSS {mib(dp['rss'])} (interpreter with dnspython imported: {mib(dp['base'])}), "
              f"VmHWM {mib(dp['hwm'])}, {dp['nodes']} nodes")

    ratio = md["rss"] / nsd["rss"]
    print(f"\n=== summary ({a.records} A records) ===")
    print(f"NSD      RSS {mib(nsd['rss']):>10s} (sum over {len(nsd['procs'])} processes; Pss sum {mib(nsd['pss'])})"
          f"   answered after {nsd['load']:.2f}s")
    print(f"minidns  RSS {mib(md['rss']):>10s} (peak {mib(md['hwm'])})   load {md['load']:.2f}s to first answer, "
          f"{md['logged']}s logged")
    if dp:
        print(f"dnspython from_file: {dp['load']:.2f}s, RSS {mib(dp['rss'])}, peak {mib(dp['hwm'])}")
    print(f"ratio minidns/NSD RSS: {ratio:.2f}x  (bar <= {BAR}x: {'met' if ratio <= BAR else 'NOT MET'}); "
          f"peak/NSD {md['hwm'] / nsd['rss']:.2f}x; against NSD's Pss sum " + (f"{md['rss'] / nsd['pss']:.2f}x" if nsd['pss'] else "n/a"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
