#!/usr/bin/env python3
"""PostgreSQL away under load: a network partition, then a real stop and start.

  python3 bench/faults.py                  # 60 s partition, 10 s PostgreSQL stopped
  python3 bench/faults.py --outage 10 --stop 5 --qps 20000

Starts a private embedded PostgreSQL (pinned to CPU 1, as this client is) with peerbench's
10,000-host zone bench.test. (`minidns zone import`), and `minidns serve` on CPU 0 with its API,
connected to PostgreSQL through a TCP proxy run here (tests/server/pgproxy.py). Then, while dnsperf
(CPU 1, --qps queries/s (10,000), peerbench's query mix) runs over the whole window:

  A. partition: 10 s normal; the proxy cut for --outage s (every connection reset, new ones
     refused) while this script commits a change to bench.test. every second straight into
     PostgreSQL (its own Unix-socket path, which the cut does not touch); the proxy restored: the
     time until the last of those changes, and the database's serial, are answered is catch-up.
  B. stop: 10 s normal; PostgreSQL stopped (pg_ctl stop -m fast, through the wheel) for --stop s
     and started again; one change committed right after it is back, timed until answered.

All along, one API write (POST a recordset) and one event (POST /v1/events, a Nova create) every
100 ms. Afterwards: every write and event that got a 2xx must be in the database and answered,
every one that got a 503 must not be there (nothing half-written); any other status is an error.

Prints dnsperf's figures (queries sent/answered, lost, response codes against a 3 s run before the
faults), the API and event counts (2xx, 503 with and without Retry-After, 2xx-then-lost) and the
catch-up times. Bars: 100% of queries answered, no rcode other than the normal run's, no
2xx-then-lost, 503s all with Retry-After, catch-up after the partition ≤ 1000 ms.
Writes bench/out/faults.json.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import subprocess
import sys
import time
import uuid

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import OUT, ROOT, answers_a, free_port, peerbench_path, query, read_log, stop  # noqa: E402
from dbcommon import PG, command_line, open_store, percentile, pin_self, start_server, wait_until  # noqa: E402

sys.path.insert(0, ROOT)
from tests.server.pgproxy import PgProxy, unix_socket_of  # noqa: E402

ADMIN, INGEST = "bench-faults-admin-0123456789", "bench-faults-ingest-0123456789"
ZONE = "bench.test."
FIXTURE = os.path.join(ROOT, "tests", "admin", "events", "nova_compute.instance.create.end.json")
SETTLE = 10.0  # seconds of normal running before each fault and after the last


def dnsperf_cmd(port: int, queries: str, seconds: float, qps: int) -> list[str]:
    return ["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries, "-l", str(int(seconds)),
            "-c", "16", "-T", "1", "-q", "200", "-t", "2"] + (["-Q", str(qps)] if qps else [])  # fmt: skip


def dnsperf_figures(out: str) -> dict:
    fig: dict = {}
    for key, rx in (("sent", r"Queries sent:\s+(\d+)"), ("completed", r"Queries completed:\s+(\d+)"),
                    ("lost", r"Queries lost:\s+(\d+)"), ("qps", r"Queries per second:\s+([0-9.]+)"),
                    ("latency_avg_s", r"Average Latency \(s\):\s+([0-9.]+)"),
                    ("latency_max_s", r"Average Latency \(s\):.*max ([0-9.]+)")):  # fmt: skip
        m = re.search(rx, out)
        fig[key] = float(m.group(1)) if m else None
    m = re.search(r"Response codes:\s+(.*)", out)
    fig["rcodes"] = {k: int(v) for k, v in re.findall(r"([A-Z]+) (\d+)", m.group(1))} if m else {}
    return fig


def shares(rcodes: dict) -> dict:
    total = sum(rcodes.values()) or 1
    return {k: v / total for k, v in rcodes.items()}


class Traffic:
    """An API write and an event every `every` seconds, each outcome kept: (kind, i, status,
    Retry-After, when sent)."""

    def __init__(self, base: str, every: float = 0.1):
        self.base, self.every = base, every
        self.outcomes: list[dict] = []
        self.template = json.load(open(FIXTURE))
        self.halt = asyncio.Event()
        self.zone_id = None

    async def run(self) -> None:
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as s:
            async with s.get(f"{self.base}/v2/zones?name={ZONE}", headers={"X-Auth-Token": ADMIN, "X-Auth-All-Projects": "true"}) as r:
                zone = (await r.json())["zones"][0]
            self.zone_id = zone["id"]
            # Designate's default quotas (500 recordsets a zone) would stop the writes: none.
            body = {"zones": -1, "zone_recordsets": -1, "zone_records": -1, "recordset_records": -1}
            async with s.patch(f"{self.base}/v2/quotas/{zone['project_id']}", data=json.dumps(body), headers={"X-Auth-Token": ADMIN}) as r:
                if r.status >= 300:
                    sys.exit(f"quotas not raised: {r.status} {await r.text()}")
            tasks, i, start = [], 0, time.monotonic()
            while not self.halt.is_set():
                tasks.append(asyncio.ensure_future(self.write(s, i)))
                tasks.append(asyncio.ensure_future(self.event(s, i)))
                i += 1
                await asyncio.sleep(max(0.0, start + i * self.every - time.monotonic()))
            await asyncio.gather(*tasks)

    async def _post(self, s, kind: str, i: int, path: str, body: dict, token: str, extra: dict) -> None:
        sent = time.monotonic()
        h = {"X-Auth-Token": token}
        if token == ADMIN:
            h["X-Auth-All-Projects"] = "true"
        try:
            async with s.post(self.base + path, data=json.dumps(body), headers=h) as r:
                text = await r.text()
                status, retry = r.status, r.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            status, retry, text = 0, None, repr(e)
        self.outcomes.append({"kind": kind, "i": i, "status": status, "retry_after": retry, "sent": sent,
                              "took": time.monotonic() - sent, **extra,
                              **({"body": text[:600]} if status not in (200, 201, 202) else {})})  # fmt: skip

    async def write(self, s, i: int) -> None:
        name, addr = f"w{i}.{ZONE}", f"198.51.{(i >> 8) & 255}.{i & 255}"
        await self._post(s, "write", i, f"/v2/zones/{self.zone_id}/recordsets",
                         {"name": name, "type": "A", "records": [addr], "ttl": 60}, ADMIN, {"name": name, "addr": addr})  # fmt: skip

    async def event(self, s, i: int) -> None:
        ev = copy.deepcopy(self.template)
        ev["message_id"] = str(uuid.uuid4())
        p = ev["payload"]
        p["instance_id"] = str(uuid.uuid4())
        p["hostname"] = p["display_name"] = f"e{i}"
        addr = f"10.200.{(i >> 8) & 255}.{i & 255}"
        p["fixed_ips"] = [{**p["fixed_ips"][0], "address": addr, "version": 4}]
        await self._post(s, "event", i, "/v1/events", ev, INGEST,
                         {"name": f"e{i}.{ZONE}", "addr": addr, "message_id": ev["message_id"]})  # fmt: skip


async def served_after(port: int, name: str, addr: str, since: float, limit: float = 30.0) -> float | None:
    """Milliseconds from `since` until `name` A `addr` is answered (asked every ~2 ms), or None."""
    while time.monotonic() - since < limit:
        if await asyncio.to_thread(answers_a, "127.0.0.1", port, name, addr):
            return (time.monotonic() - since) * 1000
        await asyncio.sleep(0.002)
    return None


async def db_serial(store) -> int:
    return (await store.zone(ZONE))["serial"]


def served_serial(port: int) -> int | None:
    r = query("127.0.0.1", port, ZONE, 6)
    if not r or r[0] != 0:
        return None
    for t, rdata in r[1]:
        if t == 6:
            return int.from_bytes(rdata[-20:-16], "big")
    return None


async def partition(proxy: PgProxy, pg: PG, port: int, outage: float, log) -> dict:
    """Phase A: cut for `outage` s, a direct commit every second meanwhile; catch-up after."""
    from minidns.store.writer import Edit

    direct = await open_store(pg.url)
    try:
        committed = []
        await asyncio.sleep(SETTLE)
        log("A: proxy cut (every connection to PostgreSQL through it reset, new ones refused)")
        cut = time.monotonic()
        proxy.cut()
        k = 0
        while time.monotonic() - cut < outage:
            await asyncio.sleep(min(1.0, max(0.0, cut + outage - time.monotonic())))
            if time.monotonic() - cut >= outage - 0.05 and committed:
                break
            name, addr = f"d{k}.{ZONE}", f"203.0.113.{k % 250}"
            await direct.store.change(ZONE, [Edit("add", f"d{k}", "A", 60, (addr,))], source="bench")
            committed.append((name, addr))
            k += 1
        serial = await db_serial(direct.store)
        stale_serial = served_serial(port)
        proxy.restore()
        healed = time.monotonic()
        log(f"A: proxy restored after {healed - cut:.1f}s; {len(committed)} changes committed directly meanwhile")
        last_ms = await served_after(port, *committed[-1], healed)
        serial_ms = None
        while time.monotonic() - healed < 30:
            now = served_serial(port)  # API writes after the heal move it on: at or past it (RFC 1982)
            if now is not None and (now - serial) % (1 << 32) < (1 << 31):
                serial_ms = (time.monotonic() - healed) * 1000
                break
            await asyncio.sleep(0.002)
        missing = [n for n, a in committed if not answers_a("127.0.0.1", port, n, a)]
        return {"outage_s": healed - cut, "cut_at": cut, "healed_at": healed, "committed_meanwhile": len(committed),
                "served_serial_during": stale_serial, "db_serial": serial, "catch_up_ms": last_ms,
                "serial_served_ms": serial_ms, "missing_after": missing}  # fmt: skip
    finally:
        await direct.close()


async def pg_stop(pg: PG, port: int, seconds: float, log) -> dict:
    """Phase B: PostgreSQL stopped for `seconds` and started again; a change right after."""
    from minidns.store.embedded import start_embedded
    from minidns.store.writer import Edit

    await asyncio.sleep(SETTLE)
    log("B: PostgreSQL stopping (pg_ctl stop -m fast)")
    t0 = time.monotonic()
    await asyncio.to_thread(pg.embedded.stop)
    stopped = time.monotonic()
    await asyncio.sleep(max(0.0, seconds - (stopped - t0)))
    pg.embedded = await asyncio.to_thread(start_embedded, pg.dir)
    started = time.monotonic()
    log(f"B: PostgreSQL started again after {started - t0:.1f}s")
    direct = await open_store(pg.url)
    try:
        await direct.store.change(ZONE, [Edit("add", "after-restart", "A", 60, ("203.0.113.250",))], source="bench")
        committed = time.monotonic()
        ms = await served_after(port, f"after-restart.{ZONE}", "203.0.113.250", committed)
    finally:
        await direct.close()
    return {"stopped_s": started - t0, "stop_at": t0, "started_at": started, "restart_to_commit_ms": (committed - started) * 1000,
            "commit_to_served_ms": ms, "start_to_served_ms": None if ms is None else (committed - started) * 1000 + ms}  # fmt: skip


async def check_outcomes(outcomes: list[dict], pg: PG, port: int) -> dict:
    """Every 2xx in the database and answered; every 503 absent; everything else an error."""
    db = await open_store(pg.url)
    try:
        async with db.pool.acquire() as conn:
            names = {r[0] for r in await conn.fetch(
                "SELECT r.name FROM rrsets r JOIN zones z ON z.id = r.zone_id WHERE z.name = $1 AND r.type = 1", ZONE)}  # fmt: skip
            events = {r[0] for r in await conn.fetch("SELECT message_id FROM events WHERE status = 'applied'")}
    finally:
        await db.close()
    out: dict = {}
    for kind in ("write", "event"):
        mine = [o for o in outcomes if o["kind"] == kind]
        ok = [o for o in mine if o["status"] in (200, 201, 202)]
        refused = [o for o in mine if o["status"] == 503]
        other = [o for o in mine if o not in ok and o not in refused]

        def stored(o):
            return o["name"] in names and (kind == "write" or o["message_id"] in events)

        lost = [o for o in ok if not stored(o) or not answers_a("127.0.0.1", port, o["name"], o["addr"])]
        refused_but_stored = [o for o in refused if o["name"] in names or (kind == "event" and o["message_id"] in events)]
        # The connection cut while a COMMIT was under way: PostgreSQL may have committed it, and the
        # 503 says so ("may have been committed" / "stored"); such a write being there is not a fault.
        unknown = [o for o in refused_but_stored if "may have been" in o.get("body", "")]
        refused_but_stored = [o for o in refused_but_stored if o not in unknown]
        out[kind] = {"sent": len(mine), "2xx": len(ok), "503": len(refused),
                     "503_with_retry_after": sum(1 for o in refused if o["retry_after"]),
                     "other": len(other), "other_samples": [{k: o.get(k) for k in ("i", "status", "body")} for o in other[:5]],
                     "2xx_then_lost": len(lost), "lost_samples": [o["name"] for o in lost[:5]],
                     "503_but_stored": len(refused_but_stored), "503_outcome_unknown_stored": len(unknown),
                     "503_outcome_unknown": sum(1 for o in refused if "may have been" in o.get("body", "")),
                     "post_ms_p50": percentile([o["took"] * 1000 for o in ok], 50),
                     "post_ms_p99": percentile([o["took"] * 1000 for o in ok], 99)}  # fmt: skip
    return out


def first_2xx_after(outcomes: list[dict], at: float) -> float | None:
    after = [o["sent"] + o["took"] for o in outcomes if o["sent"] >= at and o["status"] in (200, 201, 202)]
    return (min(after) - at) * 1000 if after else None


async def run(a, pg: PG, proxy: PgProxy, base: str, port: int, queries: str, log_path: str) -> dict:
    total = SETTLE + a.outage + SETTLE + a.stop + SETTLE + 5
    started = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", flush=True)

    cmd = dnsperf_cmd(port, queries, total, a.qps)
    log("$ " + " ".join(cmd))
    perf = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    traffic = Traffic(base)
    sender = asyncio.ensure_future(traffic.run())
    await asyncio.sleep(0.5)
    part = await partition(proxy, pg, port, a.outage, log)
    log(f"A: catch-up {ms(part['catch_up_ms'])} (last change served), serial in {ms(part['serial_served_ms'])}")
    stp = await pg_stop(pg, port, a.stop, log)
    log(f"B: committed {ms(stp['restart_to_commit_ms'])} after the start, served {ms(stp['commit_to_served_ms'])} later")
    await asyncio.sleep(SETTLE)
    traffic.halt.set()
    await sender
    log("traffic stopped; waiting for dnsperf")
    out = (await perf.communicate())[0].decode()
    fig = dnsperf_figures(out)
    if fig["sent"] is None:
        print(out)
    outcomes = await check_outcomes(traffic.outcomes, pg, port)
    for kind, phase_at in (("write", part["healed_at"]), ("event", part["healed_at"])):
        outcomes[kind]["first_2xx_after_heal_ms"] = first_2xx_after([o for o in traffic.outcomes if o["kind"] == kind], phase_at)
        outcomes[kind]["first_2xx_after_restart_ms"] = first_2xx_after([o for o in traffic.outcomes if o["kind"] == kind],
                                                                        stp["started_at"])  # fmt: skip
    states = [ln.split(": ", 1)[-1] for ln in read_log(log_path).splitlines() if "database connection lost" in ln or "database: ready" in ln]
    timeline = [[o["kind"], o["i"], o["status"], round(o["sent"] - started, 3), round(o["took"] * 1000, 1), o.get("body", "")[:160]]
                for o in traffic.outcomes]  # fmt: skip
    return {"dnsperf": fig, "dnsperf_command": " ".join(cmd), "partition": part, "stop": stp, "api": outcomes, "server_states": states,
            "started_at": started, "requests": timeline}  # fmt: skip


async def give_zone_to_project(url: str) -> None:
    """The imported zone belongs to no project; the API's quotas are per project: "bench"."""
    from minidns.store.db import connect

    conn = await connect(url)
    try:
        await conn.execute("UPDATE zones SET project_id = 'bench' WHERE name = $1", ZONE)
    finally:
        await conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outage", type=float, default=60, help="seconds the partition lasts")
    ap.add_argument("--stop", type=float, default=10, help="seconds PostgreSQL is stopped")
    ap.add_argument("--qps", type=int, default=10000,
                    help="dnsperf's rate (0: as fast as it goes); near the server's full rate the API's replies wait seconds")
    ap.add_argument("--cpu", default="0")
    ap.add_argument("--other-cpu", default="1")
    a = ap.parse_args()
    print(f"command: {command_line()}", flush=True)
    peerbench = peerbench_path()
    zone, queries = os.path.join(OUT, "bench.test.zone"), os.path.join(OUT, "queries.txt")
    if not (os.path.exists(zone) and os.path.exists(queries)):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run([sys.executable, peerbench, "--gen-zone", "10000", "--out", OUT], check=True)
    pin_self(a.other_cpu)
    pg = PG("faults")
    proc = proxy = None
    try:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        subprocess.run([sys.executable, "-m", "minidns", "zone", "import", zone, "--database-url", pg.url], check=True,
                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        asyncio.run(give_zone_to_project(pg.url))
        proxy = PgProxy(unix_socket_of(pg.url))
        port, api_port = free_port(), free_port()
        conf = os.path.join(pg.dir, "minidns.toml")
        with open(conf, "w") as f:
            f.write(f'events_zone = "{ZONE}"\napi_tokens = [\n  {{ token = "{ADMIN}", project = "bench", role = "admin" }},\n'
                    f'  {{ token = "{INGEST}", project = "bench", role = "ingest" }},\n]\n')  # fmt: skip
        log_path = os.path.join(pg.dir, "minidns.log")
        proc = start_server(proxy.url(pg.url), f"127.0.0.1:{port}", log_path, cpu=a.cpu,
                            extra=("--config", conf, "--api-listen", f"127.0.0.1:{api_port}", "--no-notify"))  # fmt: skip
        wait_until(proc, lambda: answers_a("127.0.0.1", port, f"h1.{ZONE}", "10.0.0.1"), 120, "minidns", log_path)
        wait_until(proc, lambda: "API listening" in read_log(log_path), 30, "minidns API", log_path)
        print(f"minidns on 127.0.0.1:{port} (CPU {a.cpu}), API on {api_port}, PostgreSQL through the proxy on {proxy.port}",
              flush=True)  # fmt: skip
        base_cmd = dnsperf_cmd(port, queries, 3, a.qps)
        baseline = dnsperf_figures(subprocess.run(base_cmd, capture_output=True, text=True).stdout)
        print(f"normal run (3 s): {baseline['completed']:.0f} of {baseline['sent']:.0f} answered, rcodes {baseline['rcodes']}", flush=True)
        res = asyncio.run(run(a, pg, proxy, f"http://127.0.0.1:{api_port}", port, queries, log_path))
        res["baseline_dnsperf"] = baseline
        res["command"] = command_line()
        report(res, a)
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "faults.json"), "w") as f:
            json.dump(res, f, indent=1, default=str)
        return 0 if res["bars_met"] else 1
    finally:
        if proc is not None:
            stop(proc)
        if proxy is not None:
            proxy.close()
        pg.close()


def ms(x: float | None) -> str:
    return "never" if x is None else f"{x:.0f} ms"


def report(res: dict, a) -> None:
    fig, base, part, stp, api = res["dnsperf"], res["baseline_dnsperf"], res["partition"], res["stop"], res["api"]
    print(f"\n=== faults: {a.outage:g} s partition from PostgreSQL, then {a.stop:g} s PostgreSQL stopped, under "
          f"{'%d qps' % a.qps if a.qps else 'full-rate'} dnsperf ===")  # fmt: skip
    print(f"command: {res['command']}")
    answered = fig["completed"] / fig["sent"] * 100 if fig["sent"] else 0
    print(f"queries: sent {fig['sent']:.0f}, answered {fig['completed']:.0f} ({answered:.4f}%), lost {fig['lost']:.0f}, "
          f"{fig['qps']:.0f} qps, avg latency {fig['latency_avg_s'] * 1000:.2f} ms, max {fig['latency_max_s'] * 1000:.1f} ms")  # fmt: skip
    print(f"rcodes: {fig['rcodes']} (normal run: {base['rcodes']})")
    b_shares, f_shares = shares(base["rcodes"]), shares(fig["rcodes"])
    rcodes_ok = set(f_shares) <= set(b_shares) and all(abs(f_shares[k] - b_shares.get(k, 0)) < 0.01 for k in f_shares)
    print(f"partition: {part['outage_s']:.1f} s; {part['committed_meanwhile']} changes committed directly meanwhile "
          f"(served serial stayed {part['served_serial_during']}, database {part['db_serial']})")  # fmt: skip
    print(f"  catch-up after the proxy is restored: last change answered in {ms(part['catch_up_ms'])}, "
          f"serial in {ms(part['serial_served_ms'])}; not answered afterwards: {len(part['missing_after'])}")  # fmt: skip
    print(f"stop: PostgreSQL stopped {stp['stopped_s']:.1f} s; a change committed {ms(stp['restart_to_commit_ms'])} after it "
          f"was back was answered {ms(stp['commit_to_served_ms'])} after its commit")  # fmt: skip
    for kind in ("write", "event"):
        x = api[kind]
        print(f"API {kind}s: {x['sent']} sent; 2xx {x['2xx']}, 503 {x['503']} (with Retry-After {x['503_with_retry_after']}), "
              f"other {x['other']} {x['other_samples'] or ''}; 2xx-then-lost {x['2xx_then_lost']} {x['lost_samples'] or ''}; "
              f"503-but-stored {x['503_but_stored']} (and {x['503_outcome_unknown_stored']} of the {x['503_outcome_unknown']} "
              f"503s cut mid-request, which say it may have been stored); first 2xx {ms(x['first_2xx_after_heal_ms'])} after the heal, "
              f"{ms(x['first_2xx_after_restart_ms'])} after the restart; 2xx POST p50 {ms(x['post_ms_p50'])}, p99 {ms(x['post_ms_p99'])}")  # fmt: skip
    print(f"server: {' -> '.join(res['server_states'])}")
    bars = {
        "all_queries_answered": fig["sent"] and fig["completed"] == fig["sent"] and fig["lost"] == 0,
        "rcodes_as_normal": rcodes_ok,
        "no_2xx_then_lost": api["write"]["2xx_then_lost"] == 0 and api["event"]["2xx_then_lost"] == 0,
        "no_503_stored": api["write"]["503_but_stored"] == 0 and api["event"]["503_but_stored"] == 0,
        "503_with_retry_after": all(api[k]["503"] == api[k]["503_with_retry_after"] and api[k]["503"] > 0 for k in api),
        "no_other_status": api["write"]["other"] == 0 and api["event"]["other"] == 0,
        "catch_up_le_1000_ms": part["catch_up_ms"] is not None and part["catch_up_ms"] <= 1000 and not part["missing_after"],
    }
    res["bars"] = bars
    res["bars_met"] = all(bars.values())
    for k, v in bars.items():
        print(f"bar {k}: {'met' if v else 'NOT MET'}")


if __name__ == "__main__":
    sys.exit(main())
