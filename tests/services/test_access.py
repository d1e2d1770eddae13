"""Transfer settings (services/access.py): TSIG keys added, listed and deleted — a key secondaries
sign with is kept; a zone's allow-transfer list and secondaries written, checked, and read back by
the servers' loader (store/transfer_settings.load_settings); propagation status recorded."""

import base64
import datetime

import pytest

from minidns.services import access
from minidns.store.propagation_status import record_status
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.transfer_settings import load_settings
from minidns.store.writer import Conflict, NotFound, Store, StoreSettings

SECRET = base64.b64encode(b"k" * 32).decode()


@pytest.fixture
async def store(pool):
    s = Store(pool, StoreSettings(), stages=write_stages())
    await s.create_zone("a.test.", email="h@a.test")
    return s


async def test_a_key_is_added_listed_loaded_and_deleted(pool):
    name, alg, secret = await access.add_key(pool, "Xfr.Key", "hmac-sha256", SECRET)
    assert (name, alg, secret) == ("xfr.key.", "hmac-sha256", SECRET)
    made = await access.add_key(pool, "made.key")
    assert len(base64.b64decode(made[2])) == 32  # RFC 8945 §6: a secret as long as the hash
    assert await access.list_keys(pool) == [("made.key.", "hmac-sha256"), ("xfr.key.", "hmac-sha256")]
    async with pool.acquire() as conn:
        assert ("xfr.key.", "hmac-sha256", SECRET) in (await load_settings(conn)).keys
    with pytest.raises(Conflict, match="exists"):
        await access.add_key(pool, "xfr.key.", "hmac-sha256", SECRET)
    await access.delete_key(pool, "xfr.key")
    assert await access.list_keys(pool) == [("made.key.", "hmac-sha256")]
    with pytest.raises(NotFound):
        await access.delete_key(pool, "xfr.key")


@pytest.mark.parametrize("name, algorithm, secret", [
    ("bad..name", "hmac-sha256", SECRET),
    ("k.", "hmac-nonesuch", SECRET),
    ("k.", "hmac-sha256", "not base64!"),
])  # fmt: skip
async def test_a_bad_key_is_refused_and_nothing_stored(pool, name, algorithm, secret):
    with pytest.raises(Invalid):
        await access.add_key(pool, name, algorithm, secret)
    assert await access.list_keys(pool) == []


async def test_a_key_a_secondary_signs_with_is_kept(store, pool):
    await access.add_key(pool, "xfr.key.", "hmac-sha256", SECRET)
    await access.add_secondary(pool, "a.test.", "192.0.2.9", 5300, "xfr.key")
    with pytest.raises(Conflict, match="used by 1 secondary entry"):
        await access.delete_key(pool, "xfr.key.")
    async with pool.acquire() as conn:
        assert (await load_settings(conn)).secondaries["a.test."] == [("192.0.2.9", 5300, "xfr.key.")]
    await access.delete_secondary(pool, "a.test.", "192.0.2.9", 5300)
    await access.delete_key(pool, "xfr.key.")
    assert await access.list_keys(pool) == []


@pytest.mark.parametrize("address, port, key, error", [
    ("not-an-address", 53, None, Invalid),
    ("192.0.2.1", 0, None, Invalid),
    ("192.0.2.1", 65536, None, Invalid),
    ("192.0.2.1", 53, "no.such.key.", NotFound),
])  # fmt: skip
async def test_a_bad_secondary_is_refused_and_nothing_stored(store, pool, address, port, key, error):
    with pytest.raises(error):
        await access.add_secondary(pool, "a.test.", address, port, key)
    with pytest.raises(NotFound):
        await access.add_secondary(pool, "no-such.test.", "192.0.2.1")
    assert await pool.fetchval("SELECT count(*) FROM zone_secondaries") == 0


async def test_allow_transfer_is_written_checked_and_read_by_the_loader(store, pool):
    await access.set_allow_transfer(pool, "A.test", ["192.0.2.7/24", "2001:db8::1", "key:Xfr.Key"])
    async with pool.acquire() as conn:
        assert (await load_settings(conn)).acls == {"a.test.": ["192.0.2.0/24", "2001:db8::1/128", "key:xfr.key."]}
    with pytest.raises(Invalid, match="neither an address prefix nor key:NAME"):
        await access.set_allow_transfer(pool, "a.test.", ["192.0.2.1", "example.com"])
    async with pool.acquire() as conn:
        assert (await load_settings(conn)).acls["a.test."] == ["192.0.2.0/24", "2001:db8::1/128", "key:xfr.key."]
    await access.set_allow_transfer(pool, "a.test.", None)
    async with pool.acquire() as conn:
        assert (await load_settings(conn)).acls == {}
    with pytest.raises(NotFound):
        await access.set_allow_transfer(pool, "no-such.test.", [])


async def test_propagation_status_is_recorded_for_the_serial_it_was_for(store, pool):
    serial = await pool.fetchval("SELECT serial FROM zones WHERE name = 'a.test.'")
    seen = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
    await record_status(pool, "a.test.", serial, [("192.0.2.9#53", serial, "in-sync", seen)], "ACTIVE")
    zone, rows = await access.zone_status(pool, "a.test.")
    assert (zone["serial"], zone["status"], zone["action"]) == (serial, "ACTIVE", "NONE")
    assert [(r["secondary"], r["target"], r["serial"], r["state"], r["seen_at"]) for r in rows] == [
        ("192.0.2.9#53", serial, serial, "in-sync", seen)]
    # A status for a serial the zone has moved past is not written.
    await record_status(pool, "a.test.", serial - 1, [], "ERROR")
    assert (await access.zone_status(pool, "a.test."))[0]["status"] == "ACTIVE"
