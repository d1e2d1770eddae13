"""A batch read ahead (minidns/sink/lookahead.py) and written together (held resource states and
RRset rows): the same events leave exactly what they leave applied each in its own savepoint with
every read and write made at once (the path that reads nothing ahead), and a batch of creates
costs a few queries, not several per event."""

import asyncio
import copy
import json
import uuid
from pathlib import Path

from minidns.sink import ingest
from minidns.sink.envelope import open_event
from minidns.sink.ingest import ingest_many
from minidns.sink.lookahead import Guess, guess
from minidns.sink.settings import EventSettings
from minidns.store import db
from minidns.store.writer import Edit, Store

EVENTS = Path(__file__).parent.parent / "admin" / "events"
ZONES = ("cloud.test.", "acct.test.", "0.0.10.in-addr.arpa.", "0.0.0.0.0.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
         "113.0.203.in-addr.arpa.", "1.1.10.in-addr.arpa.")  # fmt: skip
SETTINGS = EventSettings(zone="cloud.test.", region="RegionOne", cloudstack_common_zone="acct.test.")


def load(name: str, **payload) -> dict:
    ev = json.loads((EVENTS / name).read_text())
    ev["message_id"] = str(uuid.uuid4())
    if "payload" in ev:
        ev["payload"].update(payload)
    return ev


def create(iid: str, host: str, *addresses: str) -> dict:
    return load("nova_compute.instance.create.end.json", instance_id=iid, hostname=host, display_name=host,
                fixed_ips=[{"address": a, "version": 6 if ":" in a else 4, "type": "fixed"} for a in addresses])  # fmt: skip


def delete(iid: str) -> dict:
    return load("nova_compute.instance.delete.end.json", instance_id=iid)


def fip(name: str) -> dict:
    ev = json.loads((EVENTS / name).read_text())
    ev["message_id"] = str(uuid.uuid4())
    return ev


def cloudstack(name: str) -> dict:
    ev = json.loads((EVENTS / name).read_text())
    ev["eventUuid"] = str(uuid.uuid4())
    return ev


A, B, C, D = (str(uuid.UUID(int=i)) for i in range(1, 5))


def story() -> list[dict]:
    """Events whose handlers read what earlier events of the same batch wrote: a name taken and
    freed, a floating IP following its instance, a port gone, a VM made and destroyed."""
    return [
        create(A, "web1", "10.0.0.5", "2001:db8:10::5"),
        fip("neutron_floatingip.update.end_associate.json"),  # 203.0.113.10 → 10.0.0.5: named after web1
        create(B, "web1", "10.0.0.6"),  # web1 is taken: B's address at its fallback name
        create(C, "db1", "10.0.0.7"),
        delete(A),  # web1 free again; the floating IP loses its instance
        create(D, "web1", "10.0.0.5"),  # takes web1 and A's address, so the floating IP follows it
        create(C, "db1", "10.0.0.7"),  # C again (a new message id): its records are there already
        fip("neutron_floatingip.update.end_disassociate.json"),
        fip("neutron_port.delete.end.json"),
        cloudstack("cloudstack_VM.CREATE.json"),
        cloudstack("cloudstack_VM.DESTROY.json"),
        delete(B),
    ]


async def zones_of(pool) -> Store:
    s = Store(pool)
    for name in ZONES:
        await s.create_zone(name, email=f"hostmaster@{name.rstrip('.')}", edits=[Edit("add", "@", "NS", 300, ("ns1.example.",))])
    return s


async def left(pool) -> tuple:
    """What the events left: the RRsets (but SOA), the resources, the events' rows."""
    rrsets = await pool.fetch(
        "SELECT z.name AS zone, r.name, r.type, r.ttl, r.records, r.managed, r.managed_source, r.managed_resource_type,"
        " r.managed_resource_id, r.managed_tenant_id, r.managed_extra FROM rrsets r JOIN zones z ON z.id = r.zone_id"
        " WHERE r.type <> 6 ORDER BY z.name, r.name, r.type",
    )  # fmt: skip
    resources = await pool.fetch(
        "SELECT source, resource_type, resource_id, state, tenant_id, data, event_time, last_message_id"
        " FROM event_resources ORDER BY 1, 2, 3",
    )  # fmt: skip
    events = await pool.fetch("SELECT message_id, status, reason, changes FROM events ORDER BY message_id")
    return [dict(r) for r in rrsets], [dict(r) for r in resources], [dict(r) for r in events]


async def apply_story(url: str, events: list[dict], batched: bool) -> tuple:
    """The story applied in one transaction, read ahead (`batched`) or each event in its savepoint."""
    pool = await db.create_pool(url)
    try:
        store = await zones_of(pool)
        if batched:
            out = await ingest_many(store, SETTINGS, copy.deepcopy(events))
        else:
            ready = [open_event(copy.deepcopy(ev)) for ev in events]
            out = await ingest.transaction(store, SETTINGS, ready, savepoints=True)
        return [(o.status, o.reason, o.changes) for o in out], await left(pool)
    finally:
        await pool.close()


def test_a_batch_read_ahead_leaves_what_each_event_alone_leaves(new_database):
    events = story()
    with new_database() as one, new_database() as other:
        batched = asyncio.run(apply_story(one, events, batched=True))
        alone = asyncio.run(apply_story(other, events, batched=False))
    assert [status for status, _, _ in batched[0]] == [
        "applied", "applied", "applied", "applied", "applied", "applied", "applied", "applied", "applied",
        "applied", "applied", "applied"]  # fmt: skip
    assert batched == alone
    rrsets = batched[1][0]
    names = {(r["name"], r["type"]): r["records"] for r in rrsets if r["managed"]}
    assert names[("web1.cloud.test.", 1)] == ["10.0.0.5"]  # D's, once A was gone
    assert names[("5.0.0.10.in-addr.arpa.", 12)] == ["web1.cloud.test."]
    assert not any(r["managed_resource_id"] in (A, B) for r in rrsets)


async def test_a_batch_of_creates_costs_a_few_queries_not_several_per_event(database_url):
    pool = await db.create_pool(database_url, size=1)
    try:
        store = await zones_of(pool)
        queries: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda q: queries.append(q.query))
        events = [create(str(uuid.uuid4()), f"h{i}", f"10.0.0.{i + 10}") for i in range(50)]
        out = await ingest_many(store, SETTINGS, events)
        assert [o.status for o in out] == ["applied"] * 50
        batch = [q for q in queries if not any(s in q for s in ("typeinfo_tree", "'jit'", "pg_advisory_unlock_all"))]  # asyncpg's own
        assert 5 <= len(batch) <= 12, batch  # BEGIN, 4 reads ahead, 2 held writes, 1 per zone changed, the rows, COMMIT
        rrsets, resources, _ = await left(pool)
        assert sum(r["type"] == 1 for r in rrsets) == 50 and sum(r["type"] == 12 for r in rrsets) == 50
        assert len(resources) == 50
    finally:
        await pool.close()


def test_the_guess_names_what_a_create_will_read():
    g = Guess()
    ev, header = open_event(create(A, "web1", "10.0.0.5"))
    guess(g, SETTINGS, ev, header)
    assert g.keys == {("nova", "instance", A)} and [i.rid for i in g.idents] == [A]
    assert "cloud.test." in g.zones and "0.0.10.in-addr.arpa." in g.zones and g.fixed_ips == {"10.0.0.5"}
    g2 = Guess()
    guess(g2, SETTINGS, *open_event(delete(A)))
    assert g2.deleted == [("nova", "instance", A)] and not g2.zones
    g3 = Guess()
    guess(g3, SETTINGS, *open_event(cloudstack("cloudstack_VM.CREATE.json")))
    assert g3.keys == {("cloudstack", "vm", "8a1a4f5c-5cf0-4b4f-9d59-5cfb1d1e0a11")} and {"acct.test.", "dom.test."} <= g3.zones
    g4 = Guess()
    guess(g4, SETTINGS, *open_event(fip("neutron_floatingip.update.end_associate.json")))  # read by its handler
    assert g4 == Guess()
