"""wire/render.py: the one response encoder, name compression, truncation and the OPT record."""

import struct

import dns.message
import dns.name
import dns.rdata

from minidns.wire import NS, TC, A, TXT
from minidns.wire.render import RRset, opt_record, render, render_error, render_section_tail


def wire(qname="www.example.com.", qtype="A", **kw) -> bytes:
    return dns.message.make_query(qname, qtype, **kw).to_wire()


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


def test_the_question_goes_back_in_the_clients_letter_case_and_is_pointed_at_in_any_case():
    q = wire("WwW.ExAmple.COM.", "A")
    key = dns.name.from_text("www.example.com.").to_wire()
    reply = render(7, 0, q[12:], key, ([RRset(key, A, 60, (b"\xc0\x00\x02\x01",))], [], []), None, 512)
    assert reply[12 : len(q)] == q[12:]
    assert reply[len(q) : len(q) + 2] == b"\xc0\x0c"  # the owner: a pointer to the question's name
    assert _parse(reply).answer[0].name == dns.name.from_text("www.example.com.")


def test_only_rfc_1035_types_have_their_rdata_names_compressed():
    """RFC 3597 §4: an SRV target is written whole, an MX exchange may be a pointer."""
    q = wire("example.com.", "MX")
    origin = dns.name.from_text("example.com.").to_wire()
    mail = dns.name.from_text("mail.example.com.").to_wire()
    mx = render(1, 0, q[12:], origin, ([RRset(origin, 15, 60, (b"\x00\x0a" + mail,))], [], []), None, 512)
    srv = render(1, 0, q[12:], origin, ([RRset(origin, 33, 60, (b"\x00\x01\x00\x02\x13\xc4" + mail,))], [], []), None, 512)
    assert len(mx) == len(q) + 2 + 10 + 2 + 5 + 2  # preference, "mail", pointer
    assert srv.endswith(mail)
    assert str(_parse(srv).answer[0][0].target) == "mail.example.com."


def test_render_error_carries_header_question_and_opt():
    q = wire("example.com.", "A", use_edns=0)
    question = q[12:-11]
    opt = opt_record(1232, 0, False, None)
    reply = render_error(0xBEEF, 0x0100, question, 5, opt)
    msg = _parse(reply)
    assert msg.id == 0xBEEF and msg.rcode() == 5 and msg.flags & 0x8100 == 0x8100
    assert str(msg.question[0].name) == "example.com." and msg.edns == 0
    assert struct.unpack("!6H", render_error(1, 0, b"", 1, None)) == (1, 0x8001, 0, 0, 0, 0)


def test_a_section_tail_is_the_same_octets_as_the_full_encoder_writes():
    """render_section_tail's octets follow any question ending in the origin: appended to a
    header and question, they parse as the records the full encoder writes."""
    origin = dns.name.from_text("example.com.").to_wire()
    soa = dns.rdata.from_text("IN", "SOA", "ns1.example.com. h.example.com. 1 2 3 4 5").to_wire()
    soa_rrset = RRset(origin, 6, 300, (soa,))
    for qname in ("nothere.example.com.", "a.b.c.example.com."):
        q = wire(qname, "A")
        tail, count = render_section_tail(len(q) - 12, origin, [soa_rrset])
        key = dns.name.from_text(qname).to_wire()
        full = render(1, 0, q[12:], key, ([], [soa_rrset], []), None, 512)
        assert count == 1 and full.endswith(tail) and len(full) == len(q) + len(tail)
