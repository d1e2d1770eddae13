"""NOTIFY messages and the replies to them (xfr/notify.py), as DNS data: what dnspython reads
in the bytes we send, and what we read in the bytes a secondary sends back."""

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import pytest

from minidns.xfr.notify import Secondary, answer_serial, holding, notify_message, reply_rcode, retry_timeouts, soa_query
from minidns.zones.loader import load_zone_text

ZONE = "$TTL 300\n@ SOA ns1 hostmaster 2026120701 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n"
KEYRING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0")})
KEY = KEYRING[dns.name.from_text("xfr-key.")]


@pytest.fixture(scope="module")
def zone():
    return load_zone_text(ZONE, "example.com.")


@pytest.mark.parametrize("patterns, zone_name, serves", [
    (("*",), "example.com.", True),
    (("example.com",), "example.com.", True),
    (("example.com.",), "example.com.", True),
    (("*.example.com",), "sub.example.com.", True),
    (("*.example.com",), "example.com.", False),
    (("example.org", "example.net."), "example.com.", False),
    (("example.org", "example.net."), "example.net.", True),
])  # fmt: skip
def test_a_secondary_serves_the_zones_its_patterns_match(patterns, zone_name, serves):
    assert Secondary("192.0.2.1", zones=patterns).serves(zone_name) is serves


@pytest.mark.parametrize("address, port, label", [("192.0.2.1", 53, "192.0.2.1#53"), ("2001:db8::1", 5300, "2001:db8::1#5300")])
def test_a_secondary_is_labelled_by_address_and_port(address, port, label):
    assert Secondary(address, port).label == label


def test_a_secondary_is_the_same_whatever_its_key():
    assert Secondary("192.0.2.1", 53, KEY) == Secondary("192.0.2.1", 53)


def test_a_notify_carries_the_zone_soa_with_aa_set(zone):
    m = dns.message.from_wire(notify_message(4321, zone))
    assert m.id == 4321 and m.opcode() == dns.opcode.NOTIFY and m.flags & dns.flags.AA
    assert (str(m.question[0].name), m.question[0].rdtype) == ("example.com.", dns.rdatatype.SOA)
    assert [(str(rr.name), rr.ttl, rr[0].serial) for rr in m.answer] == [("example.com.", 300, 2026120701)]


def test_a_signed_notify_verifies_with_the_secondary_key(zone):
    m = dns.message.from_wire(notify_message(7, zone, KEY), keyring=KEYRING)
    assert m.had_tsig and m.keyname == dns.name.from_text("xfr-key.") and m.opcode() == dns.opcode.NOTIFY


@pytest.mark.parametrize("key", [None, KEY])
def test_the_soa_poll_is_a_plain_soa_query(zone, key):
    m = dns.message.from_wire(soa_query(99, zone, key), keyring=KEYRING)
    assert m.id == 99 and m.opcode() == dns.opcode.QUERY and not m.flags & dns.flags.AA and not m.answer
    assert (str(m.question[0].name), m.question[0].rdtype) == ("example.com.", dns.rdatatype.SOA)
    assert m.had_tsig is (key is not None)


def _reply(serial=None, rcode=dns.rcode.NOERROR, qr=True, rtype="SOA") -> bytes:
    q = dns.message.make_query("example.com.", "SOA")
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    if serial is not None:
        data = f"ns1.example.com. h.example.com. {serial} 1 1 1 1" if rtype == "SOA" else "192.0.2.1"
        r.answer.append(dns.rrset.from_text("example.com.", 60, "IN", rtype, data))
    if not qr:
        r.flags &= ~dns.flags.QR
    return r.to_wire()


@pytest.mark.parametrize("reply, serial", [
    (_reply(2026120701), 2026120701),
    (_reply(4294967295), 4294967295),
    (_reply(), None),  # NOERROR without an SOA: the zone is not loaded there
    (_reply(7, rcode=dns.rcode.REFUSED), None),
    (_reply(7, rcode=dns.rcode.SERVFAIL), None),
    (_reply(7, qr=False), None),  # a query, not a reply
    (_reply(7, rtype="A"), None),
    (_reply(7)[:-17], None),  # cut short inside the serial
    (_reply(7)[:11], None),
    (b"\x00\x01", None),
    (None, None),
])  # fmt: skip
def test_the_serial_a_secondary_holds_is_read_from_its_soa_reply(reply, serial):
    assert answer_serial(reply) == serial


@pytest.mark.parametrize("reply, rcode", [(_reply(1), 0), (_reply(rcode=dns.rcode.REFUSED), 5), (_reply(rcode=dns.rcode.NOTAUTH), 9)])
def test_the_rcode_of_a_reply(reply, rcode):
    assert reply_rcode(reply) == rcode


@pytest.mark.parametrize("reply, serial, text", [
    (_reply(12), 12, "has serial 12"),
    (None, None, "has not answered the SOA query"),
    (_reply(rcode=dns.rcode.REFUSED), None, "answered the SOA query with REFUSED and no SOA"),
    (_reply(), None, "answered the SOA query with NOERROR and no SOA"),
])  # fmt: skip
def test_what_a_secondary_holds_is_told_for_the_log(reply, serial, text):
    assert holding(reply, serial) == text


@pytest.mark.parametrize("first, attempts, timeouts", [(1.0, 5, [1.0, 2.0, 4.0, 8.0, 16.0]), (0.1, 3, [0.1, 0.2, 0.4]),
                                                       (1.0, 0, [])])  # fmt: skip
def test_notify_attempts_wait_twice_as_long_each_time(first, attempts, timeouts):
    assert retry_timeouts(first, attempts) == pytest.approx(timeouts)
