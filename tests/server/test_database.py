"""PostgreSQL as the source of truth, end to end: real `minidns` processes, real sockets on
127.0.0.1, real PostgreSQL (the embedded wheel). No mocks.

Changes committed to the database reach running servers over DNS; two servers on one database
converge; a PostgreSQL outage leaves answers flowing and changes resume after it; the embedded
default creates, seeds and stops its own PostgreSQL; the commands import, export and edit zones
and fail cleanly.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import threading
import time
import uuid
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

from minidns.store import db
from minidns.store.embedded import start_embedded
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings

ZONES = Path(__file__).resolve().parent.parent / "zones"

STALE = "database connection lost: answering from memory (stale)"
READY = "database: ready"
WAIT = 5.0  # the bound on how long a committed change may take to be served


# -- helpers ----------------------------------------------------------------------------------


def with_store(url: str, fn, settings: StoreSettings = StoreSettings()):
    """Run `await fn(store)` on a Store over a fresh pool on `url`; returns its result."""

    async def go():
        pool = await db.create_pool(url)
        try:
            return await fn(Store(pool, settings, stages=write_stages()))
        finally:
            await asyncio.wait_for(pool.close(), 5)

    return asyncio.run(go())


def create_zone(url: str, name: str, records: list[tuple[str, str, int | None, str]], **kw):
    """Create `name` with (owner, type, ttl, data) records, one edit per record."""
    edits = [Edit("add", o, t, ttl, (d,)) for o, t, ttl, d in records]
    return with_store(url, lambda s: s.create_zone(name, email=f"hostmaster@{name.rstrip('.')}", edits=edits, **kw))


def change(url: str, zone: str, *edits: Edit, settings: StoreSettings = StoreSettings()):
    return with_store(url, lambda s: s.change(zone, list(edits), source="test"), settings)


def db_serial(url: str, zone: str) -> int:
    return with_store(url, lambda s: s.zone(zone))["serial"]


def ask(port: int, name: str, rdtype="A", timeout: float = 2.0) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=0, payload=4096)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)


def rdatas(msg: dns.message.Message, name: str, rdtype) -> frozenset:
    """The records of `name`/`rdtype` in the answer section (as comparable rdata objects)."""
    rtype = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype
    rrset = msg.get_rrset(msg.answer, dns.name.from_text(name), dns.rdataclass.IN, rtype)
    return frozenset(rrset) if rrset is not None else frozenset()


def rd(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)


def rds(rdtype: str, *texts: str) -> frozenset:
    return frozenset(rd(rdtype, t) for t in texts)


def wait_until(check, timeout: float = WAIT, what: str = "condition") -> float:
    """Poll `check()` until it is true; returns the seconds it took, fails after `timeout`."""
    started = time.monotonic()
    last = None
    while True:
        try:
            last = check()
        except dns.exception.Timeout as e:  # one lost datagram is not a failure of the wait
            last = e
        if last is True:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not true within {timeout}s (last: {last!r})")
        time.sleep(0.02)


def wait_answer(port: int, name: str, rdtype: str, expected: frozenset, timeout: float = WAIT) -> float:
    """Wait until `name`/`rdtype` is answered with exactly `expected` (empty: no such records)."""

    def check():
        got = rdatas(ask(port, name, rdtype), name, rdtype)
        return True if got == expected else sorted(map(str, got))

    return wait_until(check, timeout, f"{name} {rdtype} == {sorted(map(str, expected))}")


def wait_rcode(port: int, name: str, rcode: int, rdtype="SOA", timeout: float = WAIT) -> float:
    def check():
        got = ask(port, name, rdtype).rcode()
        return True if got == rcode else dns.rcode.to_text(got)

    return wait_until(check, timeout, f"{name} {rdtype} rcode {dns.rcode.to_text(rcode)}")


def served_serial(port: int, zone: str) -> int | None:
    r = ask(port, zone, "SOA")
    got = rdatas(r, zone, "SOA")
    return next(iter(got)).serial if got else None


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def postgres_stopped(pgdata: Path) -> bool:
    pid = postmaster_pid(pgdata)
    return pid is None or not pid_running(pid)


def stop_leftover_postgres(pgdata: Path) -> None:
    """Cleanup after a failed test: stop the PostgreSQL this test's data dir runs, by its pid."""
    pid = postmaster_pid(pgdata)
    if pid is None or not pid_running(pid):
        return
    os.kill(pid, signal.SIGINT)  # fast shutdown
    deadline = time.monotonic() + 10
    while pid_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_running(pid):
        os.kill(pid, signal.SIGKILL)


def child_env(**changes) -> dict:
    """This process's environment with `changes` (None removes a variable); `serve` and `cli`
    put this checkout on PYTHONPATH themselves."""
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def log_after(served, mark: int) -> str:
    return "".join(served.lines[mark:])


@pytest.fixture
def new_database(pg_server):
    """new_database(migrate=True) → the URL of a new database on the session PostgreSQL (with
    the schema, or empty); all are dropped after the test."""
    made = []

    async def admin(sql):
        conn = await db.connect(pg_server.url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def make(migrate: bool = True) -> str:
        name = f"e2e_{uuid.uuid4().hex[:12]}"
        asyncio.run(admin(f"CREATE DATABASE {name}"))
        made.append(name)
        url = re.sub(r"/postgres\?", f"/{name}?", pg_server.url, count=1)
        if migrate:

            async def up():
                conn = await db.connect(url)
                try:
                    await db.upgrade(conn)
                finally:
                    await conn.close()

            asyncio.run(up())
        return url

    yield make
    for name in made:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


class OwnPostgres:
    """A PostgreSQL of one test's own, which it may stop and start again on the same data."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.pgdata = data_dir / "pg"
        self.emb = start_embedded(str(data_dir))
        self.url = self.emb.url
        self.running = True

        async def up():
            conn = await db.connect(self.url)
            try:
                await db.upgrade(conn)
            finally:
                await conn.close()

        asyncio.run(up())

    def stop(self) -> None:
        self.emb.stop()
        self.running = False
        wait_until(lambda: postgres_stopped(self.pgdata), 10, "PostgreSQL stopped")

    def start(self) -> None:
        self.emb = start_embedded(str(self.data_dir))
        self.running = True
        assert self.emb.url == self.url, "a restarted PostgreSQL is found at the same address"

    def close(self) -> None:
        if self.running:
            self.emb.stop()
            self.running = False
        stop_leftover_postgres(self.pgdata)


@pytest.fixture
def own_pg(tmp_path):
    pg = OwnPostgres(tmp_path / "own")
    try:
        yield pg
    finally:
        pg.close()


class Prober(threading.Thread):
    """Asks one question over UDP in a loop and counts the replies and the right replies; each
    query is sent once (no retry), so answered == sent means none went unanswered."""

    def __init__(self, port: int, name: str, rdtype: str, expected: frozenset):
        super().__init__(daemon=True)
        self.port, self.name, self.rdtype, self.expected = port, name, rdtype, expected
        self.halt = threading.Event()
        self.sent = self.answered = self.right = 0
        self.times: list[float] = []  # when each right answer came
        self.wrong: list[str] = []

    def run(self):
        deadline = time.monotonic() + 60  # bounded whatever the test does
        while not self.halt.is_set() and time.monotonic() < deadline:
            self.sent += 1
            try:
                r = ask(self.port, self.name, self.rdtype, timeout=1.0)
            except dns.exception.Timeout:
                self.wrong.append("timeout")
                continue
            self.answered += 1
            got = rdatas(r, self.name, self.rdtype)
            if r.rcode() == dns.rcode.NOERROR and got == self.expected:
                self.right += 1
                self.times.append(time.monotonic())
            elif len(self.wrong) < 20:
                self.wrong.append(f"{dns.rcode.to_text(r.rcode())} {sorted(map(str, got))}")
            time.sleep(0.005)

    def finish(self):
        self.halt.set()
        self.join(5)
        assert not self.is_alive()

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start <= t <= end)


LIVE = [
    ("@", "NS", None, "ns1"),
    ("ns1", "A", None, "192.0.2.53"),
    ("www", "A", 60, "192.0.2.1"),
]


# -- 1. the live stream -----------------------------------------------------------------------


def test_changes_committed_to_the_database_are_served(serve, cli, database_url):
    create_zone(database_url, "live.test.", LIVE)
    s = serve("--database-url", database_url)
    assert "loaded 1 zone(s)" in s.log
    assert rdatas(ask(s.port, "www.live.test"), "www.live.test", "A") == rds("A", "192.0.2.1")
    assert served_serial(s.port, "live.test.") == db_serial(database_url, "live.test.")

    # Through the Store: an added record, then one removed.
    change(database_url, "live.test.", Edit("add", "www", "A", None, ("192.0.2.2",)))
    wait_answer(s.port, "www.live.test", "A", rds("A", "192.0.2.1", "192.0.2.2"))
    change(database_url, "live.test.", Edit("remove", "www", "A", None, ("192.0.2.1",)))
    wait_answer(s.port, "www.live.test", "A", rds("A", "192.0.2.2"))

    # Through the command line.
    p = cli("record", "add", "live.test", "new", "TXT", 120, '"added by the cli"', "--database-url", database_url)
    assert p.returncode == 0, p.stderr
    assert re.search(r"live\.test\. serial \d+ -> \d+", p.stdout)
    wait_answer(s.port, "new.live.test", "TXT", rds("TXT", '"added by the cli"'))
    assert ask(s.port, "new.live.test", "TXT").answer[0].ttl == 120
    p = cli("record", "delete", "live.test", "new", "TXT", 120, '"added by the cli"', "--database-url", database_url)
    assert p.returncode == 0, p.stderr
    wait_rcode(s.port, "new.live.test", dns.rcode.NXDOMAIN, "TXT")
    assert served_serial(s.port, "live.test.") == db_serial(database_url, "live.test.")

    # A zone created while serving is answered (it was REFUSED); deleted, it is REFUSED again.
    assert ask(s.port, "www.second.test").rcode() == dns.rcode.REFUSED
    create_zone(database_url, "second.test.", [("www", "AAAA", 300, "2001:db8::2")])
    wait_answer(s.port, "www.second.test", "AAAA", rds("AAAA", "2001:db8::2"))
    p = cli("zone", "import", ZONES / "child.example.com.zone", "--database-url", database_url)
    assert p.returncode == 0, p.stderr
    wait_answer(s.port, "www.child.example.com", "A", rds("A", "192.0.2.72"))
    p = cli("zone", "delete", "second.test", "--database-url", database_url)
    assert p.returncode == 0 and "deleted second.test." in p.stdout, p.stderr
    wait_rcode(s.port, "www.second.test", dns.rcode.REFUSED, "AAAA")
    with_store(database_url, lambda st: st.delete_zone("child.example.com."))
    wait_rcode(s.port, "www.child.example.com", dns.rcode.REFUSED, "A")
    # The zone still in the database is untouched by the others coming and going.
    assert rdatas(ask(s.port, "www.live.test"), "www.live.test", "A") == rds("A", "192.0.2.2")
    assert "zone second.test.: deleted" in s.log


def test_a_server_started_on_an_empty_database_serves_the_first_zone(serve, cli, database_url):
    s = serve("--database-url", database_url)
    assert re.search(r"serving 0 zone", s.log)
    assert ask(s.port, "www.example.com").rcode() == dns.rcode.REFUSED
    p = cli("zone", "import", ZONES / "example.com.zone", "--database-url", database_url)
    assert p.returncode == 0, p.stderr
    took = wait_answer(s.port, "www.example.com", "A", rds("A", "192.0.2.80", "192.0.2.81"))
    assert took < WAIT
    assert served_serial(s.port, "example.com.") == 2026112201


def test_polling_server_sees_changes_without_listen(serve, database_url):
    """--db-poll: no LISTEN; the periodic check alone brings changes in."""
    create_zone(database_url, "poll.test.", LIVE)
    s = serve("--database-url", database_url, "--db-poll", "--db-check-interval", "0.3")
    change(database_url, "poll.test.", Edit("replace", "www", "A", 60, ("192.0.2.9",)))
    wait_answer(s.port, "www.poll.test", "A", rds("A", "192.0.2.9"))
    create_zone(database_url, "poll2.test.", [("a", "A", None, "192.0.2.10")])
    wait_answer(s.port, "a.poll2.test", "A", rds("A", "192.0.2.10"))
    with_store(database_url, lambda st: st.delete_zone("poll2.test."))
    wait_rcode(s.port, "a.poll2.test", dns.rcode.REFUSED, "A")


# -- 2. two servers converge ------------------------------------------------------------------

NAMES = [f"h{i}" for i in range(6)]
TYPES = ["A", "AAAA", "TXT", "MX"]


def _value(rng: random.Random, rtype: str) -> str:
    n = rng.randrange(1, 30)
    return {
        "A": f"192.0.2.{n}",
        "AAAA": f"2001:db8::{n:x}",
        "TXT": f'"text {n}" "with; spaces \\"and\\" quotes"',
        "MX": f"{n * 10} mx{n}.example.net.",
    }[rtype]


def _random_edit(rng: random.Random, model: dict) -> Edit:
    """A random valid edit, applied to `model` ({(name, type): (ttl, set of rdata)}) as the store
    applies it (zone default TTL 3600)."""
    existing = [k for k, v in model.items() if v[1]]
    op = rng.choice(["add", "add", "add", "remove", "replace", "delete", "ttl"] if existing else ["add"])
    if op in ("add", "replace"):
        key = (rng.choice(NAMES), rng.choice(TYPES))
        values = [_value(rng, key[1]) for _ in range(rng.randrange(1, 3))]
        ttl = rng.choice([None, 60, 300])
        ttl_had, had = model.get(key, (None, set()))
        new = {rd(key[1], v) for v in values}
        if op == "add":
            model[key] = (ttl if ttl is not None else (ttl_had if had else 3600), had | new)
        else:
            model[key] = (ttl if ttl is not None else 3600, new)
        return Edit(op, key[0], key[1], ttl, tuple(values))
    key = rng.choice(existing)
    ttl, have = model[key]
    if op == "remove":
        gone = rng.choice(sorted(have, key=str))
        model[key] = (ttl, have - {gone})
        return Edit("remove", key[0], key[1], None, (gone.to_text(),))
    if op == "ttl":
        new_ttl = rng.choice([30, 90, 600])
        model[key] = (new_ttl, have)
        return Edit("add", key[0], key[1], new_ttl, (rng.choice(sorted(have, key=str)).to_text(),))
    model[key] = (ttl, set())
    return Edit("delete", key[0], key[1])


def test_two_servers_on_one_database_converge(serve, database_url):
    zones = ["conv1.test.", "conv2.test."]
    for z in zones:
        create_zone(database_url, z, [("@", "NS", None, "ns1.example.net.")])
    listening = serve("--database-url", database_url)
    polling = serve("--database-url", database_url, "--db-poll", "--db-check-interval", "0.5")

    rng = random.Random(20261122)
    models = {z: {} for z in zones}
    applied = 0

    async def run_changes(store):
        nonlocal applied
        for _ in range(50):
            z = rng.choice(zones)
            edits = [_random_edit(rng, models[z]) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
            await store.change(z, edits, source="test")
            applied += 1

    with_store(database_url, run_changes)
    assert applied == 50

    async def read_db(store):
        out = {}
        async with store.pool.acquire() as conn:
            for z in zones:
                rows = await conn.fetch(
                    "SELECT r.name, r.type, r.ttl, r.records FROM rrsets r JOIN zones z ON z.id = r.zone_id WHERE z.name = $1", z
                )
                out[z] = {(r["name"], r["type"]): (r["ttl"], frozenset(rd(dns.rdatatype.to_text(r["type"]), t) for t in r["records"])) for r in rows}
            out["serials"] = {z["name"]: z["serial"] for z in await conn.fetch("SELECT name, serial FROM zones")}
        return out

    in_db = with_store(database_url, read_db)
    for z in zones:  # the database holds what the edits say
        want = {(f"{n}.{z}", dns.rdatatype.from_text(t)): (ttl, frozenset(v)) for (n, t), (ttl, v) in models[z].items() if v}
        got = {k: v for k, v in in_db[z].items() if k[1] not in (dns.rdatatype.SOA, dns.rdatatype.NS)}
        assert got == want, z

    for s in (listening, polling):
        for z in zones:
            wait_until(lambda: served_serial(s.port, z) == in_db["serials"][z], 10, f"{z} serial on port {s.port}")

    touched = {(f"{n}.{z}", t) for z in zones for (n, t) in models[z]}
    assert len(touched) > 10
    for name, rtype in sorted(touched):
        a, b = ask(listening.port, name, rtype), ask(polling.port, name, rtype)
        assert a.rcode() == b.rcode(), name
        assert (a.answer, a.authority) == (b.answer, b.authority), f"{name} {rtype}"
        zone = name.split(".", 1)[1]
        ttl, want = in_db[zone].get((name, dns.rdatatype.from_text(rtype)), (None, frozenset()))
        assert rdatas(a, name, rtype) == want, f"{name} {rtype}"
        if want:
            assert a.answer[0].ttl == ttl, f"{name} {rtype}"
    assert "loading it whole" not in listening.log  # the change log was followed, not reloaded


# -- 3. faults --------------------------------------------------------------------------------


def test_postgres_outage_answers_from_memory_and_catches_up(serve, own_pg):
    create_zone(own_pg.url, "out.test.", LIVE)
    s = serve("--database-url", own_pg.url)
    www = rds("A", "192.0.2.1")
    assert rdatas(ask(s.port, "www.out.test"), "www.out.test", "A") == www
    prober = Prober(s.port, "www.out.test", "A", www)
    prober.start()
    try:
        time.sleep(0.3)
        mark = len(s.lines)
        own_pg.stop()
        down = time.monotonic()
        s.wait_for(re.escape(STALE), 10, after=mark)
        time.sleep(1.5)  # queries keep coming while PostgreSQL is down (and the server retries)
        own_pg.start()
        up = time.monotonic()
        # Committed as PostgreSQL is back, mostly before the server has reconnected (it retries
        # every 0.5 s), when only the catch-up on reconnect can bring it in; test_faults.py cuts the
        # server off with a proxy to test that case every time.
        change(own_pg.url, "out.test.", Edit("add", "missed", "A", 60, ("192.0.2.77",)))
        s.wait_for(re.escape(READY), 15, after=mark)
        wait_answer(s.port, "missed.out.test", "A", rds("A", "192.0.2.77"))
        # And a change after it has reconnected comes by the usual NOTIFY.
        change(own_pg.url, "out.test.", Edit("add", "after", "AAAA", 60, ("2001:db8::78",)))
        wait_answer(s.port, "after.out.test", "AAAA", rds("AAAA", "2001:db8::78"))
        assert served_serial(s.port, "out.test.") == db_serial(own_pg.url, "out.test.")
        time.sleep(0.1)
    finally:
        prober.finish()
    assert prober.wrong == []
    assert prober.answered == prober.sent == prober.right
    assert prober.between(down, up) >= 20, "queries were answered during the outage"


def test_a_change_made_while_the_connection_is_down_is_served_after_reconnect(serve, database_url):
    create_zone(database_url, "cut.test.", LIVE)
    s = serve("--database-url", database_url)
    assert rdatas(ask(s.port, "www.cut.test"), "www.cut.test", "A") == rds("A", "192.0.2.1")
    mark = len(s.lines)

    async def cut_and_commit(store):
        async with store.pool.acquire() as conn:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                " AND pid NOT IN (SELECT pid FROM pg_stat_activity WHERE application_name = 'minidns-test')"
            )
        # Right away: the server's listener is gone and cannot hear this change's NOTIFY.
        await store.change("cut.test.", [Edit("replace", "www", "A", 60, ("192.0.2.66",))], source="test")
        return killed

    async def go():
        # The test's own pool: created before the cut, and marked so that it is not cut.
        pool = await db.create_pool(database_url + "&application_name=minidns-test")
        try:
            return await cut_and_commit(Store(pool, stages=write_stages()))
        finally:
            await pool.close()

    killed = asyncio.run(go())
    assert killed >= 1
    s.wait_for(re.escape(STALE), 10, after=mark)
    s.wait_for(re.escape(READY), 10, after=mark)
    wait_answer(s.port, "www.cut.test", "A", rds("A", "192.0.2.66"))
    assert served_serial(s.port, "cut.test.") == db_serial(database_url, "cut.test.")


def test_change_log_pruned_past_the_servers_serial_loads_the_zone_whole(serve, database_url):
    create_zone(database_url, "prune.test.", LIVE)
    s = serve("--database-url", database_url)
    assert rdatas(ask(s.port, "www.prune.test"), "www.prune.test", "A") == rds("A", "192.0.2.1")
    keep2 = StoreSettings(log_keep_count=2)
    mark = len(s.lines)
    s.signal(signal.SIGSTOP)
    try:

        async def many(store):
            for i in range(2, 8):
                await store.change("prune.test.", [Edit("replace", "www", "A", 60, (f"192.0.2.{i}",))], source="test")
                await store.change("prune.test.", [Edit("add", f"n{i}", "TXT", 60, (f'"n{i}"',))], source="test")
            return await store.changes("prune.test.")

        log = with_store(database_url, many, keep2)
        assert len(log) == 2 and log[0]["serial_from"] is not None  # the rows the server needs are gone
    finally:
        s.signal(signal.SIGCONT)
    wait_answer(s.port, "www.prune.test", "A", rds("A", "192.0.2.7"))
    wait_answer(s.port, "n7.prune.test", "TXT", rds("TXT", '"n7"'))
    assert rdatas(ask(s.port, "n2.prune.test", "TXT"), "n2.prune.test", "TXT") == rds("TXT", '"n2"')
    assert served_serial(s.port, "prune.test.") == db_serial(database_url, "prune.test.")
    s.wait_for(r"loading it whole|loaded serial", 5, after=mark)
    assert re.search(r"zone prune\.test\.: loaded serial \d+", log_after(s, mark))


# -- 4. the embedded default ------------------------------------------------------------------


def test_embedded_database_is_created_seeded_kept_and_stopped(serve, cli, tmp_path):
    data = tmp_path / "data"
    pgdata = data / "pg"
    env = child_env(MINIDNS_DATABASE_URL=None)
    try:
        s = serve("--data-dir", str(data), env=env)
        assert "created the embedded database" in s.log
        assert "imported the example zone example.com." in s.log
        assert rdatas(ask(s.port, "www.example.com"), "www.example.com", "A") == rds("A", "192.0.2.80")
        pg_pid = postmaster_pid(pgdata)
        assert pg_pid and pid_running(pg_pid)

        p = cli("record", "add", "example.com", "foo", "A", 60, "192.0.2.55", "--data-dir", data, env=env)
        assert p.returncode == 0, p.stderr
        wait_answer(s.port, "foo.example.com", "A", rds("A", "192.0.2.55"))
        assert pid_running(pg_pid), "a command sharing the embedded PostgreSQL leaves it running"

        assert s.stop() == 0
        wait_until(lambda: postgres_stopped(pgdata), 10, "the embedded PostgreSQL stopped with the server")

        s2 = serve("--data-dir", str(data), env=env)
        assert "created the embedded database" not in s2.log and "imported the example zone" not in s2.log
        assert rdatas(ask(s2.port, "foo.example.com"), "foo.example.com", "A") == rds("A", "192.0.2.55")
        assert rdatas(ask(s2.port, "www.example.com"), "www.example.com", "A") == rds("A", "192.0.2.80")
        assert s2.stop() == 0
        wait_until(lambda: postgres_stopped(pgdata), 10, "the embedded PostgreSQL stopped with the server")
    finally:
        stop_leftover_postgres(pgdata)


def test_database_url_in_the_environment_turns_the_embedded_database_off(serve, cli, tmp_path, database_url):
    data = tmp_path / "unused"
    env = child_env(MINIDNS_DATABASE_URL=database_url)
    try:
        s = serve("--data-dir", str(data), env=env)
        assert re.search(r"serving 0 zone", s.log)
        assert ask(s.port, "www.example.com").rcode() == dns.rcode.REFUSED
        p = cli("zone", "import", ZONES / "child.example.com.zone", "--data-dir", data, env=env)
        assert p.returncode == 0, p.stderr
        wait_answer(s.port, "www.child.example.com", "A", rds("A", "192.0.2.72"))
        assert [z["name"] for z in with_store(database_url, lambda st: st.zones())] == ["child.example.com."]
        assert not (data / "pg").exists(), "nothing is created in the data dir"
    finally:
        stop_leftover_postgres(data / "pg")


# -- 5. the commands --------------------------------------------------------------------------


def _zone_set(text: str, origin: str) -> set:
    zone = dns.zone.from_text(text, origin, relativize=False, check_origin=False)
    return {(name, rds_.rdtype, rds_.ttl, r) for name, node in zone.nodes.items() for rds_ in node for r in rds_}


def test_import_export_round_trip_of_the_example_zone(cli, new_database, tmp_path):
    first, second = new_database(), new_database()
    p = cli("zone", "import", ZONES / "example.com.zone", "--database-url", first)
    assert p.returncode == 0, p.stderr
    assert re.match(r"imported example\.com\. serial 2026112201: \d+ RRsets", p.stdout)
    exported = cli("zone", "export", "example.com", "--database-url", first)
    assert exported.returncode == 0, exported.stderr
    original = (ZONES / "example.com.zone").read_text()
    assert _zone_set(exported.stdout, "example.com.") == _zone_set(original, "example.com.")

    again = tmp_path / "exported.zone"
    again.write_text(exported.stdout)
    p = cli("zone", "import", again, "--database-url", second)
    assert p.returncode == 0, p.stderr
    exported2 = cli("zone", "export", "example.com.", "--database-url", second)
    assert exported2.stdout == exported.stdout


ALL_TYPES = r"""$ORIGIN rt.test.
$TTL 3600
@          IN SOA ns1 hostmaster.rt.test. 42 7200 900 1209600 300
@          NS     ns1
@          NS     ns2.example.net.
@          MX     10 mail
@          MX     20 mail.example.net.
@          TXT    "v=spf1 -all"
@          SPF    "v=spf1 ip4:192.0.2.0/24 -all"
@          CAA    0 issue "ca.example.net; account=123"
@          CAA    0 iodef "mailto:security@rt.test"
@          CAA    128 tbs "unknown critical"
@          NAPTR  100 10 "U" "E2U+sip" "!^.*$!sip:info@rt.test!" .
@          NAPTR  102 10 "S" "SIP+D2U" "" _sip._udp
@          HTTPS  1 . alpn="h2,h3" port=8443
@          URI    10 1 "https://www.rt.test/"
ns1        A      192.0.2.53
ns1        AAAA   2001:db8::53
mail       A      192.0.2.25
www    300 A      192.0.2.80
www    300 A      192.0.2.81
www        AAAA   2001:db8::80
alias      CNAME  www
ext        CNAME  www.example.net.
quotes     TXT    "a \"quoted\" word" "semi;colon" "back\\slash" "tab\009and\255byte"
quotes     TXT    "with   spaces" ""
long       TXT    "LONG255" "second string of the long record" "third"
long       TXT    ( "split over"
                    "several lines" )
_sip._tcp  SRV    10 60 5060 sip
_sip._udp  SRV    0 0 5060 sip.example.net.
sip        A      192.0.2.60
80.2.0     PTR    www.rt.test.
host       HINFO  "PC Intel" "Linux 6"
host       SSHFP  1 1 123456789abcdef67890123456789abcdef67890
host       SSHFP  4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
host       RP     admin.rt.test. info.rt.test.
host       LOC    52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
_443._tcp.www TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
svc        SVCB   1 svc.example.net. alpn="h2" ipv4hint=192.0.2.1
deleg      NS     ns1.deleg
deleg      NS     ns.example.org.
deleg      DS     12345 13 2 8F9A7EC3E2C1A63AEB7BA2B2C67A7E1E5E07C1A2B9F1E0D4C3B2A19081726354
ns1.deleg  A      192.0.2.70
old        DNAME  new.example.net.
*.wild  60 A      192.0.2.99
*.wild  60 TXT    "wildcard"
sp\032ace  A      192.0.2.32
Mixed.Case A      192.0.2.82
opaque     TYPE65534 \# 4 0A000001
empty      TYPE65533 \# 0
""".replace("LONG255", "x" * 200 + "y" * 55)  # one string of the most octets (255)

_BELOW_CUT = {"deleg.rt.test.", "ns1.deleg.rt.test."}


def test_import_export_round_trip_of_every_common_type_and_over_dns(cli, serve, new_database, tmp_path):
    src = tmp_path / "rt.zone"
    src.write_text(ALL_TYPES)
    want = _zone_set(ALL_TYPES, "rt.test.")
    first, second = new_database(), new_database()
    p = cli("zone", "import", src, "--database-url", first)
    assert p.returncode == 0, p.stderr
    exported = cli("zone", "export", "rt.test", "--database-url", first)
    assert exported.returncode == 0, exported.stderr
    assert _zone_set(exported.stdout, "rt.test.") == want
    assert exported.stdout.startswith("$ORIGIN rt.test.\n") and " IN SOA " in exported.stdout.splitlines()[1]

    (tmp_path / "again.zone").write_text(exported.stdout)
    assert cli("zone", "import", tmp_path / "again.zone", "--database-url", second).returncode == 0
    assert cli("zone", "export", "rt.test", "--database-url", second).stdout == exported.stdout

    # And served as imported: every RRset at or above the cut, asked for by name and type.
    s = serve("--database-url", first)
    rrsets: dict = {}
    for name, rtype, ttl, r in want:
        rrsets.setdefault((name, rtype), (ttl, set()))[1].add(r)
    checked = 0
    for (name, rtype), (ttl, records) in sorted(rrsets.items(), key=str):
        text = name.to_text().lower()
        if text in _BELOW_CUT and rtype != dns.rdatatype.DS:
            continue
        reply = ask(s.port, name.to_text(), rtype)
        assert reply.rcode() == dns.rcode.NOERROR, f"{name} {dns.rdatatype.to_text(rtype)}"
        assert rdatas(reply, name.to_text(), rtype) == records, f"{name} {dns.rdatatype.to_text(rtype)}"
        assert reply.answer[0].ttl == ttl
        checked += 1
    assert checked >= 30
    referral = ask(s.port, "www.deleg.rt.test", "A")
    assert not referral.answer and not referral.flags & dns.flags.AA
    assert rdatas(ask(s.port, "x.wild.rt.test", "TXT"), "x.wild.rt.test", "TXT") == rds("TXT", '"wildcard"')


def test_zone_import_of_a_bad_file_names_the_line_and_imports_nothing(cli, database_url, tmp_path):
    bad = tmp_path / "bad.zone"
    bad.write_text("$ORIGIN bad.test.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nfoo A 192.0.2.300\nbar A 192.0.2.2\n")
    p = cli("zone", "import", bad, "--database-url", database_url)
    assert p.returncode != 0
    assert f"{bad}:6:" in p.stderr, p.stderr
    assert p.stderr.count("\n") <= 2 and "Traceback" not in p.stderr
    listed = cli("zone", "list", "--database-url", database_url)
    assert listed.returncode == 0 and listed.stdout == ""

    cname = tmp_path / "cname.zone"
    cname.write_text("$ORIGIN c.test.\n$TTL 60\n@ SOA ns1 hostmaster 1 2 3 4 5\nx CNAME y\nx A 192.0.2.1\n")
    p = cli("zone", "import", cname, "--database-url", database_url)
    assert p.returncode != 0 and str(cname) in p.stderr and "CNAME" in p.stderr, p.stderr
    assert cli("zone", "list", "--database-url", database_url).stdout == ""

    p = cli("zone", "import", tmp_path / "missing.zone", "--database-url", database_url)
    assert p.returncode != 0 and "missing.zone" in p.stderr and "Traceback" not in p.stderr


def test_zone_commands_fail_cleanly(cli, database_url):
    url = ("--database-url", database_url)
    assert cli("zone", "import", ZONES / "child.example.com.zone", *url).returncode == 0
    before = cli("zone", "list", *url).stdout
    assert before.startswith("child.example.com.\t7\t")

    p = cli("zone", "import", ZONES / "child.example.com.zone", *url)
    assert p.returncode == 1 and "exists" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert cli("zone", "list", *url).stdout == before

    p = cli("record", "add", "child.example.com", "www", "A", 60, "not-an-address", *url)
    assert p.returncode == 1 and "bad A data" in p.stderr and "not-an-address" in p.stderr, p.stderr
    p = cli("record", "add", "child.example.com", "www", "CNAME", 60, "ns1", *url)
    assert p.returncode == 1 and "CNAME cannot share" in p.stderr, p.stderr
    p = cli("record", "add", "child.example.com", "x", "A", 2**31, "192.0.2.1", *url)
    assert p.returncode == 1 and "TTL" in p.stderr, p.stderr
    p = cli("record", "add", "child.example.com", "x.example.org.", "A", 60, "192.0.2.1", *url)
    assert p.returncode == 1 and "not inside the zone" in p.stderr, p.stderr
    p = cli("record", "add", "child.example.com", "x", "NOSUCHTYPE", 60, "1", *url)
    assert p.returncode == 1 and "unknown record type" in p.stderr, p.stderr
    p = cli("record", "delete", "child.example.com", "www", "A", 60, "192.0.2.99", *url)
    assert p.returncode == 1 and "does not exist" in p.stderr, p.stderr
    p = cli("record", "add", "nosuch.test", "www", "A", 60, "192.0.2.1", *url)
    assert p.returncode == 1 and "no zone nosuch.test" in p.stderr, p.stderr
    assert cli("zone", "list", *url).stdout == before, "failed edits leave the serial as it was"

    p = cli("record", "add", "child.example.com", "www", "A", 600, "192.0.2.72", *url)
    assert p.returncode == 0 and "unchanged (serial 7)" in p.stdout, p.stdout + p.stderr
    p = cli("record", "add", "child.example.com", "www", "A", 600, "192.0.2.73", *url)
    assert p.returncode == 0 and "serial 7 -> 8" in p.stdout, p.stdout + p.stderr

    p = cli("zone", "delete", "child.example.com", *url)
    assert p.returncode == 0 and "deleted child.example.com." in p.stdout
    assert cli("zone", "list", *url).stdout == ""
    p = cli("zone", "delete", "child.example.com", *url)
    assert p.returncode == 1 and "no zone" in p.stderr
    p = cli("zone", "export", "child.example.com", *url)
    assert p.returncode == 1 and "no zone" in p.stderr and p.stdout == ""


def test_db_upgrade_and_serve_on_an_unmigrated_database(cli, new_database, tmp_path):
    bare = new_database(migrate=False)
    p = cli("serve", "--no-db-upgrade", "--database-url", bare, "--listen", "127.0.0.1:0", timeout=30)
    assert p.returncode == 1
    assert "schema is not current" in p.stderr and "minidns db upgrade" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr

    p = cli("db", "upgrade", "--database-url", bare)
    assert p.returncode == 0 and p.stdout.startswith("applied: 0001_initial.sql"), p.stdout + p.stderr
    p = cli("db", "upgrade", "--database-url", bare)
    assert p.returncode == 0 and p.stdout.strip() == "the schema is current", p.stdout + p.stderr

    gone = f"postgresql://postgres:@/postgres?host={tmp_path / 'no-such-socket-dir'}"
    p = cli("serve", "--database-url", gone, "--listen", "127.0.0.1:0", timeout=30)
    assert p.returncode == 1 and "cannot serve" in p.stderr and "cannot connect" in p.stderr, p.stderr


def test_zone_import_without_an_origin_names_the_flag(cli, database_url, tmp_path):
    """A file with relative owners and no $ORIGIN: the hint names `zone import`'s own flag."""
    f = tmp_path / "relative.zone"
    f.write_text("@ 60 IN SOA ns1 h 1 2 3 4 5\n@ 60 IN NS ns1\nns1 60 IN A 192.0.2.1\n")
    p = cli("zone", "import", f, "--database-url", database_url)
    assert p.returncode == 1 and "give the zone's name with --origin NAME" in p.stderr, p.stderr
    assert "ORIGIN=PATH" not in p.stderr
    p = cli("zone", "import", f, "--origin", "relative.test.", "--database-url", database_url)
    assert p.returncode == 0 and "imported relative.test." in p.stdout, p.stderr
