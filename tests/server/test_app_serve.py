"""`minidns serve` over real UDP and TCP sockets on loopback, with real clients (dnspython, dig)."""

import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest


def udp(port, name, rdtype="A", host="127.0.0.1", **kw):
    return dns.query.udp(dns.message.make_query(name, rdtype, **kw), host, port=port, timeout=3)


def tcp(port, name, rdtype="A", **kw):
    return dns.query.tcp(dns.message.make_query(name, rdtype, **kw), "127.0.0.1", port=port, timeout=3)


def addresses(msg):
    return sorted(rd.address for rrset in msg.answer for rd in rrset if hasattr(rd, "address"))


def frame(msg: dns.message.Message) -> bytes:
    wire = msg.to_wire()
    return struct.pack("!H", len(wire)) + wire


def read_frame(sock) -> dns.message.Message:
    head = _recv_exact(sock, 2)
    return dns.message.from_wire(_recv_exact(sock, struct.unpack("!H", head)[0]))


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def test_udp_and_tcp_answer(serve, zone_args):
    s = serve(*zone_args)
    assert addresses(udp(s.port, "www.example.com")) == ["192.0.2.80", "192.0.2.81"]
    assert addresses(tcp(s.port, "www.child.example.com")) == ["192.0.2.72"]
    assert udp(s.port, "www.example.org").rcode() == dns.rcode.REFUSED
    r = tcp(s.port, "big.example.com", "TXT")
    assert len(r.answer[0]) == 30 and not r.flags & dns.flags.TC


def test_repeated_queries_hit_the_cache_and_stay_identical(serve, zone_args):
    s = serve(*zone_args)
    first = udp(s.port, "mail.example.com", "A")
    for _ in range(5):
        again = udp(s.port, "mail.example.com", "A")
        assert again.answer == first.answer and again.flags == first.flags


def test_dig_gets_an_answer(serve, zone_args):
    s = serve(*zone_args)
    dig = shutil.which("dig")
    assert dig, "dig (bind9-dnsutils) is installed by the test command"
    out = subprocess.run([dig, "+short", "+norec", "-p", str(s.port), "@127.0.0.1", "alias.example.com", "A"],
                         capture_output=True, text=True, timeout=10).stdout.split()
    assert out == ["www.example.com.", "192.0.2.80", "192.0.2.81"]
    out = subprocess.run([dig, "+tcp", "+short", "-p", str(s.port), "@127.0.0.1", "example.com", "MX"],
                         capture_output=True, text=True, timeout=10).stdout.split()
    assert out == ["10", "mail.example.com.", "20", "mail2.example.net."]


def test_default_example_zone_when_no_zone_is_given(serve):
    s = serve()
    assert addresses(udp(s.port, "www.example.com")) == ["192.0.2.80"]


def test_ipv6_listen(serve, zone_args):
    if not socket.has_ipv6:
        pytest.fail("IPv6 loopback is needed for this test")
    s = serve(*zone_args, "--listen", "[::1]:0")
    assert addresses(udp(s.port, "www.example.com", host="::1")) == ["192.0.2.80", "192.0.2.81"]


def test_tcp_pipelined_queries_on_one_connection(serve, zone_args):
    s = serve(*zone_args)
    names = ["www.example.com", "mail.example.com", "nope.example.com", "ns1.example.com"] * 5
    queries = [dns.message.make_query(n, "A") for n in names]
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(b"".join(frame(q) for q in queries))  # all at once, in one write
        replies = [read_frame(sock) for _ in queries]
    assert [r.id for r in replies] == [q.id for q in queries]
    assert replies[2].rcode() == dns.rcode.NXDOMAIN


def test_tcp_query_split_across_writes(serve, zone_args):
    s = serve(*zone_args)
    data = frame(dns.message.make_query("www.example.com", "A"))
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        for i in range(len(data)):
            sock.sendall(data[i : i + 1])
            time.sleep(0.002)
        assert addresses(read_frame(sock)) == ["192.0.2.80", "192.0.2.81"]


def test_tcp_half_closed_client_still_gets_its_replies(serve, zone_args):
    s = serve(*zone_args)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(frame(dns.message.make_query("www.example.com", "A")) * 3)
        sock.shutdown(socket.SHUT_WR)
        replies = [read_frame(sock) for _ in range(3)]
        assert sock.recv(1) == b""  # then the server closes
    assert all(addresses(r) == ["192.0.2.80", "192.0.2.81"] for r in replies)


def test_tcp_idle_connections_are_closed(serve, zone_args):
    s = serve(*zone_args, "--tcp-idle-timeout", "0.5")
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 3


def test_tcp_connection_cap_and_slow_client_do_not_stall_others(serve, zone_args):
    s = serve(*zone_args, "--tcp-max-connections", "3")
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(3)]
    try:
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        with pytest.raises((ConnectionError, OSError)):
            extra.sendall(frame(dns.message.make_query("www.example.com", "A")))
            read_frame(extra)
        extra.close()
        # A client that sends many queries and never reads: the server stops reading from it.
        slow = held[0]
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        burst = frame(dns.message.make_query("big.example.com", "TXT")) * 2000
        try:
            slow.send(burst)
        except BlockingIOError:
            pass
        # UDP and the other held connection keep being answered meanwhile.
        assert addresses(udp(s.port, "www.example.com")) == ["192.0.2.80", "192.0.2.81"]
        held[1].sendall(frame(dns.message.make_query("mail.example.com", "A")))
        assert addresses(read_frame(held[1])) == ["192.0.2.25"]
    finally:
        for sock in held:
            sock.close()
    # Closed connections give their slots back.
    deadline = time.monotonic() + 5
    while True:
        try:
            assert addresses(tcp(s.port, "www.example.com")) == ["192.0.2.80", "192.0.2.81"]
            break
        except (ConnectionError, OSError, dns.exception.DNSException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_malformed_udp_gets_formerr_and_qr_gets_nothing(serve, zone_args):
    s = serve(*zone_args)
    data = dns.message.make_query("www.example.com", "A").to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(data[:4] + b"\x00\x02" + data[6:], ("127.0.0.1", s.port))
        reply, _ = sock.recvfrom(512)
        assert reply[:2] == data[:2] and reply[3] & 0xF == dns.rcode.FORMERR
        sock.sendto(data[:2] + bytes([data[2] | 0x80]) + data[3:], ("127.0.0.1", s.port))
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recvfrom(512)


def test_bad_zone_file_is_reported_and_the_others_load(serve, zone_args, tmp_path):
    bad = tmp_path / "bad.zone"
    bad.write_text("$ORIGIN bad.test.\n$TTL 60\n@ SOA a b 1 2 3 4 5\nfoo A 1.2.3\n")
    s = serve(*zone_args, "--zone-file", str(bad))
    line = s.wait_for("zone not loaded")
    assert str(bad) in line and ":4:" in line
    assert addresses(udp(s.port, "www.example.com")) == ["192.0.2.80", "192.0.2.81"]
    assert udp(s.port, "foo.bad.test").rcode() == dns.rcode.REFUSED


def test_zone_file_with_explicit_origin(serve, tmp_path):
    z = tmp_path / "plain.zone"
    z.write_text("$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\n@ NS ns\nns A 192.0.2.9\n")
    s = serve("--zone-file", f"given.test.={z}")
    assert addresses(udp(s.port, "ns.given.test")) == ["192.0.2.9"]


def test_sighup_swaps_changed_zones_and_keeps_a_broken_one(serve, tmp_path):
    z = tmp_path / "r.zone"
    z.write_text("$ORIGIN r.test.\n$TTL 60\n@ SOA ns hostmaster 1 2 3 4 5\nwww A 192.0.2.1\n")
    s = serve("--zone-file", str(z))
    assert addresses(udp(s.port, "www.r.test")) == ["192.0.2.1"]
    z.write_text("$ORIGIN r.test.\n$TTL 60\n@ SOA ns hostmaster 2 2 3 4 5\nwww A 192.0.2.2\n")
    mark = len(s.lines)
    s.signal(signal.SIGHUP)
    s.wait_for("reload: 1 zone", after=mark)
    assert addresses(udp(s.port, "www.r.test")) == ["192.0.2.2"]
    z.write_text("$ORIGIN r.test.\n$TTL 60\n@ SOA ns hostmaster 3 2 3 4 5\nwww A not-an-address\n")
    mark = len(s.lines)
    s.signal(signal.SIGHUP)
    assert str(z) in s.wait_for("zone not loaded", after=mark)
    s.wait_for("reload: 0 zone", after=mark)
    assert addresses(udp(s.port, "www.r.test")) == ["192.0.2.2"]


def test_config_file_and_flags_override_it(serve, zone_args, tmp_path):
    cfg = tmp_path / "minidns.toml"
    cfg.write_text('listen = ["127.0.0.1:0"]\nnsid = "from-file"\nversion = "v-file"\n')
    s = serve(f"--config={cfg}", *zone_args, "--version-string", "v-flag")
    r = udp(s.port, "version.bind", "TXT", rdclass="CH")
    assert r.answer[0][0].strings == (b"v-flag",)
    r = udp(s.port, "www.example.com", use_edns=0, options=[dns.edns.GenericOption(3, b"")])
    assert [o.nsid for o in r.options] == [b"from-file"]


def test_bad_config_is_a_clear_error(tmp_path):
    import sys

    cfg = tmp_path / "bad.toml"
    cfg.write_text('listen = ["127.0.0.1:0"]\nedns_paylod = 4096\n')
    root = Path(__file__).resolve().parents[2]  # `-m` runs this checkout's minidns from here
    p = subprocess.run([sys.executable, "-m", "minidns", "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=20, cwd=root)
    assert p.returncode == 2 and "edns_paylod" in p.stderr


def test_query_log_when_enabled(serve, zone_args):
    s = serve(*zone_args, "--query-log")
    udp(s.port, "www.example.com")
    udp(s.port, "www.example.com")
    line = s.wait_for("minidns.query")
    assert "www" in line and "rcode=0" in line


def test_sigterm_stops_cleanly(serve, zone_args):
    s = serve(*zone_args)
    assert s.stop() == 0
    assert "stopping" in s.log
