"""Dynamic UPDATE through a real `minidns serve` on a real PostgreSQL (server/updates.py): over UDP
and TCP, the door's refusals in order (zone not served, zone file read-only, unsigned, address
not allowed, bad TSIG, no grant), the update answered with the zone section echoed and the
TSIG signature checked by dnspython, and the change served by minidns at once after it is
acknowledged. nsupdate/knsupdate against BIND and Knot are in tests/interop."""

from __future__ import annotations

import re
import time
import urllib.request

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import pytest

from test_transfers import SECRET, ZONE, make_zone, write_config  # tests/server is on sys.path

KEYRING = dns.tsigkeyring.from_text({"upd-key.": ("hmac-sha256", SECRET)})
OTHER = dns.tsigkeyring.from_text({"other-key.": ("hmac-sha256", SECRET)})
WRONG = dns.tsigkeyring.from_text({"upd-key.": ("hmac-sha256", "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")})
ZONES = __import__("pathlib").Path(__file__).resolve().parent.parent / "zones"


@pytest.fixture
def served(serve, database_url, tmp_path):
    """A server holding ZONE in the database and example.com from a zone file, with key upd-key.
    granted the whole zone, other-key. granted nothing."""

    def start(extra: str = ""):
        make_zone(database_url, hosts=3)
        conf = write_config(tmp_path, f"""
tsig_keys = [{{ name = "upd-key.", algorithm = "hmac-sha256", secret = "{SECRET}" }},
             {{ name = "other-key.", algorithm = "hmac-sha256", secret = "{SECRET}" }}]
update_grants = [{{ key = "upd-key.", zone = "{ZONE}", match = "zone" }}]
{extra}
""")
        return serve("--database-url", database_url, "--config", conf, "--listen", "127.0.0.1:0",
                     "--zone-file", f"example.com.={ZONES / 'example.com.zone'}")  # fmt: skip

    return start


def send(port: int, m: dns.message.Message, tcp: bool = False) -> dns.message.Message:
    q = dns.query.tcp if tcp else dns.query.udp
    return q(m, "127.0.0.1", port=port, timeout=5)


def ask(port: int, name: str, rdtype: str) -> list[str]:
    r = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=5)
    return sorted(rd.to_text() for rrset in r.answer for rd in rrset)


def update(zone: str = ZONE, keyring=KEYRING) -> dns.update.UpdateMessage:
    return dns.update.UpdateMessage(zone, keyring=keyring, keyalgorithm="hmac-sha256")


@pytest.mark.parametrize("tcp", [False, True])
def test_a_signed_update_is_applied_answered_signed_and_served_at_once(served, tcp):
    s = served()
    m = update()
    m.add("dyn", 60, "A", "192.0.2.77")
    m.add("dyn", 60, "TXT", '"hello world"')
    r = send(s.port, m, tcp)  # dnspython checks the reply's TSIG against the request's
    assert r.rcode() == dns.rcode.NOERROR and r.had_tsig
    assert r.opcode() == dns.opcode.UPDATE and [str(q.name) for q in r.question] == [ZONE]
    assert ask(s.port, "dyn." + ZONE, "A") == ["192.0.2.77"]  # acknowledged → answered
    assert ask(s.port, "dyn." + ZONE, "TXT") == ['"hello world"']
    s.wait_for(r"update xfr\.test\. from 127\.0\.0\.1#\d+ key upd-key\.: NOERROR, serial \d+")


def test_refusals_in_order(served):
    s = served()
    m = update("nothere.test.")
    m.add("x", 60, "A", "192.0.2.1")
    assert send(s.port, m).rcode() == dns.rcode.NOTAUTH  # not served
    m = update("example.com.")
    m.add("x", 60, "A", "192.0.2.1")
    assert send(s.port, m).rcode() == dns.rcode.REFUSED  # a zone file: read-only
    m = dns.update.UpdateMessage(ZONE)
    m.add("x", 60, "A", "192.0.2.1")
    assert send(s.port, m).rcode() == dns.rcode.REFUSED  # unsigned
    m = update(keyring=OTHER)
    m.add("x", 60, "A", "192.0.2.1")
    assert send(s.port, m).rcode() == dns.rcode.REFUSED  # no grant
    m = update(keyring=OTHER)
    m.present("h1")
    assert send(s.port, m).rcode() == dns.rcode.REFUSED  # nor may it ask prerequisites (says nothing of the zone)
    m = update()
    m.add("x.elsewhere.", 60, "A", "192.0.2.1")
    assert send(s.port, m).rcode() == dns.rcode.NOTZONE
    assert ask(s.port, "x." + ZONE, "A") == []


def test_bad_tsig_is_notauth_with_the_tsig_error(served):
    s = served()
    m = update(keyring=WRONG)
    m.add("x", 60, "A", "192.0.2.1")
    with pytest.raises(dns.tsig.PeerBadSignature):
        send(s.port, m)
    m = update(keyring=dns.tsigkeyring.from_text({"unknown-key.": ("hmac-sha256", SECRET)}))
    m.add("x", 60, "A", "192.0.2.1")
    with pytest.raises(dns.tsig.PeerBadKey):
        send(s.port, m)
    assert ask(s.port, "x." + ZONE, "A") == []


def test_unsigned_updates_from_the_acl_when_tsig_is_not_required(served):
    s = served('update_require_tsig = false\nupdate_acl = ["127.0.0.0/8"]')
    m = dns.update.UpdateMessage(ZONE)
    m.add("open", 60, "A", "192.0.2.9")
    assert send(s.port, m).rcode() == dns.rcode.NOERROR
    assert ask(s.port, "open." + ZONE, "A") == ["192.0.2.9"]


def test_an_address_outside_update_acl_is_refused(served):
    s = served('update_acl = ["192.0.2.0/24"]')
    m = update()
    m.add("x", 60, "A", "192.0.2.1")
    assert send(s.port, m).rcode() == dns.rcode.REFUSED


def test_too_many_records_refused_and_nothing_written(served):
    s = served("update_max_records = 50")
    m = update()
    for i in range(51):
        m.add(f"many{i}", 60, "A", "192.0.2.1")
    assert send(s.port, m, tcp=True).rcode() == dns.rcode.REFUSED
    assert ask(s.port, "many0." + ZONE, "A") == []


def test_garbage_after_a_good_header_gets_formerr_and_the_server_goes_on(served):
    s = served()
    wire = bytearray(update().to_wire())
    garbage = bytes(wire[:12]) + b"\x03xfr\x04test\x00\x00\x06\x00\x01" + b"\xff" * 9
    garbage = garbage[:8] + b"\x00\x03" + garbage[10:]  # UPCOUNT 3, then junk
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(garbage, ("127.0.0.1", s.port))
        reply, _ = sock.recvfrom(4096)
    assert reply[3] & 0xF == dns.rcode.FORMERR and reply[:2] == garbage[:2]
    time.sleep(0.1)
    assert ask(s.port, "h1." + ZONE, "A")  # still answering


def test_zone_discovery_as_certbot_does_it_gets_an_authoritative_signed_soa(served):
    """certbot-dns-rfc2136 finds the zone by a TSIG-signed SOA query with RD off over TCP and wants AA."""
    s = served()
    q = dns.message.make_query("www.dyn." + ZONE, "SOA")
    q.flags &= ~dns.flags.RD
    q.use_tsig(KEYRING, keyname="upd-key.", algorithm="hmac-sha256")
    r = dns.query.tcp(q, "127.0.0.1", port=s.port, timeout=5)  # the reply's MAC checked by dnspython
    assert r.had_tsig and r.flags & dns.flags.AA and r.rcode() == dns.rcode.NXDOMAIN
    assert [str(rr.name) for rr in r.authority] == [ZONE]  # the SOA names the zone
    r = dns.query.tcp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=s.port, timeout=5)
    assert r.flags & dns.flags.AA and [str(rr.name) for rr in r.answer] == [ZONE]


def test_each_update_shows_in_the_history_with_its_key_and_in_the_metrics(served, cli, database_url):
    s = served()
    for i in range(3):
        m = update()
        m.add(f"h{i}-new", 60, "A", f"192.0.2.{i + 10}")
        assert send(s.port, m).rcode() == dns.rcode.NOERROR
    m = update()
    m.absent("h1")  # in use: YXDOMAIN
    m.add("never", 60, "A", "192.0.2.99")
    assert send(s.port, m).rcode() == dns.rcode.YXDOMAIN
    p = cli("zone", "history", ZONE, "--limit", "3", "--database-url", database_url)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 3 and all("\tupdate:upd-key.\t-0 +1" in line for line in lines), lines
    api = re.search(r"API listening on (http://\S+/)", s.log).group(1)
    metrics = urllib.request.urlopen(api + "metrics", timeout=5).read().decode()
    assert 'minidns_updates_total{rcode="NOERROR"} 3' in metrics
    assert 'minidns_updates_total{rcode="YXDOMAIN"} 1' in metrics


def test_a_signed_zone_stays_signed_and_its_dnssec_records_are_not_updated(serve, cli, database_url, tmp_path):
    import base64
    import os

    env = {**os.environ, "MINIDNS_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    make_zone(database_url, hosts=3)
    p = cli("dnssec", "enable", ZONE, "--database-url", database_url, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    conf = write_config(tmp_path, f"""
tsig_keys = [{{ name = "upd-key.", algorithm = "hmac-sha256", secret = "{SECRET}" }}]
update_grants = [{{ key = "upd-key.", zone = "{ZONE}", match = "zone" }}]
""")
    s = serve("--database-url", database_url, "--config", conf, "--listen", "127.0.0.1:0", env=env)
    m = update()
    m.add("signed-new", 60, "A", "192.0.2.200")
    assert send(s.port, m, tcp=True).rcode() == dns.rcode.NOERROR
    r = dns.query.tcp(dns.message.make_query("signed-new." + ZONE, "A", want_dnssec=True), "127.0.0.1", port=s.port, timeout=5)
    assert {(rrset.rdtype, rrset.covers) for rrset in r.answer} == {(dns.rdatatype.A, 0), (dns.rdatatype.RRSIG, dns.rdatatype.A)}
    for rtype, text in (("DNSKEY", "256 3 13 " + base64.b64encode(b"k" * 64).decode()), ("NSEC", "a.xfr.test. A")):
        m = update()
        m.add("@" if rtype == "DNSKEY" else "x", 60, rtype, text)
        assert send(s.port, m, tcp=True).rcode() == dns.rcode.REFUSED
    r = dns.query.tcp(dns.message.make_query(ZONE, "DNSKEY", want_dnssec=True), "127.0.0.1", port=s.port, timeout=5)
    assert all(b"k" * 64 != rd.key for rrset in r.answer if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset)
