"""Signatures refreshed in every signed zone (store/resign.py), against a real PostgreSQL: only
signed zones are visited, and only those with signatures nearing expiry get a change."""

from minidns.services import dnssec
from minidns.store.resign import refresh_all, signed_zones
from minidns.store.signing import REFRESH_LEFT, VALIDITY

from test_follow import ZONE, make_zone, store  # noqa: F401  (store: a fixture)

MASTER = bytes(range(32))


async def test_only_signed_zones_are_listed(store, pool):  # noqa: F811
    store.master = MASTER
    z = await make_zone(store)
    await store.create_zone("plain.test.", email="hostmaster@plain.test")
    assert await signed_zones(pool) == []
    await dnssec.enable(store, ZONE, MASTER)
    assert await signed_zones(pool) == [(z.zone_id, ZONE)]


async def test_a_zone_with_signatures_nearing_expiry_gets_a_change(store, pool):  # noqa: F811
    store.master = MASTER
    await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER)
    assert await refresh_all(store) == []  # none due: no change, no serial spent
    serial = await pool.fetchval("SELECT serial FROM zones WHERE name = $1", ZONE)
    real = store.clock
    later = real() + VALIDITY * (1 - REFRESH_LEFT) + 3600
    store.clock = lambda: later  # every signature now due
    try:
        assert await refresh_all(store) == [(ZONE, serial + 1)]
    finally:
        store.clock = real
