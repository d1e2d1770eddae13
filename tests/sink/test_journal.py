"""The events table (sink/journal.py) against a real database: each event's row written once and
updated when the event comes again (attempts counted, applied_at set only when applied), the rows
seen before found by message id, and read back one by one or listed newest first by status."""

import datetime

import pytest

from minidns.sink import journal
from minidns.sink.outcome import Unavailable

T = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def row(mid: str, status: str, reason=None, changes=()) -> tuple:
    return (mid, "nova", "compute.instance.create.end", "compute.host1", status, reason, list(changes),
            {"event_type": "compute.instance.create.end"}, T)  # fmt: skip


async def test_rows_are_recorded_found_and_read_back(pool):
    await journal.record(pool, [row("m1", "applied", changes=[{"name": "vm.cloud.test.", "type": "A"}]),
                                row("m2", "failed", "no zone")])  # fmt: skip
    await journal.record(pool, [])
    async with pool.acquire() as conn, conn.transaction():
        seen = await journal.recorded(conn, ["m1", "m2", "m3"], 1)
    assert set(seen) == {"m1", "m2"}
    assert (seen["m2"]["status"], seen["m2"]["reason"], seen["m2"]["changes"]) == ("failed", "no zone", [])
    m1 = await journal.get_event(pool, "m1")
    assert (m1["source"], m1["publisher_id"], m1["attempts"], m1["event_time"]) == ("nova", "compute.host1", 1, T)
    assert m1["changes"] == [{"name": "vm.cloud.test.", "type": "A"}] and m1["applied_at"] is not None
    m2 = await journal.get_event(pool, "m2")
    assert m2["applied_at"] is None
    assert await journal.get_event(pool, "m3") is None


async def test_an_event_sent_again_updates_its_row(pool):
    await journal.record(pool, [row("m1", "failed", "no zone")])
    await journal.record(pool, [row("m1", "applied")])
    again = await journal.get_event(pool, "m1")
    assert (again["status"], again["reason"], again["attempts"]) == ("applied", None, 2)
    assert again["applied_at"] is not None
    assert await pool.fetchval("SELECT count(*) FROM events") == 1


async def test_events_are_listed_newest_first_by_status(pool):
    for mid, status in [("m1", "applied"), ("m2", "ignored"), ("m3", "applied")]:
        await journal.record(pool, [row(mid, status)])
    assert [e["message_id"] for e in await journal.list_events(pool, None, 10)] == ["m3", "m2", "m1"]
    assert [e["message_id"] for e in await journal.list_events(pool, "applied", 10)] == ["m3", "m1"]
    assert [e["message_id"] for e in await journal.list_events(pool, None, 1)] == ["m3"]
    assert await journal.list_events(pool, "failed", 10) == []


async def test_the_database_away_is_unavailable(pool):
    await pool.close()  # every connection gone, as when PostgreSQL cannot be reached
    with pytest.raises(Unavailable, match="not reachable"):
        await journal.get_event(pool, "m1")
    with pytest.raises(Unavailable, match="not reachable"):
        await journal.list_events(pool, None, 10)


async def test_the_lookup_takes_the_events_lock_first_even_when_no_message_is_known(pool):
    from minidns.sink.ingest import EVENTS_LOCK

    async with pool.acquire() as conn, conn.transaction():
        assert await journal.recorded(conn, ["never-seen"], EVENTS_LOCK) == {}
        async with pool.acquire() as other:
            assert await other.fetchval("SELECT pg_try_advisory_xact_lock($1)", EVENTS_LOCK) is False
    async with pool.acquire() as other:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", EVENTS_LOCK) is True  # released at commit
        await other.execute("SELECT pg_advisory_unlock($1)", EVENTS_LOCK)
