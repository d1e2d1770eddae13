"""wire/query.py: query parsing straight from bytes, malformed input included (FORMERR)."""

import struct

import dns.edns
import dns.message
import dns.name
import dns.tsig
import pytest

from minidns.wire import FORMERR
from minidns.wire.query import QueryError, parse_query, read_name

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


def test_tsig_is_found_as_the_last_record_and_anywhere_else_is_formerr():
    """RFC 8945 §5.1: the TSIG record is the message's last; its offset is where it starts."""
    keyring = {dns.name.from_text("k."): dns.tsig.Key("k.", b"0123456789abcdef", "hmac-sha256")}
    msg = dns.message.make_query("www.example.com.", "A", use_edns=0)
    msg.use_tsig(keyring)
    data = msg.to_wire()
    q = parse_query(data)
    assert q.tsig > q.qend and q.edns is not None
    assert dns.name.from_wire(data, q.tsig)[0] == dns.name.from_text("k.")
    assert parse_query(wire()).tsig == 0
    # The TSIG moved before the OPT record: no longer last.
    opt = data[q.qend : q.tsig]
    with pytest.raises(QueryError) as e:
        parse_query(data[: q.qend] + data[q.tsig :] + opt)
    assert e.value.rcode == FORMERR and e.value.qend == q.qend


@pytest.mark.parametrize("length, ok", [(8, True), (16, True), (40, True), (7, False), (9, False), (15, False), (41, False)])
def test_cookie_option_lengths(length, ok):
    """RFC 7873 §5.2.2: a client cookie alone (8 octets) or with a server cookie of 8 to 32."""
    data = wire(use_edns=0, options=[dns.edns.GenericOption(10, bytes(range(length)))])
    if ok:
        assert parse_query(data).edns.cookie == bytes(range(length))
    else:
        with pytest.raises(QueryError) as e:
            parse_query(data)
        assert e.value.rcode == FORMERR


def test_opcode_and_co_flag():
    data = wire()
    assert parse_query(data[:2] + b"\x20\x00" + data[4:]).opcode == 4  # NOTIFY (RFC 1996)
    data = wire(use_edns=0, ednsflags=0x4000)
    assert parse_query(data).edns.co and not parse_query(wire(use_edns=0)).edns.co
