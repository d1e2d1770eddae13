"""The one write path (minidns.store.writer.Store) against a real PostgreSQL: rows written, serials,
the change log, validation that leaves nothing behind, concurrency, log retention and NOTIFY."""

import asyncio
import calendar
import struct
import uuid

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from minidns.store import db
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Conflict, Edit, NotFound, Store, StoreSettings, serial_gt
from minidns.zones.changes import unpack_rrs

ZONE = "zone.test."
APEX = dns.name.from_text(ZONE).to_wire()
A, NS, SOA, MX, CNAME, TXT = 1, 2, 6, 15, 5, 16


@pytest.fixture
def store(pool):
    return Store(pool, stages=write_stages())


def w(name: str) -> bytes:
    return dns.name.from_text(name, dns.name.from_text(ZONE)).to_wire().lower()


def rdata(rtype: int, text: str) -> bytes:
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, text, origin=dns.name.from_text(ZONE), relativize=False).to_wire()


def soa_of(wire: bytes):
    return dns.rdata.from_wire(dns.rdataclass.IN, SOA, wire, 0, len(wire))


async def dump(pool) -> dict:
    """Every row of every table, in a fixed order."""
    out = {}
    for table, order in (("zones", "name"), ("rrsets", "zone_id, owner, type"), ("zone_changes", "seq")):
        out[table] = [tuple(r.values()) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY {order}")]
    return out


async def rrset(pool, zone_id, name: str, rtype: int):
    return await pool.fetchrow("SELECT * FROM rrsets WHERE zone_id = $1 AND owner = $2 AND type = $3", zone_id, w(name), rtype)


async def log_rows(pool, zone_id):
    return await pool.fetch("SELECT * FROM zone_changes WHERE zone_id = $1 ORDER BY seq", zone_id)


def split_wire(wire: bytes) -> list[tuple[int, int, bytes]]:
    out, off = [], 0
    while off < len(wire):
        t, ttl, n = struct.unpack_from("!HIH", wire, off)
        out.append((t, ttl, wire[off + 8 : off + 8 + n]))
        off += 8 + n
    return out


async def make_zone(store, **kw):
    kw.setdefault("email", "hostmaster@zone.test")
    return await store.create_zone(
        ZONE,
        edits=[
            Edit("add", "www", "A", records=("192.0.2.1", "192.0.2.2")),
            Edit("add", "@", "MX", ttl=600, records=("10 mail",)),
            Edit("add", "alias", "CNAME", records=("www",)),
        ],
        **kw,
    )


# -- creating ------------------------------------------------------------------------------------


async def test_create_zone_rows(store, pool):
    ch = await store.create_zone(
        "Zone.Test", email="host.master@zone.test", refresh=7200, retry=900, expire=604800, minimum=120, ttl=1800,
        edits=[Edit("add", "www", "A", records=("192.0.2.1", "192.0.2.2")), Edit("add", "@", "MX", ttl=600, records=("10 mail",))],
        source="import",
    )  # fmt: skip
    assert ch.serial_from is None and ch.serial_to == 1 and ch.zone == ZONE
    z = await pool.fetchrow("SELECT * FROM zones")
    assert z["id"] == ch.zone_id and z["name"] == ZONE and z["serial"] == 1 and z["serial_policy"] == "increment"
    assert (z["email"], z["ttl"], z["refresh"], z["retry"], z["expire"], z["minimum"]) == (
        "host.master@zone.test", 1800, 7200, 900, 604800, 120,
    )  # fmt: skip
    rows = {(r["name"], r["type"]): r for r in await pool.fetch("SELECT * FROM rrsets")}
    assert set(rows) == {(ZONE, SOA), (ZONE, NS), ("www.zone.test.", A), (ZONE, MX)}
    assert rows[(ZONE, NS)]["records"] == ["ns1.pool.test."] and rows[(ZONE, NS)]["managed_source"] == "pool"
    assert z["mname"] == "ns1.pool.test."  # the pool's first NS (RFC 1034 §4.2.1: NS at the apex)
    s = rows[(ZONE, SOA)]
    assert bytes(s["owner"]) == APEX and s["ttl"] == 1800 and len(s["records"]) == 1
    text = dns.rdata.from_text(dns.rdataclass.IN, SOA, s["records"][0])
    assert text.mname == dns.name.from_text(z["mname"])
    assert text.rname == dns.name.from_text(r"host\.master.zone.test.")
    assert (text.serial, text.refresh, text.retry, text.expire, text.minimum) == (1, 7200, 900, 604800, 120)
    assert split_wire(bytes(s["wire"])) == [(SOA, 1800, text.to_wire())]
    www = rows[("www.zone.test.", A)]
    assert www["ttl"] == 1800 and www["records"] == ["192.0.2.1", "192.0.2.2"]
    assert bytes(www["owner"]) == w("www")
    assert split_wire(bytes(www["wire"])) == [(A, 1800, rdata(A, "192.0.2.1")), (A, 1800, rdata(A, "192.0.2.2"))]
    assert rows[(ZONE, MX)]["ttl"] == 600
    # Relative names in data take the zone name as given (names compare case-insensitively).
    assert rows[(ZONE, MX)]["records"] == ["10 mail.Zone.Test."]
    assert split_wire(bytes(rows[(ZONE, MX)]["wire"])) == [(MX, 600, rdata(MX, "10 mail.Zone.Test."))]
    log = await log_rows(pool, ch.zone_id)
    assert len(log) == 1
    assert (log[0]["serial_from"], log[0]["serial_to"], bytes(log[0]["removed"]), bytes(log[0]["added"]), log[0]["source"]) == (
        None, 1, b"", b"", "import",
    )  # fmt: skip
    # The reads agree.
    assert (await store.zone(ZONE))["id"] == ch.zone_id
    assert (await store.zone(ch.zone_id))["name"] == ZONE
    assert [r["name"] for r in await store.zones()] == [ZONE]
    assert [r["serial_to"] for r in await store.changes(ZONE)] == [1]


async def test_create_zone_given_serial_and_policies(pool):
    now = 1_800_000_000
    store = Store(pool, StoreSettings(serial_policy="unixtime"), clock=lambda: now, stages=write_stages())
    assert (await store.create_zone("a.test", email="h@a.test")).serial_to == now
    assert (await store.create_zone("b.test", email="h@b.test", serial_policy="date")).serial_to == 2027011500
    assert (await store.create_zone("c.test", email="h@c.test", serial=77, serial_policy="increment")).serial_to == 77
    policies = {r["name"]: (r["serial_policy"], r["serial"]) for r in await store.zones()}
    assert policies == {"a.test.": ("unixtime", now), "b.test.": ("date", 2027011500), "c.test.": ("increment", 77)}


async def test_create_conflict(store, pool):
    await make_zone(store)
    before = await dump(pool)
    for name in (ZONE, "ZONE.test", "zone.test"):
        with pytest.raises(Conflict):
            await store.create_zone(name, email="other@zone.test", edits=[Edit("add", "x", "A", records=("192.0.2.9",))])
    assert await dump(pool) == before


@pytest.mark.parametrize(
    "kw",
    [
        {"email": "no-at-sign"},
        {"email": "a@b.test", "ttl": -1},
        {"email": "a@b.test", "minimum": 2**31},
        {"email": "a@b.test", "serial_policy": "weekly"},
        {"email": "a@b.test", "edits": [Edit("add", "@", "CNAME", records=("www.other.test.",))]},
        {"email": "a@b.test", "edits": [Edit("add", "x", "A", records=("192.0.2.1",)), Edit("add", "x", "CNAME", records=("y",))]},
        {"email": "a@b.test", "edits": [Edit("add", "www.other.test.", "A", records=("192.0.2.1",))]},
        {"email": "a@b.test", "edits": [Edit("add", "x", "A", records=("300.1.1.1",))]},
    ],
)
async def test_create_zone_invalid_writes_nothing(store, pool, kw):
    await store.create_zone("other.test", email="h@other.test")
    before = await dump(pool)
    with pytest.raises(Invalid):
        await store.create_zone(ZONE, **kw)
    assert await dump(pool) == before
    with pytest.raises(Invalid):
        await store.create_zone(".", email="a@b.test")


# -- changing ------------------------------------------------------------------------------------


async def test_change_bumps_serial_and_logs_difference(store, pool):
    z = await make_zone(store)
    ch = await store.change(ZONE, [Edit("add", "new", "TXT", ttl=300, records=('"hello"',))], source="cli")
    assert (ch.serial_from, ch.serial_to, ch.removed, ch.added) == (1, 2, 0, 1)
    assert (await store.zone(ZONE))["serial"] == 2
    soa = await rrset(pool, z.zone_id, "@", SOA)
    assert dns.rdata.from_text(dns.rdataclass.IN, SOA, soa["records"][0]).serial == 2
    assert soa_of(split_wire(bytes(soa["wire"]))[0][2]).serial == 2
    log = await log_rows(pool, z.zone_id)
    assert len(log) == 2
    row = log[-1]
    assert (row["serial_from"], row["serial_to"], row["source"]) == (1, 2, "cli")
    removed, added = unpack_rrs(bytes(row["removed"])), unpack_rrs(bytes(row["added"]))
    assert len(removed) == 1 and len(added) == 2
    assert removed[0][:3] == (APEX, SOA, 3600) and soa_of(removed[0][3]).serial == 1
    assert added[0][:3] == (APEX, SOA, 3600) and soa_of(added[0][3]).serial == 2
    assert added[1] == (w("new"), TXT, 300, rdata(TXT, '"hello"'))

    # Remove one record of two: exactly that one RR goes.
    ch = await store.change(ZONE, [Edit("remove", "www", "A", records=("192.0.2.1",))], source="cli")
    assert (ch.serial_from, ch.serial_to, ch.removed, ch.added) == (2, 3, 1, 0)
    row = (await log_rows(pool, z.zone_id))[-1]
    removed, added = unpack_rrs(bytes(row["removed"])), unpack_rrs(bytes(row["added"]))
    assert [soa_of(removed[0][3]).serial, soa_of(added[0][3]).serial] == [2, 3]
    assert removed[1:] == [(w("www"), A, 3600, rdata(A, "192.0.2.1"))] and added[1:] == []
    www = await rrset(pool, z.zone_id, "www", A)
    assert www["records"] == ["192.0.2.2"] and split_wire(bytes(www["wire"])) == [(A, 3600, rdata(A, "192.0.2.2"))]

    # Replace an RRset: the records that stay are not in the log.
    await store.change(ZONE, [Edit("replace", "www", "A", records=("192.0.2.2", "192.0.2.3"))], source="cli")
    row = (await log_rows(pool, z.zone_id))[-1]
    assert unpack_rrs(bytes(row["removed"]))[1:] == []
    assert unpack_rrs(bytes(row["added"]))[1:] == [(w("www"), A, 3600, rdata(A, "192.0.2.3"))]

    # Delete a whole RRset: every record in the log, the row gone.
    await store.change(ZONE, [Edit("delete", "www", "A")], source="cli")
    row = (await log_rows(pool, z.zone_id))[-1]
    assert sorted(unpack_rrs(bytes(row["removed"]))[1:]) == sorted(
        [(w("www"), A, 3600, rdata(A, "192.0.2.2")), (w("www"), A, 3600, rdata(A, "192.0.2.3"))]
    )
    assert await rrset(pool, z.zone_id, "www", A) is None
    assert (await store.zone(ZONE))["serial"] == 5
    assert [(r["serial_from"], r["serial_to"]) for r in await log_rows(pool, z.zone_id)] == [
        (None, 1), (1, 2), (2, 3), (3, 4), (4, 5),
    ]  # fmt: skip


async def test_ttl_change_removes_and_adds_whole_rrset(store, pool):
    z = await make_zone(store)
    ch = await store.change(ZONE, [Edit("replace", "www", "A", ttl=60, records=("192.0.2.1", "192.0.2.2"))], source="t")
    assert (ch.removed, ch.added) == (2, 2)
    row = (await log_rows(pool, z.zone_id))[-1]
    old = [(w("www"), A, 3600, rdata(A, x)) for x in ("192.0.2.1", "192.0.2.2")]
    new = [(w("www"), A, 60, rdata(A, x)) for x in ("192.0.2.1", "192.0.2.2")]
    assert sorted(unpack_rrs(bytes(row["removed"]))[1:]) == sorted(old)
    assert sorted(unpack_rrs(bytes(row["added"]))[1:]) == sorted(new)
    www = await rrset(pool, z.zone_id, "www", A)
    assert www["ttl"] == 60 and {t for _, t, _ in split_wire(bytes(www["wire"]))} == {60}

    # "add" with a TTL sets the TTL of the whole RRset.
    await store.change(ZONE, [Edit("add", "www", "A", ttl=120, records=("192.0.2.3",))], source="t")
    row = (await log_rows(pool, z.zone_id))[-1]
    assert sorted(unpack_rrs(bytes(row["removed"]))[1:]) == sorted(new)
    assert sorted(unpack_rrs(bytes(row["added"]))[1:]) == sorted(
        (w("www"), A, 120, rdata(A, x)) for x in ("192.0.2.1", "192.0.2.2", "192.0.2.3")
    )
    www = await rrset(pool, z.zone_id, "www", A)
    assert www["ttl"] == 120 and [t for _, t, _ in split_wire(bytes(www["wire"]))] == [120] * 3

    # "add" without a TTL keeps the RRset's.
    await store.change(ZONE, [Edit("add", "www", "A", records=("192.0.2.4",))], source="t")
    row = (await log_rows(pool, z.zone_id))[-1]
    assert unpack_rrs(bytes(row["removed"]))[1:] == []
    assert unpack_rrs(bytes(row["added"]))[1:] == [(w("www"), A, 120, rdata(A, "192.0.2.4"))]


async def test_zone_fields_change_soa(store, pool):
    z = await make_zone(store)
    await store.change(ZONE, fields={"email": "dns@zone.test", "refresh": 100, "ttl": 900}, source="t")
    row = await store.zone(ZONE)
    assert (row["email"], row["refresh"], row["ttl"], row["serial"]) == ("dns@zone.test", 100, 900, 2)
    soa = await rrset(pool, z.zone_id, "@", SOA)
    rd = dns.rdata.from_text(dns.rdataclass.IN, SOA, soa["records"][0])
    assert (rd.rname, rd.refresh, rd.serial, soa["ttl"]) == (dns.name.from_text("dns.zone.test."), 100, 2, 900)
    log = (await log_rows(pool, z.zone_id))[-1]
    removed, added = unpack_rrs(bytes(log["removed"])), unpack_rrs(bytes(log["added"]))
    assert len(removed) == len(added) == 1  # the SOA alone
    assert removed[0][2] == 3600 and added[0][2] == 900
    assert soa_of(added[0][3]).to_wire() == rd.to_wire()
    # The new default TTL applies to new RRsets.
    await store.change(ZONE, [Edit("add", "n", "A", records=("192.0.2.7",))], source="t")
    assert (await rrset(pool, z.zone_id, "n", A))["ttl"] == 900


async def test_write_that_changes_nothing_commits_nothing(store, pool, database_url):
    z = await make_zone(store)
    listener = await db.connect(database_url)
    got = asyncio.Queue()
    await listener.add_listener(db.CHANNEL, lambda *a: got.put_nowait(a[-1]))
    try:
        before = await dump(pool)
        for edits, fields in [
            ([], None),
            ([Edit("add", "www", "A", records=("192.0.2.1",))], None),
            ([Edit("add", "www", "A", ttl=3600, records=("192.0.2.2", "192.0.2.1"))], None),
            ([Edit("replace", "www", "A", records=("192.0.2.2", "192.0.2.1"))], None),
            ([Edit("replace", "nothing", "A", records=())], None),
            ([Edit("add", "x", "A", records=("192.0.2.9",)), Edit("remove", "x", "A", records=("192.0.2.9",))], None),
            ([], {"ttl": 3600, "email": "hostmaster@zone.test"}),
        ]:
            ch = await store.change(ZONE, edits, source="t", fields=fields)
            assert ch.serial_from == ch.serial_to == 1 and (ch.removed, ch.added) == (0, 0)
        assert await dump(pool) == before
        await asyncio.sleep(0.2)
        assert got.empty()
    finally:
        await listener.close()
    assert len(await log_rows(pool, z.zone_id)) == 1


INVALID = [
    ("bad-rdata", [Edit("add", "x", "A", records=("not-an-address",))], None),
    ("bad-mx", [Edit("add", "x", "MX", records=("mail",))], None),
    ("cname-beside-a", [Edit("add", "www", "CNAME", records=("mail",))], None),
    ("a-beside-cname", [Edit("add", "alias", "A", records=("192.0.2.5",))], None),
    ("two-cnames", [Edit("add", "c2", "CNAME", records=("a", "b"))], None),
    ("second-cname", [Edit("add", "alias", "CNAME", records=("mail",))], None),
    ("cname-at-apex", [Edit("replace", "@", "CNAME", records=("www",))], None),
    ("cname-at-apex-absolute", [Edit("add", ZONE, "CNAME", records=("www",))], None),
    ("outside-zone", [Edit("add", "www.other.test.", "A", records=("192.0.2.1",))], None),
    ("parent-of-zone", [Edit("add", "test.", "A", records=("192.0.2.1",))], None),
    ("ttl-negative", [Edit("add", "x", "A", ttl=-1, records=("192.0.2.1",))], None),
    ("ttl-2^31", [Edit("add", "x", "A", ttl=2**31, records=("192.0.2.1",))], None),
    ("ttl-bool", [Edit("add", "x", "A", ttl=True, records=("192.0.2.1",))], None),
    ("soa-type", [Edit("add", "@", "SOA", records=("a. b. 5 1 1 1 1",))], None),
    ("soa-delete", [Edit("delete", "@", "SOA")], None),
    ("rrsig-type", [Edit("add", "x", "RRSIG", records=("A 13 3 300 20300101000000 20200101000000 1 zone.test. AAAA",))], None),
    ("nsec3-type", [Edit("delete", "x", 50)], None),
    ("unknown-type", [Edit("add", "x", "FOO", records=("1",))], None),
    ("meta-type", [Edit("add", "x", "ANY", records=("1",))], None),
    ("unknown-op", [Edit("merge", "x", "A", records=("192.0.2.1",))], None),
    ("add-nothing", [Edit("add", "x", "A")], None),
    ("bad-name", [Edit("add", "a..b", "A", records=("192.0.2.1",))], None),
    ("valid-then-invalid", [Edit("add", "ok", "A", records=("192.0.2.1",)), Edit("add", "ok", "CNAME", records=("www",))], None),
    ("bad-email", [], {"email": "nope"}),
    ("bad-email-empty-local", [], {"email": "@zone.test"}),
    ("bad-field-ttl", [Edit("add", "ok", "A", records=("192.0.2.1",))], {"ttl": -5}),
    ("bad-policy", [], {"serial_policy": "random"}),
    ("bad-keep-count", [], {"log_keep_count": 0}),
    ("unknown-field", [], {"serial": 99}),
]


@pytest.mark.parametrize("edits, fields", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_invalid_write_leaves_database_as_before(store, pool, edits, fields):
    await make_zone(store)
    before = await dump(pool)
    with pytest.raises(Invalid):
        await store.change(ZONE, edits, source="t", fields=fields)
    assert await dump(pool) == before


async def test_not_found(store, pool):
    await make_zone(store)
    before = await dump(pool)
    with pytest.raises(NotFound):
        await store.change("nope.test.", [Edit("add", "x", "A", records=("192.0.2.1",))], source="t")
    with pytest.raises(NotFound):
        await store.change(uuid.uuid4(), [], source="t")
    with pytest.raises(NotFound):
        await store.zone("nope.test")
    with pytest.raises(NotFound):
        await store.delete_zone("nope.test")
    for e in [
        Edit("remove", "www", "A", records=("192.0.2.99",)),  # RRset there, record not
        Edit("remove", "www", "A", records=("192.0.2.1", "192.0.2.99")),  # one there, one not
        Edit("remove", "nothere", "A", records=("192.0.2.1",)),
        Edit("remove", "www", "TXT"),
        Edit("delete", "nothere", "A"),
    ]:
        with pytest.raises(NotFound):
            await store.change(ZONE, [e], source="t")
    # A failed edit after a good one: nothing of the write is kept.
    with pytest.raises(NotFound):
        await store.change(
            ZONE, [Edit("add", "good", "A", records=("192.0.2.1",)), Edit("delete", "nothere", "A")], source="t"
        )
    assert await dump(pool) == before


async def test_serial_wrap(store, pool):
    z = await make_zone(store, serial=4294967295)
    assert (await store.zone(ZONE))["serial"] == 4294967295
    a = await store.change(ZONE, [Edit("add", "a", "A", records=("192.0.2.1",))], source="t")
    b = await store.change(ZONE, [Edit("add", "b", "A", records=("192.0.2.1",))], source="t")
    assert (a.serial_from, a.serial_to, b.serial_to) == (4294967295, 0, 1)
    assert serial_gt(a.serial_to, a.serial_from) and serial_gt(b.serial_to, b.serial_from)
    assert (await store.zone(ZONE))["serial"] == 1
    assert [(r["serial_from"], r["serial_to"]) for r in await log_rows(pool, z.zone_id)] == [
        (None, 4294967295), (4294967295, 0), (0, 1),
    ]  # fmt: skip
    row = (await log_rows(pool, z.zone_id))[1]
    assert soa_of(unpack_rrs(bytes(row["removed"]))[0][3]).serial == 4294967295
    assert soa_of(unpack_rrs(bytes(row["added"]))[0][3]).serial == 0


async def test_unixtime_policy_with_clock_going_back(pool):
    clock = [1_700_000_000]
    store = Store(pool, clock=lambda: clock[0], stages=write_stages())
    await store.create_zone(ZONE, email="h@zone.test", serial_policy="unixtime")
    serials = [(await store.zone(ZONE))["serial"]]
    for now in [1_700_000_100, 1_700_000_100, 1_600_000_000, 1_700_000_050, 1_700_000_103, 1_800_000_000]:
        clock[0] = now
        ch = await store.change(ZONE, [Edit("add", f"n{len(serials)}", "A", records=("192.0.2.1",))], source="t")
        serials.append(ch.serial_to)
    assert serials == [1_700_000_000, 1_700_000_100, 1_700_000_101, 1_700_000_102, 1_700_000_103, 1_700_000_104, 1_800_000_000]
    assert all(serial_gt(b, a) for a, b in zip(serials, serials[1:]))


async def test_date_policy_in_the_store(pool):
    day = calendar.timegm((2026, 11, 22, 12, 0, 0))
    clock = [day]
    store = Store(pool, StoreSettings(serial_policy="date"), clock=lambda: clock[0], stages=write_stages())
    assert (await store.create_zone(ZONE, email="h@zone.test")).serial_to == 2026112200
    assert (await store.change(ZONE, fields={"refresh": 1}, source="t")).serial_to == 2026112201
    assert (await store.change(ZONE, fields={"refresh": 2}, source="t")).serial_to == 2026112202
    clock[0] = day + 86400
    assert (await store.change(ZONE, fields={"refresh": 3}, source="t")).serial_to == 2026112300
    # Switching the zone to increment takes effect for that very change.
    assert (await store.change(ZONE, fields={"serial_policy": "increment"}, source="t")).serial_to == 2026112301


# -- concurrency ---------------------------------------------------------------------------------


def assert_chain(log, first_serial: int, count: int):
    """The change log after creation is one unbroken chain of serials, each used once."""
    pairs = [(r["serial_from"], r["serial_to"]) for r in log]
    assert pairs[0] == (None, first_serial)
    assert len(pairs) == count + 1
    for (_, prev_to), (cur_from, cur_to) in zip(pairs, pairs[1:]):
        assert cur_from == prev_to
        assert cur_to == (cur_from + 1) % 2**32
    serials = [to for _, to in pairs]
    assert len(set(serials)) == len(serials)


async def test_concurrent_writers_one_pool(store, pool):
    z = await store.create_zone(ZONE, email="h@zone.test")
    # Half name the zone, half give its id: both paths take the zone's lock.
    results = await asyncio.gather(
        *(store.change(ZONE if i % 2 else z.zone_id, [Edit("add", f"host{i}", "A", records=(f"192.0.2.{i}",))], source="t")
          for i in range(50))
    )  # fmt: skip
    assert sorted(r.serial_to for r in results) == list(range(2, 52))
    assert sorted(r.serial_from for r in results) == list(range(1, 51))
    names = {r["name"] for r in await pool.fetch("SELECT name FROM rrsets WHERE type = $1", A)}
    assert names == {f"host{i}.zone.test." for i in range(50)}
    log = await log_rows(pool, z.zone_id)
    assert_chain(log, 1, 50)
    # Each log row adds exactly its own record.
    added = sorted(unpack_rrs(bytes(r["added"]))[1][0] for r in log[1:])
    assert added == sorted(w(f"host{i}") for i in range(50))
    zone = await store.zone(ZONE)
    assert zone["serial"] == 51
    soa = await rrset(pool, z.zone_id, "@", SOA)
    assert dns.rdata.from_text(dns.rdataclass.IN, SOA, soa["records"][0]).serial == 51


async def test_concurrent_adds_to_one_rrset_lose_nothing(store, pool):
    z = await store.create_zone(ZONE, email="h@zone.test")
    await asyncio.gather(
        *(store.change(ZONE, [Edit("add", "multi", "TXT", records=(f'"r{i}"',))], source="t") for i in range(30))
    )
    row = await rrset(pool, z.zone_id, "multi", TXT)
    assert sorted(row["records"]) == sorted(f'"r{i}"' for i in range(30))
    assert len(split_wire(bytes(row["wire"]))) == 30
    assert_chain(await log_rows(pool, z.zone_id), 1, 30)


async def test_two_stores_two_pools_race(database_url):
    p1 = await db.create_pool(database_url, size=4)
    p2 = await db.create_pool(database_url, size=4)
    try:
        s1, s2 = Store(p1, stages=write_stages()), Store(p2, stages=write_stages())
        z = await s1.create_zone(ZONE, email="h@zone.test")
        jobs = []
        for i in range(20):
            jobs.append(s1.change(ZONE, [Edit("add", f"one{i}", "A", records=("192.0.2.1",)),
                                         Edit("add", "shared", "TXT", records=(f'"one{i}"',))], source="s1"))  # fmt: skip
            jobs.append(s2.change(z.zone_id, [Edit("add", f"two{i}", "A", records=("192.0.2.2",)),
                                         Edit("add", "shared", "TXT", records=(f'"two{i}"',))], source="s2"))  # fmt: skip
        results = await asyncio.gather(*jobs)
        assert sorted(r.serial_to for r in results) == list(range(2, 42))
        log = await log_rows(p1, z.zone_id)
        assert_chain(log, 1, 40)
        assert sorted(r["source"] for r in log[1:]) == ["s1"] * 20 + ["s2"] * 20
        shared = await rrset(p2, z.zone_id, "shared", TXT)
        assert len(shared["records"]) == 40
        count = await p1.fetchval("SELECT count(*) FROM rrsets WHERE zone_id = $1 AND type = $2", z.zone_id, A)
        assert count == 40
        # Creating the same zone from both at once: one wins, one conflicts.
        outcomes = await asyncio.gather(
            s1.create_zone("race.test", email="h@race.test"), s2.create_zone("race.test", email="h@race.test"),
            return_exceptions=True,
        )  # fmt: skip
        assert sorted(type(o).__name__ for o in outcomes) == ["Change", "Conflict"]
        assert await p1.fetchval("SELECT count(*) FROM zones WHERE name = 'race.test.'") == 1
    finally:
        await p1.close()
        await p2.close()


# -- change-log retention ------------------------------------------------------------------------


async def test_retention_by_count(pool):
    store = Store(pool, StoreSettings(log_keep_count=5), stages=write_stages())
    z = await store.create_zone(ZONE, email="h@zone.test")
    other = await store.create_zone("other.test", email="h@other.test")
    for i in range(12):
        await store.change(ZONE, [Edit("add", f"n{i}", "A", records=("192.0.2.1",))], source="t")
    log = await log_rows(pool, z.zone_id)
    assert [(r["serial_from"], r["serial_to"]) for r in log] == [(s - 1, s) for s in range(9, 14)]
    assert [r["seq"] for r in log] == sorted(r["seq"] for r in log)
    # Retention is per zone: the other zone's row is still there.
    assert len(await log_rows(pool, other.zone_id)) == 1


async def test_retention_per_zone_count(store, pool):
    z = await store.create_zone(ZONE, email="h@zone.test")
    await store.change(ZONE, fields={"log_keep_count": 3}, source="t")
    assert (await store.zone(ZONE))["log_keep_count"] == 3
    assert len(await log_rows(pool, z.zone_id)) == 2
    for i in range(6):
        await store.change(ZONE, [Edit("add", f"n{i}", "A", records=("192.0.2.1",))], source="t")
    log = await log_rows(pool, z.zone_id)
    assert [r["serial_to"] for r in log] == [6, 7, 8]
    await store.change(ZONE, fields={"log_keep_count": 1}, source="t")
    log = await log_rows(pool, z.zone_id)
    assert [r["serial_to"] for r in log] == [9]  # the row just written is always kept


async def test_retention_by_age(pool):
    store = Store(pool, StoreSettings(log_keep_seconds=3600), stages=write_stages())
    z = await store.create_zone(ZONE, email="h@zone.test")
    for i in range(5):
        await store.change(ZONE, [Edit("add", f"n{i}", "A", records=("192.0.2.1",))], source="t")
    # Age the first four rows (serials 1..4) past the hour, and one just inside it.
    await pool.execute(
        "UPDATE zone_changes SET created_at = now() - interval '2 hours' WHERE zone_id = $1 AND serial_to <= 3", z.zone_id
    )
    await pool.execute(
        "UPDATE zone_changes SET created_at = now() - interval '50 minutes' WHERE zone_id = $1 AND serial_to = 4", z.zone_id
    )
    await store.change(ZONE, [Edit("add", "late", "A", records=("192.0.2.1",))], source="t")
    assert [r["serial_to"] for r in await log_rows(pool, z.zone_id)] == [4, 5, 6, 7]
    # A zone's own log_keep_seconds overrides the default.
    await pool.execute("UPDATE zone_changes SET created_at = now() - interval '2 minutes' WHERE zone_id = $1", z.zone_id)
    await store.change(ZONE, fields={"log_keep_seconds": 60}, source="t")
    assert [r["serial_to"] for r in await log_rows(pool, z.zone_id)] == [8]
    # Everything old: the row just written stays.
    await pool.execute("UPDATE zone_changes SET created_at = now() - interval '1 day' WHERE zone_id = $1", z.zone_id)
    await store.change(ZONE, [Edit("add", "last", "A", records=("192.0.2.1",))], source="t")
    assert [r["serial_to"] for r in await log_rows(pool, z.zone_id)] == [9]


# -- deleting, and NOTIFY ------------------------------------------------------------------------


async def test_delete_zone_cascades(store, pool):
    z = await make_zone(store)
    other = await store.create_zone("other.test", email="h@other.test", edits=[Edit("add", "x", "A", records=("192.0.2.1",))])
    await store.change(ZONE, [Edit("add", "n", "A", records=("192.0.2.1",))], source="t")
    kept = {t: [r for r in rows if other.zone_id in r] for t, rows in (await dump(pool)).items()}
    ch = await store.delete_zone(ZONE)
    assert (ch.zone_id, ch.serial_to) == (z.zone_id, 2)
    for table in ("rrsets", "zone_changes"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE zone_id = $1", z.zone_id) == 0
    assert await pool.fetchval("SELECT count(*) FROM zones WHERE id = $1", z.zone_id) == 0
    assert await dump(pool) == kept  # the other zone untouched
    with pytest.raises(NotFound):
        await store.change(z.zone_id, [Edit("add", "n2", "A", records=("192.0.2.1",))], source="t")
    with pytest.raises(NotFound):
        await store.delete_zone(ZONE)
    # The name is free again: a new zone, a new id, serial from the start.
    again = await store.create_zone(ZONE, email="h@zone.test")
    assert again.zone_id != z.zone_id and again.serial_to == 3  # above the deleted zone's 2 (test_deleted_serials.py)


async def test_notify_payloads(store, database_url):
    listener = await db.connect(database_url)
    got: asyncio.Queue = asyncio.Queue()
    await listener.add_listener(db.CHANNEL, lambda conn, pid, channel, payload: got.put_nowait(payload))

    async def next_payload():
        return await asyncio.wait_for(got.get(), 5)

    try:
        z = await make_zone(store)
        assert await next_payload() == f"{z.zone_id} 1"
        for i in range(3):
            ch = await store.change(ZONE, [Edit("add", f"n{i}", "A", records=("192.0.2.1",))], source="t")
            assert await next_payload() == f"{z.zone_id} {ch.serial_to}" == f"{z.zone_id} {i + 2}"
        # Nothing for a failed write or a write that changes nothing.
        with pytest.raises(Invalid):
            await store.change(ZONE, [Edit("add", "bad", "A", records=("x",))], source="t")
        with pytest.raises(NotFound):
            await store.change(ZONE, [Edit("delete", "none", "A")], source="t")
        await store.change(ZONE, [Edit("add", "n0", "A", records=("192.0.2.1",))], source="t")
        await store.change(ZONE, fields={"refresh": 1234}, source="t")
        assert await next_payload() == f"{z.zone_id} 5"  # only the fields change
        await store.delete_zone(z.zone_id)
        assert await next_payload() == f"{z.zone_id} deleted"
        await asyncio.sleep(0.1)
        assert got.empty()
    finally:
        await listener.close()


async def test_metadata_is_stored(store, pool):
    z = await store.create_zone(ZONE, email="h@zone.test")
    managed = {"source": "nova", "resource_type": "instance", "resource_id": "abc", "tenant_id": "t1", "extra": {"k": [1]}}
    await store.change(
        ZONE, [Edit("add", "vm", "A", records=("192.0.2.1",), description="a vm", managed=managed)], source="event:nova"
    )
    row = await rrset(pool, z.zone_id, "vm", A)
    assert row["description"] == "a vm" and row["managed"] is True
    assert (row["managed_source"], row["managed_resource_type"], row["managed_resource_id"], row["managed_tenant_id"]) == (
        "nova", "instance", "abc", "t1",
    )  # fmt: skip
    assert row["managed_extra"] == {"k": [1]}
    # A later add keeps the metadata.
    await store.change(ZONE, [Edit("add", "vm", "A", records=("192.0.2.2",))], source="t")
    row = await rrset(pool, z.zone_id, "vm", A)
    assert row["description"] == "a vm" and row["managed_resource_id"] == "abc" and len(row["records"]) == 2
