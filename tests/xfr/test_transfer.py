"""AXFR and IXFR replies (xfr/transfer.py) read back with dnspython: the records of the zone,
in the order RFC 5936 and RFC 1995 give, split over messages as they fill; serial arithmetic
(RFC 1982) and condensed differences."""

import dns.message
import dns.name
import dns.rdatatype
import dns.zone
import pytest

from minidns.xfr.transfer import MAX_MESSAGE, axfr, condense, current_soa, ixfr, serial_lt, single_soa, soa_serial
from minidns.zones.loader import load_zone_text

ZONE = """$TTL 300
@ SOA ns1 hostmaster 2026120701 7200 3600 1209600 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.80
www AAAA 2001:db8::80
mail MX 10 mx.example.net.
child NS ns.child
ns.child A 192.0.2.99
"""
ORIGIN = dns.name.from_text("example.com.")
QUESTION = ORIGIN.to_wire() + b"\x00\xfc\x00\x01"


@pytest.fixture(scope="module")
def zone():
    return load_zone_text(ZONE, "example.com.")


def _records(messages) -> list[tuple[str, str, int, str]]:
    out = []
    for wire in messages:
        m = dns.message.from_wire(wire, one_rr_per_rrset=True)  # both SOAs kept apart
        for rrset in m.answer:
            out += [(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, rd.to_text()) for rd in rrset]
    return out


@pytest.mark.parametrize("a, b, lt", [
    (1, 2, True), (2, 1, False), (5, 5, False),
    (4294967295, 0, True),  # 0 follows 2^32 - 1
    (0, 4294967295, False),
    (0, 2147483647, True), (0, 2147483648, False),  # 2^31 apart: neither way (RFC 1982 §3.2)
])  # fmt: skip
def test_serials_compare_in_rfc1982_arithmetic(a, b, lt):
    assert serial_lt(a, b) is lt


def test_axfr_holds_every_record_between_two_soas(zone):
    messages = list(axfr(zone, 77, 0, QUESTION))
    records = _records(messages)
    assert records[0][1] == records[-1][1] == "SOA" and records[0] == records[-1]
    assert sum(1 for r in records if r[1] == "SOA") == 2
    expected = dns.zone.from_text(ZONE, "example.com.", relativize=False)
    assert sorted(records[:-1]) == sorted(
        (name.to_text(), dns.rdatatype.to_text(rds.rdtype), rds.ttl, rd.to_text())
        for name, rds in expected.iterate_rdatasets() for rd in rds
    )  # glue and the child's delegation included (RFC 5936 §3.1)
    m = dns.message.from_wire(messages[0])
    assert m.id == 77 and m.flags & dns.flags.QR and m.flags & dns.flags.AA
    assert m.question[0].rdtype == dns.rdatatype.AXFR


def test_a_large_zone_is_split_over_messages_each_within_64k():
    text = ZONE + "".join(f"h{i} TXT \"{'x' * 200}\"\n" for i in range(1000))
    big = load_zone_text(text, "example.com.")
    messages = list(axfr(big, 1, 0, QUESTION, room=100))
    assert len(messages) > 1 and all(len(m) <= MAX_MESSAGE - 100 for m in messages)
    assert len(_records(messages)) == 1 + 1000 + 8  # both SOAs and every record, none twice


def test_an_up_to_date_client_gets_one_soa(zone):
    assert _records([single_soa(zone, 5, 0, QUESTION)]) == [
        ("example.com.", "SOA", 300, "ns1.example.com. hostmaster.example.com. 2026120701 7200 3600 1209600 60")]


def test_the_soa_serial_and_the_current_soa(zone):
    owner, rtype, ttl, rdata = current_soa(zone)
    assert (owner, rtype, ttl) == (ORIGIN.to_wire(), dns.rdatatype.SOA, 300)
    assert soa_serial(rdata) == 2026120701


A = dns.rdatatype.A
WWW = dns.name.from_text("www.example.com.").to_wire()
R1, R2, R3 = ((WWW, A, 300, bytes([192, 0, 2, n])) for n in (1, 2, 3))
R1_TTL = (WWW, A, 60, bytes([192, 0, 2, 1]))
SOA_RR = (ORIGIN.to_wire(), dns.rdatatype.SOA, 300, b"soa")


@pytest.mark.parametrize("steps, removed, added", [
    ([([R1], [R2])], [R1], [R2]),
    ([([], [R1]), ([R1], [])], [], []),  # added then removed: gone
    ([([R1], []), ([], [R1])], [], []),  # removed then added back: as it was
    ([([R1], [R2]), ([R2], [R3])], [R1], [R3]),
    ([([R1], [R1_TTL])], [R1], [R1_TTL]),  # a TTL change stays a removal and an addition
    ([([SOA_RR], [SOA_RR, R2])], [], [R2]),  # SOAs are left out
])  # fmt: skip
def test_a_run_of_changes_condenses_to_one_difference(steps, removed, added):
    assert condense(steps) == (removed, added)


def test_ixfr_is_the_soa_then_one_difference_sequence(zone):
    _, _, _, rdata = current_soa(zone)
    old_rdata = rdata[:-20] + (2026120700).to_bytes(4, "big") + rdata[-16:]
    old = (ORIGIN.to_wire(), dns.rdatatype.SOA, 300, old_rdata)
    gone = (WWW, A, 300, bytes([192, 0, 2, 79]))
    new = (WWW, A, 300, bytes([192, 0, 2, 80]))
    records = _records(ixfr(zone, old, [gone], [new], 9, 0, QUESTION))
    assert [(r[0], r[1], r[3].split()[2] if r[1] == "SOA" else r[3]) for r in records] == [
        ("example.com.", "SOA", "2026120701"),
        ("example.com.", "SOA", "2026120700"),  # the client's serial: what it had
        ("www.example.com.", "A", "192.0.2.79"),
        ("example.com.", "SOA", "2026120701"),
        ("www.example.com.", "A", "192.0.2.80"),
        ("example.com.", "SOA", "2026120701"),
    ]  # RFC 1995 §4
