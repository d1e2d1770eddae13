"""The compact-denial stages: which queries have the random-subdomain flood's shape (read without
the general parse), and a denial encoded from the signer's records, at once or deferred."""

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

from minidns.answer.denial import LATER, encode_denial, flood_question
from minidns.wire import SOA
from minidns.wire.render import RRset, opt_record, render_section_tail


def wire(name="x1.example.test.", rdtype="A", **kw):
    kw.setdefault("use_edns", 0)
    kw.setdefault("want_dnssec", True)
    return dns.message.make_query(name, rdtype, **kw).to_wire()


def with_opcode(data: bytes, opcode: int) -> bytes:
    return data[:2] + bytes([data[2] | opcode << 3]) + data[3:]


# (query, whether it has the flood's shape)
SHAPES = [
    (wire(), True),
    (wire(rdtype="AAAA"), True),
    (wire(want_dnssec=False), False),  # no DO
    (wire(use_edns=False, want_dnssec=False), False),  # no OPT
    (wire(use_edns=1), False),  # EDNS version 1: BADVERS the general way
    (wire(options=[dns.edns.GenericOption(3, b"")]), False),  # an option (NSID)
    (wire(rdclass="CH"), False),
    (wire(rdtype="AXFR"), False),
    (wire(rdtype="NXNAME"), False),
    (with_opcode(wire(), 4), False),  # NOTIFY
    (wire()[:-1], False),  # cut short
]


@pytest.mark.parametrize("data,flood", SHAPES)
def test_the_flood_shape(data, flood):
    found = flood_question(data)
    assert (found is not None) == flood
    if flood:
        q = dns.message.from_wire(data)
        qname, qend, qtype = found
        assert qname == q.question[0].name.to_wire() and qtype == q.question[0].rdtype and len(data) == qend + 11


ORIGIN = b"\x07example\x04test\x00"
SOA_RDATA = b"\x03ns1" + ORIGIN + b"\x0ahostmaster" + ORIGIN + bytes(20)
QUESTION = dns.message.make_query("x1.example.test.", "A").to_wire()[12:]
AUTHORITY = render_section_tail(len(QUESTION), ORIGIN, [RRset(ORIGIN, SOA, 60, (SOA_RDATA,))])
OPT = opt_record(1232, 0, True, None)

# (compact OK, limit) → (rcode, fits)
ENCODE = [
    (False, 1232, dns.rcode.NOERROR, True),  # RFC 9824 §3.1: NOERROR unless CO
    (True, 1232, dns.rcode.NXDOMAIN, True),
    (False, 60, None, False),  # does not fit: the general encoder truncates
]


@pytest.mark.parametrize("co,limit,rcode,fits", ENCODE)
def test_a_denial_encoded_at_once(co, limit, rcode, fits):
    reply = encode_denial((*AUTHORITY, None), 0x1234, 0x0100, QUESTION, co, OPT, limit, 0, None)
    if not fits:
        assert reply is None
        return
    r = dns.message.from_wire(reply)
    assert r.id == 0x1234 and r.rcode() == rcode and r.flags & dns.flags.AA and r.flags & dns.flags.RD
    assert [rr.rdtype for rr in r.authority] == [SOA] and r.ednsflags & dns.flags.DO and len(reply) <= limit


def test_a_denial_to_sign_later_is_deferred_with_room_for_its_signatures():
    later = []
    pending = ("inputs", "key", 0.0, 60)
    denial = (*AUTHORITY, pending)
    assert encode_denial(denial, 1, 0, QUESTION, False, OPT, 1232, 100, later) is LATER
    d = later[0]
    assert d.pending is pending and d.tail == OPT and d.head.endswith(AUTHORITY[0])
    room = len(d.head) + len(OPT) + 100
    assert encode_denial(denial, 1, 0, QUESTION, False, OPT, room - 1, 100, later) is None and len(later) == 1
