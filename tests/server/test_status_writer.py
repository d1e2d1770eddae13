"""Propagation status written to a real database (server/status_writer.py): the newest state of a
zone recorded, zone files left alone, and zones left unsettled NOTIFYed again at start."""

import asyncio
from types import SimpleNamespace

import pytest

from minidns.answer.engine import Engine, EngineSettings
from minidns.server.status_writer import StatusWriter, status_rows
from minidns.store import db
from minidns.services.access import zone_status
from minidns.store.writer import Edit, Store
from minidns.xfr.propagation import SecondaryState, ZoneState
from minidns.zones.loader import load_zone_text

ZONE = "status.test."


class Files:
    """Zone files by name, as server/served_zones.py answers for them."""

    def __init__(self, *names):
        self.names = set(names)

    def has_file(self, name):
        return name in self.names


class Notifier:
    def __init__(self):
        self.changed_zones = []

    def changed(self, snap):
        self.changed_zones.append(snap.name)


@pytest.fixture
async def pool(database_url):
    p = await db.create_pool(database_url, size=4)
    yield p
    await p.close()


async def _zone(pool) -> int:
    change = await Store(pool).create_zone(ZONE, email="hostmaster@status.test", edits=[Edit("add", "@", "NS", None, ("ns1",))])
    return change.serial_to


def _state(serial, status, *secondaries) -> ZoneState:
    return ZoneState(ZONE, serial, 100.0, status, {label: SecondaryState(serial, seen, state) for label, seen, state in secondaries})


def test_each_secondary_becomes_a_row_with_its_time_in_utc():
    rows = status_rows(_state(7, "PENDING", ("192.0.2.1#53", 1796047200.0, "OK"), ("192.0.2.2#53", None, "PENDING")))
    assert [(label, serial, state, seen and seen.isoformat()) for label, serial, state, seen in rows] == [
        ("192.0.2.1#53", 7, "OK", "2026-11-30T14:00:00+00:00"), ("192.0.2.2#53", 7, "PENDING", None)]


async def _until(cond) -> None:
    while not await cond():
        await asyncio.sleep(0.01)


async def test_the_newest_state_of_a_database_zone_is_recorded(pool):
    serial = await _zone(pool)
    writer = StatusWriter(SimpleNamespace(database=SimpleNamespace(pool=pool)), Files())
    writer.on_status(_state(serial, "PENDING", ("192.0.2.1#53", None, "PENDING")))
    writer.on_status(_state(serial, "ACTIVE", ("192.0.2.1#53", 1796047200.0, "OK")))

    async def active():
        return (await zone_status(pool, ZONE))[0]["status"] == "ACTIVE"

    await asyncio.wait_for(_until(active), 10)
    await writer.writer
    _, secondaries = await zone_status(pool, ZONE)
    assert [(s["secondary"], s["state"]) for s in secondaries] == [("192.0.2.1#53", "OK")]


async def test_a_zone_file_and_a_server_without_database_record_nothing(pool):
    serial = await _zone(pool)
    StatusWriter(SimpleNamespace(database=SimpleNamespace(pool=pool)), Files(ZONE)).on_status(_state(serial, "ACTIVE"))
    no_db = StatusWriter(SimpleNamespace(database=None), Files())
    no_db.on_status(_state(serial, "ACTIVE"))
    assert no_db.writer is None and not no_db.dirty
    await asyncio.sleep(0.1)
    assert (await zone_status(pool, ZONE))[0]["status"] != "ACTIVE"


async def test_unsettled_zones_served_here_are_notified_again(pool):
    await _zone(pool)
    engine, notifier = Engine(EngineSettings()), Notifier()
    engine.set_zones([load_zone_text("$TTL 60\n@ SOA ns1 h 1 1 1 1 1\n@ NS ns1\n", ZONE)])
    await StatusWriter(SimpleNamespace(database=SimpleNamespace(pool=pool)), Files()).resume(notifier, engine)
    assert notifier.changed_zones == [ZONE]
