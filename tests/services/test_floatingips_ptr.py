"""Floating IP PTRs (services/floatingips.py) called directly against a real database: a floating
IP registered for a project; its PTR set and unset in the most specific reverse zone through the
write path (a new serial each time); a new holder or address, or the IP's release, drops the PTR."""

import uuid

import pytest

from minidns.services import floatingips as fips
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings

REVERSE = ("2.0.192.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.")
FIP = uuid.UUID("9d2a1d9c-0a0f-4d63-9d0e-3c3e8c1c0f01")


@pytest.fixture
async def store(pool):
    s = Store(pool, StoreSettings(), stages=write_stages())
    for zone in REVERSE:
        await s.create_zone(zone, email="h@example.test", edits=[Edit("add", "@", "NS", 300, ("ns1.example.",))])
    return s


async def ptr(pool, name: str):
    row = await pool.fetchrow("SELECT r.records, r.ttl, r.managed_resource_id FROM rrsets r JOIN zones z ON z.id = r.zone_id"
                              " WHERE r.name = $1 AND r.type = 12", name)  # fmt: skip
    return (row["records"], row["ttl"], row["managed_resource_id"]) if row else None


async def serial(pool, zone: str = REVERSE[0]) -> int:
    return await pool.fetchval("SELECT serial FROM zones WHERE name = $1", zone)


async def test_a_ptr_is_set_and_unset_through_the_write_path(store, pool):
    fip = await fips.register(store, "RegionOne", FIP, "192.0.2.10", "p1")
    assert (fip["address"], fip["project_id"], fip["ptrdname"]) == ("192.0.2.10", "p1", None)
    before = await serial(pool)
    row = await fips.set_ptr(store, "RegionOne", FIP, "p1", "vm.example.com.", "web", 600)
    assert (row["ptrdname"], row["description"], row["ttl"]) == ("vm.example.com.", "web", 600)
    assert await ptr(pool, "10.2.0.192.in-addr.arpa.") == (["vm.example.com."], 600, f"RegionOne:{FIP}")
    assert await serial(pool) > before
    with pytest.raises(fips.FloatingIpNotFound):
        await fips.set_ptr(store, "RegionOne", FIP, "p2", "other.example.com.")
    assert (await fips.set_ptr(store, "RegionOne", FIP, None, None))["ptrdname"] is None
    assert await ptr(pool, "10.2.0.192.in-addr.arpa.") is None
    assert [f["id"] for f in await fips.list_fips(pool, "p1")] == [FIP] and await fips.list_fips(pool, "p2") == []


async def test_a_new_holder_or_the_release_drops_the_ptr(store, pool):
    await fips.register(store, "RegionOne", FIP, "192.0.2.10", "p1")
    await fips.set_ptr(store, "RegionOne", FIP, "p1", "vm.example.com.")
    moved = await fips.register(store, "RegionOne", FIP, "192.0.2.10", "p2")
    assert moved["ptrdname"] is None and await ptr(pool, "10.2.0.192.in-addr.arpa.") is None
    await fips.set_ptr(store, "RegionOne", FIP, "p2", "vm2.example.com.")
    await fips.unregister(store, "RegionOne", FIP)
    assert await ptr(pool, "10.2.0.192.in-addr.arpa.") is None and await fips.list_fips(pool, None) == []
    with pytest.raises(fips.FloatingIpNotFound):
        await fips.unregister(store, "RegionOne", FIP)


async def test_ipv6_lands_in_its_reverse_zone_and_no_zone_is_refused(store, pool):
    await fips.register(store, "RegionOne", FIP, "2001:db8::5", "p1")
    await fips.set_ptr(store, "RegionOne", FIP, "p1", "v6.example.com.")
    assert (await ptr(pool, fips.ptr_name("2001:db8::5")))[0] == ["v6.example.com."]
    other = uuid.uuid4()
    await fips.register(store, "RegionOne", other, "198.51.100.1", "p1")
    with pytest.raises(fips.NoReverseZone):
        await fips.set_ptr(store, "RegionOne", other, "p1", "x.example.com.")
    assert (await fips.get_fip(pool, "RegionOne", other, "p1"))["ptrdname"] is None


async def test_an_address_taken_by_another_floating_ip_is_refused(store, pool):
    await fips.register(store, "RegionOne", FIP, "192.0.2.10", "p1")
    with pytest.raises(Invalid, match="already"):
        await fips.register(store, "RegionOne", uuid.uuid4(), "192.0.2.10", "p2")
    assert len(await fips.list_fips(pool, None)) == 1


@pytest.mark.parametrize("region, address, project, ptrdname", [
    ("bad region", "192.0.2.1", "p1", None),
    ("RegionOne", "192.0.2.300", "p1", None),
    ("RegionOne", "192.0.2.1", "", None),
    ("RegionOne", "192.0.2.1", "p1", "not-absolute.example.com"),
    ("RegionOne", "192.0.2.1", "p1", "a..b."),
])  # fmt: skip
async def test_bad_data_is_refused(store, pool, region, address, project, ptrdname):
    with pytest.raises(Invalid):
        await fips.register(store, region, FIP, address, project)
        await fips.set_ptr(store, region, FIP, project, ptrdname)
    assert (await ptr(pool, "1.2.0.192.in-addr.arpa.")) is None


@pytest.mark.parametrize("key, parsed", [
    (f"RegionOne:{FIP}", ("RegionOne", FIP)),
    (f"r.1_x-y:{FIP}", ("r.1_x-y", FIP)),
    (str(FIP), None),
    ("RegionOne:not-a-uuid", None),
])  # fmt: skip
def test_a_floating_ip_key_is_region_colon_uuid(key, parsed):
    if parsed is None:
        with pytest.raises(fips.BadFloatingIpKey):
            fips.parse_key(key)
    else:
        assert fips.parse_key(key) == parsed


@pytest.mark.parametrize("address, name", [
    ("192.0.2.10", "10.2.0.192.in-addr.arpa."),
    ("2001:DB8::5", "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."),
])  # fmt: skip
def test_the_ptr_name_is_rfc_1035_and_3596_reverse(address, name):
    assert fips.ptr_name(address) == name
