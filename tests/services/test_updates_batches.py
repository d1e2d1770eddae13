"""RFC 2136 updates applied to a zone in a real database (services/updates.py): prerequisites and
updates under the zone lock, all or nothing, the serial bumped once (or set by the update's SOA),
the change log's source naming the key, event-made RRsets protected, concurrent updates
group-committed with each message its own rcode. Messages are built by dnspython's
dns.update.UpdateMessage, as nsupdate-like clients build them."""

import asyncio

import dns.name
import dns.rcode
import dns.update
import pytest

from minidns.services import zones
from minidns.services.updates import Request, Updates
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store
from minidns.xfr.update import parse_update

ZONE = "u.test."


@pytest.fixture
async def store(pool):
    store = Store(pool, stages=write_stages())
    await zones.create_zone(store, "alice", name=ZONE, email="h@u.test")
    await store.change(ZONE, [Edit("add", "@", "NS", None, ("ns1.u.test.", "ns2.u.test.")),
                              Edit("add", "www", "A", 300, ("192.0.2.1",)),
                              Edit("add", "alias", "CNAME", 300, ("www.u.test.",))], source="test")  # fmt: skip
    return store


def msg() -> dns.update.UpdateMessage:
    return dns.update.UpdateMessage(ZONE)


def request(m: dns.update.UpdateMessage, source="update:k.", managed=lambda o, t: False) -> Request:
    return Request(parse_update(m.to_wire()), source, managed)


async def rrsets(store) -> dict:
    async with store.pool.acquire() as conn:
        rows = await conn.fetch("SELECT r.name, r.type, r.ttl, r.records FROM rrsets r JOIN zones z ON z.id = r.zone_id"
                                " WHERE z.name = $1 AND r.type <> 6", ZONE)  # fmt: skip
    return {(r["name"], r["type"]): (r["ttl"], sorted(r["records"])) for r in rows}


async def zone_row(store) -> dict:
    return dict(await store.pool.fetchrow("SELECT * FROM zones WHERE name = $1", ZONE))


async def serial(store) -> int:
    return (await zone_row(store))["serial"]


async def test_add_delete_and_the_serial_once(store):
    before = await serial(store)
    m = msg()
    m.add("new", 60, "A", "192.0.2.7")
    m.add("new", 60, "A", "192.0.2.8")
    m.add("new", 60, "TXT", '"hello"')
    m.delete("www", "A", "192.0.2.1")
    out = await Updates(store).apply(ZONE, request(m))
    assert out.rcode == dns.rcode.NOERROR
    have = await rrsets(store)
    assert have[("new.u.test.", 1)] == (60, ["192.0.2.7", "192.0.2.8"])
    assert have[("new.u.test.", 16)] == (60, ['"hello"'])
    assert ("www.u.test.", 1) not in have
    assert await serial(store) == before + 1 == out.serial
    changes = await store.changes(ZONE)
    assert changes[-1]["source"] == "update:k."


@pytest.mark.parametrize("prereq, rcode", [
    (lambda m: m.present("www"), dns.rcode.NOERROR),
    (lambda m: m.present("nothere"), dns.rcode.NXDOMAIN),
    (lambda m: m.absent("nothere"), dns.rcode.NOERROR),
    (lambda m: m.absent("www"), dns.rcode.YXDOMAIN),
    (lambda m: m.present("www", "A"), dns.rcode.NOERROR),
    (lambda m: m.present("www", "AAAA"), dns.rcode.NXRRSET),
    (lambda m: m.absent("www", "AAAA"), dns.rcode.NOERROR),
    (lambda m: m.absent("www", "A"), dns.rcode.YXRRSET),
    (lambda m: m.present("www", "A", "192.0.2.1"), dns.rcode.NOERROR),
    (lambda m: m.present("www", "A", "192.0.2.9"), dns.rcode.NXRRSET),
])  # fmt: skip
async def test_prerequisites_decide_and_a_failed_one_writes_nothing(store, prereq, rcode):
    before, rows = await serial(store), await rrsets(store)
    m = msg()
    prereq(m)
    m.add("added", 300, "A", "192.0.2.50")
    out = await Updates(store).apply(ZONE, request(m))
    assert out.rcode == rcode
    if rcode == dns.rcode.NOERROR:
        assert ("added.u.test.", 1) in await rrsets(store)
        assert await serial(store) == before + 1
    else:
        assert await rrsets(store) == rows
        assert await serial(store) == before


async def test_cname_rules_and_the_apex_are_kept(store):
    apex_ns = (await rrsets(store))[("u.test.", 2)]
    assert len(apex_ns[1]) >= 2
    m = msg()
    m.add("www", 300, "CNAME", "elsewhere.example.")  # beside an A: skipped (§3.4.2.2)
    m.add("alias", 300, "A", "192.0.2.3")  # beside a CNAME: skipped
    m.delete("@", "NS")  # the apex NS RRset: never deleted whole
    m.delete("@")  # the apex name: all but SOA and NS
    out = await Updates(store).apply(ZONE, request(m))
    assert out.rcode == dns.rcode.NOERROR
    have = await rrsets(store)
    assert have[("www.u.test.", 1)] == (300, ["192.0.2.1"])
    assert ("www.u.test.", 5) not in have and ("alias.u.test.", 1) not in have
    assert have[("u.test.", 2)] == apex_ns
    m = msg()
    for ns in apex_ns[1]:
        m.delete("@", "NS", ns)
    out = await Updates(store).apply(ZONE, request(m))  # the pool's NS RRset: the pool's alone
    assert (out.rcode, "pool set-ns" in out.reason) == (dns.rcode.REFUSED, True)
    out = await Updates(store).apply(ZONE, request(m, managed=lambda owner, rtype: True))  # whatever the grant
    assert (out.rcode, "pool set-ns" in out.reason) == (dns.rcode.REFUSED, True)
    assert (await rrsets(store))[("u.test.", 2)] == apex_ns


async def test_soa_serial_set_by_the_update_and_a_lower_one_ignored(store):
    z = await zone_row(store)
    before, mname = z["serial"], z["mname"]
    m = msg()
    m.replace("@", 3600, "SOA", f"{mname} admin.u.test. {before + 1000} 7200 900 1209600 600")
    out = await Updates(store).apply(ZONE, request(m))
    assert out.rcode == dns.rcode.NOERROR
    z = await zone_row(store)
    assert z["serial"] == before + 1000 and z["email"] == "admin@u.test" and z["refresh"] == 7200
    m = msg()
    m.replace("@", 3600, "SOA", f"{mname} admin.u.test. {before + 10} 7200 900 1209600 600")
    assert (await Updates(store).apply(ZONE, request(m))).rcode == dns.rcode.NOERROR
    assert await serial(store) == before + 1000  # nothing changed: no new serial
    m = msg()
    m.replace("@", 3600, "SOA", f"elsewhere.example. admin.u.test. {before + 2000} 7200 900 1209600 600")
    out = await Updates(store).apply(ZONE, request(m))  # the MNAME is the pool's
    assert (out.rcode, "pool set-ns" in out.reason) == (dns.rcode.REFUSED, True)
    assert await serial(store) == before + 1000


async def test_records_made_by_the_event_sink_need_a_grant_that_says_so(store):
    managed = {"source": "nova", "resource_type": "instance", "resource_id": "i-1"}
    await store.change(ZONE, [Edit("replace", "vm1", "A", 300, ("198.51.100.1",), managed=managed)], source="event:nova")
    m = msg()
    m.delete("vm1", "A")
    out = await Updates(store).apply(ZONE, request(m))
    assert out.rcode == dns.rcode.REFUSED
    assert ("vm1.u.test.", 1) in await rrsets(store)
    out = await Updates(store).apply(ZONE, request(m, managed=lambda owner, rtype: True))
    assert out.rcode == dns.rcode.NOERROR
    assert ("vm1.u.test.", 1) not in await rrsets(store)


async def test_concurrent_updates_share_one_serial_each_with_its_own_rcode(store):
    before = await serial(store)
    updates = Updates(store)
    reqs = []
    for i in range(30):
        m = msg()
        if i == 7:
            m.absent("www")  # fails: YXDOMAIN, and its add is not made
        m.add(f"c{i}", 300, "A", f"203.0.113.{i}")
        reqs.append(request(m))
    outs = await asyncio.gather(*(updates.apply(ZONE, r) for r in reqs))
    assert [o.rcode for o in outs] == [dns.rcode.YXDOMAIN if i == 7 else dns.rcode.NOERROR for i in range(30)]
    have = await rrsets(store)
    assert all((f"c{i}.u.test.", 1) in have for i in range(30) if i != 7) and ("c7.u.test.", 1) not in have
    after = await serial(store)
    assert after - before < 30  # batched: fewer serials than updates
    changes = await store.changes(ZONE)
    assert len([c for c in changes if c["source"].startswith("update")]) == after - before


async def test_a_batch_member_the_store_refuses_does_not_sink_the_others(store):
    updates = Updates(store)
    good, bad = msg(), msg()
    good.add("fine", 300, "A", "192.0.2.77")
    bad.add("toolong", 2**31, "A", "192.0.2.78")  # a TTL the store refuses
    outs = await asyncio.gather(updates.apply(ZONE, request(good)), updates.apply(ZONE, request(bad)))
    assert [o.rcode for o in outs] == [dns.rcode.NOERROR, dns.rcode.REFUSED]
    have = await rrsets(store)
    assert ("fine.u.test.", 1) in have and ("toolong.u.test.", 1) not in have
