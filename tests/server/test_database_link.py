"""A server process's link to PostgreSQL (server/database_link.py) against a real database: opened,
its zones loaded into the sink and kept current, the change log read for IXFR, closed again; an
unreadable change log gives None (the transfer then sends the whole zone)."""

import asyncio

from minidns.server.config import load_config
from minidns.server.database_link import DatabaseLink, embedded_master_key_file
from minidns.store.writer import Edit

ZONE = "link.test."


class Sink:
    """Zones by name, as the engine would hold them."""

    def __init__(self):
        self.zones = {}

    def load_zones(self, snapshots):
        self.zones = {s.name: s for s in snapshots}

    def put_zone(self, snapshot):
        self.zones[snapshot.name] = snapshot

    def drop_zone(self, snapshot):
        self.zones.pop(snapshot.name, None)


async def _until(cond) -> None:
    while not cond():
        await asyncio.sleep(0.01)


async def test_the_database_zones_are_followed_and_their_history_read(database_url):
    link, sink = DatabaseLink(load_config(None, {"database_url": database_url}), "worker"), Sink()
    await link.open(sink)
    try:
        store = link.database.store
        created = await store.create_zone(ZONE, email="hostmaster@link.test", edits=[Edit("add", "@", "NS", None, ("ns1",))])
        changed = await store.change(ZONE, [Edit("add", "www", "A", 300, ("192.0.2.1",))], source="test")
        await asyncio.wait_for(_until(lambda: ZONE in sink.zones and sink.zones[ZONE].serial == changed.serial_to), 10)
        rows = await link.history(ZONE)
        assert [(r["serial_from"], r["serial_to"]) for r in rows] == [(created.serial_to, changed.serial_to)]
        assert link.follower.state == "ready"
    finally:
        await link.close()
    assert link.xfr_pool is None


async def test_an_unreadable_change_log_gives_none(database_url):
    link = DatabaseLink(load_config(None, {"database_url": database_url}), "worker")
    await link.open(Sink())
    await link.xfr_pool.close()  # every read of the change log now fails
    try:
        assert await link.history(ZONE) is None
    finally:
        link.xfr_pool = None
        await link.close()


def test_the_embedded_master_key_is_in_the_data_directory(tmp_path):
    config = load_config(None, {"data_dir": str(tmp_path)})
    assert embedded_master_key_file(config) == str(tmp_path / "master.key")
