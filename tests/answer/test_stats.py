"""Query statistics: answers counted by (transport, qtype, rcode), odd types folded into 0."""

import dns.message
import dns.rcode
import pytest

from minidns.answer.stats import MALFORMED, QueryStats


def reply(rcode: int) -> bytes:
    q = dns.message.make_query("www.example.test.", "A")
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    return r.to_wire()


# (over TCP, qtype, reply, the key counted or None for nothing counted)
ANSWERED = [
    (False, 1, reply(dns.rcode.NOERROR), (False, 1, 0)),
    (True, 28, reply(dns.rcode.NXDOMAIN), (True, 28, 3)),
    (False, 65280, reply(dns.rcode.NOERROR), (False, 0, 0)),  # a private type: "other"
    (False, MALFORMED, reply(dns.rcode.FORMERR), (False, MALFORMED, 1)),
    (False, 1, None, None),  # no reply (RFC 1035 §4.1.1)
    (True, 252, object(), None),  # a zone transfer's messages: counted by the transfer
]


@pytest.mark.parametrize("tcp,qtype,sent,key", ANSWERED)
def test_answered_counts_by_transport_type_and_rcode(tcp, qtype, sent, key):
    stats = QueryStats()
    stats.answered(tcp, qtype, sent, 0.0002)
    assert stats.answers == ({} if key is None else {key: 1})
    assert stats.counts[tcp] == (0 if key is None else 1)

