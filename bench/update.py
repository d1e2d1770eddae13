#!/usr/bin/env python3
"""Dynamic UPDATE (RFC 2136) into minidns: round trip, throughput into one zone, and how soon an
acknowledged update is answered.

  python3 bench/update.py                    # all three parts
  python3 bench/update.py --seconds 5        # a shorter throughput run

Starts a private embedded PostgreSQL (pinned to --pg-cpu, default 1), creates the zone upd.test.,
and `python -m minidns serve` from this checkout pinned to CPU 0 with a TSIG key (hmac-sha256) and
a grant for it over the zone. This process (pinned to --cpu, default 1) is the client; every
update is TSIG-signed, and every reply's rcode is checked (a signed reply's MAC is checked by
dnspython in part R).

R. Round trip, nsupdate-style: --trips updates one after another, each adding one A record at a
   new name over a new TCP connection (as `nsupdate -v` sends each), built, signed, sent and its
   signed reply read and verified by dnspython. p50/p99 in ms.
P. Acknowledged → answered: after each update of part R, the new name is asked over UDP at once
   and again every 0.5 ms until the new address is answered. p50/p99 in ms. Bar: p99 ≤ 20 ms.
T. Throughput: --clients (default 32) clients, each on its own TCP connection, send single-record
   updates (each a new name) one after another for --seconds, each waiting for its reply. The
   messages are signed before the clock starts (the client's cost is not the server's); each
   reply's rcode must be NOERROR. Updates acknowledged per second. Bar: ≥ 2,000/s. Then the
   serials: how many updates one serial carried (the group commit).
Writes bench/out/update.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, free_port, proc_cpu_seconds, read_log, stop  # noqa: E402
from dbcommon import PG, command_line, open_store, percentile, pin_self, print_profile, start_server, wait_until  # noqa: E402

ORIGIN = "upd.test."
KEY, SECRET = "bench-key.", "YmVuY2gtc2VjcmV0LWZvci1taW5pZG5zLXVwZGF0ZXM="
P99_BAR_MS, RATE_BAR = 20.0, 2000.0


def keyring():
    import dns.tsigkeyring

    return dns.tsigkeyring.from_text({KEY: ("hmac-sha256", SECRET)})


def update_msg(label: str, address: str, ring):
    import dns.update

    m = dns.update.UpdateMessage(ORIGIN, keyring=ring, keyalgorithm="hmac-sha256")
    m.add(label, 300, "A", address)
    return m


def a_query(name: str) -> bytes:
    q = b"".join(bytes([len(x)]) + x.encode() for x in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", 4660, 0, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)


def answered(sock: socket.socket, query: bytes, want: bytes) -> bool:
    try:
        sock.send(query)
        r = sock.recv(4096)
    except (socket.timeout, ConnectionRefusedError):  # not listening yet
        return False
    return r[3] & 0xF == 0 and want in r[12:]


def round_trips(port: int, n: int) -> tuple[list[float], list[float]]:
    """Part R and P: (round trips ms, acknowledged → answered ms)."""
    import dns.query
    import dns.rcode

    ring = keyring()
    trips, seen = [], []
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(0.05)
    udp.connect(("127.0.0.1", port))
    for i in range(n):
        addr = f"10.1.{i >> 8 & 255}.{i & 255}"
        t0 = time.perf_counter()
        m = update_msg(f"rt{i}", addr, ring)
        r = dns.query.tcp(m, "127.0.0.1", port=port, timeout=5)
        t1 = time.perf_counter()
        if r.rcode() != dns.rcode.NOERROR:
            sys.exit(f"update {i}: {dns.rcode.to_text(r.rcode())}")
        trips.append((t1 - t0) * 1000)
        query, want = a_query(f"rt{i}.{ORIGIN}"), socket.inet_aton(addr)
        while not answered(udp, query, want):
            if time.perf_counter() - t1 > 5:
                sys.exit(f"update {i} not answered within 5 s")
            time.sleep(0.0005)
        seen.append((time.perf_counter() - t1) * 1000)
    udp.close()
    return trips, seen


async def throughput(port: int, clients: int, seconds: float, per_client: int) -> tuple[int, float, int]:
    """Part T: (acknowledged, seconds, refused or failed)."""
    ring = keyring()
    messages = [[update_msg(f"c{c}-{i}", f"10.2.{c}.{i & 255}", ring).to_wire() for i in range(per_client)]
                for c in range(clients)]  # fmt: skip
    done, bad, spent = [0], [0], [0]
    stop_at = [0.0]

    async def client(c: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for wire in messages[c]:
                if time.perf_counter() >= stop_at[0]:
                    break
                writer.write(len(wire).to_bytes(2, "big") + wire)
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = await reader.readexactly(size)
                if reply[3] & 0xF == 0:
                    done[0] += 1
                else:
                    bad[0] += 1
            else:  # every message sent before the time was up
                spent[0] += 1
        finally:
            writer.close()

    start = time.perf_counter()
    stop_at[0] = start + seconds
    await asyncio.gather(*(client(c) for c in range(clients)))
    if spent[0]:
        print(f"! {spent[0]} clients sent every message they had before the time was up: raise --per-client", flush=True)
    return done[0], time.perf_counter() - start, bad[0]


def stats(ms: list[float]) -> dict:
    return {"n": len(ms), "p50": percentile(ms, 50), "p90": percentile(ms, 90), "p99": percentile(ms, 99), "max": max(ms)}


def show(name: str, s: dict) -> str:
    return f"{name}: n {s['n']}  p50 {s['p50']:.2f}  p90 {s['p90']:.2f}  p99 {s['p99']:.2f}  max {s['max']:.2f} ms"


async def main_async(a) -> int:
    print(f"command: {command_line()}", flush=True)
    pin_self(a.cpu)
    pg = PG("update")
    print(f"embedded PostgreSQL in {pg.dir}; {pg.pin(a.pg_cpu)} processes pinned to CPU {a.pg_cpu}", flush=True)
    proc = db = None
    try:
        db = await open_store(pg.url)
        from minidns.store.writer import Edit

        await db.store.create_zone(ORIGIN, email="hostmaster@upd.test",
                                   edits=[Edit("add", "@", "NS", 3600, ("ns1",)), Edit("add", "ns1", "A", 3600, ("192.0.2.1",))])  # fmt: skip
        serial_start = await db.pool.fetchval("SELECT serial FROM zones WHERE name = $1", ORIGIN)
        port = free_port()
        conf = os.path.join(pg.dir, "minidns.toml")
        with open(conf, "w") as f:
            f.write(f'tsig_keys = [{{ name = "{KEY}", algorithm = "hmac-sha256", secret = "{SECRET}" }}]\n'
                    f'update_grants = [{{ key = "{KEY}", zone = "{ORIGIN}", match = "zone" }}]\n')  # fmt: skip
        log = os.path.join(OUT, "update-server.log")
        proc = start_server(pg.url, f"127.0.0.1:{port}", log, cpu=a.server_cpu,
                            extra=("--config", conf, "--no-api", "--no-notify", "--log-level", "warning", "--workers", str(a.workers)),
                            profile=a.profile)  # fmt: skip
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.settimeout(0.2)
        probe.connect(("127.0.0.1", port))
        wait_until(proc, lambda: answered(probe, a_query(f"ns1.{ORIGIN}"), socket.inet_aton("192.0.2.1")), 120, "minidns", log)
        probe.close()
        print(f"minidns (pid {proc.pid}, CPU {a.server_cpu}) on 127.0.0.1:{port}", flush=True)

        trips, seen = round_trips(port, a.trips)
        print(f"T: {a.clients} clients for {a.seconds:g} s ...", flush=True)
        cpu0 = proc_cpu_seconds(proc.pid)
        ok, took, bad = await throughput(port, a.clients, a.seconds, a.per_client)
        cpu = proc_cpu_seconds(proc.pid) - cpu0
        serial_end = await db.pool.fetchval("SELECT serial FROM zones WHERE name = $1", ORIGIN)
        server_log = read_log(log)
    finally:
        if proc is not None:
            stop(proc)
        if db is not None:
            await db.close()
        pg.close()

    rt, ps = stats(trips), stats(seen)
    rate = ok / took
    serials = serial_end - serial_start  # the serial policy "increment": one per change
    print("\n=== dynamic UPDATE into minidns (TSIG hmac-sha256) ===")
    print(f"command: {command_line()}")
    print("R. " + show("round trip, one record, new TCP connection each", rt))
    print("P. " + show("acknowledged -> answered (UDP)", ps))
    print(f"T. {a.clients} clients, {took:.1f} s: {ok} updates acknowledged ({bad} not NOERROR) = {rate:,.0f} updates/s; "
          f"minidns CPU {cpu / took:.2f} s/s; {serials} serials for {ok + a.trips} updates "
          f"({(ok + a.trips) / max(serials, 1):.1f} per change-log row)")  # fmt: skip
    if "Traceback" in server_log or "ERROR" in server_log:
        print("server log has errors:\n" + server_log[-3000:])
    print(f"bar P p99 <= {P99_BAR_MS:g} ms: {'met' if ps['p99'] <= P99_BAR_MS else 'NOT MET'}")
    print(f"bar T >= {RATE_BAR:,.0f} updates/s: {'met' if rate >= RATE_BAR and not bad else 'NOT MET'}")
    if a.profile:
        print_profile(a.profile)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "update.json"), "w") as f:
        json.dump({"round_trip_ms": rt, "answered_ms": ps, "updates_per_second": rate, "clients": a.clients,
                   "not_noerror": bad, "serials": serials, "server_cpu_per_second": cpu / took}, f, indent=1)  # fmt: skip
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trips", type=int, default=500, help="updates of parts R and P (default 500)")
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients of part T (default 32)")
    ap.add_argument("--seconds", type=float, default=10, help="length of part T (default 10)")
    ap.add_argument("--per-client", type=int, default=1000,
                    help="messages each client has signed in advance; a client that has sent them all stops (default 1000)")
    ap.add_argument("--profile", metavar="FILE", help="run minidns under cProfile, writing FILE, and print its top functions")
    ap.add_argument("--workers", type=int, default=1, help="minidns processes sharing the port (serve --workers; default 1)")
    ap.add_argument("--server-cpu", default="0", help="CPU minidns is pinned to (default 0)")
    ap.add_argument("--cpu", default="1", help="CPU this process (the clients) is pinned to (default 1)")
    ap.add_argument("--pg-cpu", default="1", help="CPU PostgreSQL is pinned to (default 1)")
    a = ap.parse_args()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(a))
    return uvloop.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
