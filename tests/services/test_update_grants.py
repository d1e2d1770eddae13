"""UPDATE grants in the database (services/update_grants.py): added at the end or at a position,
listed in order and by key or zone, deleted with the rest closing up, refused when they are no
grant, each change NOTIFYing the servers; read back by the servers' loader
(store/transfer_settings.load_settings) as Grant values in position order."""

import asyncio
import uuid

import dns.name
import pytest

from minidns.services import update_grants as ug
from minidns.store import db
from minidns.store.records import Invalid, NotFound
from minidns.store.transfer_settings import load_settings
from minidns.xfr.grants import decide, grant_from

N = dns.name.from_text


def entry(**kw) -> dict:
    return {"key": "ddns-key.", "zone": "example.com.", "match": "zone", **kw}


async def test_grants_are_kept_in_the_order_given_and_close_up_on_delete(pool):
    a = await ug.add_grant(pool, entry(match="subdomain", pattern="dyn.example.com.", types=["A", "TXT"]), description="dhcp")
    b = await ug.add_grant(pool, entry(key="acme-key."))
    c = await ug.add_grant(pool, entry(match="name", pattern="ns1.example.com.", action="deny"), position=1)
    d = await ug.add_grant(pool, entry(zone=None, match="selfsub", managed=True), position=3)
    listed = await ug.list_grants(pool)
    assert [(g["id"], g["position"]) for g in listed] == [(c["id"], 1), (a["id"], 2), (d["id"], 3), (b["id"], 4)]
    assert listed[1] == {**a, "position": 2}
    assert {k: a[k] for k in ("key", "zone", "match", "pattern", "types", "action", "managed", "description")} == {
        "key": "ddns-key.", "zone": "example.com.", "match": "subdomain", "pattern": "dyn.example.com.",
        "types": ["A", "TXT"], "action": "grant", "managed": False, "description": "dhcp"}  # fmt: skip
    assert await ug.get_grant(pool, str(d["id"])) == {**d, "position": 3}
    await ug.delete_grant(pool, a["id"])
    assert [(g["id"], g["position"]) for g in await ug.list_grants(pool)] == [(c["id"], 1), (d["id"], 2), (b["id"], 3)]
    with pytest.raises(NotFound, match="no update grant"):
        await ug.delete_grant(pool, a["id"])
    with pytest.raises(NotFound):
        await ug.get_grant(pool, uuid.uuid4())
    with pytest.raises(Invalid, match="not a grant id"):
        await ug.delete_grant(pool, "nonesuch")


async def test_the_list_is_filtered_by_key_and_by_the_zone_a_grant_applies_to(pool):
    one = await ug.add_grant(pool, entry())
    every = await ug.add_grant(pool, entry(zone=None))
    other = await ug.add_grant(pool, entry(key="Other-Key", zone="example.org."))
    ids = lambda gs: [g["id"] for g in gs]  # noqa: E731
    assert ids(await ug.list_grants(pool, key="DDNS-key")) == [one["id"], every["id"]]
    assert ids(await ug.list_grants(pool, key="other-key.")) == [other["id"]]
    assert ids(await ug.list_grants(pool, zone="Example.COM")) == [one["id"], every["id"]]
    assert ids(await ug.list_grants(pool, key="other-key", zone="example.org")) == [other["id"]]
    with pytest.raises(Invalid, match="key 'a..b' is not a domain name"):
        await ug.list_grants(pool, key="a..b")


@pytest.mark.parametrize("bad, position, message", [
    (entry(match="wildcard", pattern="dyn.example.com."), None, "does not start with a '*' label"),
    (entry(match="name", pattern="www.example.org."), None, "outside the zone"),
    (entry(types=["A", "RRSIG"]), None, "RRSIG is a DNSSEC type"),
    (entry(match="bogus"), None, "is not one of"),
    (entry(), 0, "position must be a whole number from 1"),
    (entry(), 3, "position 3 is past the end: there are 1 grant(s)"),
])  # fmt: skip
async def test_a_bad_grant_or_position_stores_nothing(pool, bad, position, message):
    await ug.add_grant(pool, entry())
    with pytest.raises(Invalid) as e:
        await ug.add_grant(pool, bad, position=position)
    assert message in str(e.value)
    assert len(await ug.list_grants(pool)) == 1


async def test_every_change_notifies_the_servers(pool, database_url):
    conn = await db.connect(database_url)
    heard: asyncio.Queue = asyncio.Queue()
    await conn.add_listener(db.CONFIG_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        made = await ug.add_grant(pool, entry())
        assert await asyncio.wait_for(heard.get(), 5) == "grants"
        await ug.delete_grant(pool, made["id"])
        assert await asyncio.wait_for(heard.get(), 5) == "grants"
    finally:
        await conn.close()


async def test_the_servers_read_the_grants_in_position_order(pool):
    await ug.add_grant(pool, entry(types=["A"]))
    await ug.add_grant(pool, entry(match="subdomain", pattern="web.example.com.", action="deny"), position=1)
    async with pool.acquire() as conn:
        grants = (await load_settings(conn)).update_grants
    assert grants == (grant_from(entry(match="subdomain", pattern="web.example.com.", action="deny")), grant_from(entry(types=["A"])))
    key, zone = N("ddns-key."), N("example.com.")
    assert not decide(grants, key, zone, N("a.web.example.com."), 1).allow
    assert decide(grants, key, zone, N("www.example.com."), 1).allow
    assert decide(grants, key, zone, N("www.example.com."), 16) is None


async def test_a_row_written_around_the_service_ends_the_table_there(pool, caplog):
    """A deny rule that cannot be read must not let the grants after it through: the loader keeps
    the grants before it only."""
    await ug.add_grant(pool, entry(types=["A"]))
    await ug.add_grant(pool, entry(match="name", pattern="ns1.example.com.", action="deny"))
    await ug.add_grant(pool, entry())
    await pool.execute("UPDATE update_grants SET types = '{RRSIG}' WHERE position = 2")
    async with pool.acquire() as conn:
        grants = (await load_settings(conn)).update_grants
    assert grants == (grant_from(entry(types=["A"])),)
    assert "position 2) is not valid; it and the grants after it are not used" in caplog.text


async def test_concurrent_adds_keep_positions_one_to_n(pool):
    made = await asyncio.gather(*(ug.add_grant(pool, entry(key=f"k{i}.")) for i in range(8)))
    assert sorted(g["position"] for g in await ug.list_grants(pool)) == list(range(1, 9))
    await asyncio.gather(*(ug.delete_grant(pool, g["id"]) for g in made[::2]))
    assert [g["position"] for g in await ug.list_grants(pool)] == [1, 2, 3, 4]
