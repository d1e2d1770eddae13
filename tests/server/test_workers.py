"""`minidns serve --workers N`: several processes answer on one address (SO_REUSEPORT), each kept
current from PostgreSQL; one sends NOTIFY; a killed worker comes back; SIGHUP reaches them all;
stopping stops them all; systemd's notification protocol (READY, RELOADING, STOPPING, WATCHDOG)."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from minidns.store.writer import Edit
from tests.server.test_database import LIVE, ask, change, create_zone, db_serial, rdatas, rds, wait_until

MAIN_READY = r"INFO minidns: serving \d+ zone"


def children(pid: int) -> list[int]:
    """The worker processes of the main process `pid`."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def ask_retrying(port: int, name: str, rdtype: str = "A", tcp: bool = False) -> dns.message.Message:
    """A query as a resolver sends it: a new source port each time, retried on timeout."""
    q = dns.message.make_query(name, rdtype)
    for attempt in range(4):
        try:
            if tcp:
                return dns.query.tcp(q, "127.0.0.1", port=port, timeout=1.0)
            return dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
        except (dns.exception.Timeout, ConnectionError):
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


def test_two_workers_share_the_port_and_both_follow_the_database(serve, database_url):
    create_zone(database_url, "live.test.", LIVE)
    s = serve("--database-url", database_url, "--workers", "2", "--query-log", "--no-api")
    s.wait_for(MAIN_READY, 30)
    kids = children(s.proc.pid)
    assert len(kids) == 1 and alive(kids[0])
    assert re.search(r"1 worker process\(es\) answering: pids %d" % kids[0], s.log)

    change(database_url, "live.test.", Edit("add", "www", "A", None, ("192.0.2.2",)))
    want = rds("A", "192.0.2.1", "192.0.2.2")
    # Each query from a new source port: the kernel spreads them over both processes' sockets,
    # and every answer has the change (each process follows the database on its own).
    wait_until(lambda: all(rdatas(ask(s.port, "www.live.test"), "www.live.test", "A") == want for _ in range(40)),
               what="the change served by every worker")  # fmt: skip
    mark = len(s.lines)
    for _ in range(40):
        assert rdatas(ask(s.port, "www.live.test"), "www.live.test", "A") == want
    for _ in range(10):
        assert rdatas(ask_retrying(s.port, "www.live.test", tcp=True), "www.live.test", "A") == want
    logged = "".join(s.lines[mark:])
    by_worker = len(re.findall(r"minidns\.query\[worker 2\]:", logged))
    by_main = len(re.findall(r"minidns\.query:", logged))
    assert by_worker and by_main, logged  # both processes answered


class FakeSecondary:
    """A UDP socket that answers NOTIFYs and SOA queries as a secondary would, counting NOTIFYs."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.notifies: list[int] = []  # the serial of each NOTIFY received
        self.serial = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            q = dns.message.from_wire(data)
            r = dns.message.make_response(q)
            if q.opcode() == dns.opcode.NOTIFY:
                soa = [rr for rr in q.answer if rr.rdtype == dns.rdatatype.SOA]
                self.notifies.append(soa[0][0].serial if soa else -1)
            self.sock.sendto(r.to_wire(), addr)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def test_one_process_sends_notify_for_a_change(serve, database_url, tmp_path):
    create_zone(database_url, "live.test.", LIVE)
    sec = FakeSecondary()
    try:
        conf = tmp_path / "minidns.toml"
        conf.write_text(f'secondaries = [{{ address = "127.0.0.1", port = {sec.port} }}]\n'
                        f'listen = ["127.0.0.1:0"]\napi = false\nworkers = 3\n')  # fmt: skip
        s = serve("--database-url", database_url, "--config", str(conf))
        s.wait_for(MAIN_READY, 30)
        assert len(children(s.proc.pid)) == 2
        time.sleep(1)
        change(database_url, "live.test.", Edit("add", "www", "A", None, ("192.0.2.9",)))
        serial = db_serial(database_url, "live.test.")
        wait_until(lambda: serial in sec.notifies, what="the NOTIFY for the change")
        time.sleep(2)  # any second NOTIFY (another process's) would have come by now
        assert sec.notifies.count(serial) == 1, sec.notifies
    finally:
        sec.close()


def test_a_killed_worker_comes_back_and_the_others_keep_answering(serve, database_url):
    create_zone(database_url, "live.test.", LIVE)
    s = serve("--database-url", database_url, "--workers", "2", "--no-api")
    s.wait_for(MAIN_READY, 30)
    (worker,) = children(s.proc.pid)
    answered, failed = [0], []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                r = ask_retrying(s.port, "www.live.test")
                assert r.rcode() == dns.rcode.NOERROR
                answered[0] += 1
            except Exception as e:  # noqa: BLE001 - collected, the test fails on any
                failed.append(e)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        os.kill(worker, signal.SIGKILL)
        line = s.wait_for(r"worker 2 \(pid %d\) ended with status SIGKILL" % worker, 10)
        assert "starting it again" in line
        s.wait_for(r"worker 2 \(pid \d+\) answering again", 30)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not failed, failed[:3]
    assert answered[0] > 20
    (again,) = children(s.proc.pid)
    assert again != worker and alive(again)
    # The new worker follows the database like the first.
    change(database_url, "live.test.", Edit("add", "www", "A", None, ("192.0.2.3",)))
    want = rds("A", "192.0.2.1", "192.0.2.3")
    wait_until(lambda: all(rdatas(ask(s.port, "www.live.test"), "www.live.test", "A") == want for _ in range(30)),
               what="the change served by every worker")  # fmt: skip


def test_stopping_the_main_process_stops_every_worker(serve, database_url):
    create_zone(database_url, "live.test.", LIVE)
    s = serve("--database-url", database_url, "--workers", "3", "--no-api")
    s.wait_for(MAIN_READY, 30)
    kids = children(s.proc.pid)
    assert len(kids) == 2
    assert s.stop() == 0
    wait_until(lambda: not any(alive(k) for k in kids), 10, "workers gone")
    assert len(re.findall(r"minidns\[worker \d\]: stopping", s.log)) == 2


def test_workers_end_when_the_main_process_is_killed(serve, database_url):
    create_zone(database_url, "live.test.", LIVE)
    s = serve("--database-url", database_url, "--workers", "2", "--no-api")
    s.wait_for(MAIN_READY, 30)
    (worker,) = children(s.proc.pid)
    s.signal(signal.SIGKILL)
    s.proc.wait(5)
    wait_until(lambda: not alive(worker), 10, "the worker gone with its main process")


def test_workers_default_to_one_per_cpu_on_port_53_only():
    from minidns.server.config import Config

    assert Config(listen=("127.0.0.1:5353",)).worker_count == 1
    assert Config(listen=("127.0.0.1:53",)).worker_count == len(os.sched_getaffinity(0))
    assert Config(listen=("127.0.0.1:53",), workers=3).worker_count == 3


class NotifySocket:
    """What systemd listens on for a Type=notify service: an AF_UNIX datagram socket."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def collect(self, until: str, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
            if until in self.messages[-1]:
                return self.messages
        raise AssertionError(f"no {until!r} from the service; got {self.messages}")


def test_systemd_notify_ready_watchdog_reload_stopping(serve, database_url, tmp_path):
    create_zone(database_url, "live.test.", LIVE)
    ns = NotifySocket(tmp_path / "notify")
    conf = tmp_path / "minidns.toml"
    conf.write_text('listen = ["127.0.0.1:0"]\napi = false\nworkers = 2\nnsid = "first"\n')
    env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="400000")
    s = serve("--database-url", database_url, "--config", str(conf), env=env)
    msgs = ns.collect("READY=1")
    ready = next(m for m in msgs if "READY=1" in m)
    assert "STATUS=serving 1 zone(s)" in ready and "2 worker(s)" in ready and f"MAINPID={s.proc.pid}" in ready
    s.wait_for(r"INFO minidns: serving", 10)  # logged as READY is sent: the log may reach us after it
    assert s.log.count("INFO minidns: serving") == 1  # READY came after both processes answered
    ns.collect("WATCHDOG=1")
    ns.collect("WATCHDOG=1", timeout=2)  # again, every 0.2 s (half the watchdog time)

    def nsids():
        out = set()
        for _ in range(30):
            q = dns.message.make_query("www.live.test.", "A", use_edns=0, options=[dns.edns.GenericOption(3, b"")])
            r = dns.query.udp(q, "127.0.0.1", port=s.port, timeout=2)
            out |= {o.nsid for o in r.options if o.otype == 3}
        return out

    assert nsids() == {b"first"}
    # SIGHUP: NSID changes live in both processes; the cache size needs a restart and says so.
    conf.write_text('listen = ["127.0.0.1:0"]\napi = false\nworkers = 2\nnsid = "second"\ncache_entries = 5000\n')
    mark = len(s.lines)
    s.signal(signal.SIGHUP)
    ns.collect("RELOADING=1")
    ns.collect("READY=1")
    s.wait_for(r"reload: applied nsid", 10, after=mark)
    s.wait_for(r"reload: changed but needing a restart to take effect: cache_entries", 10, after=mark)
    wait_until(lambda: nsids() == {b"second"}, what="the new NSID from every worker")
    # A configuration with an error changes nothing.
    conf.write_text('listen = ["127.0.0.1:0"]\napi = false\nworkers = 2\nnsid = "third"\nedns_payload = 10\n')
    mark = len(s.lines)
    s.signal(signal.SIGHUP)
    s.wait_for(r"reload: the configuration has an error, nothing of it applied: edns_payload", 10, after=mark)
    assert nsids() == {b"second"}
    assert s.stop() == 0
    ns.collect("STOPPING=1")


def scrape(url: str) -> dict[str, float]:
    import urllib.request

    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")}


def queries_counted(values: dict) -> float:
    return sum(v for k, v in values.items() if k.startswith(("minidns_dns_cache_hits_total", "minidns_dns_answers_total")))


def test_metrics_add_up_every_workers_queries(serve, database_url):
    from minidns.server.workers import STATS_EVERY

    create_zone(database_url, "live.test.", LIVE)
    s = serve("--database-url", database_url, "--workers", "2", "--query-log")
    s.wait_for(MAIN_READY, 30)
    api = "http://" + re.search(r"API listening on (?:http://)?(\S+:\d+)", s.log).group(1).rstrip("/")
    mark = len(s.lines)
    n = 60
    for i in range(n):
        assert ask(s.port, f"q{i}.live.test").rcode() == dns.rcode.NXDOMAIN
    time.sleep(0.2)
    by_worker = len(re.findall(r"minidns\.query\[worker 2\]:", "".join(s.lines[mark:])))
    assert 0 < by_worker < n  # both processes answered some
    wait_until(lambda: queries_counted(scrape(api)) >= n, STATS_EVERY * 3, "every query counted in /metrics")
    values = scrape(api)
    assert values["minidns_workers"] == 2 and values["minidns_worker_restarts_total"] == 0
    assert values['minidns_dns_answers_total{transport="udp",qtype="A",rcode="NXDOMAIN"}'] >= n
    before = queries_counted(values)
    # A worker that dies takes none of the counts it reported with it.
    (worker,) = children(s.proc.pid)
    os.kill(worker, signal.SIGKILL)
    s.wait_for(r"worker 2 \(pid \d+\) answering again", 30)
    values = scrape(api)
    assert values["minidns_worker_restarts_total"] == 1 and values["minidns_workers"] == 2
    assert queries_counted(values) >= before


def test_embedded_database_dnssec_enabled_while_serving_is_signed_by_every_worker(serve, cli, tmp_path):
    """With the embedded database, the main process makes master.key at start, so a zone signed
    with `minidns dnssec enable` while it serves is served signed at once — by the workers too,
    which are given that key file (they reach the database by URL)."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("MINIDNS_MASTER_KEY", "MINIDNS_DATABASE_URL")}
    s = serve("--data-dir", str(data), "--workers", "2", "--no-api", env=env)
    s.wait_for(MAIN_READY, 120)
    assert (data / "master.key").stat().st_mode & 0o777 == 0o600
    p = cli("dnssec", "enable", "example.com.", "--data-dir", str(data), env=env, timeout=120)
    assert p.returncode == 0, p.stderr

    def all_signed():
        for _ in range(30):
            q = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
            r = dns.query.udp(q, "127.0.0.1", port=s.port, timeout=2)
            if not any(rr.rdtype == dns.rdatatype.RRSIG for rr in r.answer):
                return False
        return True

    wait_until(all_signed, 10, "signed answers from every worker")
    assert "not served signed" not in s.log
