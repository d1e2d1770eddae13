"""The Follower against a real PostgreSQL: zones appear, change, vanish; a gap or a pruned log makes
it load a zone whole; lost notifications and a lost connection delay changes but never lose them;
and applying the change log gives exactly what loading the zone afresh gives."""

import asyncio
import contextlib
import random
import time

import dns.name
import dns.rdatatype
import pytest

from minidns.store import db
from minidns.store.follow import Follower, load_zones
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, NotFound, Store, StoreSettings, ZoneLog
from minidns.zones.changes import unpack_rrs
from minidns.wire import NOERROR, NXDOMAIN
from minidns.zones.lookup import resolve

ZONE = "zone.test."
ORIGIN = dns.name.from_text(ZONE).to_wire()


class Sink:
    """Zones by origin, as the server's engine keeps them: a drop only removes the snapshot it
    names, never a newer one put for the same origin."""

    def __init__(self):
        self.zones: dict[bytes, object] = {}
        self.loads = 0
        self.puts = 0

    def load_zones(self, snapshots):
        self.loads += 1
        self.zones = {s.origin: s for s in snapshots}

    def put_zone(self, snapshot):
        self.puts += 1
        self.zones[snapshot.origin] = snapshot

    def drop_zone(self, snapshot):
        if self.zones.get(snapshot.origin) is snapshot:
            del self.zones[snapshot.origin]


async def wait_until(cond, timeout=2.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def following(url, sink=None, **kw):
    """A started Follower with its run loop going; stopped and cancelled on exit."""
    f = Follower(url, sink if sink is not None else Sink(), **kw)
    await f.start()
    task = asyncio.create_task(f.run())
    try:
        yield f
    finally:
        await stop_running(f, task)


async def stop_running(f, task):
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await f.stop()


@pytest.fixture
def store(pool):
    return Store(pool, stages=write_stages())


def w(name: str) -> bytes:
    return dns.name.from_text(name, dns.name.from_text(ZONE)).to_wire().lower()


def ask(snap, name, rtype="A"):
    return resolve(snap, w(name), dns.rdatatype.from_text(rtype))


def serial_of(sink, origin=ORIGIN):
    snap = sink.zones.get(origin)
    return None if snap is None else snap.serial


async def fresh(url) -> dict:
    """Every zone loaded whole from the database now, by origin."""
    conn = await db.connect(url)
    try:
        return {h.snapshot.origin: h.snapshot for h in await load_zones(conn)}
    finally:
        await conn.close()


def same_snapshot(a, b):
    assert a.nodes == b.nodes
    assert a.cuts == b.cuts
    assert a.dnames == b.dnames
    assert a.serial == b.serial
    assert a.soa.ttl == b.soa.ttl and a.neg_ttl == b.neg_ttl


async def db_serial(pool, name=ZONE):
    return await pool.fetchval("SELECT serial FROM zones WHERE name = $1", name)


async def make_zone(store, name=ZONE, ip="192.0.2.1", **kw):
    return await store.create_zone(
        name, email=f"hostmaster@{name}",
        edits=[Edit("add", "www", "A", records=(ip,)), Edit("add", "@", "NS", records=("ns1",)),
               Edit("add", "ns1", "A", records=("192.0.2.53",))],
        **kw,
    )  # fmt: skip


# -- basic following -----------------------------------------------------------------------------


async def test_start_on_empty_database(database_url):
    sink = Sink()
    f = Follower(database_url, sink)
    assert f.state == "loading"
    await f.start()
    try:
        assert f.state == "ready"
        assert sink.zones == {} and sink.loads == 1 and f.held == {}
    finally:
        await f.stop()


async def test_start_loads_existing_zones(store, database_url):
    await make_zone(store)
    await make_zone(store, "other.test.")
    sink = Sink()
    f = Follower(database_url, sink)
    await f.start()
    try:
        assert set(sink.zones) == {ORIGIN, dns.name.from_text("other.test.").to_wire()}
        assert ask(sink.zones[ORIGIN], "www").answer[0].rdatas == (bytes([192, 0, 2, 1]),)
    finally:
        await f.stop()


async def test_create_change_delete_followed(store, pool, database_url):
    async with following(database_url) as f:
        sink = f.sink
        await make_zone(store)
        await wait_until(lambda: serial_of(sink) == 1, what="the new zone")
        snap1 = sink.zones[ORIGIN]
        assert ask(snap1, "www").answer and ask(snap1, "a.b.c").rcode == NXDOMAIN
        applied = f.applied

        await store.change(ZONE, [Edit("add", "a.b.c", "A", records=("192.0.2.7",))], source="t")
        await wait_until(lambda: serial_of(sink) == 2, what="serial 2")
        assert f.applied == applied + 1  # through the change log, not a reload
        snap2 = sink.zones[ORIGIN]
        assert ask(snap2, "a.b.c").answer[0].rdatas == (bytes([192, 0, 2, 7]),)
        ans = ask(snap2, "b.c")
        assert ans.rcode == NOERROR and not ans.answer  # an empty non-terminal
        assert ask(snap1, "a.b.c").rcode == NXDOMAIN  # the old snapshot is as it was
        same_snapshot(snap2, (await fresh(database_url))[ORIGIN])

        await store.change(ZONE, [Edit("delete", "a.b.c", "A"), Edit("replace", "www", "A", ttl=60, records=("192.0.2.9",))], source="t")
        await wait_until(lambda: serial_of(sink) == 3, what="serial 3")
        assert f.applied == applied + 2
        snap3 = sink.zones[ORIGIN]
        assert ask(snap3, "b.c").rcode == NXDOMAIN
        www = ask(snap3, "www").answer[0]
        assert (www.ttl, www.rdatas) == (60, (bytes([192, 0, 2, 9]),))
        same_snapshot(snap3, (await fresh(database_url))[ORIGIN])

        await store.change(ZONE, fields={"minimum": 42}, source="t")
        await wait_until(lambda: serial_of(sink) == 4, what="serial 4")
        assert sink.zones[ORIGIN].neg_ttl == 42

        await store.delete_zone(ZONE)
        await wait_until(lambda: ORIGIN not in sink.zones, what="the zone to be dropped")
        assert f.held == {} and f.state == "ready"


async def test_a_change_committed_here_is_taken_at_once_and_its_notification_reads_nothing(store, pool, database_url):
    async with following(database_url) as f:
        sink = f.sink
        await make_zone(store)
        await wait_until(lambda: serial_of(sink) == 1, what="the new zone")
        change = await store.change(ZONE, [Edit("add", "here", "A", records=("192.0.2.8",))], source="t")
        puts = sink.puts
        assert f.take_committed(change.zone_id, change.serial_from, change.serial_to, change.logged)  # before its NOTIFY
        assert serial_of(sink) == 2 and ask(sink.zones[ORIGIN], "here").answer and sink.puts == puts + 1
        same_snapshot(sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
        await asyncio.sleep(0.3)  # its notification comes, finds the serial held, and reads nothing
        assert sink.puts == puts + 1 and f.held[change.zone_id].seq == change.logged[0]
        # not following on from the serial held (another change came between): left to the log
        a = await store.change(ZONE, [Edit("add", "a1", "A", records=("192.0.2.9",))], source="t")
        b = await store.change(ZONE, [Edit("add", "a2", "A", records=("192.0.2.10",))], source="t")
        assert not f.take_committed(b.zone_id, b.serial_from, b.serial_to, b.logged) or serial_of(sink) == a.serial_to + 1
        await wait_until(lambda: serial_of(sink) == b.serial_to, what="both through the log")
        same_snapshot(sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
        assert not f.take_committed(a.zone_id, a.serial_from, a.serial_to, a.logged)  # old news: nothing moves back
        assert serial_of(sink) == b.serial_to


async def test_zone_deleted_and_recreated_with_same_name(store, database_url):
    async with following(database_url) as f:
        sink = f.sink
        old = await make_zone(store, ip="192.0.2.1")
        await wait_until(lambda: ORIGIN in sink.zones, what="the zone")
        # Delete and re-create at once: same name, same serial (1), new id and data.
        await store.delete_zone(ZONE)
        new = await make_zone(store, ip="192.0.2.2")
        await wait_until(lambda: set(f.held) == {new.zone_id}, what="the new zone's id")
        await asyncio.sleep(0.1)  # let any late notification for the old id be handled
        assert ask(sink.zones[ORIGIN], "www").answer[0].rdatas == (bytes([192, 0, 2, 2]),)
        assert old.zone_id not in f.held
        same_snapshot(sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])


async def test_zone_deleted_and_recreated_while_not_following(store, database_url):
    f = Follower(database_url, Sink())
    await make_zone(store, ip="192.0.2.1")
    await f.start()
    try:
        await store.delete_zone(ZONE)
        new = await make_zone(store, ip="192.0.2.2")
        await f.reconcile()
        assert set(f.held) == {new.zone_id}
        assert ask(f.sink.zones[ORIGIN], "www").answer[0].rdatas == (bytes([192, 0, 2, 2]),)
    finally:
        await f.stop()


# -- catching up: the log, gaps, pruned logs -----------------------------------------------------


async def test_catch_up_through_the_log(store, database_url):
    await make_zone(store)
    f = Follower(database_url, Sink())
    await f.start()
    task = asyncio.create_task(f.run())
    try:
        await asyncio.sleep(0.05)
        task.cancel()  # stop following
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for i in range(3):
            await store.change(ZONE, [Edit("add", f"n{i}", "A", records=("192.0.2.1",))], source="t")
        assert serial_of(f.sink) == 1
        await f.reconcile()
        assert serial_of(f.sink) == 4 and f.applied == 3
        same_snapshot(f.sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
    finally:
        await f.stop()


async def test_pruned_log_reloads_zone_whole(pool, database_url):
    store = Store(pool, StoreSettings(log_keep_count=2), stages=write_stages())
    await make_zone(store)
    sink = Sink()
    f = Follower(database_url, sink)
    await f.start()
    task = asyncio.create_task(f.run())
    try:
        await asyncio.sleep(0.05)
        task.cancel()  # stop following
        with contextlib.suppress(asyncio.CancelledError):
            await task
        held = f.held[next(iter(f.held))]
        for i in range(6):
            await store.change(ZONE, [Edit("add", f"n{i}.x", "TXT", records=(f'"{i}"',))], source="t")
        rows = await pool.fetch("SELECT seq, serial_from FROM zone_changes ORDER BY seq")
        assert len(rows) == 2 and rows[0]["serial_from"] != 1 and rows[0]["seq"] > held.seq + 1
        puts = sink.puts
        await f.reconcile()
        assert f.applied == 0  # not applied from the log: loaded whole
        assert sink.puts == puts + 1 and serial_of(sink) == 7
        same_snapshot(sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
        assert f.held[held.id].seq == rows[-1]["seq"]
        # And it follows on from there through the log again.
        await store.change(ZONE, [Edit("add", "after", "A", records=("192.0.2.8",))], source="t")
        await f.sync_zone(held.id)
        assert f.applied == 1 and serial_of(sink) == 8
        same_snapshot(sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
    finally:
        await f.stop()


async def test_broken_chain_reloads_zone_whole(store, pool, database_url):
    z = await make_zone(store)
    f = Follower(database_url, Sink())
    await f.start()
    try:
        await store.change(ZONE, [Edit("add", "gap", "A", records=("192.0.2.1",))], source="t")
        await pool.execute("UPDATE zone_changes SET serial_from = 99 WHERE serial_from = 1")
        await f.sync_zone(z.zone_id)
        assert f.applied == 0 and serial_of(f.sink) == 2
        assert ask(f.sink.zones[ORIGIN], "gap").answer
        same_snapshot(f.sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
    finally:
        await f.stop()


async def test_serial_moved_without_log_rows_reloads(store, pool, database_url):
    z = await make_zone(store)
    f = Follower(database_url, Sink())
    await f.start()
    try:
        await store.change(ZONE, [Edit("add", "quiet", "A", records=("192.0.2.1",))], source="t")
        await pool.execute("DELETE FROM zone_changes")
        await f.reconcile()
        assert f.applied == 0 and serial_of(f.sink) == 2 and ask(f.sink.zones[ORIGIN], "quiet").answer
        # Nothing new: reconcile leaves the snapshot alone.
        snap = f.sink.zones[ORIGIN]
        await f.reconcile()
        await f.sync_zone(z.zone_id)
        assert f.sink.zones[ORIGIN] is snap
    finally:
        await f.stop()


async def test_corrupt_log_row_reloads_zone_whole(store, pool, database_url):
    """A change-log row that cannot be decoded makes the follower load the zone whole; it does
    not stop following."""
    z = await make_zone(store)
    f = Follower(database_url, Sink(), check_interval=0.2)
    await f.start()
    task = asyncio.create_task(f.run())
    try:
        await store.change(ZONE, [Edit("add", "one", "A", records=("192.0.2.1",))], source="t")
        await wait_until(lambda: serial_of(f.sink) == 2, what="serial 2")
        async with pool.acquire() as conn, conn.transaction():
            await store_change_in(conn, z.zone_id)
        await wait_until(lambda: serial_of(f.sink) == 3 or task.done(), timeout=5, what="serial 3")
        assert not task.done(), "the follower stopped following"
        assert ask(f.sink.zones[ORIGIN], "two").answer
        assert f.applied == 1  # the corrupt row was not applied; the zone was loaded whole
        # Still following, through the log again.
        await store.change(ZONE, [Edit("add", "three", "A", records=("192.0.2.3",))], source="t")
        await wait_until(lambda: serial_of(f.sink) == 4, what="serial 4")
        assert f.applied == 2 and f.state == "ready"
        same_snapshot(f.sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
    finally:
        await stop_running(f, task)


async def store_change_in(conn, zone_id):
    """A change written by hand, as the writer would, but with its `added` bytes cut short."""
    from minidns.store.writer import soa_rdata
    from minidns.zones.changes import pack_rrs

    z = dict(await conn.fetchrow("SELECT * FROM zones WHERE id = $1 FOR UPDATE", zone_id))
    old, new = soa_rdata(z, 2), soa_rdata(z, 3)
    a = bytes([192, 0, 2, 2])
    await conn.execute(
        "INSERT INTO rrsets (id, zone_id, name, owner, type, ttl, records, wire) VALUES (gen_random_uuid(), $1, $2, $3, 1, 3600, $4, $5)",
        zone_id, "two.zone.test.", w("two"), ["192.0.2.2"], bytes.fromhex("0001 00000e10 0004") + a,
    )  # fmt: skip
    await conn.execute(
        "UPDATE rrsets SET records = $2, wire = $3 WHERE zone_id = $1 AND type = 6",
        zone_id, [f"ns1.zone.test. hostmaster.zone.test. 3 {z['refresh']} {z['retry']} {z['expire']} {z['minimum']}"],
        bytes.fromhex("0006 00000e10") + len(new).to_bytes(2, "big") + new,
    )  # fmt: skip
    await conn.execute("UPDATE zones SET serial = 3 WHERE id = $1", zone_id)
    added = pack_rrs([(ORIGIN, 6, 3600, new), (w("two"), 1, 3600, a)])
    await conn.execute(
        "INSERT INTO zone_changes (zone_id, serial_from, serial_to, removed, added, source) VALUES ($1, 2, 3, $2, $3, 't')",
        zone_id, pack_rrs([(ORIGIN, 6, 3600, old)]), added[: len(added) - 20],
    )  # fmt: skip
    await conn.execute("SELECT pg_notify($1, $2)", db.CHANNEL, f"{zone_id} 3")


async def test_lost_notifications_converge_by_check(store, database_url):
    async with following(database_url, listen=False, check_interval=0.2) as f:
        sink = f.sink
        await make_zone(store)
        await wait_until(lambda: serial_of(sink) == 1, what="the zone, found by the check")
        for i in range(3):
            await store.change(ZONE, [Edit("add", f"n{i}", "A", records=("192.0.2.1",))], source="t")
        await wait_until(lambda: serial_of(sink) == 4, what="serial 4, found by the check")
        assert f.applied == 3
        same_snapshot(sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
        await store.delete_zone(ZONE)
        await wait_until(lambda: ORIGIN not in sink.zones, what="the drop, found by the check")


# -- random change sequences ---------------------------------------------------------------------

NAMES = ["a", "b.a", "c.b.a", "d", "e.d", "f.e.d", "*.w", "x.w", "deep.er.est", "er.est", "mx", "@"]
VALUES = {
    "A": [f"192.0.2.{i}" for i in range(5)],
    "AAAA": [f"2001:db8::{i}" for i in range(5)],
    "TXT": [f'"t{i}"' for i in range(5)],
    "MX": [f"{10 * i} mx{i}" for i in range(1, 4)],
}


async def rrsets_now(pool, zone_id) -> dict:
    rows = await pool.fetch("SELECT name, type, ttl, records FROM rrsets WHERE zone_id = $1 AND type <> 6", zone_id)
    return {(r["name"], dns.rdatatype.to_text(r["type"])): (r["ttl"], list(r["records"])) for r in rows}


def rel(name: str) -> str:
    return "@" if name == ZONE else name[: -len(ZONE) - 1]


def random_edits(rnd: random.Random, have: dict) -> tuple[list[Edit], dict | None]:
    """One random change: adds, removals, replaced RRsets (reordered too), TTL changes, names
    appearing and vanishing, delegations, DNAMEs, CNAMEs, zone fields."""
    roll = rnd.random()
    existing = [(rel(n), t, ttl, recs) for (n, t), (ttl, recs) in have.items()]
    if roll < 0.05:
        return [], {"ttl": rnd.choice([300, 3600]), "minimum": rnd.choice([60, 300])}
    if roll < 0.12:  # a delegation at "sub", with glue, appears or goes
        if any(n == "sub" for n, *_ in existing):
            return [Edit("delete", "sub", "NS"), Edit("replace", "ns.sub", "A", records=())], None
        return [Edit("add", "sub", "NS", records=("ns.sub", "ns.other.test.")), Edit("add", "ns.sub", "A", records=("192.0.2.53",))], None
    if roll < 0.18:  # a DNAME at "dn" appears or goes
        if any(n == "dn" for n, *_ in existing):
            return [Edit("delete", "dn", "DNAME")], None
        return [Edit("add", "dn", "DNAME", records=(rnd.choice(["other.test.", "a.zone.test."]),))], None
    if roll < 0.24:  # the CNAME at "cn" appears, changes target, or goes
        if any(n == "cn" for n, *_ in existing) and rnd.random() < 0.5:
            return [Edit("delete", "cn", "CNAME")], None
        return [Edit("replace", "cn", "CNAME", ttl=rnd.choice([None, 60]), records=(rnd.choice(["a", "www.other.test."]),))], None
    if roll < 0.34 and existing:  # a name vanishes
        name = rnd.choice(existing)[0]
        return [Edit("delete", n, t) for n, t, *_ in existing if n == name], None
    if roll < 0.48 and existing:  # one record goes
        name, rtype, _, recs = rnd.choice(existing)
        if rtype in VALUES:
            return [Edit("remove", name, rtype, records=(rnd.choice(recs),))], None
    if roll < 0.58 and existing:  # the TTL of an RRset changes
        name, rtype, ttl, recs = rnd.choice(existing)
        return [Edit("replace", name, rtype, ttl=rnd.choice([30, 300, 3600, 86400]), records=tuple(recs))], None
    if roll < 0.72:  # an RRset is replaced: some records stay, in a new order
        rtype = rnd.choice(list(VALUES))
        name = rnd.choice(NAMES) if rtype != "MX" else rnd.choice(["@", "mx"])
        recs = rnd.sample(VALUES[rtype], rnd.randint(1, 3))
        return [Edit("replace", name, rtype, ttl=rnd.choice([None, 300]), records=tuple(recs))], None
    edits = []  # one to three adds
    for _ in range(rnd.randint(1, 3)):
        rtype = rnd.choice(list(VALUES))
        name = rnd.choice(NAMES) if rtype != "MX" else rnd.choice(["@", "mx"])
        edits.append(Edit("add", name, rtype, ttl=rnd.choice([None, None, 120, 3600]), records=(rnd.choice(VALUES[rtype]),)))
    return edits, None


async def random_changes(store, pool, zone_id, count: int, seed: int, after_each=None) -> int:
    """Commit `count` random changes (edits the store refuses are drawn again); returns how many."""
    rnd = random.Random(seed)
    done = refused = 0
    while done < count:
        edits, fields = random_edits(rnd, await rrsets_now(pool, zone_id))
        try:
            ch = await store.change(zone_id, edits, source="random", fields=fields)
        except (Invalid, NotFound):
            refused += 1
            assert refused < count, "the generator makes too many refused edits"
            continue
        if ch.serial_to != ch.serial_from:
            done += 1
            if after_each is not None:
                await after_each()
    return done


@pytest.mark.parametrize("seed", [1, 2])
async def test_log_apply_equals_full_reload(store, pool, database_url, seed):
    """The key property: a snapshot made by applying the change log, one change at a time or all
    at once, is exactly the snapshot that loading the zone afresh makes."""
    z = await make_zone(store)
    step, batch = Follower(database_url, Sink()), Follower(database_url, Sink())
    await step.start()
    await batch.start()

    async def check_step():
        await step.sync_zone(z.zone_id)
        same_snapshot(step.sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])

    try:
        done = await random_changes(store, pool, z.zone_id, 100, seed, after_each=check_step)
        await batch.sync_zone(z.zone_id)
        serial = await db_serial(pool)
        assert serial == 1 + done == 101
        assert step.applied == done and batch.applied == done  # every change through the log
        want = (await fresh(database_url))[ORIGIN]
        assert len(want.nodes) > 5 and want.serial == serial
        same_snapshot(step.sink.zones[ORIGIN], want)
        same_snapshot(batch.sink.zones[ORIGIN], want)
    finally:
        await step.stop()
        await batch.stop()


class _RolledBack(Exception):
    pass


@pytest.mark.parametrize("seed", [3, 4, 5])
async def test_zone_log_batch_equals_full_reload(store, pool, database_url, seed):
    """Many writes in one transaction through a ZoneLog (as a batch of events is applied), some of
    them rolled back to their savepoint: one change-log row for the zone, and applying it gives
    exactly what loading the zone afresh gives — records added then removed, removed then added
    back, TTLs changed and changed back all netted."""
    z = await make_zone(store)
    f = Follower(database_url, Sink())
    await f.start()
    rnd = random.Random(seed)
    try:
        before = await db_serial(pool)
        kept = rolled = 0
        async with pool.acquire() as conn, conn.transaction():
            log = ZoneLog(store, "test")
            while kept < 60:
                edits, fields = random_edits(rnd, await rrsets_now(conn, z.zone_id))
                if fields:
                    continue
                written = None
                try:
                    async with conn.transaction():
                        written = await log.write(conn, z.zone_id, edits)
                        if rnd.random() < 0.2:
                            raise _RolledBack
                except (Invalid, NotFound):
                    continue
                except _RolledBack:
                    rolled += 1
                    continue
                log.keep(written, "test")
                kept += 1
            changes = await log.flush(conn)
        assert rolled > 0 and len(changes) == 1 and changes[0].serial_from == before
        assert await db_serial(pool) == before + 1
        await f.sync_zone(z.zone_id)
        assert f.applied == 1  # through the one change-log row, not a reload
        want = (await fresh(database_url))[ORIGIN]
        assert len(want.nodes) > 5
        same_snapshot(f.sink.zones[ORIGIN], want)
    finally:
        await f.stop()


async def test_zone_log_record_removed_and_added_back_equals_reload(store, pool, database_url):
    """A record removed and added back in one batch moves to the end of its RRset in the rows; the
    log must say so (removed and added), or a follower keeps the old order."""
    z = await store.create_zone(ZONE, email="h@zone.test", edits=[Edit("add", "www", "A", records=("192.0.2.1", "192.0.2.2"))])
    f = Follower(database_url, Sink())
    await f.start()
    try:
        async with pool.acquire() as conn, conn.transaction():
            log = ZoneLog(store, "test")
            log.keep(await log.write(conn, z.zone_id, [Edit("remove", "www", "A", records=("192.0.2.1",))]), "test")
            log.keep(await log.write(conn, z.zone_id, [Edit("add", "www", "A", records=("192.0.2.1",))]), "test")
            await log.flush(conn)
        await f.sync_zone(z.zone_id)
        assert f.applied == 1
        want = (await fresh(database_url))[ORIGIN]
        assert list(ask(want, "www").answer[0].rdatas) == [bytes([192, 0, 2, 2]), bytes([192, 0, 2, 1])]
        same_snapshot(f.sink.zones[ORIGIN], want)
    finally:
        await f.stop()


async def test_zone_log_logs_each_zone_once(store, pool, database_url):
    """Writes to two zones in one transaction: each zone gets one new serial and one change-log
    row with the net difference; a record added and removed again is in neither list."""
    a = await make_zone(store)
    b = await make_zone(store, "other.test.")
    async with pool.acquire() as conn, conn.transaction():
        log = ZoneLog(store, "test")
        for zone_id, edit in [(a.zone_id, Edit("add", "x", "A", records=("192.0.2.7",))),
                              (b.zone_id, Edit("add", "y", "A", records=("192.0.2.8",))),
                              (a.zone_id, Edit("add", "gone", "A", records=("192.0.2.9",))),
                              (a.zone_id, Edit("delete", "gone", "A"))]:  # fmt: skip
            log.keep(await log.write(conn, zone_id, [edit]), "test")
        changes = await log.flush(conn)
    assert sorted(c.zone for c in changes) == ["other.test.", ZONE]
    assert all(c.serial_to == c.serial_from + 1 for c in changes)
    rows = await pool.fetch("SELECT zone_id, added, removed FROM zone_changes WHERE serial_from IS NOT NULL")
    assert len(rows) == 2
    added = {r["zone_id"]: [rr[0] for rr in unpack_rrs(r["added"]) if rr[1] != 6] for r in rows}
    assert added[a.zone_id] == [w("x")] and added[b.zone_id] == [dns.name.from_text("y.other.test.").to_wire()]
    assert all(len(unpack_rrs(r["removed"])) == 1 for r in rows)  # the old SOA only


@pytest.mark.parametrize(
    "before, after",
    [
        (("192.0.2.1", "192.0.2.2"), ("192.0.2.3", "192.0.2.1")),  # a new record first, one stays
        (("192.0.2.1", "192.0.2.2", "192.0.2.3"), ("192.0.2.3", "192.0.2.1")),  # reordered survivors
        (("192.0.2.1",), ("192.0.2.4", "192.0.2.3", "192.0.2.1")),
    ],
)
async def test_replace_in_a_new_order_equals_reload(store, database_url, before, after):
    """Replacing an RRset with records in another order: the log carries only what went and
    came, so what is stored must come out in the order applying that gives."""
    z = await store.create_zone(ZONE, email="h@zone.test", edits=[Edit("add", "www", "A", records=before)])
    f = Follower(database_url, Sink())
    await f.start()
    try:
        await store.change(ZONE, [Edit("replace", "www", "A", records=after)], source="t")
        await f.sync_zone(z.zone_id)
        assert f.applied == 1
        got = f.sink.zones[ORIGIN]
        assert sorted(ask(got, "www").answer[0].rdatas) == sorted(bytes(map(int, a.split("."))) for a in after)
        same_snapshot(got, (await fresh(database_url))[ORIGIN])
    finally:
        await f.stop()


async def test_replace_with_case_variant_target_equals_reload(store, database_url):
    """A replace naming a kept record in other letter case changes nothing in the log, so the
    stored record must keep the form it had."""
    z = await store.create_zone(ZONE, email="h@zone.test", edits=[Edit("add", "@", "MX", records=("10 Mail", "20 other"))])
    f = Follower(database_url, Sink())
    await f.start()
    try:
        await store.change(ZONE, [Edit("replace", "@", "MX", records=("10 mail",))], source="t")
        await f.sync_zone(z.zone_id)
        assert f.applied == 1
        want = (await fresh(database_url))[ORIGIN]
        same_snapshot(f.sink.zones[ORIGIN], want)
        assert len(ask(want, "@", "MX").answer[0].rdatas) == 1
    finally:
        await f.stop()


async def test_two_followers_converge(store, pool, database_url):
    z = await make_zone(store)
    async with following(database_url) as f1, following(database_url, check_interval=0.5) as f2:
        done = await random_changes(store, pool, z.zone_id, 100, seed=7)
        serial = await db_serial(pool)
        assert serial == 1 + done
        await wait_until(lambda: serial_of(f1.sink) == serial and serial_of(f2.sink) == serial, timeout=10, what="both followers")
        a, b = f1.sink.zones[ORIGIN], f2.sink.zones[ORIGIN]
        same_snapshot(a, b)
        same_snapshot(a, (await fresh(database_url))[ORIGIN])
        assert f1.applied == done and f2.applied == done


# -- a lost connection ---------------------------------------------------------------------------


async def test_connection_loss_goes_stale_and_catches_up(pg_server, database_url):
    # The writer's one connection is spared by the terminations below, so it can write while the
    # follower is cut off.
    pool = await db.create_pool(database_url, size=1)
    admin = await db.connect(pg_server.url)
    killer = await db.connect(database_url)
    dbname = await killer.fetchval("SELECT current_database()")
    try:
        store = Store(pool, stages=write_stages())
        writer_pid = await pool.fetchval("SELECT pg_backend_pid()")
        await make_zone(store)
        # No periodic check within the test's time: the loss must be noticed as it happens.
        async with following(database_url, check_interval=60) as f:
            sink = f.sink
            await wait_until(lambda: serial_of(sink) == 1, what="the zone")
            first_pid = await f.conn.fetchval("SELECT pg_backend_pid()")

            # 1. Cut the follower off and keep it off: no new connections to the database.
            await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            killed = await killer.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1",
                writer_pid,
            )
            assert killed >= 1
            await wait_until(lambda: f.state == "stale", timeout=10, what="stale")
            await store.change(ZONE, [Edit("add", "while-away", "A", records=("192.0.2.66",))], source="t")
            await asyncio.sleep(0.4)  # reconnect attempts fail meanwhile
            assert f.state == "stale"
            assert serial_of(sink) == 1  # answering from memory
            assert ask(sink.zones[ORIGIN], "while-away").rcode == NXDOMAIN

            await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            await wait_until(lambda: f.state == "ready", timeout=10, what="ready again")
            await wait_until(lambda: serial_of(sink) == 2, timeout=10, what="the change made while away")
            assert ask(sink.zones[ORIGIN], "while-away").answer
            assert await f.conn.fetchval("SELECT pg_backend_pid()") != first_pid

            # 2. Every other backend terminated (the writer's too), reconnecting at once.
            states = []
            watcher = asyncio.create_task(watch_states(f, states))
            await killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            await wait_until(lambda: "stale" in states, timeout=10, what="stale")
            await store.change(ZONE, [Edit("add", "second", "A", records=("192.0.2.67",))], source="t")
            await wait_until(lambda: serial_of(sink) == 3 and f.state == "ready", timeout=10, what="serial 3")
            watcher.cancel()
            assert states[0] == "ready" and "stale" in states and f.state == "ready"
            same_snapshot(sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
    finally:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await admin.close()
        await killer.close()
        await pool.close()


async def watch_states(f, states):
    while True:
        if not states or states[-1] != f.state:
            states.append(f.state)
        await asyncio.sleep(0.001)
