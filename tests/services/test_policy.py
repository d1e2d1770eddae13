"""Zone policy (services/policy.py): the quotas a project has (Designate's defaults, overrides
stored all or nothing) and their checks refusing the write past the limit; the TLD and blacklist
rules for a new zone name; the TLD/blacklist rows."""

import uuid

import pytest

from minidns.services import policy
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings


@pytest.fixture
def store(pool):
    return Store(pool, StoreSettings(), stages=write_stages())


async def test_quotas_are_the_defaults_overridden_all_or_nothing(pool):
    assert await policy.get_quotas(pool, "p1") == policy.QUOTA_DEFAULTS
    assert (await policy.set_quotas(pool, "p1", {"zones": 2, "zone_records": -1}))["zones"] == 2
    with pytest.raises(Invalid, match="not a quota resource"):
        await policy.set_quotas(pool, "p1", {"zones": 3, "nonesuch": 1})
    with pytest.raises(Invalid, match="whole number"):
        await policy.set_quotas(pool, "p1", {"zones": 3, "zone_recordsets": True})
    assert await policy.get_quotas(pool, "p1") == {**policy.QUOTA_DEFAULTS, "zones": 2, "zone_records": -1}
    assert await policy.get_quotas(pool, "p2") == policy.QUOTA_DEFAULTS
    await policy.reset_quotas(pool, "p1")
    assert await policy.get_quotas(pool, "p1") == policy.QUOTA_DEFAULTS


@pytest.mark.parametrize("values", [{}, {"zones": -2}, {"zones": 2**31}, {"zones": "1"}, {"zones": 1.0}])
def test_bad_quota_values_are_refused(values):
    with pytest.raises(Invalid):
        policy.check_quota_values(values)


async def test_the_zones_quota_counts_the_projects_zones(store, pool):
    await policy.set_quotas(pool, "p1", {"zones": 1})
    await policy.check_quota(pool, "p1", "zones")
    await store.create_zone("a.test.", email="h@a.test", project_id="p1")
    with pytest.raises(policy.OverQuota, match="zones is 1 zones for the project; this would make 2") as e:
        await policy.check_quota(pool, "p1", "zones")
    assert e.value.status == 413
    await policy.check_quota(pool, "p2", "zones")  # another project's zones do not count
    await policy.set_quotas(pool, "p1", {"zones": -1})
    await policy.check_quota(pool, "p1", "zones", count=1000)


async def test_the_zone_records_quota_leaves_out_the_soa_and_the_rrset_replaced(store, pool):
    change = await store.create_zone("a.test.", email="h@a.test", project_id="p1",
                                     edits=[Edit("add", "www", "A", 300, ("192.0.2.1", "192.0.2.2"))])  # fmt: skip
    zone_id = await pool.fetchval("SELECT id FROM zones WHERE name = $1", change.zone)
    www = await pool.fetchval("SELECT id FROM rrsets WHERE zone_id = $1 AND name = 'www.a.test.'", zone_id)
    # Counted: the two A records; not the SOA, nor the apex NS the pool manages.
    await policy.set_quotas(pool, "p1", {"zone_records": 3})
    await policy.check_quota(pool, "p1", "zone_records", zone_id=zone_id)
    with pytest.raises(policy.OverQuota):
        await policy.check_quota(pool, "p1", "zone_records", zone_id=zone_id, count=2)
    await policy.check_quota(pool, "p1", "zone_records", zone_id=zone_id, rrset_id=www, count=3)
    with pytest.raises(ValueError, match="needs zone_id"):
        await policy.check_quota(pool, "p1", "zone_records")


@pytest.mark.parametrize("limits, kind, have, count, over", [
    ({"zones": 3}, "zones", 2, 1, False),
    ({"zones": 3}, "zones", 3, 1, True),
    ({"zones": -1}, "zones", 10**6, 1, False),
    ({"recordset_records": 20}, "recordset_records", 0, 21, True),
])  # fmt: skip
def test_over_quota(limits, kind, have, count, over):
    assert (policy.over_quota(limits, kind, have, count) is not None) == over


async def test_a_new_zone_needs_a_listed_tld_and_may_not_be_one(pool):
    await policy.check_new_zone(pool, "anything.example.", "p1", False)  # no TLD list: any name
    await policy.create_row(pool, "tlds", "com", None)
    await policy.create_row(pool, "tlds", "co.uk", None)
    await policy.check_new_zone(pool, "example.com.", "p1", False)
    await policy.check_new_zone(pool, "example.co.uk.", "p1", False)
    for name, message in [("example.org.", "Invalid TLD"), ("com.", "same as a TLD"), ("co.uk.", "same as a TLD")]:
        with pytest.raises(policy.ZoneNameRefused, match=message):
            await policy.check_new_zone(pool, name, "p1", True)
    with pytest.raises(Invalid):
        await policy.check_new_zone(pool, "bad..name.", "p1", False)


async def test_a_blacklisted_name_is_refused_unless_admin(pool):
    await policy.create_row(pool, "blacklists", r"^evil\.", "no evil")
    with pytest.raises(policy.ZoneNameRefused, match="Blacklisted zone name: evil.example."):
        await policy.check_new_zone(pool, "EVIL.example", "p1", False)
    await policy.check_new_zone(pool, "evil.example.", "p1", True)
    await policy.check_new_zone(pool, "not-evil.example.", "p1", False)


async def test_tld_rows_are_created_renamed_and_deleted(pool):
    com = await policy.create_row(pool, "tlds", "com", "commercial")
    net = await policy.create_row(pool, "tlds", "net", None)
    with pytest.raises(policy.DuplicateTld):
        await policy.create_row(pool, "tlds", "com", None)
    with pytest.raises(policy.DuplicateTld):
        await policy.update_row(pool, "tlds", net["id"], {"name": "com"})
    with pytest.raises(Invalid, match="unknown field"):
        await policy.update_row(pool, "tlds", net["id"], {"pattern": "x"})
    assert (await policy.update_row(pool, "tlds", net["id"], {"name": "org"}))["name"] == "org"
    rows, total = await policy.list_rows(pool, "tlds")
    assert [r["name"] for r in rows] == ["com", "org"] and total == 2
    rows, total = await policy.list_rows(pool, "tlds", marker=com["id"])
    assert [r["name"] for r in rows] == ["org"] and total == 2
    await policy.delete_row(pool, "tlds", com["id"])
    with pytest.raises(policy.TldNotFound):
        await policy.get_row(pool, "tlds", com["id"])
    with pytest.raises(policy.BlacklistNotFound):
        await policy.delete_row(pool, "blacklists", uuid.uuid4())


@pytest.mark.parametrize("name, ok", [("com", True), ("co.uk", True), ("x_y", True), ("-com", False),
                                      ("com.", False), ("", False), (7, False), ("a" * 64, False)])  # fmt: skip
def test_tld_names_are_designates_tldname_format(name, ok):
    if ok:
        assert policy.tld_name(name) == name
    else:
        with pytest.raises(Invalid):
            policy.tld_name(name)
