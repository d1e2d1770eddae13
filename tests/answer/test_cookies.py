"""DNS cookies (RFC 7873, RFC 9018) server side: the SipHash and server cookie of RFC 9018's test
vectors, the engine's replies (a new cookie, the same one while young, a refreshed one when old,
FORMERR for a bad length), and that a client's cookie never reaches another client."""

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

from minidns.answer.cookies import Cookies, address_octets, siphash24
from minidns.answer.engine import Engine, EngineSettings
from minidns.zones.loader import load_zone_text

ZONE = """
$TTL 300
@    SOA ns1 hostmaster 1 7200 3600 1209600 60
@    NS  ns1
ns1  A   192.0.2.53
www  A   192.0.2.80
big  TXT {big}
"""


def zone():
    return load_zone_text(ZONE.format(big=" ".join(f'"{i:03d}{"x" * 60}"' for i in range(12))), "example.test.")

SECRET = bytes.fromhex("e5e973e5a6b2a43f48e7dc849e37bfcf")
CLIENT = bytes.fromhex("2464c4abcf10c957")
PEER = ("198.51.100.100", 53000)


class Clock:
    def __init__(self, now=1559731985.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(clock):
    e = Engine(EngineSettings())
    e.cookies = Cookies(SECRET, clock=clock)
    e.set_zones([zone()])
    return e


def cookie_query(option: bytes, name="www.example.test.", rdtype="A", **kw):
    return dns.message.make_query(name, rdtype, use_edns=0, options=[dns.edns.GenericOption(dns.edns.COOKIE, option)], **kw)


SEEN = [None]  # the cookie outcome (reply cookie, valid) Engine.respond gave the last query `ask` sent


def ask(engine, q, peer=PEER, tcp=False):
    reply, SEEN[0] = engine.respond(q.to_wire(), tcp, peer)
    return dns.message.from_wire(reply)


def cookie_valid() -> bool:
    """Whether the last query `ask` sent carried a valid server cookie (what RRL exempts)."""
    return SEEN[0][1]


def splice(engine, wire: bytes, peer) -> bytes | None:
    """The reply of the UDP cookie-splice stage (Engine.splice_cookie), or None."""
    spliced = engine.splice_cookie(wire, peer)
    return None if spliced is None else spliced[0]


def reply_cookie(msg) -> bytes | None:
    for o in msg.options:
        if o.otype == dns.edns.COOKIE:
            return o.to_wire()
    return None


def test_siphash_reference_vector():
    # SipHash-2-4 paper, appendix A / the reference implementation's vectors: key 00..0f, message 00..0e
    assert siphash24(bytes(range(16)), bytes(range(15))).hex() == "e545be4961ca29a1"
    assert siphash24(bytes(range(16)), b"").hex() == "310e0edd47db6f72"


def test_rfc9018_test_vector():
    # RFC 9018 appendix A.1: a client cookie from 198.51.100.100 at 1559731985
    c = Cookies(SECRET)
    assert c.make(CLIENT, address_octets(PEER), 1559731985).hex() == "010000005cf79f111f8130c3eee29480"
    assert len(address_octets(("2001:db8::1", 53))) == 16 and address_octets(("::ffff:192.0.2.1", 1)) == bytes([192, 0, 2, 1])


def test_client_cookie_only_gets_a_new_server_cookie(engine, clock):
    r = ask(engine, cookie_query(CLIENT))
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "192.0.2.80"
    got = reply_cookie(r)
    assert got[:8] == CLIENT and len(got) == 24 and 16 <= len(got) <= 40
    assert got[8:].hex() == "010000005cf79f111f8130c3eee29480"  # RFC 9018 A.1: same secret, time and client


def test_valid_cookie_goes_back_unchanged_while_young_and_refreshed_when_old(engine, clock):
    first = reply_cookie(ask(engine, cookie_query(CLIENT)))
    clock.now += 600
    again = reply_cookie(ask(engine, cookie_query(first)))
    assert again == first
    assert cookie_valid() is True
    clock.now += 1300  # 31 minutes old: still valid, but a new one is sent
    fresh = reply_cookie(ask(engine, cookie_query(first)))
    assert fresh != first and fresh[:8] == CLIENT and cookie_valid() is True
    clock.now += 3601  # the first is now too old: not valid, a new cookie all the same (RFC 7873 §5.2.3)
    r = ask(engine, cookie_query(first))
    assert r.rcode() == dns.rcode.NOERROR and reply_cookie(r) != first and cookie_valid() is False


def test_cookie_from_the_future_and_from_another_address_are_not_valid(engine, clock):
    good = reply_cookie(ask(engine, cookie_query(CLIENT)))
    r = ask(engine, cookie_query(good), peer=("198.51.100.101", 1))
    assert r.rcode() == dns.rcode.NOERROR and cookie_valid() is False
    clock.now -= 301
    ask(engine, cookie_query(good))
    assert cookie_valid() is False
    clock.now += 2
    ask(engine, cookie_query(good))
    assert cookie_valid() is True
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    ask(engine, cookie_query(tampered))
    assert cookie_valid() is False


@pytest.mark.parametrize("length", [0, 7, 9, 15, 41])
def test_malformed_cookie_length_is_formerr(engine, length):
    r = ask(engine, cookie_query(bytes(range(length))))
    assert r.rcode() == dns.rcode.FORMERR


def test_unknown_server_cookie_format_gets_a_new_cookie(engine):
    r = ask(engine, cookie_query(CLIENT + bytes(32)))  # 40 octets: a length the RFC allows, not ours
    assert r.rcode() == dns.rcode.NOERROR and len(reply_cookie(r)) == 24


def test_cookie_replies_are_never_cached_or_served_to_another_client(engine):
    other = bytes.fromhex("0102030405060708")
    a = ask(engine, cookie_query(CLIENT))
    b = ask(engine, cookie_query(other), peer=("192.0.2.9", 5))
    assert reply_cookie(a)[:8] == CLIENT and reply_cookie(b)[:8] == other
    assert reply_cookie(a)[8:] != reply_cookie(b)[8:]
    plain = ask(engine, dns.message.make_query("www.example.test.", "A", use_edns=0))
    assert reply_cookie(plain) is None
    for key, (tail, _) in list(engine.udp_cache.young.items()) + list(engine.udp_cache.old.items()):
        assert CLIENT not in key + tail and other not in key + tail


def test_cookie_query_is_answered_from_the_cache_of_the_same_query_without_it(engine):
    ask(engine, cookie_query(CLIENT))
    assert len(engine.udp_cache) == 1  # the query without its cookie was answered and kept
    hits = engine.stats.engine_hits[0]
    r = ask(engine, cookie_query(CLIENT, "WWW.example.test."))  # letter case too
    assert engine.stats.engine_hits[0] == hits + 1
    assert r.question[0].name.to_text() == "WWW.example.test." and r.answer[0][0].address == "192.0.2.80"
    assert reply_cookie(r)[:8] == CLIENT


def test_cookie_on_errors_and_truncated_replies(engine):
    r = ask(engine, cookie_query(CLIENT, "www.example.org."))  # outside every zone: REFUSED with EDE
    assert r.rcode() == dns.rcode.REFUSED and reply_cookie(r)[:8] == CLIENT
    assert any(o.otype == dns.edns.EDE for o in r.options)
    q = cookie_query(CLIENT, "big.example.test.", "TXT", payload=512)
    r = ask(engine, q)
    assert r.flags & dns.flags.TC and reply_cookie(r)[:8] == CLIENT
    assert len(q.to_wire()) and len(engine.answer(q.to_wire(), False, PEER)) <= 512
    r = ask(engine, cookie_query(CLIENT, "big.example.test.", "TXT"), tcp=True)
    assert not r.flags & dns.flags.TC and reply_cookie(r)[:8] == CLIENT


def test_cookie_with_nsid_is_answered_with_both():
    e = Engine(EngineSettings(nsid=b"node-1"))
    e.cookies = Cookies(SECRET)
    e.set_zones([zone()])
    q = dns.message.make_query("www.example.test.", "A", use_edns=0, options=[
        dns.edns.GenericOption(dns.edns.NSID, b""), dns.edns.GenericOption(dns.edns.COOKIE, CLIENT)])
    r = ask(e, q)
    assert reply_cookie(r)[:8] == CLIENT and any(o.otype == dns.edns.NSID for o in r.options)


def test_cookies_off_ignores_the_option():
    e = Engine(EngineSettings())
    e.set_zones([zone()])
    r = ask(e, cookie_query(CLIENT))
    assert r.rcode() == dns.rcode.NOERROR and reply_cookie(r) is None


@pytest.mark.parametrize("name,rdtype", [("www.example.test.", "A"), ("nope.example.test.", "A"),
                                         ("www.example.test.", "TXT"), ("big.example.test.", "TXT"),
                                         ("elsewhere.invalid.", "A")])  # fmt: skip
def test_the_udp_cookie_fast_path_gives_the_engines_reply(engine, clock, name, rdtype):
    """Engine.splice_cookie (the UDP protocol's way for a query whose one option is a COOKIE) gives
    byte for byte what engine.answer gives, for a client cookie alone, a valid server cookie, an old
    one (refreshed) and one not ours; and nothing before the same query without the option was
    answered once (it answers from that reply)."""
    first = cookie_query(CLIENT, name, rdtype)
    assert splice(engine, first.to_wire(), PEER) is None  # nothing cached yet
    small = cookie_query(CLIENT, name, rdtype, payload=512)  # a reply truncated to 512 octets, cookie and all
    engine.answer(small.to_wire(), False, PEER)
    assert splice(engine, small.to_wire(), PEER) in (None, engine.answer(small.to_wire(), False, PEER))
    made = dns.message.from_wire(engine.answer(first.to_wire(), False, PEER))
    # (a name error's reply is cached once its name is asked a second time: `small` was its first)
    cookie = next(o for o in made.options if o.otype == dns.edns.COOKIE)
    server = cookie.client + cookie.server
    assert len(server) == 24
    options = [CLIENT, server, server[:8] + bytes(16), None]
    for i, option in enumerate(options):
        if option is None:  # half an hour on: the same cookie comes back refreshed
            clock.now += 1801
            option = server
        q = cookie_query(option, name, rdtype)
        wire = q.to_wire()
        fast = splice(engine, wire, PEER)
        slow = engine.answer(wire, False, PEER)
        if name.endswith("invalid."):  # REFUSED with an EDE option: the whole way
            assert fast is None
            continue
        assert fast is not None and fast == slow, (option.hex(), i)
        reply = dns.message.from_wire(fast)
        assert reply.id == q.id and next(o for o in reply.options if o.otype == dns.edns.COOKIE).client == CLIENT
