"""The engine: query bytes → reply bytes, the reply cache, zone swaps, and the RFC 1035/6891 checks."""

import gc
import weakref

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from minidns.answer.engine import Engine, EngineSettings
from minidns.zones.loader import load_zone_text

ZONE = """
$TTL 300
@    SOA ns1 hostmaster {serial} 7200 3600 1209600 60
@    NS  ns1
ns1  A   192.0.2.53
www  A   {addr}
big  TXT {big}
"""
BIG = " ".join(f'"{i:03d}{"x" * 60}"' for i in range(12))


def zone(serial=1, addr="192.0.2.80"):
    return load_zone_text(ZONE.format(serial=serial, addr=addr, big=BIG), "example.test.")


@pytest.fixture
def engine():
    e = Engine(EngineSettings(nsid=b"node-1", version="minidns-test", identity="host-1"))
    e.set_zones([zone()])
    return e


def ask(engine, q, tcp=False):
    data = q.to_wire() if isinstance(q, dns.message.Message) else q
    reply = engine.answer(data, tcp=tcp)
    return None if reply is None else dns.message.from_wire(reply)


def query(name="www.example.test.", rdtype="A", **kw):
    return dns.message.make_query(name, rdtype, **kw)


def test_answer_is_authoritative_and_copies_id_and_rd(engine):
    q = query()
    r = ask(engine, q)
    assert r.id == q.id and r.flags & dns.flags.AA and r.flags & dns.flags.RD
    assert r.answer[0][0].address == "192.0.2.80"


def test_cache_hit_is_the_same_reply_with_the_new_id(engine):
    q1, q2 = query(), query()
    q2.id = (q1.id + 1) & 0xFFFF
    first = engine.answer(q1.to_wire())
    assert len(engine.udp_cache) == 1
    tail, owner = engine.udp_cache.get(q2.to_wire()[2:])
    assert owner.live and tail == first[2:]
    assert ask(engine, q2).id == q2.id


def test_case_variants_share_the_lowercase_entry_and_keep_their_question(engine):
    ask(engine, query())
    r = ask(engine, query("WwW.ExAmPlE.TeSt."))
    assert r.question[0].name.to_text() == "WwW.ExAmPlE.TeSt."
    assert r.answer[0][0].address == "192.0.2.80"
    assert len(engine.udp_cache) == 1  # the 0x20 variant did not add an entry


def test_a_new_snapshot_retires_cached_replies(engine):
    q = query()
    ask(engine, q)
    old = engine.table.zones[b"\x07example\x04test\x00"]
    engine.replace_zone(zone(serial=2, addr="192.0.2.99"))
    assert not old.live
    assert not engine.udp_cache.get(q.to_wire()[2:])[1].live  # the entry is there but retired
    assert ask(engine, q).answer[0][0].address == "192.0.2.99"


def test_cached_replies_do_not_keep_replaced_snapshots_alive(engine):
    """A zone changing 100 times a second must not leave every old snapshot (its whole node dict)
    held by the replies cached from it until the cache rotates."""
    q, outside = query(), query("www.nowhere.test.")
    ask(engine, q)
    ask(engine, outside)  # cached against the zone table
    old = weakref.ref(engine.table.zones[b"\x07example\x04test\x00"])
    engine.replace_zone(zone(serial=2, addr="192.0.2.99"))
    gc.collect()
    assert old() is None
    assert len(engine.udp_cache) == 2  # both entries are still there, retired or not
    assert ask(engine, q).answer[0][0].address == "192.0.2.99"


def test_adding_a_zone_retires_refused_replies(engine):
    q = query("www.other.test.")
    assert ask(engine, q).rcode() == dns.rcode.REFUSED
    other = load_zone_text("$TTL 60\n@ SOA a b 1 2 3 4 5\nwww A 192.0.2.7\n", "other.test.")
    engine.replace_zone(other)
    assert ask(engine, q).answer[0][0].address == "192.0.2.7"


def test_udp_without_edns_truncates_at_512_and_tcp_does_not(engine):
    r = ask(engine, query("big.example.test.", "TXT"))
    assert r.flags & dns.flags.TC and not r.answer
    r = ask(engine, query("big.example.test.", "TXT"), tcp=True)
    assert not r.flags & dns.flags.TC and len(r.answer[0][0].strings) == 12


def test_edns_payload_is_the_smaller_of_theirs_and_ours(engine):
    r = ask(engine, query("big.example.test.", "TXT", use_edns=0, payload=4096))
    assert not r.flags & dns.flags.TC and r.payload == 1232
    r = ask(engine, query("big.example.test.", "TXT", use_edns=0, payload=600))
    assert r.flags & dns.flags.TC and r.edns == 0


def test_edns_do_is_echoed_and_unknown_options_ignored(engine):
    r = ask(engine, query(use_edns=0, want_dnssec=True, options=[dns.edns.GenericOption(65001, b"xyz")]))
    assert r.ednsflags & dns.flags.DO and r.rcode() == dns.rcode.NOERROR and r.answer


def test_edns_version_1_is_badvers(engine):
    r = ask(engine, query(use_edns=1))
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and not r.answer


def test_nsid_is_returned_when_asked(engine):
    r = ask(engine, query(use_edns=0, options=[dns.edns.GenericOption(3, b"")]))
    assert [o.nsid for o in r.options if o.otype == 3] == [b"node-1"]
    assert not ask(engine, query(use_edns=0)).options


@pytest.mark.parametrize("opcode", [dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.UPDATE, 15])
def test_other_opcodes_are_notimp_header_only_as_nsd(engine, opcode):
    q = query("example.test.", "SOA", use_edns=0)
    q.set_opcode(opcode)
    r = ask(engine, q)
    assert r.rcode() == dns.rcode.NOTIMP and r.opcode() == opcode
    assert not r.question and r.edns == -1


def test_notify_is_notauth_while_no_zone_is_secondary(engine):
    q = query("example.test.", "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    r = ask(engine, q)
    assert r.rcode() == dns.rcode.NOTAUTH and r.question


def test_refused_carries_extended_dns_error(engine):
    r = ask(engine, query("www.other.test.", use_edns=0))
    assert r.rcode() == dns.rcode.REFUSED and [o.code for o in r.options] == [dns.edns.EDECode.NOT_AUTHORITATIVE]
    r = ask(engine, query("example.test.", "AXFR", use_edns=0), tcp=True)
    assert r.rcode() == dns.rcode.REFUSED and [o.code for o in r.options] == [dns.edns.EDECode.PROHIBITED]


def test_qr_set_gets_no_reply(engine):
    data = bytearray(query().to_wire())
    data[2] |= 0x80
    assert engine.answer(bytes(data)) is None


def test_malformed_gets_formerr_with_id(engine):
    data = query().to_wire()
    bad = data[:4] + b"\x00\x02" + data[6:]
    reply = engine.answer(bad)
    assert reply[:2] == data[:2] and reply[3] & 0xF == dns.rcode.FORMERR


@pytest.mark.parametrize("rdclass", ["HS", "NONE", "CLASS42"])
def test_other_classes_are_refused(engine, rdclass):
    assert ask(engine, query(rdclass=rdclass)).rcode() == dns.rcode.REFUSED


def test_qclass_any_is_answered_from_in(engine):
    r = ask(engine, query(rdclass="ANY"))
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "192.0.2.80"


def test_chaos_names_when_configured(engine):
    r = ask(engine, query("version.bind.", "TXT", rdclass="CH"))
    assert r.answer[0][0].strings == (b"minidns-test",) and not r.flags & dns.flags.AA
    r = ask(engine, query("id.server.", "TXT", rdclass="CH"))
    assert r.answer[0][0].strings == (b"host-1",)
    plain = Engine()
    plain.set_zones([zone()])
    assert ask(plain, query("version.bind.", "TXT", rdclass="CH")).rcode() == dns.rcode.REFUSED


def test_transfers_over_udp_are_refused_as_nsd_does(engine):
    assert ask(engine, query("example.test.", "AXFR")).rcode() == dns.rcode.NOTIMP
    assert ask(engine, query("example.test.", "IXFR")).rcode() == dns.rcode.REFUSED


def test_unexpected_error_is_servfail_not_silence(engine, monkeypatch):
    import minidns.answer.engine as eng

    def boom(*a):
        raise RuntimeError("bug")

    monkeypatch.setattr(eng, "resolve", boom)
    r = ask(engine, query("fresh.example.test."))
    assert r.rcode() == dns.rcode.SERVFAIL


def test_a_flood_of_missing_names_does_not_push_out_cached_replies():
    """Name errors are cached from their second query on (Doorkeeper), so a flood of names asked
    once each leaves the reply cache to what is asked again and again."""
    e = Engine(EngineSettings(cache_entries=100))
    e.set_zones([zone()])
    ask(e, query())
    cached = len(e.udp_cache)
    for i in range(1000):
        assert ask(e, query(f"n{i}.example.test.")).rcode() == dns.rcode.NXDOMAIN
    assert len(e.udp_cache) == cached
    hits = e.stats.engine_hits[False]
    assert ask(e, query()).answer and e.stats.engine_hits[False] == hits + 1
    for _ in range(3):  # the same missing name again: cached from its second time, a hit the third
        ask(e, query("typo.example.test."))
    assert e.stats.engine_hits[False] == hits + 2
