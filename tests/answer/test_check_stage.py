"""The check stage: which queries are answered with an error before any zone is looked at, and the
reply to a message that does not parse (RFC 1035 §4.1.1, RFC 6891 §6.1.3, RFC 8906, RFC 5936)."""

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from minidns.answer.check import check, malformed, udp_limit
from minidns.wire.query import QueryError, parse_query
from minidns.wire.render import opt_record


def opt(q, ext_rcode=0, ede=None):
    return None if q.edns is None else opt_record(1232, ext_rcode, q.edns.do, None, ede)


def make(name="www.example.test.", rdtype="A", opcode=dns.opcode.QUERY, **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    q.set_opcode(opcode)
    return q.to_wire()


# (query, over TCP, the rcode of the error reply or None when it goes on to the zones, question echoed)
CHECKS = [
    (make(), False, None, None),
    (make(use_edns=0), False, None, None),
    (make(use_edns=1), False, dns.rcode.BADVERS, True),
    (make(opcode=dns.opcode.NOTIFY, rdtype="SOA"), False, dns.rcode.NOTAUTH, True),
    (make(opcode=dns.opcode.STATUS), False, dns.rcode.NOTIMP, False),
    (make(opcode=dns.opcode.UPDATE, rdtype="SOA"), False, dns.rcode.NOTIMP, False),
    (make(rdtype="NXNAME"), False, dns.rcode.FORMERR, True),
    (make(rdtype="AXFR"), False, dns.rcode.NOTIMP, True),
    (make(rdtype="AXFR"), True, dns.rcode.REFUSED, True),
    (make(rdtype="IXFR"), False, dns.rcode.REFUSED, True),
    (make(rdclass="CH", rdtype="TXT"), False, None, None),  # classes are the route stage's
]


@pytest.mark.parametrize("wire,tcp,rcode,echoed", CHECKS)
def test_check_answers_what_no_zone_is_asked_for(wire, tcp, rcode, echoed):
    q = parse_query(wire)
    reply = check(q, tcp, wire[12 : q.qend] if q.opcode in (0, 4) else b"", opt)
    if rcode is None:
        assert reply is None
        return
    r = dns.message.from_wire(reply)
    assert r.rcode() == rcode and r.id == q.id and r.flags & dns.flags.QR
    assert bool(r.question) == echoed


GOOD = make()
# (a message the parser refuses, the rcode of its reply, whether its question is echoed)
MALFORMED = [
    (GOOD[:4] + b"\x00\x02" + GOOD[6:], dns.rcode.FORMERR),  # two questions announced, one sent
    (GOOD[:-3], dns.rcode.FORMERR),  # cut inside the question
    (GOOD[:12], dns.rcode.FORMERR),  # no question
]


@pytest.mark.parametrize("wire,rcode", MALFORMED)
def test_a_message_that_does_not_parse_gets_its_rcode_and_id(wire, rcode):
    with pytest.raises(QueryError) as e:
        parse_query(wire)
    reply = malformed(wire, e.value)
    assert reply[:2] == wire[:2] and reply[3] & 0xF == rcode and reply[2] & 0x80


def test_anything_else_the_parser_raises_is_formerr():
    reply = malformed(GOOD, ValueError("a parser bug"))
    assert reply[:2] == GOOD[:2] and reply[3] & 0xF == dns.rcode.FORMERR and reply[4:6] == b"\x00\x00"


# (payload the client offers, ours, the largest UDP reply: RFC 6891 §6.2.5)
LIMITS = [(0, 1232, 512), (511, 1232, 512), (1232, 1232, 1232), (4096, 1232, 1232), (65535, 65535, 65507), (800, 4096, 800)]


@pytest.mark.parametrize("payload,ours,limit", LIMITS)
def test_udp_limit(payload, ours, limit):
    assert udp_limit(payload, ours) == limit
