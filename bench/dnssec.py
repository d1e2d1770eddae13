#!/usr/bin/env python3
"""Online signing: minidns with DNSSEC next to Knot (mod-onlinesign) and PowerDNS (live signing),
a random-subdomain flood, and the time to enable DNSSEC on a 100,000-record zone.

  python3 bench/dnssec.py                   # qps, DO bit on every query: minidns vs Knot, PowerDNS
  python3 bench/dnssec.py --flood           # every query a new missing name: signed replies/s
  python3 bench/dnssec.py --enable-time     # `minidns dnssec enable` on 100,000 records; RSS
  python3 bench/dnssec.py --all             # the three, one after the other
  python3 bench/dnssec.py --rounds 5 --seconds 10 --flood-seconds 20

Each part starts its own private embedded PostgreSQL (pinned to CPU 1), puts the zone in with
`minidns zone import`, signs it with `minidns dnssec enable` (P-256 CSK, the default; the master
key in $MINIDNS_MASTER_KEY, fresh per run) and starts `minidns serve --database-url …` from this
checkout pinned to CPU 0, then checks one signed answer with dnspython (RRSIG valid under the
served DNSKEY) before loading it.

- qps: the standard bench zone and query mix (bench/out, from peerbench.py --gen-zone 10000) on
  127.0.0.1:5353, then `peerbench.py --dnssec --peers knot,pdns --target minidns=…` (dnsperf -D on
  CPU 1). Bars: minidns ≥ 8× Knot and ≥ 0.75× PowerDNS.
- flood: dnsperf -D on CPU 1 (16 clients, 200 outstanding, as peerbench runs it) reading a file of
  unique random names under the zone (-n 1: no name is asked twice, so nothing comes from a
  cache); every reply is a freshly signed compact denial. Bar: ≥ 25,000 signed replies/s.
- enable-time: bench/out/mem-100000.zone (100,000 A records) served unsigned; then `minidns dnssec
  enable` timed, the time until the server answers signed, the server's RSS before and after, and
  after one DO=1 query for every name (every RRset signed once). Bar: enable ≤ 30 s.

Figures go to bench/out/dnssec.json (one key per part; a part run alone keeps the others').
Exit status: 0 when the parts ran (whether or not the bars are met), 1 when one could not (a
failed `minidns dnssec enable` in --enable-time is also written to the JSON).
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
from common import OUT, ROOT, free_port, mib, peerbench_path, port_free, proc_cpu_seconds, proc_status, read_log, stop  # noqa: E402
from dbcommon import PG, command_line, print_profile, start_server  # noqa: E402

import dns.dnssec  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

ORIGIN = "bench.test."
HOST, PORT = "127.0.0.1", 5353
PEER_PORTS = {"knot": 5302, "pdns": 5304}  # as peerbench.py uses them
NAMES = {"knot": "Knot", "pdns": "PowerDNS"}
QPS_BARS = [("knot", 8.0), ("pdns", 0.75)]
FLOOD_BAR = 25_000
ENABLE_BAR = 30.0
RESULTS = os.path.join(OUT, "dnssec.json")


# -- minidns commands and server ---------------------------------------------------------------

class CommandFailed(Exception):
    def __init__(self, args, returncode: int, output: str, seconds: float):
        last = next((l for l in reversed(output.strip().splitlines()) if l.strip()), "")
        super().__init__(f"`minidns {' '.join(map(str, args))}` exited with {returncode} after {seconds:.1f}s: {last}")
        self.output, self.seconds = output, seconds


def run_minidns(url: str, *args) -> tuple[str, float]:
    """One `minidns` command (this checkout's) against `url`: (stdout, wall seconds). CommandFailed
    (its output and time) when it fails."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = [sys.executable, "-m", "minidns", *map(str, args), "--database-url", url]
    started = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    took = time.monotonic() - started
    if r.returncode != 0:
        raise CommandFailed(args, r.returncode, r.stdout + r.stderr, took)
    return r.stdout, took


def ask(port: int, qname: str, qtype: str = "A", timeout: float = 1.0) -> dns.message.Message | None:
    q = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, want_dnssec=True)
    q.flags &= ~dns.flags.RD
    try:
        return dns.query.udp(q, HOST, port=port, timeout=timeout)
    except Exception:
        return None


def serves_signed(port: int) -> bool:
    r = ask(port, ORIGIN, "DNSKEY")
    return r is not None and any(s.rdtype == dns.rdatatype.RRSIG for s in r.answer)


def wait(proc, check, timeout: float, what: str, log: str, every: float = 0.05) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            sys.exit(f"minidns exited with status {proc.returncode}:\n{read_log(log)[-4000:]}")
        if check():
            return time.monotonic() - started
        time.sleep(every)
    stop(proc)
    sys.exit(f"minidns {what} within {timeout:.0f}s:\n{read_log(log)[-4000:]}")


def check_signed(port: int, qname: str, qtype: str = "A") -> str:
    """The reply to a DO=1 query validates (every RRset of answer and authority with an RRSIG checks
    out against the served DNSKEY); a one-line description of it. Exits when it does not."""
    keys = ask(port, ORIGIN, "DNSKEY")
    keyset = next((s for s in keys.answer if s.rdtype == dns.rdatatype.DNSKEY), None) if keys else None
    r = ask(port, qname, qtype)
    if keyset is None or r is None:
        sys.exit(f"no signed DNSKEY or no reply for {qname} {qtype} from minidns")
    checked = 0
    for section in (r.answer, r.authority):
        sigs = {(s.name, s.covers): s for s in section if s.rdtype == dns.rdatatype.RRSIG}
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.RRSIG:
                continue
            sig = sigs.get((rrset.name, rrset.rdtype))
            if sig is None:
                sys.exit(f"{qname} {qtype}: {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} unsigned:\n{r}")
            try:
                dns.dnssec.validate(rrset, sig, {dns.name.from_text(ORIGIN): keyset})
            except dns.dnssec.ValidationFailure as e:
                sys.exit(f"{qname} {qtype}: RRSIG over {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} fails: {e}\n{r}")
            checked += 1
    types = sorted({dns.rdatatype.to_text(s.rdtype) for s in r.answer + r.authority})
    return f"{qname} {qtype}: {dns.rcode.to_text(r.rcode())}, {checked} RRset(s) validated ({' '.join(types)})"


class SignedServer:
    """A private PostgreSQL holding `zone_file` (imported, then `dnssec enable`d unless sign=False)
    and `minidns serve --database-url` on 127.0.0.1:port pinned to CPU 0."""

    def __init__(self, name: str, zone_file: str, port: int, sign: bool = True, profile: str | None = None):
        self.name, self.port, self.profile = name, port, profile
        self.pg = PG(name)
        self.pg.pin("1")
        self.proc = None
        self.log = os.path.join(OUT, f"dnssec-{name}-server.log")
        self.enable_seconds = None
        try:
            _, self.import_seconds = run_minidns(self.pg.url, "zone", "import", zone_file)
            print(f"{name}: PostgreSQL in {self.pg.dir}; `minidns zone import` {self.import_seconds:.1f}s", flush=True)
            if sign:
                self.enable()
        except BaseException:
            self.pg.close()
            raise

    def enable(self) -> float:
        out, self.enable_seconds = run_minidns(self.pg.url, "dnssec", "enable", ORIGIN)
        print(f"$ minidns dnssec enable {ORIGIN}   ({self.enable_seconds:.2f}s)\n" + out.rstrip(), flush=True)
        return self.enable_seconds

    def start(self, signed: bool = True, cpu: str = "0", extra: tuple[str, ...] = ()) -> float:
        os.makedirs(OUT, exist_ok=True)
        self.proc = start_server(self.pg.url, f"{HOST}:{self.port}", self.log, cpu=cpu,
                                 extra=("--no-api", "--no-notify", *extra), profile=self.profile)
        check = (lambda: serves_signed(self.port)) if signed else (lambda: ask(self.port, ORIGIN, "SOA") is not None)
        took = wait(self.proc, check, 300, "does not serve " + ("signed" if signed else ORIGIN), self.log, 0.1)
        print(f"{self.name}: minidns (pid {self.proc.pid}, CPU 0) serving{' signed' if signed else ''} on "
              f"{HOST}:{self.port} after {took:.1f}s", flush=True)
        return took

    def rss(self) -> dict:
        s = proc_status(self.proc.pid)
        return {"VmRSS_kib": s.get("VmRSS", 0), "VmHWM_kib": s.get("VmHWM", 0)}

    def noisy(self) -> list[str]:
        return [l for l in read_log(self.log).splitlines() if " WARNING " in l or " ERROR " in l or "Traceback" in l]

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        self.pg.close()
        if self.profile:
            print_profile(self.profile, 25)


# -- dnsperf -----------------------------------------------------------------------------------

def dnsperf(port: int, datafile: str, seconds: int, runs: int | None = None) -> dict:
    """dnsperf -D on CPU 1 with peerbench's settings; its figures."""
    cmd = ["taskset", "-c", "1", "dnsperf", "-s", HOST, "-p", str(port), "-d", datafile, "-l", str(seconds),
           "-c", "16", "-T", "1", "-q", "200", "-D"] + (["-n", str(runs)] if runs else [])
    print("$ " + " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    fig: dict = {"command": " ".join(cmd)}
    for key, rx in (("sent", r"Queries sent:\s+(\d+)"), ("completed", r"Queries completed:\s+(\d+)"),
                    ("lost", r"Queries lost:\s+(\d+)"), ("qps", r"Queries per second:\s+([0-9.]+)"),
                    ("run_seconds", r"Run time \(s\):\s+([0-9.]+)"),
                    ("latency_avg_s", r"Average Latency \(s\):\s+([0-9.]+)")):
        m = re.search(rx, out)
        fig[key] = float(m.group(1)) if m else None
    m = re.search(r"Response codes:\s+(.*)", out)
    fig["rcodes"] = m.group(1).strip() if m else None
    m = re.search(r"Average packet size:\s+request\s+(\d+),\s+response\s+(\d+)", out)
    if m:
        fig["request_octets"], fig["response_octets"] = int(m.group(1)), int(m.group(2))
    if fig["qps"] is None:
        print(out)
    return fig


# -- the parts ---------------------------------------------------------------------------------

def ensure_bench_zone(peerbench: str) -> tuple[str, str]:
    zone, queries = os.path.join(OUT, "bench.test.zone"), os.path.join(OUT, "queries.txt")
    if not (os.path.exists(zone) and os.path.exists(queries)):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run([sys.executable, peerbench, "--gen-zone", "10000", "--out", OUT], check=True)
    return zone, queries


def part_qps(a) -> dict:
    peerbench = peerbench_path()
    zone, queries = ensure_bench_zone(peerbench)
    busy = [p for p in [PORT, *PEER_PORTS.values()] if not port_free(p)]
    if busy:
        sys.exit(f"ports in use on 127.0.0.1: {busy} (another benchmark running?); not starting")
    server = SignedServer("qps", zone, PORT, profile=a.profile)
    lines: list[str] = []
    try:
        server.start()
        checks = [check_signed(PORT, n, t) for n, t in (("h1.bench.test.", "A"), ("c10.bench.test.", "A"),
                                                        ("nx1.bench.test.", "A"), ("x1.wild.bench.test.", "A"))]
        print("\n".join("  " + c for c in checks), flush=True)
        cpu_before = proc_cpu_seconds(server.proc.pid)
        cmd = [sys.executable, peerbench, "--zone", f"{ORIGIN}={zone}", "--queries", queries, "--dnssec",
               "--peers", "knot,pdns", "--target", f"minidns={HOST}:{PORT}",
               *(["--rounds", str(a.rounds)] if a.rounds else []), *(["--seconds", str(a.seconds)] if a.seconds else [])]
        print("$ " + " ".join(cmd), flush=True)
        pb = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
        for line in pb.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
        pb.wait()
        died = server.proc.poll()
        cpu = proc_cpu_seconds(server.proc.pid) - cpu_before if died is None else None
        rss = server.rss() if died is None else {}
        noisy = server.noisy()
    finally:
        server.close()
    if died is not None:
        sys.exit(f"minidns DIED during the run (status {died}); log: {server.log}")
    if pb.returncode != 0:
        sys.exit(f"peerbench exited with status {pb.returncode}")
    med, rounds = {}, {}
    in_table = False
    for line in lines:
        m = re.match(r"round (\d+) (\S+)\s+(\d+) qps\s+lost (.*)", line)
        if m:
            rounds.setdefault(m.group(2), []).append({"qps": float(m.group(3)), "lost": m.group(4)})
        if line.startswith("median qps"):
            in_table = True
            continue
        parts = line.split()
        if in_table and len(parts) == 2 and line.startswith("  "):
            med[parts[0]] = float(parts[1])
        else:
            in_table = False
    if "minidns" not in med:
        sys.exit("no median for minidns in peerbench's output")
    result = {"median_qps": med, "rounds": rounds, "checks": checks, "server_cpu_seconds": cpu, "server": rss,
              "enable_seconds": server.enable_seconds, "bars": {}}
    print("\n=== DNSSEC qps (DO bit on every query, online signing, one server CPU) ===")
    print(f"minidns     {med['minidns']:10.0f} qps")
    for p, bar in QPS_BARS:
        if not med.get(p):
            print(f"{NAMES[p]:10s}  no figure")
            continue
        ratio = med["minidns"] / med[p]
        result["bars"][p] = {"ratio": round(ratio, 3), "bar": bar, "met": ratio >= bar}
        print(f"{NAMES[p]:10s}  {med[p]:10.0f} qps   minidns = {ratio:.2f}x   bar >= {bar}x  {'met' if ratio >= bar else 'NOT MET'}")
    if cpu is not None:
        print(f"minidns CPU time during peerbench: {cpu:.1f}s; VmRSS {mib(rss['VmRSS_kib'])}, VmHWM {mib(rss['VmHWM_kib'])}")
    report_noisy(noisy, server.log)
    return result


def flood_names(n: int) -> str:
    """A file of n unique random names under the zone (query type A), new ones on every run."""
    path = os.path.join(OUT, "dnssec-flood-names.txt")
    rnd = random.Random()
    seen = set()
    with open(path, "w") as f:
        while len(seen) < n:
            label = "%012x" % rnd.getrandbits(48)
            if label not in seen:
                seen.add(label)
                f.write(f"{label}.{ORIGIN} A\n")
    return path


def part_flood(a) -> dict:
    peerbench = peerbench_path()
    zone, _ = ensure_bench_zone(peerbench)
    port = free_port()
    server = SignedServer("flood", zone, port, profile=a.profile)
    try:
        server.start()
        started = time.monotonic()
        names = flood_names(a.flood_names)
        print(f"{a.flood_names:,} unique random names written in {time.monotonic() - started:.1f}s", flush=True)
        probe = "zz" + "%010x" % random.getrandbits(40) + "." + ORIGIN
        check = check_signed(port, probe)
        print("  " + check, flush=True)
        cpu_before = proc_cpu_seconds(server.proc.pid)
        fig = dnsperf(port, names, a.flood_seconds, runs=1)
        died = server.proc.poll()
        cpu = proc_cpu_seconds(server.proc.pid) - cpu_before if died is None else None
        rss = server.rss() if died is None else {}
        noisy = server.noisy()
    finally:
        server.close()
    if died is not None:
        sys.exit(f"minidns DIED during the flood (status {died}); log: {server.log}")
    if fig["qps"] is None:
        sys.exit("dnsperf printed no figures")
    unique = fig["sent"] is not None and fig["sent"] <= a.flood_names
    result = {"signed_replies_per_s": fig["qps"], "dnsperf": fig, "names": a.flood_names, "all_names_unique": unique,
              "check": check, "server_cpu_seconds": cpu, "server": rss,
              "bar": {"per_s": FLOOD_BAR, "met": fig["qps"] >= FLOOD_BAR}}
    print("\n=== random-subdomain flood (every query a new missing name, DO bit, one server CPU) ===")
    print(f"signed replies/s {fig['qps']:10.0f}   bar >= {FLOOD_BAR:,}/s  {'met' if fig['qps'] >= FLOOD_BAR else 'NOT MET'}")
    print(f"sent {fig['sent']:.0f}, completed {fig['completed']:.0f}, lost {fig['lost']:.0f}; rcodes {fig['rcodes']}; "
          f"response {fig.get('response_octets')} octets; every name new: {'yes' if unique else 'NO (file wrapped)'}")
    if cpu is not None:
        print(f"minidns CPU time during the flood: {cpu:.1f}s of {fig['run_seconds']:.1f}s; VmRSS {mib(rss['VmRSS_kib'])}, "
              f"VmHWM {mib(rss['VmHWM_kib'])}")
    report_noisy(noisy, server.log)
    return result


def ensure_big_zone(n: int) -> str:
    from memory import ensure_zone

    return ensure_zone(n)


def part_enable_time(a) -> dict:
    zone = ensure_big_zone(a.enable_records)
    port = free_port()
    server = SignedServer("enable", zone, port, sign=False)
    try:
        server.start(signed=False)
        time.sleep(1.0)
        before = server.rss()
        started = time.monotonic()
        try:
            server.enable()
        except CommandFailed as e:
            print(e.output[-3000:] + f"\n=== enabling DNSSEC on a {a.enable_records:,}-record zone ===\nFAILED: {e}")
            report_noisy(server.noisy(), server.log)
            return {"records": a.enable_records, "import_seconds": server.import_seconds, "rss_before": before,
                    "failed": str(e), "enable_command_seconds": e.seconds,
                    "bar": {"seconds": ENABLE_BAR, "met": False}}
        wait(server.proc, lambda: serves_signed(port), 300, "does not serve signed after enable", server.log, 0.02)
        served = time.monotonic() - started
        time.sleep(1.0)
        after = server.rss()
        check = check_signed(port, f"h{a.enable_records - 1}.{ORIGIN}")
        print("  " + check, flush=True)
        names = os.path.join(OUT, f"dnssec-every-name-{a.enable_records}.txt")
        with open(names, "w") as f:
            f.writelines(f"h{i}.{ORIGIN} A\n" for i in range(a.enable_records))
        cpu_before = proc_cpu_seconds(server.proc.pid)
        fig = dnsperf(port, names, 600, runs=1)
        cpu = proc_cpu_seconds(server.proc.pid) - cpu_before
        time.sleep(1.0)
        signed_all = server.rss()
        noisy = server.noisy()
    finally:
        server.close()
    result = {"records": a.enable_records, "import_seconds": server.import_seconds,
              "enable_command_seconds": server.enable_seconds, "served_signed_after_s": served,
              "rss_before": before, "rss_after_enable": after,
              "every_name_once": {"dnsperf": fig, "server_cpu_seconds": cpu, "rss_after": signed_all},
              "check": check, "bar": {"seconds": ENABLE_BAR, "met": served <= ENABLE_BAR}}
    print(f"\n=== enabling DNSSEC on a {a.enable_records:,}-record zone ===")
    print(f"`minidns dnssec enable` {server.enable_seconds:.2f}s; served signed {served:.2f}s after the command "
          f"started   bar <= {ENABLE_BAR:.0f}s  {'met' if served <= ENABLE_BAR else 'NOT MET'}")
    print(f"server VmRSS unsigned {mib(before['VmRSS_kib'])}, signed {mib(after['VmRSS_kib'])}, after a DO=1 query for "
          f"every name {mib(signed_all['VmRSS_kib'])} (VmHWM {mib(signed_all['VmHWM_kib'])})")
    print(f"every name once: {fig['completed']:.0f} signed answers in {fig['run_seconds']:.1f}s ({fig['qps']:.0f}/s), "
          f"server CPU {cpu:.1f}s, lost {fig['lost']:.0f}")
    report_noisy(noisy, server.log)
    return result


def report_noisy(noisy: list[str], log: str) -> None:
    if noisy:
        print(f"minidns logged {len(noisy)} warning/error line(s) (full log: {log}):")
        for l in noisy[:20]:
            print("  " + l)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flood", action="store_true", help="the random-subdomain flood instead of the qps comparison")
    ap.add_argument("--enable-time", action="store_true", help="time `dnssec enable` on a big zone instead")
    ap.add_argument("--all", action="store_true", help="qps, flood and enable-time")
    ap.add_argument("--rounds", type=int, help="peerbench rounds (its default 3)")
    ap.add_argument("--seconds", type=int, help="seconds per peerbench dnsperf run (its default 5)")
    ap.add_argument("--flood-seconds", type=int, default=10, help="length of the flood (default 10)")
    ap.add_argument("--flood-names", type=int, default=2_000_000, help="unique names in the flood file (default 2,000,000)")
    ap.add_argument("--profile", metavar="FILE", help="run the server under cProfile (qps, flood), print the top functions")
    ap.add_argument("--enable-records", type=int, default=100_000, help="records in the enable-time zone (default 100,000)")
    a = ap.parse_args()
    parts = ["qps", "flood", "enable_time"] if a.all else (
        [p for p, on in (("flood", a.flood), ("enable_time", a.enable_time)) if on] or ["qps"])
    os.makedirs(OUT, exist_ok=True)
    # The master key for every `minidns` command and server started here (each part has its own
    # database, so one fresh key per run serves them all).
    os.environ["MINIDNS_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    try:
        with open(RESULTS) as f:
            results = json.load(f)
    except (OSError, ValueError):
        results = {}
    run = {"qps": part_qps, "flood": part_flood, "enable_time": part_enable_time}
    for p in parts:
        print(f"\n##### {p}", flush=True)
        try:
            figures = run[p](a)
        except CommandFailed as e:
            sys.exit(f"{e}\n{e.output[-3000:]}")
        figures.update(when=time.strftime("%Y-%m-%dT%H:%M:%S%z"), command=command_line())
        results[p] = figures
        with open(RESULTS, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
    print(f"\nwrote {RESULTS}")
    return 1 if any("failed" in results[p] for p in parts) else 0


if __name__ == "__main__":
    sys.exit(main())
