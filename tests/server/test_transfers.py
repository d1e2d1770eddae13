"""Zone transfers, TSIG and NOTIFY end to end: a real `minidns serve` on a real PostgreSQL,
dnspython as the transfer client (it checks every TSIG MAC of a multi-message transfer), and
UDP sockets in this process standing in for secondaries that receive NOTIFY and answer SOA
queries. Interop with BIND, Knot, NSD and PowerDNS as secondaries is in tests/interop.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.renderer
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.xfr
import dns.zone
import pytest

from minidns.store import db
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings
from tests.xfr.test_tsig import rfc_mac, signed_request, unsigned_and_tsig  # truncated MACs, computed by hand

ZONE = "xfr.test."
SECRET = "c2VjcmV0LWZvci10aGUtdGVzdHMtb2YtbWluaWRucw=="  # base64
KEYRING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
OTHER_KEYRING = dns.tsigkeyring.from_text({"other-key.": ("hmac-sha256", SECRET)})
WRONG_SECRET = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")})


def run(url: str, fn):
    async def go():
        pool = await db.create_pool(url)
        try:
            return await fn(Store(pool, StoreSettings(), stages=write_stages()))
        finally:
            await asyncio.wait_for(pool.close(), 5)

    return asyncio.run(go())


def make_zone(url: str, name: str = ZONE, hosts: int = 20) -> int:
    edits = [Edit("add", "@", "NS", None, ("ns1",)), Edit("add", "ns1", "A", None, ("192.0.2.53",))]
    edits += [Edit("add", f"h{i}", "A", 300, (f"10.0.{i // 250}.{i % 250}",)) for i in range(hosts)]
    edits += [Edit("add", "mail", "MX", None, ("10 mx.example.net.",)), Edit("add", "txt", "TXT", None, ('"hello"',))]
    change = run(url, lambda s: s.create_zone(name, email=f"hostmaster@{name.rstrip('.')}", edits=edits))
    return change.serial_to


def change(url: str, *edits: Edit, name: str = ZONE) -> int:
    return run(url, lambda s: s.change(name, list(edits), source="test")).serial_to


def write_config(tmp_path, text: str) -> str:
    path = tmp_path / "minidns.toml"
    path.write_text(text)
    return str(path)


def axfr_zone(port: int, name: str = ZONE, **kw) -> dns.zone.Zone:
    return dns.zone.from_xfr(dns.query.xfr("127.0.0.1", name, port=port, timeout=10, lifetime=30, relativize=False, **kw), relativize=False)


def tcp_query(port: int, msg: dns.message.Message, **kw) -> dns.message.Message:
    return dns.query.tcp(msg, "127.0.0.1", port=port, timeout=5, **kw)


@pytest.fixture
def served(serve, database_url, tmp_path):
    """A server on a fresh database holding ZONE, with TSIG key xfr-key. known."""

    def start(extra: str = "", hosts: int = 20):
        serial = make_zone(database_url, hosts=hosts)
        conf = write_config(tmp_path, f"""
tsig_keys = [{{ name = "xfr-key.", algorithm = "hmac-sha256", secret = "{SECRET}" }}]
{extra}
""")
        s = serve("--database-url", database_url, "--config", conf, "--listen", "127.0.0.1:0")
        return s, serial

    return start


# -- AXFR ------------------------------------------------------------------------------------------


def test_axfr_is_the_whole_zone_soa_first_and_last(served, database_url):
    s, serial = served()
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, port=s.port, timeout=5))
    answer = [rr for m in msgs for rrset in m.answer for rr in [rrset]]
    assert answer[0].rdtype == dns.rdatatype.SOA and answer[-1].rdtype == dns.rdatatype.SOA
    assert answer[0][0].serial == serial == answer[-1][0].serial
    assert all(m.flags & dns.flags.AA for m in msgs)
    zone = axfr_zone(s.port)
    names = {str(n) for n in zone.nodes}
    assert {f"h{i}.{ZONE}" for i in range(20)} <= names and f"mail.{ZONE}" in names
    assert zone.find_rdataset(f"h7.{ZONE}", "A")[0].address == "10.0.0.7"
    assert zone.find_rdataset(f"h7.{ZONE}", "A").ttl == 300
    assert s.wait_for(r"AXFR of xfr\.test\. serial \d+ to 127\.0\.0\.1")


def test_large_axfr_spans_many_messages_each_up_to_64k(served, database_url):
    s, _ = served(hosts=20000)
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, port=s.port, timeout=10, lifetime=60))
    assert len(msgs) > 5
    assert all(len(m.to_wire()) <= 65535 for m in msgs)
    count = sum(len(rrset) for m in msgs for rrset in m.answer)
    assert count == 20000 + 2 + 2 + 2  # hosts, NS, ns1 A, MX, TXT, and the SOA twice


def test_axfr_is_refused_over_udp_and_unknown_zones_are_notauth(served):
    s, _ = served()
    r = dns.query.udp(dns.message.make_query(ZONE, "AXFR"), "127.0.0.1", port=s.port, timeout=3)
    assert r.rcode() == dns.rcode.NOTIMP
    r = tcp_query(s.port, dns.message.make_query("nowhere.test.", "AXFR"))
    assert r.rcode() == dns.rcode.NOTAUTH
    r = tcp_query(s.port, dns.message.make_query(f"h1.{ZONE}", "AXFR"))  # not a zone apex
    assert r.rcode() == dns.rcode.NOTAUTH


def test_axfr_from_a_pinned_snapshot_while_the_zone_changes(served, database_url):
    """A transfer started before a change finishes on the data it started with."""
    s, serial = served(hosts=30000)
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    q = dns.message.make_query(ZONE, "AXFR").to_wire()
    sock.sendall(struct.pack("!H", len(q)) + q)
    first = _read_message(sock)  # the transfer has begun; the client reads nothing more yet
    new = change(database_url, Edit("add", "late", "A", 60, ("192.0.2.99",)), Edit("delete", "h5", "A"))
    assert new != serial
    msgs = [first]
    while True:
        m = _read_message(sock)
        msgs.append(m)
        if len(m.answer) and m.answer[-1].rdtype == dns.rdatatype.SOA and len(msgs) > 1:
            break
    sock.close()
    names = {str(rrset.name) for m in msgs for rrset in m.answer}
    assert f"h5.{ZONE}" in names and f"late.{ZONE}" not in names
    assert {rrset[0].serial for m in msgs for rrset in m.answer if rrset.rdtype == dns.rdatatype.SOA} == {serial}
    zone = axfr_zone(s.port)  # a new transfer has the change
    assert zone.get_node(f"late.{ZONE}") is not None and zone.get_node(f"h5.{ZONE}") is None


def _read_message(sock) -> dns.message.Message:
    size = struct.unpack("!H", _read(sock, 2))[0]
    return dns.message.from_wire(_read(sock, size), one_rr_per_rrset=True)


def _read(sock, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def test_queries_pipelined_behind_a_transfer_are_answered_after_it(served):
    s, _ = served(hosts=5000)
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    xfr = dns.message.make_query(ZONE, "AXFR")
    soa = dns.message.make_query(ZONE, "SOA")
    wire = b"".join(struct.pack("!H", len(w)) + w for w in (xfr.to_wire(), soa.to_wire()))
    sock.sendall(wire)
    seen_soa_records = 0
    while True:
        m = _read_message(sock)
        if m.id == soa.id and not m.answer[0].rdtype == dns.rdatatype.SOA or (m.id == soa.id and seen_soa_records >= 2):
            break
        seen_soa_records += sum(1 for rr in m.answer if rr.rdtype == dns.rdatatype.SOA)
    assert seen_soa_records == 2  # the transfer's two SOAs came before the SOA query's reply
    assert m.id == soa.id and m.answer[0].rdtype == dns.rdatatype.SOA
    sock.close()


def test_a_client_that_half_closes_gets_the_whole_transfer_and_the_queries_behind_it(served):
    """A client may send its requests and shut down its side (RFC 7766 §6.2.4): the transfer under
    way is sent whole, the queries queued behind it are answered, then the server closes."""
    s, _ = served(hosts=5000)
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    xfr = dns.message.make_query(ZONE, "AXFR")
    queries = [dns.message.make_query(ZONE, "SOA"), dns.message.make_query(f"h1.{ZONE}", "A")]
    sock.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (xfr.to_wire(), *(q.to_wire() for q in queries))))
    sock.shutdown(socket.SHUT_WR)
    messages = []
    while True:
        head = sock.recv(2, socket.MSG_WAITALL)
        if not head:
            break  # the server closed, after everything
        messages.append(dns.message.from_wire(_read(sock, struct.unpack("!H", head)[0])))
    sock.close()
    transfer = [m for m in messages if m.id == xfr.id]
    soas = sum(1 for m in transfer for rr in m.answer if rr.rdtype == dns.rdatatype.SOA)
    names = {rr.name for m in transfer for rr in m.answer}
    assert soas == 2 and len(names) > 5000  # whole: both SOAs and every host
    assert [m.id for m in messages[len(transfer):]] == [q.id for q in queries]
    assert all(m.answer for m in messages[len(transfer):])


# -- IXFR ------------------------------------------------------------------------------------------


def test_ixfr_brings_an_old_copy_to_the_current_zone(served, database_url):
    s, serial = served()
    old = axfr_zone(s.port)
    change(database_url, Edit("add", "new", "A", 60, ("192.0.2.1",)))
    change(database_url, Edit("replace", "h1", "A", 300, ("10.9.9.9", "10.9.9.8")))
    change(database_url, Edit("delete", "h2", "A"))
    change(database_url, Edit("replace", "h3", "A", 900, ("10.0.0.3",)))  # a TTL change
    change(database_url, Edit("add", "new", "A", 60, ("192.0.2.2",)), Edit("delete", "new", "A", None, ("192.0.2.1",)))
    last = change(database_url, Edit("add", "gone", "TXT", 60, ('"x"',)))
    last = change(database_url, Edit("delete", "gone", "TXT"))
    s.wait_for(rf"serial {last}|", 5)
    _wait_serial(s.port, last)
    q = dns.message.make_query(ZONE, "IXFR")
    q.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, port=s.port, rdtype=dns.rdatatype.IXFR, serial=serial, timeout=5))
    rrs = [rr for m in msgs for rrset in m.answer for rr in rrset]
    soas = [rr.serial for m in msgs for rrset in m.answer if rrset.rdtype == dns.rdatatype.SOA for rr in rrset]
    assert soas == [last, serial, last, last]  # one condensed difference
    assert len(rrs) < 20  # not the whole zone
    s.wait_for(rf"IXFR of xfr\.test\. {serial} -> {last} to 127\.0\.0\.1: \d+ removed, \d+ added")
    # Applied to the old copy, the IXFR gives exactly what an AXFR gives now.
    query, old_serial = dns.xfr.make_query(old)  # IXFR from the serial the copy has
    assert old_serial == serial
    dns.query.inbound_xfr("127.0.0.1", old, query, port=s.port, timeout=5)
    new = axfr_zone(s.port)
    assert _rrs(old) == _rrs(new)
    assert new.find_rdataset(f"h3.{ZONE}", "A").ttl == 900
    assert new.get_node(f"gone.{ZONE}") is None and new.get_node(f"h2.{ZONE}") is None


def _rrs(zone: dns.zone.Zone) -> set[str]:
    return {f"{name} {rdataset.ttl} {rdataset.rdtype} {rdata}" for name, rdataset in zone.iterate_rdatasets() for rdata in rdataset}


def _wait_serial(port: int, serial: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=port, timeout=2)
        if r.answer and r.answer[0][0].serial == serial:
            return
        time.sleep(0.02)
    raise AssertionError(f"serial {serial} not served within {timeout}s")


def _ixfr_query(serial: int) -> dns.message.Message:
    q = dns.message.make_query(ZONE, "IXFR")
    q.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", f"ns1.{ZONE} h.{ZONE} {serial} 0 0 0 0"))
    return q


def test_ixfr_from_the_current_serial_is_the_soa_alone(served):
    s, serial = served()
    r = tcp_query(s.port, _ixfr_query(serial))
    assert [rrset.rdtype for rrset in r.answer] == [dns.rdatatype.SOA] and len(r.answer[0]) == 1
    assert r.answer[0][0].serial == serial
    r = tcp_query(s.port, _ixfr_query(serial + 5))  # a client ahead of us gets the same
    assert len(r.answer) == 1 and r.answer[0][0].serial == serial


def test_ixfr_over_udp_is_answered_with_the_current_soa(served, database_url):
    s, serial = served()
    last = change(database_url, Edit("add", "u", "A", 60, ("192.0.2.1",)))
    _wait_serial(s.port, last)
    r = dns.query.udp(_ixfr_query(serial), "127.0.0.1", port=s.port, timeout=3)
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1
    assert r.answer[0].rdtype == dns.rdatatype.SOA and r.answer[0][0].serial == last


def test_ixfr_past_the_kept_log_sends_the_whole_zone(served, database_url):
    s, serial = served(extra="change_log_keep = 2")
    async def prune_keep(store):
        return await store.pool.execute("UPDATE zones SET log_keep_count = 2 WHERE name = $1", ZONE)
    run(database_url, prune_keep)
    for i in range(5):
        last = change(database_url, Edit("add", f"n{i}", "A", 60, ("192.0.2.1",)))
    _wait_serial(s.port, last)
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, port=s.port, rdtype=dns.rdatatype.IXFR, serial=serial, timeout=5))
    soas = [rr.serial for m in msgs for rrset in m.answer if rrset.rdtype == dns.rdatatype.SOA for rr in rrset]
    assert soas == [last, last]  # AXFR-style: the SOA, everything, the SOA
    s.wait_for(r"IXFR of xfr\.test\. from serial \d+ to 127\.0\.0\.1: the whole zone \(no history that far back\)")
    zone = dns.zone.from_xfr(iter(msgs))
    zone = {str(n) for n in zone.nodes}
    assert {"n4", "h19"} <= zone


def test_ixfr_larger_than_the_zone_sends_the_whole_zone(served, database_url):
    s, serial = served(hosts=30)
    # A new TTL on every host: each record removed and added again, 60 records against 35.
    last = change(database_url, *[Edit("replace", f"h{i}", "A", 77, (f"10.0.0.{i}",)) for i in range(30)])
    _wait_serial(s.port, last)
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, port=s.port, rdtype=dns.rdatatype.IXFR, serial=serial, timeout=5))
    soas = [rr.serial for m in msgs for rrset in m.answer if rrset.rdtype == dns.rdatatype.SOA for rr in rrset]
    assert soas == [last, last]
    s.wait_for(r"the whole zone \(the difference is larger than the zone\)")


# -- access and TSIG -----------------------------------------------------------------------------------


TSIG_ONLY = f'zone_allow_transfer = {{ "{ZONE}" = ["key:xfr-key."] }}'


def test_a_tsig_only_zone_refuses_unsigned_and_other_keys(served):
    s, _ = served(extra=TSIG_ONLY)
    r = tcp_query(s.port, dns.message.make_query(ZONE, "AXFR", use_edns=0))
    assert r.rcode() == dns.rcode.REFUSED
    assert [o.code for o in r.options] == [dns.edns.EDECode.PROHIBITED]
    s.wait_for(r"transfer of xfr\.test\. refused to 127\.0\.0\.1")


def test_signed_axfr_of_many_messages_verifies(served):
    s, serial = served(extra=TSIG_ONLY, hosts=20000)
    # dnspython checks the TSIG of every message, each chained to the one before (RFC 8945 §5.3.1).
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, port=s.port, keyring=KEYRING, keyname="xfr-key.", timeout=10, lifetime=60))
    assert len(msgs) > 5 and all(m.had_tsig for m in msgs)
    assert sum(len(rrset) for m in msgs for rrset in m.answer) == 20000 + 6


def test_signed_ixfr_verifies(served, database_url):
    s, serial = served(extra=TSIG_ONLY)
    last = change(database_url, Edit("add", "signed", "A", 60, ("192.0.2.1",)))
    _wait_serial(s.port, last)
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, port=s.port, rdtype=dns.rdatatype.IXFR, serial=serial,
                              keyring=KEYRING, keyname="xfr-key.", timeout=5))
    assert all(m.had_tsig for m in msgs)
    soas = [rr.serial for m in msgs for rrset in m.answer if rrset.rdtype == dns.rdatatype.SOA for rr in rrset]
    assert soas == [last, serial, last, last]


def _raw_tsig_error(port: int, wire: bytes) -> tuple[int, int]:
    """(rcode, TSIG error) of the reply to a raw signed request over TCP."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(struct.pack("!H", len(wire)) + wire)
    size = struct.unpack("!H", _read(sock, 2))[0]
    reply = _read(sock, size)
    sock.close()
    r = dns.message.from_wire(reply, keyring=False)  # read it without checking its MAC
    return r.rcode(), r.tsig_error if r.had_tsig else None


def test_unknown_key_is_badkey(served):
    s, _ = served(extra=TSIG_ONLY)
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(OTHER_KEYRING, "other-key.")
    assert _raw_tsig_error(s.port, q.to_wire()) == (dns.rcode.NOTAUTH, dns.rcode.BADKEY)


def test_wrong_secret_and_tampered_mac_are_badsig(served):
    s, _ = served(extra=TSIG_ONLY)
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(WRONG_SECRET, "xfr-key.")
    assert _raw_tsig_error(s.port, q.to_wire()) == (dns.rcode.NOTAUTH, dns.rcode.BADSIG)
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(KEYRING, "xfr-key.")
    wire = bytearray(q.to_wire())
    wire[-20] ^= 0x01  # a bit of the MAC
    assert _raw_tsig_error(s.port, bytes(wire)) == (dns.rcode.NOTAUTH, dns.rcode.BADSIG)


def test_a_truncated_mac_is_accepted_and_the_transfer_signed_truncated_alike(served):
    # Kea (digest-bits 128) and BIND (an hmac-sha256-128 key) send hmac-sha256 MACs cut to 16
    # octets (RFC 8945 §5.2.2.1); dnspython can neither send nor check them, so this does by hand.
    s, _ = served(extra=TSIG_ONLY, hosts=6000)
    secret, now = base64.b64decode(SECRET), int(time.time())
    wire, _ = signed_request("hmac-sha256", 16, now=now, qname=ZONE, secret=secret)
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sock.sendall(struct.pack("!H", len(wire)) + wire)
    prior, chained, soas, count = dns.message.from_wire(wire, keyring=False).mac, False, 0, 0
    while soas < 2:
        reply = _read(sock, struct.unpack("!H", _read(sock, 2))[0])
        message, tsig = unsigned_and_tsig(reply)
        assert tsig.mac == rfc_mac("hmac-sha256", secret, prior, message, tsig.time_signed, chained=chained)[:16]
        prior, chained, count = tsig.mac, True, count + 1
        m = dns.message.from_wire(reply, keyring=False)
        soas += sum(1 for rrset in m.answer if rrset.rdtype == dns.rdatatype.SOA)
    sock.close()
    assert count > 1  # a transfer of several messages, each chained to the MAC sent before it
    wire, _ = signed_request("hmac-sha256", 15, now=now, qname=ZONE, secret=secret)  # under half of 32 octets
    assert _raw_tsig_error(s.port, wire) == (dns.rcode.FORMERR, None)


def test_clock_skew_is_badtime_with_our_time(served, monkeypatch):
    s, _ = served(extra=TSIG_ONLY)
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(KEYRING, "xfr-key.", fudge=300)
    real = time.time
    monkeypatch.setattr(dns.renderer.time, "time", lambda: real() - 3600)  # the client's clock an hour slow
    wire = q.to_wire()
    monkeypatch.undo()
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sock.sendall(struct.pack("!H", len(wire)) + wire)
    reply = _read(sock, struct.unpack("!H", _read(sock, 2))[0])
    r = dns.message.from_wire(reply, keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and r.tsig_error == dns.rcode.BADTIME
    other = r.tsig[0].other
    assert len(other) == 6 and abs(int.from_bytes(other, "big") - real()) < 30  # our time, for the client
    assert r.tsig[0].mac  # signed, so the client can trust it


def test_signed_query_gets_a_signed_reply(served):
    s, serial = served()
    q = dns.message.make_query(ZONE, "SOA")
    q.use_tsig(KEYRING, "xfr-key.")
    r = dns.query.udp(q, "127.0.0.1", port=s.port, timeout=3)  # dnspython verifies the reply's MAC
    assert r.had_tsig and r.answer[0][0].serial == serial
    r = dns.query.tcp(q, "127.0.0.1", port=s.port, timeout=3)
    assert r.had_tsig and r.answer[0][0].serial == serial


def test_the_global_acl_without_loopback_refuses_loopback(served):
    s, _ = served(extra='allow_transfer = ["192.0.2.0/24", "key:xfr-key."]')
    assert tcp_query(s.port, dns.message.make_query(ZONE, "AXFR")).rcode() == dns.rcode.REFUSED
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(KEYRING, "xfr-key.")
    r = tcp_query(s.port, q)  # dnspython checks the reply's MAC against the query's key
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0].rdtype == dns.rdatatype.SOA


# -- NOTIFY in ---------------------------------------------------------------------------------------


def test_inbound_notify(served):
    s, _ = served()
    n = dns.message.make_query(ZONE, "SOA")
    n.set_opcode(dns.opcode.NOTIFY)
    n.flags |= dns.flags.AA
    r = dns.query.udp(n, "127.0.0.1", port=s.port, timeout=3)
    # Primary for the zone, minidns has nothing to fetch: NOTAUTH, as Knot answers.
    assert r.rcode() == dns.rcode.NOTAUTH and r.opcode() == dns.opcode.NOTIFY
    assert r.question[0].name == dns.name.from_text(ZONE)
    n.use_tsig(KEYRING, "xfr-key.")
    r = dns.query.udp(n, "127.0.0.1", port=s.port, timeout=3)  # signed: the reply is signed too
    assert r.rcode() == dns.rcode.NOTAUTH and r.had_tsig
    n = dns.message.make_query("other.test.", "SOA")
    n.set_opcode(dns.opcode.NOTIFY)
    r = dns.query.udp(n, "127.0.0.1", port=s.port, timeout=3)
    assert r.rcode() == dns.rcode.NOTAUTH


# -- NOTIFY out and propagation ----------------------------------------------------------------------


class FakeSecondary:
    """A UDP socket on loopback that records NOTIFYs (answering them unless `mute`) and answers
    SOA queries with `serial` — enough of a secondary to test what minidns sends and tracks."""

    def __init__(self, keyring=None, mute: bool = False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.keyring = keyring
        self.mute = mute
        self.serial = 0
        self.notifies: list[tuple[float, dns.message.Message]] = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            m = dns.message.from_wire(data, keyring=self.keyring) if self.keyring else dns.message.from_wire(data)
            if m.opcode() == dns.opcode.NOTIFY:
                self.notifies.append((time.monotonic(), m))
                if self.mute:
                    continue
                r = dns.message.make_response(m)
            else:
                r = dns.message.make_response(m)
                if self.serial:
                    r.answer.append(dns.rrset.from_text(m.question[0].name, 60, "IN", "SOA", f"a. b. {self.serial} 1 1 1 1"))
            self.sock.sendto(r.to_wire(), addr)

    def stop(self):
        self.stopped = True
        self.thread.join(2)
        self.sock.close()

    def wait_notify(self, serial: int, timeout: float = 5.0) -> dns.message.Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, m in self.notifies:
                if m.answer and m.answer[0][0].serial == serial:
                    return m
            time.sleep(0.01)
        raise AssertionError(f"no NOTIFY for serial {serial}; got {[m.answer[0][0].serial for _, m in self.notifies if m.answer]}")


@pytest.fixture
def secondary():
    made = []

    def make(**kw):
        f = FakeSecondary(**kw)
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


def zone_status(url: str) -> tuple[str, str, int]:
    z = run(url, lambda s: s.zone(ZONE))
    return z["status"], z["action"], z["serial"]


def test_a_change_notifies_the_secondary_and_turns_active_when_it_has_it(served, database_url, secondary):
    sec = secondary()
    s, serial = served(extra=f'secondaries = [{{ address = "127.0.0.1", port = {sec.port} }}]')
    last = change(database_url, Edit("add", "n", "A", 60, ("192.0.2.1",)))
    m = sec.wait_notify(last)
    assert m.opcode() == dns.opcode.NOTIFY and m.flags & dns.flags.AA and m.question[0].rdtype == dns.rdatatype.SOA
    assert zone_status(database_url)[:2] == ("PENDING", "UPDATE")  # the secondary does not have it yet
    time.sleep(0.3)
    assert zone_status(database_url)[0] == "PENDING"
    sec.serial = last  # now it has it: the poll sees the serial
    deadline = time.monotonic() + 5
    while zone_status(database_url)[:2] != ("ACTIVE", "NONE"):
        assert time.monotonic() < deadline, zone_status(database_url)
        time.sleep(0.05)
    s.wait_for(rf"zone xfr\.test\. serial {last}: ACTIVE")


def test_the_log_says_what_a_lagging_secondary_answered(served, database_url, secondary):
    """A secondary past propagation_timeout is named with what its last SOA poll showed: no answer
    at all, or an answer without the zone's SOA — never a bare None."""
    answering = secondary()  # answers SOA queries without any SOA while its serial is 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        silent = gone.getsockname()[1]  # bound, never read: nothing answers there
        s, _ = served(extra=f"""propagation_timeout = 1.0
secondaries = [{{ address = "127.0.0.1", port = {answering.port} }}, {{ address = "127.0.0.1", port = {silent} }}]""")
        last = change(database_url, Edit("add", "lag", "A", 60, ("192.0.2.1",)))
        s.wait_for(rf"serial {last}: secondary 127\.0\.0\.1#{answering.port} answered the SOA query with NOERROR and no SOA after 1s")
        s.wait_for(rf"serial {last}: secondary 127\.0\.0\.1#{silent} has not answered the SOA query after 1s")
    assert "has None" not in s.log


def _snapshots(n_zones: int, serial: int):
    from minidns.zones.loader import load_zone_text

    return [load_zone_text(f"$TTL 60\n@ SOA ns1 h {serial} 1 1 1 1\n@ NS ns1\nns1 A 192.0.2.1\n", f"z{i}.test.")
            for i in range(n_zones)]


def test_a_burst_of_changes_to_one_zone_becomes_one_notify(secondary):
    """Twenty snapshots of one zone within the coalescing window: one NOTIFY, the newest serial."""
    from minidns.server.notify import Notifier, Secondary

    sec = secondary()
    snaps = [_snapshots(1, serial)[0] for serial in range(1, 21)]

    async def go():
        n = Notifier([Secondary("127.0.0.1", sec.port)])
        await n.start()
        for snap in snaps:
            n.changed(snap)
        await asyncio.sleep(0.5)
        n.stop()

    asyncio.run(go())
    assert [m.answer[0][0].serial for _, m in sec.notifies] == [20]


def test_thousands_of_zones_at_once_are_rate_limited_not_lost(secondary):
    from minidns.server.notify import Notifier, Secondary

    sec = secondary()
    snaps = _snapshots(300, 7)

    async def go():
        n = Notifier([Secondary("127.0.0.1", sec.port)], rate=100)
        await n.start()
        started = time.monotonic()
        for snap in snaps:
            n.changed(snap)
        while len({m.question[0].name for _, m in sec.notifies}) < 300 and time.monotonic() - started < 10:
            await asyncio.sleep(0.05)
        n.stop()
        return started

    started = asyncio.run(go())
    names = {str(m.question[0].name) for _, m in sec.notifies}
    assert names == {f"z{i}.test." for i in range(300)}  # every zone told, none twice over
    times = sorted(t for t, _ in sec.notifies)
    assert times[-1] - started >= 1.5  # 300 at 100/s (a burst of 100 allowed): about 2 s, not at once
    # A NOTIFY lost on the way (this Python stand-in also answers the SOA polls of 300 zones) is
    # sent again after its timeout; nothing else is sent twice.
    assert len(sec.notifies) <= 310


def test_a_secondary_left_behind_is_notified_again_until_it_has_the_change(secondary):
    """It answers the NOTIFY but does not transfer (its SOA stays old): NOTIFYed again after
    `renotify` seconds, then after twice as long; once it has the serial, no more."""
    from minidns.server.notify import Notifier, Secondary

    sec = secondary()
    sec.serial = 6
    snap = _snapshots(1, 7)[0]

    async def go():
        n = Notifier([Secondary("127.0.0.1", sec.port)], renotify=0.4)
        await n.start()
        n.changed(snap)
        await asyncio.sleep(1.35)  # NOTIFY at 0, again at ~0.45 and ~0.9 (doubling: next ~1.8)
        behind = len(sec.notifies)
        sec.serial = 7
        await asyncio.sleep(1.5)
        n.stop()
        return behind, n.renotified

    behind, renotified = asyncio.run(go())
    assert all(m.answer[0][0].serial == 7 for _, m in sec.notifies)
    assert behind == 3 and renotified == 2, (behind, renotified)
    assert len(sec.notifies) == behind  # caught up: left alone


def test_renotify_zero_never_notifies_again(secondary):
    from minidns.server.notify import Notifier, Secondary

    sec = secondary()
    sec.serial = 6

    async def go():
        n = Notifier([Secondary("127.0.0.1", sec.port)], renotify=0)
        await n.start()
        n.changed(_snapshots(1, 7)[0])
        await asyncio.sleep(1.0)
        n.stop()

    asyncio.run(go())
    assert len(sec.notifies) == 1


def test_signed_notify_to_a_secondary_with_a_key(served, database_url, secondary):
    sec = secondary(keyring=KEYRING)
    s, _ = served(extra=f'secondaries = [{{ address = "127.0.0.1", port = {sec.port}, key = "xfr-key." }}]')
    last = change(database_url, Edit("add", "n", "A", 60, ("192.0.2.1",)))
    m = sec.wait_notify(last)  # parsed with the keyring: its MAC verified
    assert m.had_tsig and m.keyname == dns.name.from_text("xfr-key.")


def test_unanswered_notify_is_retried_then_the_zone_goes_to_error(served, database_url, secondary):
    sec = secondary(mute=True)
    s, _ = served(extra=f"""secondaries = [{{ address = "127.0.0.1", port = {sec.port} }}]
notify_retries = 3
notify_timeout = 0.1
propagation_timeout = 1.0""")
    last = change(database_url, Edit("add", "n", "A", 60, ("192.0.2.1",)))
    s.wait_for(rf"NOTIFY xfr\.test\. serial {last} to 127\.0\.0\.1#{sec.port}: no answer after 3 attempts", 5)
    assert len([m for _, m in sec.notifies if m.answer[0][0].serial == last]) == 3
    deadline = time.monotonic() + 5
    while zone_status(database_url)[0] != "ERROR":
        assert time.monotonic() < deadline, zone_status(database_url)
        time.sleep(0.05)
    sec.serial = last  # it catches up later: polling goes on and turns it ACTIVE
    deadline = time.monotonic() + 10
    while zone_status(database_url)[0] != "ACTIVE":
        assert time.monotonic() < deadline, zone_status(database_url)
        time.sleep(0.1)


# -- settings stored in the database ------------------------------------------------------------------


def test_keys_secondaries_and_access_from_the_database_reach_a_running_server(serve, cli, database_url, secondary):
    sec = secondary(keyring=KEYRING)
    serial = make_zone(database_url)
    s = serve("--database-url", database_url)  # nothing configured: all of it comes from the database
    db = ("--database-url", database_url)
    p = cli("tsig", "add", "xfr-key", "--secret", SECRET, *db)
    assert p.returncode == 0 and p.stdout.split() == ["xfr-key.", "hmac-sha256", SECRET], p.stderr
    p = cli("tsig", "list", *db)
    assert p.stdout.split() == ["xfr-key.", "hmac-sha256"] and SECRET not in p.stdout  # secrets are never listed
    assert cli("zone", "secondary", "add", ZONE, "127.0.0.1", "--port", sec.port, "--key", "xfr-key.", *db).returncode == 0
    assert cli("zone", "allow-transfer", ZONE, "key:xfr-key.", *db).returncode == 0
    p = cli("tsig", "delete", "xfr-key.", *db)
    assert p.returncode == 1 and "used by 1 secondary" in p.stderr
    time.sleep(0.3)  # the server reloads its settings on the notification
    assert tcp_query(s.port, dns.message.make_query(ZONE, "AXFR")).rcode() == dns.rcode.REFUSED
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, port=s.port, keyring=KEYRING, keyname="xfr-key.", timeout=5))
    assert msgs[0].answer[0][0].serial == serial
    last = change(database_url, Edit("add", "n", "A", 60, ("192.0.2.1",)))
    m = sec.wait_notify(last)  # signed with the stored key (the fake secondary checks the MAC)
    assert m.had_tsig
    p = cli("zone", "status", ZONE, *db)
    assert f"serial {last} status PENDING" in p.stdout and f"127.0.0.1#{sec.port}\tPENDING" in p.stdout, p.stdout
    sec.serial = last
    deadline = time.monotonic() + 5
    while True:
        p = cli("zone", "status", ZONE, *db)
        if f"127.0.0.1#{sec.port}\tOK\tserial {last}" in p.stdout:
            break
        assert time.monotonic() < deadline, p.stdout
        time.sleep(0.1)
    assert f"serial {last} status ACTIVE action NONE" in p.stdout
    assert cli("zone", "secondary", "delete", ZONE, "127.0.0.1", "--port", sec.port, *db).returncode == 0
    assert cli("tsig", "delete", "xfr-key.", *db).returncode == 0
    assert cli("zone", "allow-transfer", ZONE, *db).returncode == 0  # back to the default: loopback
    time.sleep(0.3)
    assert tcp_query(s.port, dns.message.make_query(ZONE, "AXFR")).rcode() == dns.rcode.NOERROR


def test_bad_settings_are_refused_with_a_clear_error(cli, database_url):
    make_zone(database_url)
    db = ("--database-url", database_url)
    p = cli("tsig", "add", "k", "--algorithm", "hmac-sha999", *db)
    assert p.returncode == 1 and "hmac-sha999" in p.stderr
    p = cli("tsig", "add", "k", "--secret", "not base64!", *db)
    assert p.returncode == 1 and "base64" in p.stderr
    p = cli("zone", "secondary", "add", ZONE, "not-an-address", *db)
    assert p.returncode == 1 and "not an IP address" in p.stderr
    p = cli("zone", "secondary", "add", ZONE, "127.0.0.1", "--key", "nokey.", *db)
    assert p.returncode == 1 and "no TSIG key" in p.stderr
    p = cli("zone", "allow-transfer", ZONE, "10.0.0.0/33", *db)
    assert p.returncode == 1 and "neither an address prefix" in p.stderr
    p = cli("zone", "status", "nowhere.test.", *db)
    assert p.returncode == 1 and "no zone" in p.stderr
    assert "Traceback" not in p.stderr
