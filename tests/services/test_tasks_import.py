"""Zone import and export tasks (services/tasks.py) run directly against a real database: an import
ends COMPLETE with its zone, or ERROR with the reason and nothing written; an export reads back
what imports again; imports a dead server left PENDING end in ERROR."""

import pytest

from minidns.services import policy, tasks
from minidns.store.stages import write_stages
from minidns.store.writer import Store, StoreSettings

ZONE = """$ORIGIN imported.test.
$TTL 300
@ IN SOA ns1.imported.test. hostmaster.imported.test. 7 3600 600 86400 300
@ IN NS ns1.imported.test.
ns1 IN A 192.0.2.1
www IN A 192.0.2.2
www IN A 192.0.2.3
"""


@pytest.fixture
def store(pool):
    return Store(pool, StoreSettings(), stages=write_stages())


async def run(store, text: str, project: str = "p1", is_admin: bool = False) -> dict:
    task = await tasks.create_task(store.pool, "IMPORT", project)
    assert task["status"] == "PENDING"
    await tasks.run_import(store, task["id"], project, text, is_admin)
    return await tasks.get_task(store.pool, "IMPORT", project, task["id"])


async def zones(pool) -> list[str]:
    return [r["name"] for r in await pool.fetch("SELECT name FROM zones ORDER BY name")]


async def test_an_import_completes_with_its_zone_and_exports_back(store, pool):
    done = await run(store, ZONE)
    assert done["status"] == "COMPLETE" and "imported the zone imported.test." in done["message"]
    zone = await pool.fetchrow("SELECT id, project_id, serial FROM zones WHERE name = 'imported.test.'")
    assert done["zone_id"] == zone["id"] and zone["project_id"] == "p1"
    www = await pool.fetchval("SELECT records FROM rrsets WHERE zone_id = $1 AND name = 'www.imported.test.'", zone["id"])
    assert sorted(www) == ["192.0.2.2", "192.0.2.3"]
    text = await tasks.export_text(store, zone["id"])
    assert "192.0.2.3" in text and "ns1.imported.test." in text
    await store.delete_zone(zone["id"])
    again = await run(store, text)
    assert again["status"] == "COMPLETE"
    assert await zones(pool) == ["imported.test."]


@pytest.mark.parametrize("text, message", [
    ("www 300 IN A 192.0.2.1\n", "$ORIGIN"),
    (ZONE + "bad IN A 999.0.2.1\n", "zonefile"),
    (ZONE.replace("@ IN SOA", "; no SOA"), ""),
])  # fmt: skip
async def test_a_bad_zone_file_ends_in_error_and_writes_nothing(store, pool, text, message):
    done = await run(store, text)
    assert done["status"] == "ERROR" and message in done["message"] and done["zone_id"] is None
    assert await zones(pool) == []


async def test_a_duplicate_or_over_quota_import_ends_in_error_and_writes_nothing(store, pool):
    assert (await run(store, ZONE))["status"] == "COMPLETE"
    dup = await run(store, ZONE, project="p2")
    assert (dup["status"], dup["message"]) == ("ERROR", "Duplicate zone.")
    await policy.create_row(pool, "blacklists", "^other", None)
    refused = await run(store, ZONE.replace("imported.test.", "other.test."), project="p2")
    assert refused["status"] == "ERROR" and "Blacklisted zone name" in refused["message"]
    assert await zones(pool) == ["imported.test."]


async def test_tasks_are_seen_by_their_project_and_stale_imports_fail(store, pool):
    task = await tasks.create_task(pool, "IMPORT", "p1")
    with pytest.raises(tasks.TaskNotFound):
        await tasks.get_task(pool, "IMPORT", "p2", task["id"])
    with pytest.raises(tasks.TaskNotFound):
        await tasks.get_task(pool, "EXPORT", "p1", task["id"])
    assert (await tasks.get_task(pool, "IMPORT", None, task["id"]))["id"] == task["id"]  # an admin sees all
    assert await tasks.fail_stale_imports(pool) == 0  # a fresh one is not stale
    assert await tasks.fail_stale_imports(pool, older_than=0) == 1
    failed = await tasks.get_task(pool, "IMPORT", "p1", task["id"])
    assert (failed["status"], failed["message"]) == ("ERROR", tasks.INTERRUPTED)
    await tasks.delete_task(pool, "IMPORT", "p1", task["id"])
    with pytest.raises(tasks.TaskNotFound):
        await tasks.delete_task(pool, "IMPORT", "p1", task["id"])
    export = await tasks.create_task(pool, "EXPORT", "p1", location_for_export=True)
    assert export["location"] == tasks.export_location(export["id"]) and str(export["id"]) in export["location"]
