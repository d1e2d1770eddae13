"""The unit of work (minidns.store.change.ZoneChange, `store.change(...)`) against a real PostgreSQL:
its two forms, joining an open transaction, values given parsed, row attributes, rollback."""

import uuid

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from minidns.store.records import Invalid, NotFound
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store
from minidns.zones.changes import unpack_rrs

ZONE = "change.test."
ORIGIN = dns.name.from_text(ZONE)
A, TXT = 1, 16


@pytest.fixture
async def store(pool):
    s = Store(pool, stages=write_stages())
    await s.create_zone(ZONE, email="h@change.test", edits=[Edit("add", "@", "NS", None, ("ns1.example.",))])
    return s


def a(text: str):
    return dns.rdata.from_text(dns.rdataclass.IN, A, text)


async def serial(store) -> int:
    return (await store.zone(ZONE))["serial"]


async def records(pool, name: str, rtype: int = A):
    owner = dns.name.from_text(name, ORIGIN).to_wire()
    return await pool.fetchrow("SELECT * FROM rrsets WHERE owner = $1 AND type = $2", owner, rtype)


async def test_a_block_of_edits_is_one_change_with_one_serial(store, pool):
    before = await serial(store)
    async with store.change(ZONE, source="t") as w:
        w.replace("www", "A", ("192.0.2.1", "192.0.2.2"), ttl=300)
        w.add("mail", "TXT", ('"hello"',))
    assert (w.change.serial_from, w.change.serial_to) == (before, before + 1)
    assert await serial(store) == before + 1
    assert (await records(pool, "www"))["records"] == ["192.0.2.1", "192.0.2.2"]
    log = (await store.changes(ZONE))[-1]
    assert (log["serial_from"], log["serial_to"], log["source"]) == (before, before + 1, "t")
    assert len(unpack_rrs(log["added"])) == 4  # the new SOA, two A, one TXT


async def test_records_given_as_rdata_or_wire_are_written_as_text_would_be(store, pool):
    async with store.change(ZONE, source="t") as w:
        w.create(dns.name.from_text("v", ORIGIN), A, (a("192.0.2.7"),), ttl=60)
        w.create("wire", A, (a("192.0.2.8").to_wire(),), ttl=60)
    await store.change(ZONE, [Edit("create", "text", "A", 60, ("192.0.2.7",))], source="t")
    given, text = await records(pool, "v"), await records(pool, "text")
    assert (given["records"], given["ttl"], bytes(given["wire"])) == (text["records"], text["ttl"], bytes(text["wire"]))
    assert (await records(pool, "wire"))["records"] == ["192.0.2.8"]


async def test_bad_wire_is_refused_and_nothing_is_written(store, pool):
    before = await serial(store)
    with pytest.raises(Invalid):
        async with store.change(ZONE, source="t") as w:
            w.create("bad", A, (b"\x01\x02",))
    assert await serial(store) == before
    assert await records(pool, "bad") is None


async def test_joining_an_open_transaction_commits_or_rolls_back_with_it(store, pool):
    before = await serial(store)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        async with store.change(ZONE, source="t", conn=conn) as w:
            w.add("gone", "A", ("192.0.2.9",))
        assert w.change.serial_to == before + 1
        await tx.rollback()
    assert await serial(store) == before
    assert await records(pool, "gone") is None
    async with pool.acquire() as conn, conn.transaction():
        await store.change(ZONE, [Edit("add", "kept", "A", None, ("192.0.2.9",))], source="t", conn=conn)
    assert await serial(store) == before + 1
    assert await records(pool, "kept") is not None


async def test_an_exception_in_the_block_writes_nothing(store, pool):
    before = await serial(store)
    with pytest.raises(RuntimeError):
        async with store.change(ZONE, source="t") as w:
            w.add("never", "A", ("192.0.2.1",))
            raise RuntimeError("the caller changed its mind")
    assert await serial(store) == before
    assert await records(pool, "never") is None


async def test_row_attributes_alone_make_no_new_serial(store, pool):
    await store.change(ZONE, [Edit("add", "www", "A", 300, ("192.0.2.1",), description="web")], source="t")
    before = await serial(store)
    async with store.change(ZONE, source="t") as w:
        w.set_attributes("www", "A", ttl_default=True, project_id="guest", description=None)
    assert w.change.serial_to == before
    row = await records(pool, "www")
    assert (row["ttl_default"], row["project_id"], row["description"]) == (True, "guest", None)
    async with store.change(ZONE, source="t") as w:
        w.adopt_rrsets("guest")
    assert (await records(pool, "www"))["project_id"] is None
    with pytest.raises(Invalid, match="unknown RRset attribute"):
        store.change(ZONE, source="t").set_attributes("www", "A", ttl=5)


async def test_bump_makes_a_change_of_nothing_and_an_empty_change_makes_none(store):
    before = await serial(store)
    assert (await store.change(ZONE, source="t")).serial_to == before
    assert (await store.change(ZONE, source="t", bump=True)).serial_to == before + 1
    assert (await store.changes(ZONE))[-1]["source"] == "t"


async def test_fields_and_unknown_fields(store):
    async with store.change(ZONE, source="t") as w:
        w.set_fields(refresh=1234)
    assert (await store.zone(ZONE))["refresh"] == 1234
    with pytest.raises(Invalid, match="unknown zone field"):
        async with store.change(ZONE, source="t", fields={"colour": "red"}):
            pass
    with pytest.raises(Invalid, match="unknown zone field"):
        store.change(ZONE, source="t").set_fields(colour="red")
    with pytest.raises(NotFound):
        async with store.change("nowhere.test.", source="t"):
            pass


async def test_row_writes_keep_the_last_word_on_each_rrset_and_write_it_in_two_statements(store, pool):
    from minidns.store.change import RowWrites
    from minidns.store.rows import RRSET_COLUMNS

    zid = await pool.fetchval("SELECT id FROM zones WHERE name = $1", ZONE)
    www, mail = dns.name.from_text("www", dns.name.from_text(ZONE)), dns.name.from_text("mail", dns.name.from_text(ZONE))

    def row(name, address):
        values = {"id": uuid.uuid4(), "zone_id": zid, "name": name.to_text(), "owner": name.to_wire(), "type": A,
                  "ttl": 60, "records": [address], "wire": b"", "managed": False}  # fmt: skip
        return tuple(values.get(c) for c in RRSET_COLUMNS)

    rw = RowWrites()
    rw.add(zid, [], [row(www, "192.0.2.1"), row(mail, "192.0.2.2")])
    rw.add(zid, [(www.to_wire(), A)], [])  # www: deleted after all
    rw.add(zid, [(mail.to_wire(), A)], [row(mail, "192.0.2.3")])  # mail: deleted, then written again
    async with pool.acquire() as conn:
        statements = []
        conn.add_query_logger(lambda q: statements.append(q.query))
        await rw.flush(conn)
    assert len([s for s in statements if "rrsets" in s]) == 2 and not rw
    rows = await pool.fetch("SELECT name, records FROM rrsets WHERE zone_id = $1 AND type = $2", zid, A)
    assert [(r["name"], list(r["records"])) for r in rows] == [(mail.to_text(), ["192.0.2.3"])]


async def test_many_rows_are_one_upsert_with_their_records_and_provenance_as_given(store, pool):
    from minidns.store.change import RowWrites
    from minidns.store.rows import RRSET_COLUMNS

    zid = await pool.fetchval("SELECT id FROM zones WHERE name = $1", ZONE)
    wanted = {}
    rw = RowWrites()
    for i, (records, extra) in enumerate([
        (['"a,b" "c"', '"{\\"x\\": 1}"'], {"port_id": "p-1", "nested": {"ips": ["192.0.2.1"]}}),
        (['"é ünïcode"'], None),
        (['"NULL"', '""'], ["a", "list"]),
    ]):  # fmt: skip
        name = dns.name.from_text(f"m{i}", ORIGIN)
        values = {"id": uuid.uuid4(), "zone_id": zid, "name": name.to_text(), "owner": name.to_wire(), "type": TXT,
                  "ttl": 60 + i, "records": records, "wire": b"w%d" % i, "managed": extra is not None,
                  "managed_source": "nova" if extra is not None else None, "managed_extra": extra}  # fmt: skip
        rw.add(zid, [], [tuple(values.get(c) for c in RRSET_COLUMNS)])
        wanted[name.to_text()] = (60 + i, records, b"w%d" % i, extra is not None, extra)
    async with pool.acquire() as conn:
        statements = []
        conn.add_query_logger(lambda q: statements.append(q.query))
        await rw.flush(conn)
    assert len([s for s in statements if "rrsets" in s]) == 1  # three rows, one statement
    rows = await pool.fetch("SELECT * FROM rrsets WHERE zone_id = $1 AND type = $2", zid, TXT)
    got = {r["name"]: (r["ttl"], list(r["records"]), bytes(r["wire"]), r["managed"], r["managed_extra"]) for r in rows}
    assert got == wanted


async def test_a_committed_change_is_handed_to_the_hook_with_its_change_log_row(pool):
    handed = []
    s = Store(pool, stages=write_stages(), committed=handed.extend)
    await s.create_zone(ZONE, email="h@change.test", edits=[Edit("add", "@", "NS", None, ("ns1.example.",))])
    handed.clear()
    change = await s.change(ZONE, [Edit("add", "www", "A", 60, ("192.0.2.1",))], source="t")
    assert handed == [change]
    seq, removed, added = change.logged
    row = await pool.fetchrow("SELECT seq, removed, added FROM zone_changes WHERE seq = $1", seq)
    assert (bytes(row["removed"]), bytes(row["added"])) == (removed, added)
    with pytest.raises(Invalid):
        await s.change(ZONE, [Edit("add", "www", "A", 60, ("not an address",))], source="t")
    assert handed == [change]  # nothing handed for what was not committed
    async with pool.acquire() as conn, conn.transaction():  # joined to the caller's transaction: the caller commits
        await s.change(ZONE, [Edit("add", "www2", "A", 60, ("192.0.2.2",))], source="t", conn=conn)
    assert handed == [change]
