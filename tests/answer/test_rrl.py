"""Response rate limiting (answer/rrl.py) without sockets: accounts per prefix and kind, slip
ratio, window, exemptions, the table bound, the one log line, and the slip replies."""

import logging

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

from minidns.answer.engine import Engine, EngineSettings
from minidns.answer.rrl import ANSWER, DENIAL, DROP, ERROR, REFERRAL, SEND, SLIP, RateLimiter, classify, slip_reply
from minidns.zones.loader import load_zone_text

ZONE = """
$TTL 300
@      SOA ns1 hostmaster 1 7200 3600 1209600 60
@      NS  ns1
ns1    A   192.0.2.53
www    A   192.0.2.80
sub    NS  ns.sub
ns.sub A   192.0.2.54
"""


@pytest.fixture(scope="module")
def engine():
    e = Engine(EngineSettings())
    e.set_zones([load_zone_text(ZONE, "example.test.")])
    return e


def exchange(engine, name, rdtype="A", **kw):
    data = dns.message.make_query(name, rdtype, **kw).to_wire()
    return data, engine.answer(data)


def test_replies_are_classified_by_kind_and_token(engine):
    data, reply = exchange(engine, "www.example.test.")
    assert classify(data, reply) == (ANSWER, data[12:])  # the question, name and type
    a, ra = exchange(engine, "nope1.example.test.")
    b, rb = exchange(engine, "nope2.example.test.")
    assert classify(a, ra) == classify(b, rb) == (DENIAL, b"\x07example\x04test\x00")  # per zone
    n, rn = exchange(engine, "www.example.test.", "AAAA")  # NODATA: a denial too
    assert classify(n, rn)[0] == DENIAL
    r, rr = exchange(engine, "x.sub.example.test.")
    assert classify(r, rr) == (REFERRAL, b"\x03sub\x07example\x04test\x00")
    e, re_ = exchange(engine, "www.example.org.")  # REFUSED
    assert classify(e, re_) == (ERROR, None)


def test_burst_over_the_limit_drops_and_slips_every_second(engine):
    rrl = RateLimiter(5, slip=2)
    data, reply = exchange(engine, "www.example.test.")
    verdicts = [rrl.check("192.0.2.1", data, reply, 100.0) for _ in range(25)]
    assert verdicts[:5] == [SEND] * 5
    assert verdicts[5:] == [DROP, SLIP] * 10
    assert (rrl.dropped, rrl.slipped) == (10, 10)
    # the same /24 shares the account; another /24 and another question have their own
    assert rrl.check("192.0.2.200", data, reply, 100.0) != SEND
    assert rrl.check("192.0.3.1", data, reply, 100.0) == SEND
    other, other_reply = exchange(engine, "ns1.example.test.")
    assert rrl.check("192.0.2.1", other, other_reply, 100.0) == SEND


def test_allowance_comes_back_with_time_and_window_bounds_the_debt(engine):
    rrl = RateLimiter(10, window=2)
    data, reply = exchange(engine, "www.example.test.")
    for _ in range(10_000):
        rrl.check("192.0.2.1", data, reply, 0.0)
    key = next(iter(rrl.table))
    assert rrl.table[key][0] >= -20  # at most rate * window in debt
    assert rrl.check("192.0.2.1", data, reply, 1.0) != SEND  # still paying back
    assert rrl.check("192.0.2.1", data, reply, 4.0) == SEND  # 2 s of debt + 1 s: back to full


def test_slip_zero_drops_all_and_slip_one_truncates_all(engine):
    data, reply = exchange(engine, "www.example.test.")
    none, every = RateLimiter(1, slip=0), RateLimiter(1, slip=1)
    assert [none.check("192.0.2.1", data, reply, 0.0) for _ in range(5)] == [SEND] + [DROP] * 4
    assert [every.check("192.0.2.1", data, reply, 0.0) for _ in range(5)] == [SEND] + [SLIP] * 4


def test_errors_and_denials_have_their_own_rates(engine):
    rrl = RateLimiter(100, errors=2, nxdomains=3, slip=0)
    e, re_ = exchange(engine, "a.example.org.")
    e2, re2 = exchange(engine, "b.example.net.")  # errors count per prefix, whatever the name
    assert [rrl.check("192.0.2.1", q, r, 0.0) for q, r in [(e, re_), (e2, re2), (e, re_)]] == [SEND, SEND, DROP]
    names = [exchange(engine, f"r{i}.example.test.") for i in range(5)]  # a random-name flood: one zone
    assert [rrl.check("192.0.2.1", q, r, 0.0) for q, r in names] == [SEND] * 3 + [DROP] * 2


def test_ipv6_prefix_and_exempt_prefixes(engine):
    rrl = RateLimiter(1, slip=0, exempt=["10.0.0.0/8", "2001:db8:1::/48"])
    data, reply = exchange(engine, "www.example.test.")
    assert [rrl.check("10.1.2.3", data, reply, 0.0) for _ in range(5)] == [SEND] * 5
    assert [rrl.check("2001:db8:1::5", data, reply, 0.0) for _ in range(5)] == [SEND] * 5
    assert rrl.check("2001:db8:2:ff00::1", data, reply, 0.0) == SEND
    assert rrl.check("2001:db8:2:ff01::2", data, reply, 0.0) == DROP  # same /56
    assert rrl.check("2001:db8:2:100::1", data, reply, 0.0) == SEND  # another /56


def test_table_is_bounded_and_drops_the_least_recently_used(engine):
    rrl = RateLimiter(1, slip=0, max_table=100)
    data, reply = exchange(engine, "www.example.test.")
    for i in range(1000):
        rrl.check(f"10.{i // 256}.{i % 256}.1", data, reply, 0.0)
    assert len(rrl.table) <= 100 and len(rrl.prefixes) <= 100


def test_one_log_line_per_prefix_when_limiting_starts(engine, caplog):
    rrl = RateLimiter(1, window=5)
    data, reply = exchange(engine, "www.example.test.")
    with caplog.at_level(logging.WARNING, "minidns.rrl"):
        for _ in range(1000):
            rrl.check("192.0.2.7", data, reply, 0.0)
        for _ in range(1000):
            rrl.check("198.51.100.7", data, reply, 0.0)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "192.0.2.0/24" in lines[0] and "www.example.test." in lines[0]
    assert "198.51.100.0/24" in lines[1]


def test_slip_reply_is_truncated_with_the_question_and_no_records(engine):
    data, reply = exchange(engine, "www.example.test.", use_edns=0)
    tc = dns.message.from_wire(slip_reply(data, reply, None, 1232))
    assert tc.flags & dns.flags.TC and tc.flags & dns.flags.QR and not tc.answer and not tc.additional
    assert tc.question[0].name.to_text() == "www.example.test." and tc.edns == 0
    data, reply = exchange(engine, "www.example.test.")
    tc = dns.message.from_wire(slip_reply(data, reply, None, 1232))
    assert tc.flags & dns.flags.TC and tc.edns == -1 and tc.id == dns.message.from_wire(data).id


def test_slip_reply_to_a_cookie_query_is_badcookie_with_a_new_cookie(engine):
    q = dns.message.make_query("www.example.test.", "A", use_edns=0, want_dnssec=True,
                               options=[dns.edns.GenericOption(dns.edns.COOKIE, b"12345678")])
    data = q.to_wire()
    reply = engine.answer(data)
    r = dns.message.from_wire(slip_reply(data, reply, b"12345678" + bytes(16), 1232))
    assert r.rcode() == dns.rcode.BADCOOKIE and not r.flags & dns.flags.TC and not r.answer
    assert r.ednsflags & dns.flags.DO
    assert [o.to_wire() for o in r.options if o.otype == dns.edns.COOKIE] == [b"12345678" + bytes(16)]
