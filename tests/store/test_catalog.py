"""Catalog zones (RFC 9432, schema version 2) kept by the write path: creating or deleting a zone
changes each catalog it belongs in within the same transaction, with the catalog's own serial and
change-log row, so secondaries consuming the catalog learn of it by IXFR."""


import dns.rdatatype
import pytest

from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings
from minidns.zones.changes import unpack_rrs


@pytest.fixture
def store(pool):
    return Store(pool, StoreSettings(), stages=write_stages())


async def members(pool, catalog: str) -> dict[str, str]:
    rows = await pool.fetch(
        "SELECT r.name, r.records FROM rrsets r JOIN zones z ON z.id = r.zone_id WHERE z.name = $1 AND r.type = $2",
        catalog, dns.rdatatype.PTR,
    )
    return {r["name"]: r["records"][0] for r in rows}


async def make(store, name):
    return await store.create_zone(name, email=f"h@{name.rstrip('.')}", edits=[Edit("add", "@", "NS", None, ("ns.example.",))])


async def test_catalog_lists_existing_and_new_zones_and_drops_deleted(store, pool):
    a = await make(store, "a.test.")
    cat = await store.create_zone("catalog.invalid.", email="h@invalid", mname="invalid.", catalog_members=["*"])
    z = await store.zone("catalog.invalid.")
    assert z["type"] == "CATALOG"
    rrs = {(r["name"], r["type"]): r["records"] for r in await pool.fetch(
        "SELECT name, type, records FROM rrsets WHERE zone_id = $1", cat.zone_id)}
    assert rrs[("catalog.invalid.", dns.rdatatype.NS)] == ["invalid."]  # RFC 9432 §4.1
    assert rrs[("version.catalog.invalid.", dns.rdatatype.TXT)] == ['"2"']  # §4.2.1
    assert await members(pool, "catalog.invalid.") == {f"{a.zone_id.hex}.zones.catalog.invalid.": "a.test."}
    serial = z["serial"]

    b = await make(store, "b.test.")
    z = await store.zone("catalog.invalid.")
    assert z["serial"] != serial  # its own change, with its own serial…
    log = await pool.fetch("SELECT serial_from, serial_to, added FROM zone_changes WHERE zone_id = $1 ORDER BY seq", cat.zone_id)
    added = unpack_rrs(log[-1]["added"])
    assert log[-1]["serial_from"] == serial and log[-1]["serial_to"] == z["serial"]  # …in the change log for IXFR
    assert [rr[1] for rr in added] == [dns.rdatatype.SOA, dns.rdatatype.PTR]
    assert set((await members(pool, "catalog.invalid.")).values()) == {"a.test.", "b.test."}

    await store.delete_zone("a.test.")
    assert await members(pool, "catalog.invalid.") == {f"{b.zone_id.hex}.zones.catalog.invalid.": "b.test."}


async def test_member_patterns_pick_zones(store, pool):
    await store.create_zone("cat-org.invalid.", email="h@invalid", catalog_members=["*.example.org."])
    await make(store, "x.example.org.")
    await make(store, "x.example.net.")
    assert set((await members(pool, "cat-org.invalid.")).values()) == {"x.example.org."}


async def test_a_failed_create_leaves_the_catalog_as_it_was(store, pool):
    await store.create_zone("catalog.invalid.", email="h@invalid", catalog_members=["*"])
    before = (await store.zone("catalog.invalid."))["serial"]
    with pytest.raises(Exception):
        await store.create_zone("bad.test.", email="h@bad.test", edits=[Edit("add", "x", "A", None, ("not-an-address",))])
    await make(store, "dup.test.")
    mid = (await store.zone("catalog.invalid."))["serial"]
    with pytest.raises(Exception):
        await make(store, "dup.test.")  # exists: nothing written, the catalog untouched
    assert (await store.zone("catalog.invalid."))["serial"] == mid != before
    assert set((await members(pool, "catalog.invalid.")).values()) == {"dup.test."}
