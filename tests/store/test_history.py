"""The change log as IXFR reads it (store/history.py), against a real PostgreSQL: every logged
difference of a zone in order, each one's removed and added records as written."""

import dns.name

from minidns.store.history import change_history
from minidns.store.writer import Edit
from minidns.zones.changes import unpack_rrs

from test_follow import ZONE, make_zone, store  # noqa: F401  (store: a fixture)

NEW = dns.name.from_text("new", dns.name.from_text(ZONE)).to_wire().lower()


async def test_the_history_is_every_difference_in_order(store, pool):  # noqa: F811
    z = await make_zone(store)
    first = await store.change(ZONE, [Edit("add", "new", "A", 300, ("192.0.2.7",))], source="test")
    second = await store.change(ZONE, [Edit("delete", "new", "A")], source="test")
    rows = await change_history(pool, ZONE)
    assert [(r["serial_from"], r["serial_to"]) for r in rows] == [
        (first.serial_from, first.serial_to), (second.serial_from, second.serial_to)]  # the creation is no difference
    assert first.serial_from == z.serial_to and second.serial_from == first.serial_to
    added = [rr for rr in unpack_rrs(rows[0]["added"]) if rr[1] == 1]
    removed = [rr for rr in unpack_rrs(rows[1]["removed"]) if rr[1] == 1]
    assert added == [(NEW, 1, 300, bytes([192, 0, 2, 7]))] and removed == added


async def test_the_zone_is_named_in_any_letter_case(store, pool):  # noqa: F811
    await make_zone(store)
    await store.change(ZONE, [Edit("add", "www", "A", 300, ("192.0.2.7",))], source="test")
    assert len(await change_history(pool, ZONE.upper())) == 1


async def test_a_zone_not_in_the_database_has_no_history(pool):
    assert await change_history(pool, "nowhere.test.") == []
