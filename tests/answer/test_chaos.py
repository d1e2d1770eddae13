"""CH TXT version.bind / id.server (RFC 4892): answered when configured, without AA; else REFUSED."""

import dns.flags
import dns.message
import dns.rcode
import pytest

from minidns.answer.chaos import answer_chaos, chaos_names
from minidns.wire.query import parse_query

NAMES = chaos_names("minidns-9", "node-1")

# (question name, type, the TXT answered or None for REFUSED)
CHAOS = [
    ("version.bind.", "TXT", b"minidns-9"),
    ("VERSION.server.", "TXT", b"minidns-9"),
    ("id.server.", "TXT", b"node-1"),
    ("hostname.bind.", "TXT", b"node-1"),
    ("version.bind.", "A", None),
    ("authors.bind.", "TXT", None),
]


@pytest.mark.parametrize("name,rdtype,text", CHAOS)
def test_chaos_names(name, rdtype, text):
    wire = dns.message.make_query(name, rdtype, rdclass="CH").to_wire()
    q = parse_query(wire)
    r = dns.message.from_wire(answer_chaos(NAMES, q, wire[12 : q.qend], 0, None, 512))
    assert not r.flags & dns.flags.AA and r.question[0].name.to_text() == name
    if text is None:
        assert r.rcode() == dns.rcode.REFUSED and not r.answer
    else:
        assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].strings == (text,)


def test_nothing_configured_names_nothing():
    assert chaos_names(None, None) == {} and len(chaos_names("v", None)) == 2
