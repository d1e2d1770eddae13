"""Abuse resistance of a real `minidns serve` on loopback: response rate limiting (off by default;
drops and slips to one prefix, another prefix unaffected, counted in /metrics), DNS cookies with
dig and dnspython (and a valid cookie not limited), and the TCP limits: connections per client,
the per-query timeout, a client that never reads, and the cap on transfers at once."""

import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.request

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.server.test_app_serve import read_frame  # TCP framing, as test_app_serve reads it

CLIENT = bytes.fromhex("0123456789abcdef")


def query_wire(name="www.example.com", rdtype="A", qid=0, **kw) -> bytes:
    q = dns.message.make_query(name, rdtype, **kw)
    q.id = qid
    return q.to_wire()


def cookie_query(option: bytes, name="www.example.com", rdtype="A"):
    return dns.message.make_query(name, rdtype, use_edns=0, options=[dns.edns.GenericOption(dns.edns.COOKIE, option)])


def reply_cookie(msg) -> bytes | None:
    return next((o.to_wire() for o in msg.options if o.otype == dns.edns.COOKIE), None)


def burst(port: int, wires: list[bytes], source: str = "127.0.0.1", wait: float = 1.0) -> list[dns.message.Message]:
    """Send every message at once from one socket, then collect the replies until `wait` of quiet."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        for w in wires:
            sock.sendto(w, ("127.0.0.1", port))
        sock.settimeout(wait)
        out = []
        try:
            while True:
                out.append(dns.message.from_wire(sock.recv(65535)))
        except socket.timeout:
            return out


def metrics(served) -> str:
    url = re.search(r"API listening on (http://\S+/)", served.log).group(1)
    return urllib.request.urlopen(url + "metrics", timeout=5).read().decode()


def frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire



def closed_within(sock, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except socket.timeout:  # an OSError too: caught first
        return False
    except (ConnectionError, OSError):
        return True


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


# -- response rate limiting -------------------------------------------------------------------------


def test_rrl_is_off_by_default_a_burst_is_all_answered(serve, zone_args):
    s = serve(*zone_args)
    replies = burst(s.port, [query_wire(qid=i) for i in range(300)])
    assert len(replies) == 300 and not any(r.flags & dns.flags.TC for r in replies)


def test_rrl_drops_and_slips_one_prefix_and_counts_it(serve, zone_args, database_url):
    s = serve(*zone_args, "--database-url", database_url, "--rrl-responses-per-second", "5", "--rrl-slip", "2")
    replies = burst(s.port, [query_wire(qid=i) for i in range(200)])
    full = [r for r in replies if not r.flags & dns.flags.TC]
    slipped = [r for r in replies if r.flags & dns.flags.TC]
    assert 5 <= len(full) <= 15  # the allowance, and what it refills while the burst is read
    assert all(r.answer for r in full) and all(not r.answer and not r.additional for r in slipped)
    limited = 200 - len(full)
    assert abs(len(slipped) - limited / 2) <= 2  # slip 2: every second limited reply is sent truncated
    # Another prefix (127.0.1.0/24) is not affected, nor another question from the same one.
    assert len([r for r in burst(s.port, [query_wire(qid=i) for i in range(5)], "127.0.1.1") if r.answer]) == 5
    assert burst(s.port, [query_wire("mail.example.com")])[0].answer
    # A real client retries over TCP, which is never limited.
    for _ in range(20):
        assert dns.query.tcp(dns.message.make_query("www.example.com", "A"), "127.0.0.1", port=s.port, timeout=3).answer
    text = metrics(s)
    dropped = int(re.search(r'minidns_rrl_replies_total\{action="dropped"\} (\d+)', text).group(1))
    slips = int(re.search(r'minidns_rrl_replies_total\{action="slipped"\} (\d+)', text).group(1))
    assert slips == len(slipped) and dropped == limited - len(slipped)
    assert len(re.findall(r"rate limiting replies to 127\.0\.0\.0/24", s.log)) == 1  # one line, not one per packet


def test_rrl_spares_a_client_with_a_valid_server_cookie(serve, zone_args):
    s = serve(*zone_args, "--rrl-responses-per-second", "2", "--rrl-slip", "1")
    first = dns.query.udp(cookie_query(CLIENT), "127.0.0.1", port=s.port, timeout=3)
    cookie = reply_cookie(first)
    assert cookie[:8] == CLIENT and len(cookie) == 24
    replies = burst(s.port, [cookie_query(cookie).to_wire() for _ in range(100)])
    assert len(replies) == 100 and all(r.answer and reply_cookie(r) == cookie for r in replies)
    # Only a client cookie: limited, and the slips are BADCOOKIE with a cookie to come back with.
    replies = burst(s.port, [cookie_query(CLIENT).to_wire() for _ in range(50)])
    bad = [r for r in replies if r.rcode() == dns.rcode.BADCOOKIE]
    assert bad and all(not r.answer and reply_cookie(r)[:8] == CLIENT for r in bad)
    again = dns.query.udp(cookie_query(reply_cookie(bad[0])), "127.0.0.1", port=s.port, timeout=3)
    assert again.rcode() == dns.rcode.NOERROR and again.answer


# -- DNS cookies ----------------------------------------------------------------------------------


def test_cookie_round_trip_with_dnspython(serve, zone_args):
    s = serve(*zone_args)
    r = dns.query.udp(cookie_query(CLIENT), "127.0.0.1", port=s.port, timeout=3)
    cookie = reply_cookie(r)
    assert r.answer and cookie[:8] == CLIENT and 16 <= len(cookie) <= 40 and cookie[8] == 1  # RFC 9018 version 1
    for transport in (dns.query.udp, dns.query.tcp):
        again = transport(cookie_query(cookie), "127.0.0.1", port=s.port, timeout=3)
        assert again.answer and reply_cookie(again) == cookie  # valid and young: the same back
    other = dns.query.udp(cookie_query(bytes(8)), "127.0.0.1", port=s.port, timeout=3)
    assert reply_cookie(other)[:8] == bytes(8) and reply_cookie(other)[8:] != cookie[8:]


@pytest.mark.parametrize("tool", ["dig", "kdig"])
def test_cookie_round_trip_with_dig_and_kdig(serve, zone_args, tool):
    s = serve(*zone_args)
    exe = shutil.which(tool)
    assert exe, f"{tool} is installed by the test command"
    args = [exe, "+cookie", "+norec", "-p", str(s.port), "@127.0.0.1", "www.example.com", "A"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"COOKIE: ([0-9a-f]+)", out, re.I)
    assert m and len(m.group(1)) == 48 and "192.0.2.80" in out, out
    if tool == "dig":
        assert "(good)" in out, out  # dig checked that its client cookie came back
    again = subprocess.run([exe, f"+cookie={m.group(1)}", *args[2:]], capture_output=True, text=True, timeout=10).stdout
    assert m.group(1).lower() in again.lower() and "192.0.2.80" in again, again


@pytest.mark.parametrize("length", [5, 12, 48])
def test_malformed_cookie_is_formerr(serve, zone_args, length):
    s = serve(*zone_args)
    r = dns.query.udp(cookie_query(bytes(length)), "127.0.0.1", port=s.port, timeout=3)
    assert r.rcode() == dns.rcode.FORMERR


# -- TCP --------------------------------------------------------------------------------------------


def test_tcp_connections_per_client_are_capped(serve, zone_args):
    s = serve(*zone_args, "--tcp-max-per-client", "2")
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(frame(query_wire()))
            assert read_frame(sock).answer
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        assert closed_within(extra, 3)
        extra.close()
        other = socket.create_connection(("127.0.0.1", s.port), timeout=5, source_address=("127.0.0.2", 0))
        other.sendall(frame(query_wire()))
        assert read_frame(other).answer  # another client address has its own count
        other.close()
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as again:  # slots given back
        again.sendall(frame(query_wire()))
        assert read_frame(again).answer


def test_tcp_query_that_does_not_arrive_whole_closes_the_connection(serve, zone_args):
    s = serve(*zone_args, "--tcp-query-timeout", "0.5", "--tcp-idle-timeout", "30")
    wire = frame(query_wire())
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(wire)
        assert read_frame(sock).answer
        started = time.monotonic()
        sock.sendall(wire[:7])  # the length and part of the message, then nothing
        assert closed_within(sock, 5) and time.monotonic() - started < 3
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(wire[:1])  # one octet of the length
        assert closed_within(sock, 5)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        assert not closed_within(sock, 1.5)  # idle between messages: only the idle timeout applies
        for part in (wire[:5], wire[5:]):  # slow, but whole in time
            sock.sendall(part)
            time.sleep(0.2)
        assert read_frame(sock).answer


def test_tcp_clients_that_never_read_are_dropped_and_memory_stays_bounded(serve, zone_args):
    s = serve(*zone_args, "--tcp-idle-timeout", "2")
    before = rss_kib(s.proc.pid)
    wire = frame(query_wire("big.example.com", "TXT"))  # a 40-octet query, a 900-octet reply
    socks = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        socks.append(sock)
    sent, chunk = 0, wire * 2000
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for sock in socks:
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                continue
        time.sleep(0.01)
    grown = rss_kib(s.proc.pid) - before
    # The server holds about 64 KiB of replies and one read of queries per connection while its client
    # does not read (it grew 160 MiB here before replies were written in chunks, 3 MiB after).
    assert sent > 20 * 100 * len(wire)
    assert grown < 30_000, f"server grew {grown} KiB for 20 clients that do not read"
    s.wait_for(r"does not read its replies: connection dropped", 10)
    for sock in socks:
        sock.close()
    # Others were answered throughout, and still are.
    assert dns.query.udp(dns.message.make_query("www.example.com", "A"), "127.0.0.1", port=s.port, timeout=3).answer
    assert dns.query.tcp(dns.message.make_query("www.example.com", "A"), "127.0.0.1", port=s.port, timeout=3).answer


def _big_zone(path) -> str:
    lines = ["$ORIGIN big.test.", "$TTL 300", "@ SOA ns1 hostmaster 1 7200 3600 1209600 300", "@ NS ns1", "ns1 A 192.0.2.1"]
    lines += [f"h{i} TXT \"{'x' * 200}\"" for i in range(20000)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_axfr_concurrency_is_capped(serve, tmp_path):
    s = serve("--zone-file", _big_zone(tmp_path / "big.test.zone"), "--xfr-max-concurrent", "1")
    axfr = frame(query_wire("big.test", "AXFR", use_edns=0))
    slow = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(axfr)
    first = read_frame(slow)  # under way, and not read any further: the transfer holds its slot
    assert first.rcode() == dns.rcode.NOERROR and first.answer
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as other:
        other.sendall(axfr)
        busy = read_frame(other)
        assert busy.rcode() == dns.rcode.SERVFAIL and any(o.otype == dns.edns.EDE for o in busy.options)
    # A zone's SOA and queries are answered meanwhile.
    assert dns.query.udp(dns.message.make_query("big.test", "SOA"), "127.0.0.1", port=s.port, timeout=3).answer
    slow.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            zone = dns.query.xfr("127.0.0.1", "big.test", port=s.port, timeout=10)
            assert sum(len(m.answer) for m in zone) > 20000
            break
        except dns.exception.DNSException:  # the slot is given back once the server sees the close
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert "transfers running (xfr_max_concurrent)" in s.log


def test_rrl_with_the_query_log_logs_drops(serve, zone_args):
    s = serve(*zone_args, "--rrl-responses-per-second", "1", "--rrl-slip", "0", "--query-log")
    replies = burst(s.port, [query_wire(qid=i) for i in range(10)])
    assert 1 <= len(replies) <= 3
    s.wait_for(r"udp .*rcode=drop", 5)
    time.sleep(0.5)
    assert len(re.findall(r"minidns\.query: 127\.0\.0\.1 udp .*www.*rcode=", s.log)) == 10


def test_a_cookie_made_by_one_worker_is_valid_at_the_others(serve, zone_args):
    s = serve(*zone_args, "--workers", "2", "--no-api")
    s.wait_for(r"serving", 30)
    time.sleep(1)
    cookie = reply_cookie(dns.query.udp(cookie_query(CLIENT), "127.0.0.1", port=s.port, timeout=3))
    for _ in range(30):  # a new source port each time: SO_REUSEPORT spreads them over the processes
        r = dns.query.udp(cookie_query(cookie), "127.0.0.1", port=s.port, timeout=3)
        assert r.answer and reply_cookie(r) == cookie
