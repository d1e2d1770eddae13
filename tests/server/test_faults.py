"""Faults, end to end (issue #7): a network partition between a running `minidns serve` and its
PostgreSQL, cut and restored by a TCP proxy (tests/server/pgproxy.py) while another writer commits
straight to the database; and a data directory the embedded PostgreSQL cannot use.

Timing bars (served within 1 s of the partition healing) are measured by bench/faults.py; here the
bounds are generous and the assertions are about what is answered, refused and kept.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import orjson
import pytest
import requests

from minidns.store.writer import Edit
from tests.server.pgproxy import PgProxy, unix_socket_of
from tests.server.test_database import LIVE, READY, STALE, Prober, ask, create_zone, db_serial, rdatas, rds, \
    served_serial, wait_answer, with_store  # fmt: skip

ADMIN, INGEST = "faults-admin-token-0123456789", "faults-ingest-token-0123456789"
CONFIG = f"""
events_zone = "part.test."
api_tokens = [
  {{ token = "{ADMIN}", project = "admin-project", role = "admin" }},
  {{ token = "{INGEST}", project = "sink", role = "ingest" }},
]
"""
EVENTS = Path(__file__).resolve().parent.parent / "admin" / "events"
OUTAGE = 6.0  # seconds the partition lasts
HEAL = 10.0  # generous bound on serving what was committed meanwhile (the bench measures the 1 s bar)


class TcpProber(threading.Thread):
    """Asks one question over TCP (a new connection each time) in a loop, once each, no retry."""

    def __init__(self, port: int, name: str, expected: frozenset):
        super().__init__(daemon=True)
        self.port, self.name, self.expected = port, name, expected
        self.halt = threading.Event()
        self.sent = self.right = 0
        self.times: list[float] = []
        self.wrong: list[str] = []

    def run(self):
        deadline = time.monotonic() + 60
        while not self.halt.is_set() and time.monotonic() < deadline:
            self.sent += 1
            q = dns.message.make_query(self.name, "A")
            try:
                r = dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=2)
            except (dns.exception.Timeout, OSError) as e:
                self.wrong.append(repr(e))
                continue
            if r.rcode() == dns.rcode.NOERROR and rdatas(r, self.name, "A") == self.expected:
                self.right += 1
                self.times.append(time.monotonic())
            elif len(self.wrong) < 20:
                self.wrong.append(str(r))
            time.sleep(0.02)

    def finish(self):
        self.halt.set()
        self.join(5)

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start <= t <= end)


class Http:
    def __init__(self, base: str):
        self.base = base
        self.s = requests.Session()

    def post(self, path: str, body, token: str = ADMIN) -> requests.Response:
        headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
        if token == ADMIN:
            headers["X-Auth-All-Projects"] = "true"  # the zones were made in the database, not for a project
        return self.s.post(self.base + path, data=orjson.dumps(body), timeout=30, headers=headers)

    def get(self, path: str, token: str = ADMIN) -> requests.Response:
        return self.s.get(self.base + path, timeout=30, headers={"X-Auth-Token": token, "X-Auth-All-Projects": "true"})


def nova_create(name: str, address: str) -> dict:
    """A Nova compute.instance.create.end event making `name`.part.test A `address`."""
    ev = json.loads((EVENTS / "nova_compute.instance.create.end.json").read_text())
    ev["message_id"] = str(uuid.uuid4())
    payload = ev["payload"]
    payload["instance_id"] = str(uuid.uuid4())
    payload["hostname"] = payload["display_name"] = name
    payload["fixed_ips"] = [{**payload["fixed_ips"][0], "address": address, "version": 4}]
    return ev


def assert_unavailable(r: requests.Response) -> None:
    """503, Retry-After, and a JSON problem body saying why."""
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    body = r.json()
    assert body["code"] == 503 and body["type"] == "service_unavailable" and body["message"], body


def rrset_names(url: str, zone: str) -> set[str]:
    async def fn(store):
        async with store.pool.acquire() as conn:
            rows = await conn.fetch("SELECT r.name FROM rrsets r JOIN zones z ON z.id = r.zone_id WHERE z.name = $1", zone)
        return {r["name"] for r in rows}

    return with_store(url, fn)


def event_ids(url: str) -> set[str]:
    async def fn(store):
        async with store.pool.acquire() as conn:
            return {r[0] for r in await conn.fetch("SELECT message_id FROM events")}

    return with_store(url, fn)


@pytest.fixture
def proxy(database_url):
    p = PgProxy(unix_socket_of(database_url))
    try:
        yield p
    finally:
        p.close()


def test_a_partition_from_postgres_answers_from_memory_refuses_writes_and_catches_up(serve, database_url, proxy, tmp_path):
    create_zone(database_url, "part.test.", LIVE)
    conf = tmp_path / "faults.toml"
    conf.write_text(CONFIG)
    s = serve("--database-url", proxy.url(database_url), "--config", str(conf), "--listen", "127.0.0.1:0")
    api_line = s.wait_for(r"API listening on", 30)
    http = Http(re.search(r"(http://\S+?)/?$", api_line.strip()).group(1))
    zone_id = http.get("/v2/zones?name=part.test.").json()["zones"][0]["id"]
    www = rds("A", "192.0.2.1")
    # Before: writes and events go through.
    r = http.post(f"/v2/zones/{zone_id}/recordsets", {"name": "before.part.test.", "type": "A", "records": ["192.0.2.10"]})
    assert r.status_code in (201, 202), r.text
    r = http.post("/v1/events", nova_create("ev-before", "10.0.0.10"), INGEST)
    assert r.status_code == 200, r.text
    wait_answer(s.port, "before.part.test", "A", rds("A", "192.0.2.10"))
    wait_answer(s.port, "ev-before.part.test", "A", rds("A", "10.0.0.10"))

    udp, tcp = Prober(s.port, "www.part.test", "A", www), TcpProber(s.port, "www.part.test", www)
    udp.start()
    tcp.start()
    refused_write, refused_event = "refused.part.test.", nova_create("ev-refused", "10.0.0.11")
    try:
        time.sleep(0.3)
        mark = len(s.lines)
        proxy.cut()
        cut = time.monotonic()
        s.wait_for(re.escape(STALE), 10, after=mark)
        # The API cannot reach the database: writes and events are refused, and say when to retry.
        assert_unavailable(http.post(f"/v2/zones/{zone_id}/recordsets",
                                     {"name": refused_write, "type": "A", "records": ["192.0.2.11"]}))  # fmt: skip
        assert_unavailable(http.post("/v1/events", refused_event, INGEST))
        assert_unavailable(http.get(f"/v2/zones/{zone_id}/recordsets"))
        # Meanwhile another writer, with its own path to PostgreSQL, commits changes.
        create_zone(database_url, "new.part-elsewhere.test.", LIVE)
        for i in range(3):
            with_store(database_url, lambda st, i=i: st.change("part.test.", [Edit("add", f"while{i}", "A", 60, (f"192.0.2.{50 + i}",))],
                                                                source="test"))  # fmt: skip
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut)))
        assert served_serial(s.port, "part.test.") != db_serial(database_url, "part.test.")  # still from memory
        proxy.restore()
        healed = time.monotonic()
        s.wait_for(re.escape(READY), HEAL, after=mark)
        wait_answer(s.port, "while2.part.test", "A", rds("A", "192.0.2.52"), timeout=HEAL)
        wait_answer(s.port, "www.new.part-elsewhere.test", "A", www, timeout=HEAL)
        time.sleep(0.2)
    finally:
        udp.finish()
        tcp.finish()
    # Every query was answered, right, over UDP and TCP, through the whole partition.
    assert udp.wrong == [] and tcp.wrong == []
    assert udp.answered == udp.sent == udp.right
    assert tcp.right == tcp.sent
    assert udp.between(cut, healed) >= 50 and tcp.between(cut, healed) >= 20
    for i in range(3):
        assert rdatas(ask(s.port, f"while{i}.part.test"), f"while{i}.part.test", "A") == rds("A", f"192.0.2.{50 + i}")
    assert served_serial(s.port, "part.test.") == db_serial(database_url, "part.test.")
    # What was refused was not written; what was accepted before is there.
    names = rrset_names(database_url, "part.test.")
    assert refused_write not in names and "ev-refused.part.test." not in names
    assert {"before.part.test.", "ev-before.part.test."} <= names
    assert refused_event["message_id"] not in event_ids(database_url)
    # After: the API works again (its pool reconnects), and the refused event can be sent again.
    deadline = time.monotonic() + HEAL
    while (r := http.post("/v1/events", refused_event, INGEST)).status_code == 503:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    assert r.status_code == 200 and r.json()["status"] == "applied" and not r.json()["duplicate"], r.text
    wait_answer(s.port, "ev-refused.part.test", "A", rds("A", "10.0.0.11"))
    r = http.post(f"/v2/zones/{zone_id}/recordsets", {"name": refused_write, "type": "A", "records": ["192.0.2.11"]})
    assert r.status_code in (201, 202), r.text
    wait_answer(s.port, "refused.part.test", "A", rds("A", "192.0.2.11"))


def test_a_connection_gone_silent_is_given_up_and_the_server_follows_again(serve, database_url, proxy):
    """No reset, no FIN: the path of the open connection is dead (a failover, a firewall's forgotten
    state) while new connections work. The server must notice by itself, not after TCP's minutes."""
    create_zone(database_url, "quiet.test.", LIVE)
    s = serve("--database-url", proxy.url(database_url), "--no-api")
    assert rdatas(ask(s.port, "www.quiet.test"), "www.quiet.test", "A") == rds("A", "192.0.2.1")
    mark = len(s.lines)
    proxy.silence()
    with_store(database_url, lambda st: st.change("quiet.test.", [Edit("add", "later", "A", 60, ("192.0.2.99",))], source="test"))
    wait_answer(s.port, "later.quiet.test", "A", rds("A", "192.0.2.99"), timeout=20)
    assert STALE in "".join(s.lines[mark:])
    assert served_serial(s.port, "quiet.test.") == db_serial(database_url, "quiet.test.")


# -- a data directory the embedded PostgreSQL cannot use ------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """tmpfs(name, *options) → a tmpfs mounted at tmp_path/name (root only), unmounted afterwards."""
    mounted = []

    def mount(name: str, *options: str):
        where = tmp_path / name
        where.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("mode=755", *options)), "tmpfs", str(where)],
                           capture_output=True, text=True)  # fmt: skip
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def serve_fails(data_dir) -> str:
    """`minidns serve` on the embedded default in `data_dir`: it must end with status 1 and one
    error line, no traceback; that line."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    env.pop("MINIDNS_DATABASE_URL", None)
    r = subprocess.run([sys.executable, "-m", "minidns", "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", "--no-api"],
                       capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if " ERROR " in line or line.startswith("minidns:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def test_a_file_in_the_way_of_the_data_directory_is_named(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    line = serve_fails(tmp_path / "file" / "minidns")
    assert f"cannot use the data directory {tmp_path / 'file' / 'minidns'}: Not a directory" in line
    assert f"{tmp_path / 'file'} is not a directory" in line


def test_a_read_only_data_directory_is_named(tmpfs):
    ro = tmpfs("ro", "ro", "size=1m")
    line = serve_fails(ro / "minidns")
    assert f"cannot use the data directory {ro / 'minidns'}: Read-only file system" in line


def test_a_full_disk_for_a_new_embedded_database_says_how_much_it_needs(tmpfs):
    small = tmpfs("small", "size=2m")
    line = serve_fails(small / "minidns")
    assert re.search(rf"cannot use the data directory {re.escape(str(small / 'minidns'))}: No space left on device; "
                     r"the embedded PostgreSQL needs about \d+ MB, \d+ MB are free", line), line  # fmt: skip


def fill(path: Path) -> None:
    """Write zeros to `path` until the file system is full."""
    block = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as e:
            assert e.errno == 28, e  # ENOSPC
    with open(path, "ab", buffering=0) as f:  # and the last partial block
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_disk_under_a_running_server_refuses_writes_with_503_and_answers_from_memory(serve, tmpfs):
    disk = tmpfs("disk", "size=120m")
    conf = disk.parent / "full.toml"
    conf.write_text(CONFIG.replace('events_zone = "part.test."', 'events_zone = "example.com."'))
    s = serve("--data-dir", str(disk / "minidns"), "--config", str(conf), "--listen", "127.0.0.1:0")
    api_line = s.wait_for(r"API listening on", 30)
    http = Http(re.search(r"(http://\S+?)/?$", api_line.strip()).group(1))
    zone_id = http.get("/v2/zones?name=example.com.").json()["zones"][0]["id"]
    www = rdatas(ask(s.port, "www.example.com"), "www.example.com", "A")
    assert www

    def write(i: int) -> requests.Response:
        big = [f'"{j:04d}{"y" * 240}"' for j in range(20)]
        return http.post(f"/v2/zones/{zone_id}/recordsets", {"name": f"full{i}.example.com.", "type": "TXT", "records": big})

    fill(disk / "filler")
    refused = None
    for i in range(400):  # PostgreSQL fills the free room of its files first
        r = write(i)
        if r.status_code not in (201, 202):
            refused = i
            break
    assert refused is not None, "the disk never filled"
    assert_unavailable(r)
    assert "No space left on device" in r.json()["message"]
    assert_unavailable(http.post("/v1/events", nova_create("on-a-full-disk", "10.0.0.12"), INGEST))
    assert rdatas(ask(s.port, "www.example.com"), "www.example.com", "A") == www
    assert "Traceback" not in s.log
    # Room again: the same write goes in.
    (disk / "filler").unlink()
    deadline = time.monotonic() + HEAL
    while (r := write(refused)).status_code == 503:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)
    assert r.status_code in (201, 202), r.text
    name = f"full{refused}.example.com"
    deadline = time.monotonic() + HEAL
    while len(rdatas(dns.query.tcp(dns.message.make_query(name, "TXT"), "127.0.0.1", port=s.port, timeout=2), name, "TXT")) != 20:
        assert time.monotonic() < deadline, s.log[-3000:]
        time.sleep(0.05)
    assert s.stop() == 0  # now, while its disk is mounted: it stops its embedded PostgreSQL there
