"""What an operator sees of a running server, with real `minidns serve` processes on a real
PostgreSQL: JSON log lines, the query log's sampling, the startup line, and the heartbeat TXT
(served with each change's serial, advanced when a zone is left alone, once however many servers
share the database, and its age in /metrics)."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import dns.message
import dns.query
import dns.rdatatype

from minidns.store.writer import Edit, StoreSettings
from tests.server.test_database import ask, change, create_zone, served_serial, wait_until, with_store

ZONE = "ops.test."
HB = "_heartbeat"
RECORDS = [("@", "NS", None, "ns1"), ("ns1", "A", None, "192.0.2.53"), ("www", "A", None, "192.0.2.80")]


def heartbeat(port: int, zone: str = ZONE) -> tuple[int, int] | None:
    """(serial, unix) of the heartbeat TXT a server answers, or None."""
    return heartbeat_in(ask(port, f"{HB}.{zone}", "TXT"))


def heartbeat_in(r: dns.message.Message) -> tuple[int, int] | None:
    """(serial, unix) of the heartbeat TXT in a reply's answer, or None."""
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            text = b"".join(next(iter(rrset)).strings).decode()
            m = re.fullmatch(r"serial=(\d+) committed=\S+Z unix=(\d+)", text)
            assert m, text
            return int(m.group(1)), int(m.group(2))
    return None


def json_lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines()]


def api_url(served) -> str:
    return re.search(r"API listening on (http://\S+/)", served.log).group(1)


# -- logs -----------------------------------------------------------------------------------------


def test_json_log_lines_are_objects_with_the_query_fields(serve, database_url):
    create_zone(database_url, ZONE, RECORDS)
    s = serve("--database-url", database_url, "--log-format", "json", "--query-log")
    ask(s.port, f"www.{ZONE}", "A")
    ask(s.port, f"nope.{ZONE}", "AAAA")
    dns.query.tcp(dns.message.make_query(f"www.{ZONE}", "A"), "127.0.0.1", port=s.port, timeout=2)
    s.wait_for(r'"transport":"tcp"')
    lines = json_lines(s.log)  # every line, not only the query log's
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line
    queries = [q for q in lines if q["logger"] == "minidns.query"]
    assert {(q["client"], q["transport"], q["qname"], q["qtype"], q["qclass"], q["rcode"]) for q in queries} == {
        ("127.0.0.1", "udp", f"www.{ZONE}", "A", "IN", "NOERROR"),
        ("127.0.0.1", "udp", f"nope.{ZONE}", "AAAA", "IN", "NXDOMAIN"),
        ("127.0.0.1", "tcp", f"www.{ZONE}", "A", "IN", "NOERROR"),
    }
    start = next(line for line in lines if line["message"].startswith("serving "))
    assert start["level"] == "info" and start["logger"] == "minidns"
    assert start["zones"] == 1 and start["records"] == 4 and start["workers"] == 1  # SOA, NS, 2 A
    assert start["listen"] == [f"127.0.0.1:{s.port}"] and start["api"].startswith("http://127.0.0.1:")
    assert start["database"].startswith("postgresql://")


def test_the_startup_line_names_zones_records_addresses_database_workers_and_api(serve, database_url):
    create_zone(database_url, ZONE, RECORDS)
    s = serve("--database-url", database_url)
    line = s.wait_for(r"serving \d+ zone")
    url = database_url.replace("%2F", "/")
    m = re.search(r"serving 1 zone\(s\) on 127\.0\.0\.1:(\d+), (\d+) record\(s\), database (\S+), (\d+) worker\(s\), "
                  r"API (http://127\.0\.0\.1:\d+/)", line)  # fmt: skip
    assert m, line
    assert int(m.group(1)) == s.port and int(m.group(2)) == 4 and m.group(4) == "1"
    assert m.group(3).replace("%2F", "/") == url and m.group(5) == api_url(s)


def test_the_startup_line_hides_the_database_password():
    from minidns.server.startup import redact_url

    assert redact_url("postgresql://dns:s3cret@db.example:5432/dns?sslmode=require") == \
        "postgresql://dns:***@db.example:5432/dns?sslmode=require"
    assert "s3cret" not in redact_url("postgresql://dns@db.example/dns?password=s3cret&sslmode=require")


def _sampled(s, queries: int) -> int:
    before = len(re.findall(r"minidns\.query", s.log))
    for i in range(queries):
        ask(s.port, f"www.{ZONE}" if i % 2 else f"n{i % 7}.{ZONE}", "A")  # cache hits and misses
    time.sleep(0.3)
    return len(re.findall(r"minidns\.query", s.log)) - before


def test_the_query_log_writes_the_configured_share(serve, database_url):
    create_zone(database_url, ZONE, RECORDS)
    s = serve("--database-url", database_url, "--query-log", "--query-log-sample", "0.1")
    assert _sampled(s, 200) == 20
    q = dns.message.make_query(f"www.{ZONE}", "A")
    for _ in range(50):
        dns.query.tcp(q, "127.0.0.1", port=s.port, timeout=2)
    time.sleep(0.3)
    assert len(re.findall(r"minidns\.query: \S+ tcp ", s.log)) == 5
    everything = serve("--database-url", database_url, "--query-log")
    assert _sampled(everything, 30) == 30


# -- the heartbeat ----------------------------------------------------------------------------------


def test_the_heartbeat_is_served_with_each_serial_and_advances_when_left_alone(serve, database_url):
    settings = StoreSettings(heartbeat_name=HB)
    edits = [Edit("add", o, t, ttl, (d,)) for o, t, ttl, d in RECORDS]
    with_store(database_url, lambda st: st.create_zone(ZONE, email="h@ops.test", edits=edits), settings)
    s = serve("--database-url", database_url, "--heartbeat-name", HB, "--heartbeat-interval", "2")
    assert heartbeat(s.port)[0] == served_serial(s.port, ZONE)
    serial = change(database_url, ZONE, Edit("add", "new", "A", None, ("192.0.2.9",)), settings=settings).serial_to
    wait_until(lambda: served_serial(s.port, ZONE) == serial)
    assert heartbeat(s.port)[0] == serial
    started = time.time()
    wait_until(lambda: served_serial(s.port, ZONE) > serial, 2 + 1.5, "a heartbeat change")
    hb_serial, unix = heartbeat(s.port)
    assert hb_serial == served_serial(s.port, ZONE) and unix >= int(started)
    metrics = urllib.request.urlopen(api_url(s) + "metrics", timeout=5).read().decode()
    age = float(re.search(rf'minidns_heartbeat_age_seconds{{zone="{re.escape(ZONE)}"}} (\S+)', metrics).group(1))
    assert 0 <= age < 4


def test_two_servers_on_one_database_bump_each_zone_once_an_interval(serve, database_url):
    create_zone(database_url, ZONE, RECORDS)
    args = ("--database-url", database_url, "--heartbeat-name", HB, "--heartbeat-interval", "1")
    a, b = serve(*args), serve(*args)
    time.sleep(6)
    rows = with_store(database_url, lambda st: st.pool.fetch(
        "SELECT extract(epoch FROM created_at)::float8 AS t FROM zone_changes WHERE source = 'heartbeat' ORDER BY seq"))
    times = [r["t"] for r in rows]
    assert len(times) >= 4, times
    assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[1:])), times  # never two at once
    serial = with_store(database_url, lambda st: st.zone(ZONE))["serial"]
    wait_until(lambda: served_serial(a.port, ZONE) >= serial and served_serial(b.port, ZONE) >= serial)
    assert heartbeat(a.port)[0] == served_serial(a.port, ZONE)


def test_no_heartbeat_when_it_is_not_configured(serve, database_url):
    create_zone(database_url, ZONE, RECORDS)
    s = serve("--database-url", database_url)
    assert heartbeat(s.port) is None
    assert "minidns_heartbeat_age_seconds" not in urllib.request.urlopen(api_url(s) + "metrics", timeout=5).read().decode()
