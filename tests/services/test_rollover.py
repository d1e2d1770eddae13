"""DNSSEC key rollovers (services/rollover.py) against a real PostgreSQL, with the clock moved by hand:
a ZSK rollover walked step by step (the DNSKEY RRset, key states, the stored zone fully signed
after each step and by the right keys, the follower re-reading the keys at the switch), a KSK
rollover that waits for ds-seen (CDS/CDNSKEY at each step), a CSK rollover, advance() idempotent
and taken once when two processes run it at once, and the commands and the server's scheduler."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from struct import unpack_from

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import pytest

from minidns.store import db
from minidns.services import dnssec, rollover
from minidns.store.follow import Follower
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Conflict, Edit, Store

from tests.store.test_follow import ORIGIN, Sink, make_zone  # noqa: F401
from tests.store.test_follow import store  # noqa: F401  (a fixture)
from tests.store.test_signing import MASTER, ZONE, _split, check_signed, zone_rows

DNSKEY, CDS, CDNSKEY, RRSIG, SOA = 48, 59, 60, 46, 6
MARGIN = 60
TTL = 3600  # the test zone's TTL: its DNSKEY TTL and its largest


class Clock:
    def __init__(self):
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(store):  # noqa: F811
    c = Clock()
    store.clock = c
    store.master = MASTER
    return c


async def keys(pool):  # noqa: F811
    return [dict(r) for r in await pool.fetch("SELECT id, role, key_tag, state FROM dnssec_keys ORDER BY created_at, role")]


def tag_of(ks, role, state):
    (k,) = [k for k in ks if k["role"] == role and k["state"] == state]
    return k["key_tag"]


def apex_set(rows, rtype):
    (r,) = [r for r in rows if bytes(r["owner"]) == ORIGIN and r["type"] == rtype] or [None]
    return [] if r is None else [dns.rdata.from_wire(1, rtype, w, 0, len(w)) for w in _split(bytes(r["wire"]))]


def signers(rows) -> tuple[set, set]:
    """(key tags of the signatures of DNSKEY, CDS and CDNSKEY — signed by the key-signing keys, RFC
    7344 §4.1 — and key tags of every other signature)."""
    keyset, rest = set(), set()
    for r in rows:
        if r["type"] == RRSIG:
            for w in _split(bytes(r["wire"])):
                covered, tag = unpack_from("!H", w)[0], unpack_from("!H", w, 16)[0]
                (keyset if covered in (DNSKEY, CDS, CDNSKEY) else rest).add(tag)
    return keyset, rest


async def state(pool, zone_id, now):  # noqa: F811
    """The stored zone checked whole (signatures valid at `now`, the chain), and what it shows."""
    rows = await zone_rows(pool, zone_id)
    check_signed(rows, now=now)
    dnskeys = {dns.dnssec.key_id(k) for k in apex_set(rows, DNSKEY)}
    cds = {d.key_tag for d in apex_set(rows, CDS)}
    cdnskey = {dns.dnssec.key_id(k) for k in apex_set(rows, CDNSKEY)}
    return rows, dnskeys, cds, cdnskey


async def serial(pool):  # noqa: F811
    return await pool.fetchval("SELECT serial FROM zones WHERE name = $1", ZONE)


# -- ZSK ---------------------------------------------------------------------------------------------


async def test_zsk_rollover_walk(store, pool, clock, database_url):  # noqa: F811
    z = await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER, split=True)
    ks = await keys(pool)
    ksk, old = tag_of(ks, "ksk", "active"), tag_of(ks, "zsk", "active")
    follower = Follower(database_url, Sink(), master_key=MASTER)
    await follower.start()
    try:
        # Step 1: the new ZSK published (in DNSKEY), signing nothing; one change.
        s0 = await serial(pool)
        step = await rollover.start(store, ZONE, "zsk", now=clock(), margin=MARGIN)
        assert await serial(pool) == s0 + 1 and not step.finished
        ks = await keys(pool)
        new = tag_of(ks, "zsk", "published")
        assert new not in (ksk, old) and tag_of(ks, "zsk", "active") == old
        rows, dnskeys, cds, cdnskey = await state(pool, z.zone_id, clock())
        assert dnskeys == {ksk, old, new} and cds == cdnskey == {ksk}
        assert signers(rows) == ({ksk}, {old})
        assert step.due_at.timestamp() == pytest.approx(clock() + TTL + MARGIN)
        await follower.sync_zone(z.zone_id)
        assert {k.key_tag for k in follower.sink.zones[ORIGIN].keys.keys} == {ksk, old}

        with pytest.raises(Conflict, match="ZSK rollover is running"):
            await rollover.start(store, ZONE, "zsk", now=clock(), margin=MARGIN)
        (r,) = await rollover.rollovers(pool, z.zone_id)
        assert (r["key"], r["phase"], r["old_key_tag"], r["new_key_tag"], r["waiting_for_ds"]) == ("zsk", "published", old, new, False)

        # Not before the DNSKEY TTL + margin has passed.
        clock.t += TTL + MARGIN - 1
        assert await rollover.advance(store, clock(), margin=MARGIN) == []
        assert await serial(pool) == s0 + 1

        # Step 2: the new ZSK active, the old retired (still in DNSKEY), the zone signed whole anew.
        clock.t += 1
        (step,) = await rollover.advance(store, clock(), margin=MARGIN)
        assert step.kind == "zsk" and not step.finished and step.error is None
        assert await serial(pool) == s0 + 2
        ks = await keys(pool)
        assert tag_of(ks, "zsk", "active") == new and tag_of(ks, "zsk", "retired") == old
        rows, dnskeys, cds, cdnskey = await state(pool, z.zone_id, clock())
        assert dnskeys == {ksk, old, new} and cds == {ksk}
        assert signers(rows) == ({ksk}, {new})  # every signature of the zone's data by the new ZSK
        assert step.due_at.timestamp() == pytest.approx(clock() + TTL + MARGIN)
        # The DNSKEY RRset did not change, yet the serving process takes the new key up.
        await follower.sync_zone(z.zone_id)
        assert {k.key_tag for k in follower.sink.zones[ORIGIN].keys.keys} == {ksk, new}
        assert await rollover.advance(store, clock(), margin=MARGIN) == []  # idempotent

        # Step 3: once the largest TTL + margin has passed, the old ZSK goes.
        clock.t += TTL + MARGIN
        (step,) = await rollover.advance(store, clock(), margin=MARGIN)
        assert step.finished and await serial(pool) == s0 + 3
        ks = await keys(pool)
        assert {(k["role"], k["key_tag"], k["state"]) for k in ks} == {("ksk", ksk, "active"), ("zsk", new, "active")}
        rows, dnskeys, cds, cdnskey = await state(pool, z.zone_id, clock())
        assert dnskeys == {ksk, new} and signers(rows) == ({ksk}, {new})
        assert await rollover.rollovers(pool, z.zone_id) == []
        assert await rollover.advance(store, clock() + 10 * TTL, margin=MARGIN) == []
        await follower.sync_zone(z.zone_id)
        assert {k.key_tag for k in follower.sink.zones[ORIGIN].keys.keys} == {ksk, new}
        # A change after the rollover is signed by the new key.
        await store.change(ZONE, [Edit("add", "after", "A", None, ("192.0.2.99",))], source="t")
        rows, *_ = await state(pool, z.zone_id, clock())
        assert signers(rows) == ({ksk}, {new})
    finally:
        await follower.stop()


async def test_zsk_rollover_waits_for_the_largest_ttl(store, pool, clock):  # noqa: F811
    z = await make_zone(store)
    await store.change(ZONE, [Edit("add", "long", "TXT", 86400, ('"a day"',))], source="t")
    await dnssec.enable(store, ZONE, MASTER, split=True)
    await rollover.start(store, ZONE, "zsk", now=clock(), margin=MARGIN)
    clock.t += TTL + MARGIN
    (step,) = await rollover.advance(store, clock(), margin=MARGIN)
    assert step.due_at.timestamp() == pytest.approx(clock() + 86400 + MARGIN)
    clock.t += TTL + MARGIN
    assert await rollover.advance(store, clock(), margin=MARGIN) == []
    clock.t += 86400
    (step,) = await rollover.advance(store, clock(), margin=MARGIN)
    assert step.finished
    await state(pool, z.zone_id, clock())


async def test_zsk_rollover_refused_in_a_csk_zone_and_unsigned(store, pool, clock):  # noqa: F811
    await make_zone(store)
    with pytest.raises(Invalid, match="not signed"):
        await rollover.start(store, ZONE, "zsk", now=clock())
    await dnssec.enable(store, ZONE, MASTER)
    with pytest.raises(Invalid, match=r"CSK .*--ksk"):
        await rollover.start(store, ZONE, "zsk", now=clock())
    with pytest.raises(Invalid, match="no KSK rollover"):
        await rollover.ds_seen(store, ZONE, now=clock())
    assert len(await keys(pool)) == 1


# -- KSK and CSK -------------------------------------------------------------------------------------


async def test_ksk_rollover_waits_for_ds_seen(store, pool, clock):  # noqa: F811
    z = await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER, split=True)
    ks = await keys(pool)
    old, zsk = tag_of(ks, "ksk", "active"), tag_of(ks, "zsk", "active")
    s0 = await serial(pool)

    # Step 1: the new KSK in DNSKEY, co-signing it; CDS/CDNSKEY name both keys (the parent adds the new DS).
    step = await rollover.start(store, ZONE, "ksk", now=clock(), margin=MARGIN)
    ks = await keys(pool)
    new = tag_of(ks, "ksk", "published")
    rows, dnskeys, cds, cdnskey = await state(pool, z.zone_id, clock())
    assert dnskeys == {old, new, zsk} and cds == cdnskey == {old, new}
    assert signers(rows) == ({old, new}, {zsk})
    # CDS and CDNSKEY are the DS and DNSKEY of exactly the two KSKs (RFC 7344 §3).
    sep = [k for k in apex_set(rows, DNSKEY) if k.flags & 1]
    assert {c.to_text() for c in apex_set(rows, CDS)} == {dns.dnssec.make_ds(ZONE, k, "SHA256").to_text() for k in sep}
    assert {c.to_text() for c in apex_set(rows, CDNSKEY)} == {k.to_text() for k in sep}
    # Each KSK alone validates the DNSKEY RRset: a resolver with either DS is fine.
    for tag in (old, new):
        kset = dns.rrset.from_rdata_list(dns.name.from_text(ZONE), TTL, apex_set(rows, DNSKEY))
        sigs = [s for s in _rrsigs(rows, DNSKEY) if s.key_tag == tag]
        dns.dnssec.validate(kset, dns.rrset.from_rdata_list(kset.name, TTL, sigs),
                            {kset.name: dns.rrset.from_rdata_list(kset.name, TTL, [k for k in sep if dns.dnssec.key_id(k) == tag])},
                            now=clock())  # fmt: skip
    assert [line.split(" IN DS ")[1].split()[0] for line in await dnssec.ds(store, ZONE) if " IN DS " in line] == [str(old), str(new)]

    # Long past the DNSKEY TTL, but no ds-seen: it does not finish.
    clock.t += 30 * 86400
    assert await rollover.advance(store, clock(), margin=MARGIN) == []
    (r,) = await rollover.rollovers(pool, z.zone_id)
    assert r["waiting_for_ds"] and r["phase"] == "published"
    assert await serial(pool) == s0 + 1
    with pytest.raises(Conflict):
        await rollover.start(store, ZONE, "ksk", now=clock(), margin=MARGIN)

    # ds-seen: the old KSK goes at once (it signed only the DNSKEY RRset); CDS/CDNSKEY name the new key alone.
    step = await rollover.ds_seen(store, ZONE, now=clock(), margin=MARGIN)
    assert step.finished and await serial(pool) == s0 + 2
    ks = await keys(pool)
    assert {(k["role"], k["key_tag"], k["state"]) for k in ks} == {("ksk", new, "active"), ("zsk", zsk, "active")}
    rows, dnskeys, cds, cdnskey = await state(pool, z.zone_id, clock())
    assert dnskeys == {new, zsk} and cds == cdnskey == {new}
    assert signers(rows) == ({new}, {zsk})
    assert await rollover.rollovers(pool, z.zone_id) == []
    with pytest.raises(Invalid, match="no KSK rollover"):
        await rollover.ds_seen(store, ZONE, now=clock())


def _rrsigs(rows, covered):
    return [s for s in apex_set(rows, RRSIG) if s.type_covered == covered]


async def test_ds_seen_early_waits_for_the_dnskey_ttl(store, pool, clock):  # noqa: F811
    z = await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER, split=True)
    await rollover.start(store, ZONE, "ksk", now=clock(), margin=MARGIN)
    clock.t += 10
    step = await rollover.ds_seen(store, ZONE, now=clock(), margin=MARGIN)
    assert not step.finished and step.change is None
    assert step.due_at.timestamp() == pytest.approx(clock() - 10 + TTL + MARGIN)
    (r,) = await rollover.rollovers(pool, z.zone_id)
    assert not r["waiting_for_ds"] and r["ds_seen_at"] is not None
    assert await rollover.advance(store, clock() + TTL, margin=MARGIN) == []
    clock.t += TTL + MARGIN
    (step,) = await rollover.advance(store, clock(), margin=MARGIN)
    assert step.finished
    _, dnskeys, cds, _ = await state(pool, z.zone_id, clock())
    assert len(dnskeys) == 2 and len(cds) == 1


async def test_csk_rollover(store, pool, clock):  # noqa: F811
    z = await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER)
    (k,) = await keys(pool)
    old = k["key_tag"]

    # Step 1: the new CSK in DNSKEY co-signing it only; the zone's data still signed by the old one.
    await rollover.start(store, ZONE, "ksk", now=clock(), margin=MARGIN)
    ks = await keys(pool)
    new = tag_of(ks, "csk", "published")
    rows, dnskeys, cds, cdnskey = await state(pool, z.zone_id, clock())
    assert dnskeys == {old, new} and cds == cdnskey == {old, new}
    assert signers(rows) == ({old, new}, {old})

    await rollover.ds_seen(store, ZONE, now=clock(), margin=MARGIN)
    clock.t += TTL + MARGIN
    # Step 2: the new CSK signs everything, the old one retired but still published; CDS names the new one.
    (step,) = await rollover.advance(store, clock(), margin=MARGIN)
    assert not step.finished
    ks = await keys(pool)
    assert tag_of(ks, "csk", "active") == new and tag_of(ks, "csk", "retired") == old
    rows, dnskeys, cds, cdnskey = await state(pool, z.zone_id, clock())
    assert dnskeys == {old, new} and cds == cdnskey == {new}
    assert signers(rows) == ({new}, {new})
    assert [line for line in await dnssec.ds(store, ZONE) if " IN DS " in line][0].split(" IN DS ")[1].startswith(f"{new} ")

    assert await rollover.advance(store, clock() + TTL, margin=MARGIN) == []
    clock.t += TTL + MARGIN
    # Step 3: the old CSK goes.
    (step,) = await rollover.advance(store, clock(), margin=MARGIN)
    assert step.finished
    assert [(k["role"], k["key_tag"], k["state"]) for k in await keys(pool)] == [("csk", new, "active")]
    rows, dnskeys, cds, cdnskey = await state(pool, z.zone_id, clock())
    assert dnskeys == cds == cdnskey == {new} and signers(rows) == ({new}, {new})


async def test_zsk_and_ksk_rollovers_at_once(store, pool, clock):  # noqa: F811
    z = await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER, split=True)
    await rollover.start(store, ZONE, "zsk", now=clock(), margin=MARGIN)
    await rollover.start(store, ZONE, "ksk", now=clock(), margin=MARGIN)
    assert len(await keys(pool)) == 4
    assert [r["key"] for r in await rollover.rollovers(pool, z.zone_id)] == ["zsk", "ksk"]
    await rollover.ds_seen(store, ZONE, now=clock(), margin=MARGIN)
    for _ in range(3):
        clock.t += TTL + MARGIN
        await rollover.advance(store, clock(), margin=MARGIN)
        await state(pool, z.zone_id, clock())
    ks = await keys(pool)
    assert sorted((k["role"], k["state"]) for k in ks) == [("ksk", "active"), ("zsk", "active")]
    assert await rollover.rollovers(pool, z.zone_id) == []


async def test_disable_ends_a_rollover(store, pool, clock):  # noqa: F811
    z = await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER, split=True)
    await rollover.start(store, ZONE, "zsk", now=clock(), margin=MARGIN)
    await dnssec.disable(store, ZONE)
    assert await pool.fetchval("SELECT count(*) FROM dnssec_rollovers") == 0
    assert await rollover.advance(store, clock() + 10 * TTL, margin=MARGIN) == []
    await dnssec.enable(store, ZONE, MASTER, split=True)  # signed anew: a rollover starts afresh
    await rollover.start(store, ZONE, "zsk", now=clock(), margin=MARGIN)
    assert [r["phase"] for r in await rollover.rollovers(pool, z.zone_id)] == ["published"]


# -- advance(): safe anywhere, at once ---------------------------------------------------------------


async def test_advance_by_two_processes_at_once_takes_each_step_once(store, pool, clock, database_url):  # noqa: F811
    z = await make_zone(store)
    await make_zone(store, "other.test.")
    await dnssec.enable(store, ZONE, MASTER, split=True)
    await dnssec.enable(store, "other.test.", MASTER)
    await rollover.start(store, ZONE, "zsk", now=clock(), margin=MARGIN)
    await rollover.start(store, "other.test.", "ksk", now=clock(), margin=MARGIN)
    await rollover.ds_seen(store, "other.test.", now=clock(), margin=MARGIN)
    pools = [await db.create_pool(database_url, size=2) for _ in range(2)]
    try:
        others = [Store(p, clock=clock, master=MASTER, stages=write_stages()) for p in pools]  # two processes, each its own pool
        for _ in range(2):
            clock.t += TTL + MARGIN
            before = await pool.fetchval("SELECT count(*) FROM zone_changes")
            results = await asyncio.gather(*(rollover.advance(s, clock(), margin=MARGIN) for s in others * 2))
            taken = [st for res in results for st in res]
            assert sorted(st.zone for st in taken) == ["other.test.", ZONE] and not any(st.error for st in taken)
            assert await pool.fetchval("SELECT count(*) FROM zone_changes") == before + 2
            assert await rollover.advance(store, clock(), margin=MARGIN) == []
            await state(pool, z.zone_id, clock())
        assert await pool.fetchval("SELECT count(*) FROM dnssec_rollovers") == 0
        assert len(await keys(pool)) == 3  # ksk + zsk of zone.test., the csk of other.test.
    finally:
        for p in pools:
            await p.close()


async def test_advance_goes_on_past_a_zone_it_cannot_sign(store, pool, clock):  # noqa: F811
    await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER, split=True)
    await rollover.start(store, ZONE, "zsk", now=clock(), margin=MARGIN)
    store.master = bytes(32)  # a wrong master key
    clock.t += TTL + MARGIN
    (step,) = await rollover.advance(store, clock(), margin=MARGIN)
    assert step.error and "master key" in step.error
    store.master = MASTER
    (step,) = await rollover.advance(store, clock(), margin=MARGIN)
    assert step.error is None


# -- the commands and the server ---------------------------------------------------------------------

B64 = base64.b64encode(MASTER).decode()


def test_rollover_commands(cli, database_url):
    env = {**os.environ, "MINIDNS_MASTER_KEY": B64}
    zones = os.path.join(os.path.dirname(__file__), "..", "zones", "example.com.zone")
    assert cli("zone", "import", zones, "--database-url", database_url).returncode == 0
    p = cli("dnssec", "enable", "example.com", "--database-url", database_url, env=env)
    assert p.returncode == 0, p.stderr
    p = cli("dnssec", "rollover", "example.com", "--zsk", "--database-url", database_url, env=env)
    assert p.returncode == 1 and "CSK" in p.stderr and "--ksk" in p.stderr and p.stderr.count("\n") == 1
    p = cli("dnssec", "rollover", "example.com", "--ksk", "--database-url", database_url, "--dnssec-rollover-margin", "7", env=env)
    assert p.returncode == 0, p.stderr
    assert re.search(r"KSK rollover: new CSK \d+ published beside CSK \d+.*next step due", p.stdout), p.stdout
    p = cli("dnssec", "status", "example.com", "--database-url", database_url, env=env)
    assert p.returncode == 0 and re.search(r"rollover ksk \(CSK \d+ -> \d+\): published", p.stdout), p.stdout
    assert "waiting for `minidns dnssec ds-seen example.com.`" in p.stdout
    p = cli("dnssec", "advance", "--database-url", database_url, env=env)
    assert p.returncode == 0 and p.stdout == "no rollover step is due\n", (p.stdout, p.stderr)
    p = cli("dnssec", "ds-seen", "example.com", "--database-url", database_url, env=env)
    assert p.returncode == 0 and "the parent's DS noted" in p.stdout and "next step due" in p.stdout, p.stdout
    p = cli("dnssec", "ds-seen", "nope.example", "--database-url", database_url, env=env)
    assert p.returncode == 1 and p.stderr.count("\n") == 1
    p = cli("dnssec", "rollover", "example.com", "--database-url", database_url, env=env)
    assert p.returncode == 2  # --zsk or --ksk is required


def test_serve_takes_due_steps_and_serves_the_new_key(serve, cli, database_url):
    """A ZSK rollover whose switch is due when the server starts: its scheduler takes the step,
    and the follower signs answers with the new ZSK although the DNSKEY RRset did not change."""
    env = {**os.environ, "MINIDNS_MASTER_KEY": B64}
    zones = os.path.join(os.path.dirname(__file__), "..", "zones", "example.com.zone")
    assert cli("zone", "import", zones, "--database-url", database_url).returncode == 0
    assert cli("dnssec", "enable", "example.com", "--ksk-zsk", "--database-url", database_url, env=env).returncode == 0
    p = cli("dnssec", "rollover", "example.com", "--zsk", "--database-url", database_url, env=env)
    assert p.returncode == 0, p.stderr
    new = int(re.search(r"new ZSK (\d+)", p.stdout).group(1))
    old = int(re.search(r"beside ZSK (\d+)", p.stdout).group(1))

    async def make_due():
        conn = await db.connect(database_url)
        await conn.execute("UPDATE dnssec_rollovers SET due_at = now() - interval '1 second'")
        await conn.close()

    s = serve("--database-url", database_url, "--no-api", env=env)
    s.wait_for(r"1 zone\(s\) served signed")
    r = _ask_signed(s.port)
    assert {sig.key_tag for sig in r} == {old}
    s.stop()
    asyncio.run(make_due())
    s = serve("--database-url", database_url, "--no-api", env=env)
    s.wait_for(r"ZSK rollover: new ZSK \d+ active", 30)
    deadline = time.monotonic() + 10
    while {sig.key_tag for sig in _ask_signed(s.port)} != {new}:
        assert time.monotonic() < deadline, s.log
        time.sleep(0.05)
    p = cli("dnssec", "status", "example.com", "--database-url", database_url, env=env)
    assert re.search(r"rollover zsk \(ZSK \d+ -> \d+\): retired", p.stdout) and "due " in p.stdout, p.stdout


def _ask_signed(port):
    q = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
    q.flags &= ~dns.flags.RD
    r = dns.query.tcp(q, "127.0.0.1", port=port, timeout=3)
    return [sig for rr in r.answer if rr.rdtype == RRSIG for sig in rr]
