"""What the sink knows of a resource decides whether an event about it applies
(minidns/sink/resources.py skip_reason): a tombstone, or a newer event applied already."""

import datetime

import pytest

from minidns.sink.resources import deleted_already, skip_reason

T0 = datetime.datetime(2024, 3, 5, 10, 14, 48, tzinfo=datetime.UTC)
LATER = T0 + datetime.timedelta(minutes=5)


def row(state: str, event_time=T0) -> dict:
    return {"state": state, "event_time": event_time, "last_message_id": "m-1"}


SKIPS = [
    (None, LATER, None),  # never heard of: applies
    (row("live"), LATER, None),  # newer news: applies
    (row("live"), T0, None),  # the same time: applies (a repeat is caught by its message id)
    (row("live"), T0 - datetime.timedelta(seconds=1), "instance i-1 has a newer event applied already (m-1)"),
    (row("live", None), T0, None),  # nothing to compare with
    (row("live"), None, None),
    (row("deleted"), LATER, "instance i-1 was deleted (by m-1) before this event arrived"),
    (row("deleted", None), None, "instance i-1 was deleted (by m-1) before this event arrived"),
]


@pytest.mark.parametrize("known, event_time, reason", SKIPS)
def test_skip_reason(known, event_time, reason):
    assert skip_reason(known, "instance i-1", event_time) == reason


def test_deleted_already():
    assert deleted_already(row("deleted")) and not deleted_already(row("live")) and not deleted_already(None)


async def test_held_states_are_the_rows_the_table_will_have_and_reach_it_before_any_query(pool):
    from minidns.sink.resources import Resources

    t0 = datetime.datetime(2024, 3, 5, 10, 0, tzinfo=datetime.UTC)
    async with pool.acquire() as conn, conn.transaction():
        direct = Resources(conn, batched=False)
        await direct.put("neutron", "floatingip", "f1", "live", "p1", {"fixed_ip": "10.0.0.5"}, t0, "m0")
        held = Resources(conn, batched=True)
        await held.prefetch([("neutron", "floatingip", "f1"), ("nova", "instance", "i1")], ["10.0.0.5", "10.0.0.6"])
        assert held.rows[("nova", "instance", "i1")] is None and await held.floatingips_at(["10.0.0.5"]) == ["f1"]
        await held.put("neutron", "floatingip", "f1", "live", None, {"fixed_ip": "10.0.0.6"}, t0 - datetime.timedelta(1), "m1")
        await held.put("nova", "instance", "i1", "live", "p1", {"addresses": ("10.0.0.6",)}, t0, "m2")
        assert await conn.fetchval("SELECT count(*) FROM event_resources") == 1  # held
        assert await held.floatingips_at(["10.0.0.5"]) == [] and await held.floatingips_at(["10.0.0.6"]) == ["f1"]  # no query
        kept = {k: held.rows[k] for k in [("neutron", "floatingip", "f1"), ("nova", "instance", "i1")]}
        assert (await held.instance_at("10.0.0.6", "p1"))["resource_id"] == "i1"  # a query: the held states first
        for (source, rtype, rid), row in kept.items():
            stored = dict(await conn.fetchrow(
                "SELECT source, resource_type, resource_id, state, tenant_id, data, event_time, last_message_id"
                " FROM event_resources WHERE source = $1 AND resource_type = $2 AND resource_id = $3", source, rtype, rid))  # fmt: skip
            assert stored == row  # tenant kept (COALESCE), the newer time kept (GREATEST), data as JSON has it
        assert await held.floatingips_at(["10.0.0.7"]) == []  # not read ahead: asked of the table
