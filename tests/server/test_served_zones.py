"""The zones a server answers for (server/served_zones.py): zone files named with or without their
origin, a bad file reported while the rest load, a zone file shadowing a database zone of the same
name, and every swap of a database zone handed to the notifier."""

import pytest

from minidns.server.config import load_config
from minidns.answer.engine import Engine, EngineSettings
from minidns.server.served_zones import ServedZones, load_zones, zone_sources
from minidns.zones.loader import load_zone_text

ZONE = "$TTL 300\n@ SOA ns1 hostmaster {serial} 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n"


class Notifier:
    def __init__(self):
        self.changes, self.drops = [], []

    def changed(self, snap):
        self.changes.append((snap.name, snap.serial))

    def dropped(self, name):
        self.drops.append(name)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "a.test.zone").write_text(ZONE.format(serial=1))
    (tmp_path / "bad.zone").write_text("$TTL 300\n@ SOA ns1 hostmaster 1 2 3 4 5\nwww A not-an-address\n")
    return tmp_path


def test_zone_files_are_named_with_or_without_their_origin(files):
    path = str(files / "a.test.zone")
    config = load_config(None, {"zone_files": (path, f"b.test.={path}")})
    assert zone_sources(config) == [(None, path), ("b.test.", path)]


def test_a_bad_zone_file_is_reported_and_the_others_load(files):
    zones, errors = load_zones([("a.test.", str(files / "a.test.zone")), ("bad.test.", str(files / "bad.zone"))])
    assert [z.name for z in zones] == ["a.test."]
    assert len(errors) == 1 and "bad.zone:3" in errors[0]


async def test_a_zone_file_shadows_the_database_zone_of_its_name(files):
    engine, notifier = Engine(EngineSettings()), Notifier()
    served = ServedZones(engine, notifier, access=None)
    await served.load_files(load_config(None, {"zone_files": (f"a.test.={files / 'a.test.zone'}",)}))
    file_zone = engine.table.zones[b"\x01a\x04test\x00"]
    db_a, db_b = load_zone_text(ZONE.format(serial=9), "a.test."), load_zone_text(ZONE.format(serial=9), "b.test.")
    served.load_zones([db_a, db_b])
    assert engine.table.zones[db_a.origin] is file_zone and engine.table.zones[db_b.origin] is db_b
    served.put_zone(load_zone_text(ZONE.format(serial=10), "a.test."))
    served.put_zone(load_zone_text(ZONE.format(serial=10), "b.test."))
    assert engine.table.zones[db_a.origin] is file_zone and notifier.changes == [("b.test.", 10)]
    assert served.from_file(file_zone) and not served.from_file(db_b)
    assert served.has_file("a.test.") and not served.has_file("b.test.")
    served.drop_zone(engine.table.zones[db_b.origin])
    assert db_b.origin not in engine.table.zones and notifier.drops == ["b.test."]


async def test_reloading_swaps_in_changed_files_and_notifies_only_new_serials(files):
    engine, notifier = Engine(EngineSettings()), Notifier()
    served = ServedZones(engine, notifier, access=None)
    config = load_config(None, {"zone_files": (f"a.test.={files / 'a.test.zone'}",)})
    await served.load_files(config)
    await served.reload_files(config)  # the same serial: nothing to tell
    (files / "a.test.zone").write_text(ZONE.format(serial=2))
    await served.reload_files(config)
    assert engine.table.zones[b"\x01a\x04test\x00"].serial == 2 and notifier.changes == [("a.test.", 2)]
