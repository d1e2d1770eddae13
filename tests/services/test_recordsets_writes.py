"""Recordset writes through the group commit (services/recordsets.py), called directly on a real
database: each caller gets its own outcome, concurrent writes to one zone share serials, and
Designate's rules (duplicates, CNAME placement, SOA, managed records) are checked in the
transaction that writes."""

import asyncio

import pytest

from minidns.services import zones
from minidns.services.listing import Query
from minidns.services.recordsets import BadPlacement, DuplicateRecordSet, RecordsetWriter, get_rrset, list_rrsets
from minidns.services.zones import Refused
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store


@pytest.fixture
async def zone(pool):
    store = Store(pool, stages=write_stages())
    z = await zones.create_zone(store, "alice", name="a.test.", email="h@a.test")
    return store, z


async def test_create_update_delete_one_serial_each(zone):
    store, z = zone
    writer = RecordsetWriter(store)
    rs = await writer.create(z["id"], "alice", name="www.a.test.", rtype="A", records=["192.0.2.1"])
    assert (rs["name"], rs["records"], rs["action"]) == ("www.a.test.", ["192.0.2.1"], "CREATE")
    rs = await writer.update(z["id"], "alice", rs["id"], {"records": ["192.0.2.2", "192.0.2.3"], "ttl": 60})
    assert (sorted(rs["records"]), rs["ttl"]) == (["192.0.2.2", "192.0.2.3"], 60)
    await writer.delete(z["id"], "alice", rs["id"])
    serial = (await zones.get_zone(store.pool, z["id"], None))["serial"]
    assert serial == z["serial"] + 3
    rows, total, _ = await list_rrsets(store.pool, "alice", z["id"], Query(filters={"type": "A"}))
    assert (rows, total) == ([], 0)


async def test_concurrent_creates_share_transactions_and_each_gets_its_own_outcome(zone):
    store, z = zone
    writer = RecordsetWriter(store)
    wanted = [("n%d.a.test." % i, "A", [f"198.51.100.{i}"]) for i in range(40)]
    wanted[5] = ("bad.a.test.", "A", ["not-an-address"])
    wanted[9] = ("n1.a.test.", "A", ["203.0.113.1"])  # the same RRset as item 1
    results = await asyncio.gather(*(writer.create(z["id"], "alice", name=n, rtype=t, records=r) for n, t, r in wanted),
                                   return_exceptions=True)  # fmt: skip
    assert isinstance(results[5], Invalid)
    assert isinstance(results[9], DuplicateRecordSet) or isinstance(results[1], DuplicateRecordSet)
    made = [r for r in results if isinstance(r, dict)]
    assert len(made) == 38
    serial = (await zones.get_zone(store.pool, z["id"], None))["serial"]
    assert serial - z["serial"] < 38  # fewer transactions than writes
    rows, total, _ = await list_rrsets(store.pool, "alice", z["id"], Query(filters={"type": "A"}, limit=100))
    assert total == 38


@pytest.mark.parametrize("name, rtype, records, error", [
    ("a.test.", "CNAME", ["x.example."], BadPlacement),  # no CNAME at the apex beside SOA and NS
    ("a.test.", "SOA", ["ns. h. 1 2 3 4 5"], Refused),
    ("www.other.test.", "A", ["192.0.2.1"], BadPlacement),  # outside the zone
    ("www.a.test.", "A", [], Invalid),
    ("www.a.test.", "CNAME", ["x.example.", "y.example."], Invalid),  # RFC 2181 §10.1
])  # fmt: skip
async def test_designates_rules_refuse_before_anything_is_written(zone, name, rtype, records, error):
    store, z = zone
    with pytest.raises(error):
        await RecordsetWriter(store).create(z["id"], "alice", name=name, rtype=rtype, records=records)
    assert (await zones.get_zone(store.pool, z["id"], None))["serial"] == z["serial"]


async def test_a_cname_beside_other_data_is_refused(zone):
    store, z = zone
    writer = RecordsetWriter(store)
    await writer.create(z["id"], "alice", name="www.a.test.", rtype="A", records=["192.0.2.1"])
    with pytest.raises(BadPlacement):
        await writer.create(z["id"], "alice", name="www.a.test.", rtype="CNAME", records=["x.example."])


async def test_records_made_by_the_sink_are_not_the_apis_to_change(zone):
    store, z = zone
    await store.change(z["id"], [Edit("add", "vm1", "A", 60, ("10.0.0.1",), managed={
        "source": "nova", "resource_type": "instance", "resource_id": "i-1", "tenant_id": "alice", "extra": None})],
        source="event:nova")  # fmt: skip
    rows, _, _ = await list_rrsets(store.pool, "alice", z["id"], Query(filters={"name": "vm1.a.test."}))
    with pytest.raises(Refused, match="Managed records"):
        await RecordsetWriter(store).update(z["id"], "alice", rows[0]["id"], {"records": ["10.0.0.2"]})
    edited = await RecordsetWriter(store).update(z["id"], None, rows[0]["id"], {"records": ["10.0.0.2"]}, edit_managed=True)
    assert edited["records"] == ["10.0.0.2"]
    assert (await get_rrset(store.pool, "alice", z["id"], rows[0]["id"]))["records"] == ["10.0.0.2"]
