"""Mutated queries through the engine: never an exception, every reply a well-formed DNS message."""

import random
from pathlib import Path

import dns.edns
import dns.message
import pytest

from minidns.answer.engine import Engine, EngineSettings
from minidns.zones.loader import load_zone_file

ZONES = Path(__file__).resolve().parent.parent / "zones"
SEEDS = [
    dns.message.make_query("www.example.com.", "A"),
    dns.message.make_query("big.example.com.", "TXT", use_edns=0, payload=700),
    dns.message.make_query("x.cwild.example.com.", "A", want_dnssec=True),
    dns.message.make_query("a.b.dname.example.com.", "A", options=[dns.edns.GenericOption(3, b"")]),
    dns.message.make_query("www.deleg.example.com.", "AAAA"),
    dns.message.make_query("nope.example.com.", "MX", use_edns=0),
    dns.message.make_query("80.2.0.192.in-addr.arpa.", "PTR"),
    dns.message.make_query("version.bind.", "TXT", rdclass="CH"),
]


def mutate(rnd: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.random()
        if op < 0.5 and buf:
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        elif op < 0.7 and buf:
            del buf[rnd.randrange(len(buf)) :]
        elif op < 0.85:
            at = rnd.randrange(len(buf) + 1)
            buf[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        else:
            at = rnd.randrange(12, max(13, len(buf)))
            buf[at:at] = b"\xc0" + bytes([rnd.randrange(256)])  # a compression pointer anywhere
    return bytes(buf)


@pytest.fixture(scope="module")
def engine():
    e = Engine(EngineSettings(nsid=b"fuzz", version="v"))
    e.set_zones([load_zone_file(str(p)) for p in sorted(ZONES.glob("*.zone"))])
    return e


@pytest.mark.parametrize("tcp", [False, True])
def test_mutated_queries_get_a_wellformed_reply_or_none(engine, tcp):
    rnd = random.Random(8906 + tcp)
    replies = 0
    for i in range(3000):
        query = mutate(rnd, rnd.choice(SEEDS).to_wire())
        reply = engine.answer(query, tcp=tcp)
        if reply is None:
            assert len(query) < 12 or query[2] & 0x80, f"dropped a query that needs a reply: {query.hex()}"
            continue
        replies += 1
        assert reply[:2] == query[:2] and reply[2] & 0x80
        msg = dns.message.from_wire(reply)  # raises if what we sent is not a valid message
        assert msg.rcode() != 2, f"SERVFAIL (an internal error) for {query.hex()}"
        if not tcp:
            assert len(reply) <= 65507
    assert replies > 2000
