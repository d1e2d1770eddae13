#!/usr/bin/env python3
"""The sink on RabbitMQ under load: OpenStack notifications published by oslo.messaging's own
Notifier (driver messagingv2, control exchange nova, topic notifications, publisher compute.host1)
to a private RabbitMQ node, consumed by `minidns serve --openstack-transport-url`.

  python3 bench/bus.py                          # 300 events/s for 60 s, a 10,000-event burst, restarts
  python3 bench/bus.py --seconds 10 --burst 2000
  python3 bench/bus.py --parts A --no-pin       # A as the README gives it (see A below)

Starts a private embedded PostgreSQL and a private RabbitMQ node (tests/bus/rabbit.py; both pinned
to CPU 1, as this client is) and `minidns serve --database-url` on CPU 0 with cloud.test. as its
events_zone and the bus pool "bench". Each event is tests/admin/events/nova_compute.instance.
create.end.json sent again with a new instance id, hostname and fixed IPv4 address.

  A. steady: --rate events/s for --seconds, published on a fixed timetable (3 publishing processes;
     "publishing late" says how far behind it they fell), for each the time from the Notifier call
     to the instance's A record answered over UDP (the records are asked for in publishing order,
     the first unanswered one every millisecond, by a process of its own: the probe costs minidns
     ~1,000 queries/s however far behind it is). Percentiles overall and per
     10 s window: the lag grows when the last window's p99 is well above the first's, or the last
     event is answered more than 5 s after it was published.
  B. burst: minidns stopped; --burst notifications published (8 threads); minidns started: the
     apply rate, events/s from its consumer connecting to the last event committed (rows in
     `events`, polled every 50 ms), and over the span of the events' commit times.
  C. restarts: minidns stopped; --burst / 2 more published; minidns started, SIGKILLed once a
     third of them are applied and started again; the broker restarted (same data and ports) once
     two thirds are; then every one counted: lost = published − rows in `events`; applied twice =
     events with attempts > 1 plus names holding more than one A record. The redelivered and
     duplicate counters of the last minidns are shown.
  D. the consumer alone: --burst messages through minidns's AMQP source in this process with an
     `apply` that returns at once — what the bus side takes, without the sink.

Bars (issue #19): A p99 ≤ 50 ms with no growing lag; B ≥ 1,000 events/s; C 0 lost, 0 applied twice.
Writes bench/out/bus-<parts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import random
import re
import signal
import socket
import struct
import sys
import time
import urllib.request
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT, os.path.join(ROOT, "tests", "bus")]
warnings.simplefilter("ignore")  # oslo's and eventlet's deprecation warnings
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")  # eventlet (under oslo.messaging) must not patch dnspython here
logging.getLogger("oslo_messaging").setLevel(logging.CRITICAL)  # its heartbeat thread's complaints while the broker restarts
from common import OUT, stop
from dbcommon import PG, command_line, percentile, pin_self, start_api_server
from events import ZONE, a_query, make_zone  # the same zone as the HTTP events bench
from oslo_publisher import Service
from rabbit import Rabbit

SAMPLE = "nova_compute.instance.create.end.json"


NETS = {"s": 1, "b": 2, "c": 3, "d": 4}  # each part's instances in their own 10.N.0.0/16


def send(nova: Service, prefix: str, i: int) -> None:
    """Instance <prefix><i> created, its address 10.N.<i / 256>.<i % 256>."""
    addr = f"10.{NETS[prefix]}.{(i >> 8) & 255}.{i & 255}"
    nova.send_sample(SAMPLE, hostname=f"{prefix}{i}", instance_id=str(uuid.uuid4()),
                     fixed_ips=[{"address": addr, "version": 4, "type": "fixed"}])  # fmt: skip


class Bench:
    def __init__(self, a):
        self.a = a
        pin_self(a.other_cpu)
        self.pg = PG("bus")
        self.pg.pin(a.db_cpu or a.other_cpu)
        self.rabbit = Rabbit(Path(self.pg.dir) / "rabbit")
        self.rabbit.start()  # on --other-cpu, as this process (pinned above) is
        asyncio.run(make_zone(self.pg.url))
        self.nova = Service(self.rabbit.url, "nova", "compute.host1")
        self.proc = self.base = self.port = None

    def start(self) -> None:
        config = (f'events_zone = "{ZONE}"\nopenstack_transport_url = ["{self.rabbit.url}"]\nbus_pool = "bench"\n'
                  f"bus_prefetch = {self.a.prefetch}\n")  # fmt: skip
        self.proc, self.base, self.port = start_api_server(self.pg, config, self.a.cpu)
        deadline = time.monotonic() + 30
        while not self.bus().get("connected"):
            if time.monotonic() > deadline:
                sys.exit(f"minidns did not connect to RabbitMQ: {self.bus()}")
            time.sleep(0.02)

    def bus(self) -> dict:
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                return json.load(r).get("bus", {}).get("openstack", {})
        except OSError as e:
            body = getattr(e, "read", lambda: b"{}")()
            return json.loads(body or b"{}").get("bus", {}).get("openstack", {})

    def counter(self, outcome: str) -> int:
        with urllib.request.urlopen(self.base + "/metrics", timeout=5) as r:
            m = re.search(rf'minidns_bus_messages_total{{source="openstack",outcome="{outcome}"}} (\d+)', r.read().decode())
        return int(m.group(1)) if m else 0

    def publish(self, prefix: str, n: int, threads: int = 8) -> float:
        started = time.monotonic()
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(lambda i: send(self.nova, prefix, i), range(n)))
        return n / (time.monotonic() - started)

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        self.nova.close()
        self.rabbit.close()
        self.pg.close()


def rows(url: str, prefix: str) -> dict:
    """The create events recorded for hostnames <prefix>*, and the names with more than one A record."""
    from minidns.store import db

    async def go():
        conn = await db.connect(url)
        try:
            r = await conn.fetchrow(
                "SELECT count(*) AS rows, count(*) FILTER (WHERE attempts > 1) AS again,"
                " extract(epoch FROM max(applied_at) - min(applied_at))::float8 AS span,"
                " count(DISTINCT applied_at) AS batches FROM events"  # applied_at is the batch's transaction time
                " WHERE event_type = 'compute.instance.create.end' AND event->'payload'->>'hostname' LIKE $1", prefix + "%")
            doubled = await conn.fetchval(
                "SELECT count(*) FROM rrsets WHERE type = 1 AND name LIKE $1 AND cardinality(records) > 1", prefix + "%")
            return {**dict(r), "doubled": doubled}
        finally:
            await conn.close()

    return asyncio.run(go())


def wait_rows(url: str, prefix: str, n: int, timeout: float = 900) -> float:
    """Seconds until `n` events of <prefix>* are recorded (looked at every 0.2 s)."""
    started = time.monotonic()
    while rows(url, prefix)["rows"] < n:
        if time.monotonic() - started > timeout:
            sys.exit(f"only {rows(url, prefix)['rows']} of {n} {prefix}* events applied after {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def wait_applied(b: Bench, n: int, timeout: float = 900) -> float:
    """Seconds until minidns says it has applied `n` messages (its /metrics: no load on the database)."""
    started = time.monotonic()
    while b.counter("applied") < n:
        if time.monotonic() - started > timeout:
            sys.exit(f"only {b.counter('applied')} of {n} events applied after {timeout:.0f} s")
        time.sleep(0.02)
    return time.monotonic() - started


async def answers(sock, port: int, name: str) -> bool:
    """Whether an A query for `name` gets an answer now (NOERROR with a record)."""
    loop = asyncio.get_running_loop()
    qid = random.getrandbits(16)
    await loop.sock_sendto(sock, a_query(name, qid), ("127.0.0.1", port))
    while True:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.5)
        except TimeoutError:
            return False
        if struct.unpack_from("!H", data)[0] == qid:
            return data[3] & 0xF == 0 and struct.unpack_from("!H", data, 6)[0] > 0


async def watch(port: int, n: int, patience: float) -> list:
    """When each event was answered, in the order they were published (one consumer applies them in
    that order): the first not yet answered is asked about every millisecond, and once it is, the
    next at once — so the probing costs minidns about 1,000 queries a second however far behind it
    is. None for those not answered within `patience` seconds of the last progress."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    done: list = [None] * n
    i, last_progress = 0, time.monotonic()
    try:
        while i < n and time.monotonic() - last_progress < patience:
            if not await answers(sock, port, f"s{i}.{ZONE}"):
                await asyncio.sleep(0.001)
                continue
            done[i], last_progress, i = time.monotonic(), time.monotonic(), i + 1
    finally:
        sock.close()
    return done


def watch_apart(port: int, n: int, patience: float, out) -> None:
    """`watch` in a process of its own (forked): in the publishing process it would share the GIL
    with oslo.messaging's threads and count their time as minidns's lag. CLOCK_MONOTONIC is the
    machine's, so its times compare with the publisher's."""
    out.send(asyncio.run(watch(port, n, patience)))
    out.close()


PUBLISHERS = 3  # processes, as the services of a cloud are: in threads of one process they queue behind one GIL


def publisher(url: str, k: int, n: int, rate: float, start: float, out) -> None:
    """Publisher k of PUBLISHERS (a process of its own, started by spawn): events k, k + PUBLISHERS,
    … each at start + i / rate (CLOCK_MONOTONIC, the machine's), with its own Notifier; sends back
    when each Notifier call began."""
    nova = Service(url, "nova", "compute.host1")
    sent = {}
    for i in range(k, n, PUBLISHERS):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        sent[i] = time.monotonic()  # the Notifier called: what the cloud's service does at that moment
        send(nova, "s", i)
    nova.close()
    out.send(sent)
    out.close()


async def steady(b: Bench, rate: float, seconds: float) -> dict:
    """A: events on a timetable; publish call → A answered, per event."""
    loop = asyncio.get_running_loop()
    n = int(rate * seconds)
    fork, spawn = multiprocessing.get_context("fork"), multiprocessing.get_context("spawn")
    receive, out = fork.Pipe(duplex=False)
    watcher = fork.Process(target=watch_apart, args=(b.port, n, 60, out), daemon=True)
    watcher.start()
    start = time.monotonic() + 5  # the publishers' imports and connections first
    pipes, procs = [], []
    for k in range(PUBLISHERS):
        r, w = spawn.Pipe(duplex=False)
        procs.append(spawn.Process(target=publisher, args=(b.rabbit.url, k, n, rate, start, w), daemon=True))
        procs[-1].start()
        pipes.append(r)
    sent: list = [None] * n
    for r in pipes:
        for i, t in (await loop.run_in_executor(None, r.recv)).items():
            sent[i] = t
    for p in procs:
        p.join()
    late = [sent[i] - (start + i / rate) for i in range(n)]  # behind the timetable: the rate not met
    last = time.monotonic()
    done = await loop.run_in_executor(None, receive.recv)
    watcher.join()
    drained = max(0.0, max((d for d in done if d is not None), default=last) - last)
    lat = [(sent[i] - start, (done[i] - sent[i]) * 1000) for i in range(n) if done[i] is not None]
    ms = [x for _, x in lat]
    windows: dict = {}
    for t, x in lat:
        windows.setdefault(int(t // 10), []).append(x)
    per = [round(percentile(windows[k], 99), 1) for k in sorted(windows)]
    split = await loop.run_in_executor(None, batch_starts, b.pg.url, "s")
    return {"events": n, "answered": len(lat), "lost": n - len(lat), "p50": percentile(ms, 50), "p90": percentile(ms, 90),
            "p99": percentile(ms, 99), "max": max(ms) if ms else None, "p99_per_10s": per,
            "publish_late_p99_ms": percentile([x * 1000 for x in late], 99), "drained_after_s": round(drained, 1),
            "to_batch_p50_ms": percentile(split["waits"], 50), "to_batch_p99_ms": percentile(split["waits"], 99),
            "batches": split["batches"]}  # fmt: skip


def batch_starts(url: str, prefix: str) -> dict:
    """For the events of <prefix>*: the time from the notification's timestamp (oslo's, taken as
    it is published) to the start of the transaction that applied it (applied_at), in ms; and how
    many transactions there were."""
    from minidns.store import db

    async def go():
        conn = await db.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT extract(epoch FROM applied_at - event_time)::float8 * 1000 AS wait, applied_at FROM events"
                " WHERE event_type = 'compute.instance.create.end' AND event->'payload'->>'hostname' LIKE $1", prefix + "%")
            return {"waits": [r["wait"] for r in rows], "batches": len({r["applied_at"] for r in rows})}
        finally:
            await conn.close()

    return asyncio.run(go())


def burst(b: Bench, n: int) -> dict:
    """B: n published while minidns is stopped; then its apply rate."""
    stop(b.proc)
    pub = b.publish("b", n)
    t = time.monotonic()
    b.start()
    connected = time.monotonic() - t
    took = wait_applied(b, n)
    r = rows(b.pg.url, "b")
    return {"events": n, "publish_per_s": round(pub), "start_to_connected_s": round(connected, 2),
            "connected_to_all_applied_s": round(took, 2), "apply_per_s": round(n / took),
            "commit_span_s": round(r["span"] or 0, 2), "apply_per_s_commit_span": round(n / r["span"]) if r["span"] else None,
            "rows": r["rows"], "again": r["again"], "doubled": r["doubled"], "batches": r["batches"]}  # fmt: skip


def restarts(b: Bench, n: int) -> dict:
    """C: n published with minidns stopped; minidns killed at a third, the broker restarted at two thirds."""
    stop(b.proc)
    b.publish("c", n)
    b.start()
    wait_rows(b.pg.url, "c", n // 3)
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait()
    killed_at = rows(b.pg.url, "c")["rows"]
    b.start()
    wait_rows(b.pg.url, "c", 2 * n // 3)
    b.rabbit.stop()
    restarted_at = rows(b.pg.url, "c")["rows"]
    b.rabbit.start()
    wait_rows(b.pg.url, "c", n)
    time.sleep(1)  # anything applied twice would land now
    r = rows(b.pg.url, "c")
    return {"events": n, "killed_at": killed_at, "broker_restarted_at": restarted_at, "rows": r["rows"],
            "lost": n - r["rows"], "applied_twice": r["again"] + r["doubled"],
            "redelivered": b.counter("redelivered"), "duplicates": b.counter("duplicate")}  # fmt: skip


def consumer_alone(b: Bench, n: int) -> dict:
    """D: the AMQP source itself (minidns/bus/amqp.py), in this process, with an `apply` that
    decodes each body and returns at once: what the consumer takes, without the sink."""
    import orjson

    from minidns.bus.amqp import AmqpSource, Binding
    from minidns.bus.status import SourceStatus
    from minidns.sink.outcome import Outcome


    async def go() -> float:
        seen, status = [], SourceStatus("bench", "amqp")

        async def apply(messages):
            seen.extend(orjson.loads(m.body) for m in messages)
            return [Outcome(str(i), "x", "x", "applied") for i, _ in enumerate(messages)]

        source = AmqpSource(status, [b.rabbit.url], [Binding("nova", "topic", False, ("notifications.info",))],
                            "bench-consumer-alone", apply, prefetch=b.a.prefetch)  # fmt: skip
        task = asyncio.ensure_future(source.run())
        while not status.connected:
            await asyncio.sleep(0.01)
        source.stop()
        await task  # the queue now exists and is bound: fill it, then consume it
        await asyncio.to_thread(b.publish, "d", n)
        source = AmqpSource(status, [b.rabbit.url], [Binding("nova", "topic", False, ("notifications.info",))],
                            "bench-consumer-alone", apply, prefetch=b.a.prefetch)  # fmt: skip
        started = time.monotonic()
        task = asyncio.ensure_future(source.run())
        while len(seen) < n:
            await asyncio.sleep(0.005)
        took = time.monotonic() - started
        source.stop()
        await task
        return took

    took = asyncio.run(go())
    return {"messages": n, "seconds": round(took, 2), "per_s": round(n / took)}


def report(res: dict, a) -> bool:
    print(f"\n=== bus: oslo.messaging Notifier -> RabbitMQ -> minidns ===\ncommand: {command_line()}")
    bars = {}
    if "steady" in res:
        s = res["steady"]
        print(f"A. {s['events']} events at {a.rate:g}/s: answered {s['answered']}, never answered {s['lost']}")
        print(f"   publish -> A answered (ms): p50 {s['p50']:.1f}  p90 {s['p90']:.1f}  p99 {s['p99']:.1f}  max {s['max']:.1f}")
        print(f"   p99 per 10 s (ms): {s['p99_per_10s']} (publishing late p99 {s['publish_late_p99_ms']:.1f} ms); "
              f"the last answered {s['drained_after_s']} s after the last was published")
        print(f"   publish -> its batch's transaction began (ms): p50 {s['to_batch_p50_ms']:.1f}  p99 {s['to_batch_p99_ms']:.1f}; "
              f"{s['batches']} batches, {s['answered'] / max(s['batches'], 1):.1f} events each on average")
        if s["publish_late_p99_ms"] > 100:
            print("   ! the publishers fell behind their timetable (publishing late): the probe, asking in publishing order,"
                  " then counts their lag as minidns's; " + ("the machine is too busy for A's figures" if a.no_pin
                                                             else "run A with --no-pin"))
        per = s["p99_per_10s"]
        grows = s["drained_after_s"] > 5 or (len(per) > 1 and per[-1] > 2 * max(per[0], 10))
        print(f"   lag: last 10 s p99 {per[-1]} vs first {per[0]}: {'GROWS' if grows else 'does not grow'}")
        bars["A p99 <= 50 ms, lag not growing, none lost"] = s["p99"] <= 50 and not grows and not s["lost"]
    if "burst" in res:
        bu = res["burst"]
        print(f"B. burst of {bu['events']} (published at {bu['publish_per_s']}/s, minidns stopped): consumer connected "
              f"{bu['start_to_connected_s']} s after start; all applied {bu['connected_to_all_applied_s']} s later: "
              f"{bu['apply_per_s']} events/s ({bu['apply_per_s_commit_span']} events/s over the commits' span of {bu['commit_span_s']} s; "
              f"{bu['batches']} batches, {bu['rows'] / max(bu['batches'], 1):.0f} events each on average)")
        bars["B >= 1000 events/s"] = bu["apply_per_s"] >= 1000
    if "restarts" in res:
        c = res["restarts"]
        print(f"C. {c['events']} published; minidns SIGKILLed at {c['killed_at']} applied, broker restarted at "
              f"{c['broker_restarted_at']}: lost {c['lost']}, applied twice {c['applied_twice']} "
              f"(last minidns: {c['redelivered']} redelivered, {c['duplicates']} recognised as done)")
        bars["C 0 lost, 0 applied twice"] = c["lost"] == 0 and c["applied_twice"] == 0
    if "consumer" in res:
        d = res["consumer"]
        print(f"D. the AMQP source alone (apply returns at once): {d['messages']} messages in {d['seconds']} s, {d['per_s']}/s")
    for name, ok in bars.items():
        print(f"bar {name}: {'met' if ok else 'NOT MET'}")
    return all(bars.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=300)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--burst", type=int, default=10_000)
    ap.add_argument("--prefetch", type=int, default=100, help="bus_prefetch (default 100, the configuration's default)")
    ap.add_argument("--parts", default="ABCD", help="which parts to run (default ABCD)")
    ap.add_argument("--cpu", default="0")
    ap.add_argument("--other-cpu", default="1")
    ap.add_argument("--db-cpu", help="PostgreSQL's CPUs (default: --other-cpu, with the broker and the publisher)")
    ap.add_argument("--no-pin", action="store_true", help="pin nothing: the kernel places minidns, PostgreSQL, the "
                    "broker, the publishers and the probe on the machine's CPUs, as on a host that runs them all")
    a = ap.parse_args()
    if a.no_pin:
        a.cpu = a.other_cpu = a.db_cpu = None
    print(f"command: {command_line()}", flush=True)
    b = Bench(a)
    try:
        b.start()
        res = {}
        if "A" in a.parts:
            print(f"A: {int(a.rate * a.seconds)} events at {a.rate:g}/s ...", flush=True)
            res["steady"] = asyncio.run(steady(b, a.rate, a.seconds))
        if "B" in a.parts:
            print(f"B: burst of {a.burst} ...", flush=True)
            res["burst"] = burst(b, a.burst)
        if "C" in a.parts:
            print(f"C: {a.burst // 2} with kill -9 and a broker restart ...", flush=True)
            res["restarts"] = restarts(b, a.burst // 2)
        if "D" in a.parts:
            print(f"D: the consumer alone, {a.burst} messages ...", flush=True)
            stop(b.proc)  # its queue would take the messages too
            res["consumer"] = consumer_alone(b, a.burst)
        report(res, a)
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, f"bus-{a.parts}.json"), "w") as f:
            json.dump(res, f, indent=1)
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
