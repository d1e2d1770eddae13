"""Wire tests: query parsing straight from bytes (malformed input included) and the encoder."""

import struct

import dns.edns
import dns.message
import dns.name
import pytest

from minidns.wire import FORMERR, NS, TC, A, TXT
from minidns.wire.query import QueryError, parse_query, read_name
from minidns.wire.render import RRset, opt_record, render

WWW = dns.name.from_text("www.example.com.").to_wire()


def wire(qname="www.example.com.", qtype="A", **kw) -> bytes:
    return dns.message.make_query(qname, qtype, **kw).to_wire()


def test_parse_plain_query():
    data = wire("WwW.Example.COM.", "AAAA")
    q = parse_query(data)
    assert q.qname == dns.name.from_text("WwW.Example.COM.").to_wire()
    assert q.key == WWW
    assert (q.qtype, q.qclass, q.edns, q.opcode) == (28, 1, None, 0)
    assert data[12 : q.qend] == data[12:]


def test_parse_edns_fields():
    data = wire(use_edns=0, payload=4096, want_dnssec=True, options=[dns.edns.GenericOption(3, b"")])
    q = parse_query(data)
    assert (q.edns.payload, q.edns.version, q.edns.do, q.edns.nsid) == (4096, 0, True, True)
    assert parse_query(wire(use_edns=1)).edns.version == 1


def test_no_reply_for_short_header_or_response():
    data = wire()
    assert parse_query(data[:11]) is None
    assert parse_query(data[:2] + bytes([data[2] | 0x80]) + data[3:]) is None


def _with_opt(data: bytes, opt: bytes, arcount: int) -> bytes:
    return data[:10] + struct.pack("!H", arcount) + data[12:] + opt


OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
MALFORMED = {
    "qdcount-0": lambda d: d[:4] + b"\x00\x00" + d[6:12],
    "qdcount-2": lambda d: d[:4] + b"\x00\x02" + d[6:] + d[12:],
    "truncated-question": lambda d: d[:20],
    "truncated-type": lambda d: d[:-2],
    "pointer-loop": lambda d: d[:12] + b"\xc0\x0c\x00\x01\x00\x01",
    "forward-pointer": lambda d: d[:12] + b"\xc0\x20\x00\x01\x00\x01",
    "pointer-into-header": lambda d: d[:12] + b"\x03www\xc0\x02\x00\x01\x00\x01",
    "extended-label-type": lambda d: d[:12] + b"\x41abc\x00\x00\x01\x00\x01",
    "label-past-end": lambda d: d[:12] + b"\x3fabc",
    "name-over-255": lambda d: d[:12] + b"\x3f" + b"a" * 63 + (b"\x3f" + b"a" * 63) * 3 + b"\x00\x00\x01\x00\x01",
    "two-opt": lambda d: _with_opt(d, OPT + OPT, 2),
    "opt-not-root": lambda d: _with_opt(d, b"\x01a" + OPT[1:], 1),
    "opt-in-answer": lambda d: d[:6] + b"\x00\x01" + d[8:] + OPT,
    "arcount-past-end": lambda d: d[:10] + b"\x00\x01" + d[12:],
    "option-past-opt": lambda d: _with_opt(d, OPT[:-2] + b"\x00\x04\x00\x03\x00\x09", 1),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_is_formerr(name):
    with pytest.raises(QueryError) as e:
        parse_query(MALFORMED[name](wire()))
    assert e.value.rcode == FORMERR


def test_formerr_after_the_question_knows_the_question():
    with pytest.raises(QueryError) as e:
        parse_query(MALFORMED["two-opt"](wire()))
    assert e.value.qend == len(wire())


def test_trailing_bytes_are_ignored_as_nsd_does():
    assert parse_query(wire() + b"\x01\x02\x03").key == WWW


def test_read_name_follows_backward_pointers():
    data = b"\x00" * 12 + WWW + b"\x03ftp\xc0\x10"  # ftp + pointer to "example.com" inside WWW
    name, end = read_name(data, 12 + len(WWW))
    assert name == b"\x03ftp" + WWW[4:]
    assert end == len(data)


def _parse(reply: bytes) -> dns.message.Message:
    return dns.message.from_wire(reply)


def test_render_compresses_owner_and_rdata_names():
    q = wire("example.com.", "NS")
    origin = dns.name.from_text("example.com.").to_wire()
    ns1 = dns.name.from_text("ns1.example.com.").to_wire()
    rrset = RRset(origin, NS, 300, (ns1,))
    glue = RRset(ns1, A, 300, (bytes([192, 0, 2, 1]),))
    reply = render(0x1234, 0x0400, q[12:], origin, ([rrset], [], [glue]), None, 512)
    msg = _parse(reply)
    assert msg.id == 0x1234 and msg.answer[0][0].target == dns.name.from_text("ns1.example.com.")
    assert msg.additional[0].name == dns.name.from_text("ns1.example.com.")
    # question 29 octets; owner "example.com" → 2-octet pointer; ns1 + pointer; glue owner a pointer
    assert len(reply) == 12 + 17 + (2 + 10 + 6) + (2 + 10 + 4)


def test_render_truncates_to_empty_sections_with_tc_and_keeps_opt():
    q = wire("big.example.com.", "TXT", use_edns=0)
    first = RRset(dns.name.from_text("example.com.").to_wire(), TXT, 60, (b"\x03abc",))
    owner = dns.name.from_text("big.example.com.").to_wire()
    rdatas = tuple(bytes([60]) + bytes([65 + i]) * 60 for i in range(20))
    opt = opt_record(1232, 0, False, None)
    reply = render(1, 0, q[12:-11], owner, ([first, RRset(owner, TXT, 60, rdatas)], [first], [first]), opt, 512)
    msg = _parse(reply)
    assert msg.flags & TC and not msg.answer and msg.edns == 0
    assert len(reply) <= 512
    full = render(1, 0, q[12:-11], owner, ([RRset(owner, TXT, 60, rdatas)], [], []), opt, 65535)
    assert len(_parse(full).answer[0]) == 20


def test_render_skips_additional_that_does_not_fit_and_tries_the_next_without_tc():
    q = wire("a.example.com.", "TXT")
    owner = dns.name.from_text("a.example.com.").to_wire()
    small = RRset(owner, TXT, 60, (b"\x03abc",))
    big = RRset(owner, TXT, 60, tuple(bytes([200]) + bytes([i]) * 200 for i in range(3)))
    later = RRset(owner, A, 60, (b"\xc0\x00\x02\x01",))
    msg = _parse(render(1, 0, q[12:], owner, ([small], [], [big, later]), None, 512))
    assert not msg.flags & TC and len(msg.answer) == 1
    assert [r.rdtype for r in msg.additional] == [A]


def test_render_sets_tc_when_required_glue_does_not_fit():
    q = wire("www.sub.example.com.", "A")
    sub = dns.name.from_text("sub.example.com.").to_wire()
    names = [dns.name.from_text(f"ns{i:02d}.sub.example.com.").to_wire() for i in range(15)]
    ns = RRset(sub, NS, 60, tuple(names))
    glue = [RRset(n, A, 60, (bytes([192, 0, 2, i]),)) for i, n in enumerate(names)]
    msg = _parse(render(1, 0, q[12:], b"\x03www" + sub, ([], [ns], glue), None, 512, required=15))
    assert msg.flags & TC and msg.authority and 0 < len(msg.additional) < 15
    msg = _parse(render(1, 0, q[12:], b"\x03www" + sub, ([], [ns], glue), None, 512, required=0))
    assert not msg.flags & TC


def test_opt_record_carries_nsid_and_do():
    opt = opt_record(1232, 1, True, b"ns-a")
    assert opt[:3] == b"\x00\x00\x29" and struct.unpack("!H", opt[3:5])[0] == 1232
    assert opt[5] == 1 and struct.unpack("!H", opt[7:9])[0] == 0x8000
    assert opt[11:] == b"\x00\x03\x00\x04ns-a"


@pytest.mark.parametrize("kw", [
    dict(use_edns=0), dict(use_edns=0, want_dnssec=True, payload=1232), dict(use_edns=1, payload=512),
    dict(use_edns=0, options=[dns.edns.GenericOption(3, b"")]),
    dict(use_edns=0, want_dnssec=True, options=[dns.edns.CookieOption(b"\x01" * 8, b"")]),
    dict(use_edns=0, options=[dns.edns.CookieOption(b"\x01" * 8, b"\x02" * 16), dns.edns.GenericOption(65001, b"xy")]),
])
def test_the_usual_shape_parses_as_the_general_walk_does(kw):
    """A question and one OPT ending the message is parsed without the general record walk; a
    trailing octet sends the same query the general way (trailing bytes are ignored): the same
    Query either way."""
    data = wire("Mixed.Case.example.com.", "AAAA", **kw)
    fast, general = parse_query(data), parse_query(data + b"\x00")
    assert fast == general and fast.edns is not None and fast.qend == len(wire("Mixed.Case.example.com.", "AAAA"))


def test_question_names_up_to_255_octets_parse_and_longer_are_formerr():
    name = b"\x3f" + b"a" * 63 + (b"\x3f" + b"b" * 63) * 2 + b"\x3d" + b"c" * 61 + b"\x00"  # 255 octets
    assert len(name) == 255
    data = wire()[:12] + name + b"\x00\x01\x00\x01"
    assert parse_query(data).qname == name
    with pytest.raises(QueryError) as e:
        parse_query(wire()[:12] + name[:-1] + b"\x01c\x00" + b"\x00\x01\x00\x01")  # 257 octets
    assert e.value.rcode == FORMERR


def test_opt_running_past_the_message_is_formerr():
    data = wire(use_edns=0)
    with pytest.raises(QueryError) as e:
        parse_query(data[:-2] + b"\x00\x08")  # RDLENGTH 8 with no option data after it
    assert e.value.rcode == FORMERR and e.value.qend == len(wire())
