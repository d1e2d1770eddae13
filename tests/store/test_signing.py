"""The signed zone kept in rows (store/signing.py): after enabling and after every kind of change
the zone as stored is fully signed with a whole NSEC3 chain (checked here in-process, and by
dnssec-verify, ldns-verify-zone and kzonecheck), and the change log carries the signatures so a
follower applying it equals a reload."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
from struct import unpack_from

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from minidns.dnssec.nsec3 import nsec3_hash, nsec3_next, nsec3_owner
from minidns.services import dnssec, tasks
from minidns.store.follow import Follower
from minidns.store.records import Invalid
from minidns.services.recordsets import RecordsetWriter
from minidns.store.writer import Edit, NotFound, Unsignable, ZoneLog
from minidns.zones.changes import unpack_rrs

from tests.store.test_follow import ORIGIN, Sink, fresh, make_zone, random_edits, rrsets_now, same_snapshot  # noqa: F401
from tests.store.test_follow import store  # noqa: F401  (a fixture)

ZONE = "zone.test."
MASTER = bytes(range(32))
NOW = None  # the signatures are checked against the real clock
APEX = dns.name.from_text(ZONE)


@pytest.fixture
async def signed(store):  # noqa: F811
    store.master = MASTER
    z = await make_zone(store)
    await dnssec.enable(store, ZONE, MASTER)
    return z


async def zone_rows(pool, zone_id):  # noqa: F811
    return await pool.fetch("SELECT owner, name, type, ttl, wire FROM rrsets WHERE zone_id = $1", zone_id)


def _split(wire: bytes):
    out, off = [], 0
    while off < len(wire):
        rtype, ttl, rdlen = unpack_from("!HIH", wire, off)
        out.append(bytes(wire[off + 8 : off + 8 + rdlen]))
        off += 8 + rdlen
    return out


def check_signed(rows, now: float | None = None, optout: bool = False) -> int:
    """Every RRset of authoritative data validates with the zone's DNSKEY; the NSEC3 chain holds
    exactly the authoritative names and empty non-terminals, each pointing at the next hash, with
    the types of its name. Returns the number of signatures checked."""
    apex = APEX.to_wire()
    data: dict[bytes, dict[int, tuple[int, list[bytes]]]] = {}
    sigs: dict[bytes, list[bytes]] = {}
    nsec3: dict[bytes, bytes] = {}
    for r in rows:
        owner = bytes(r["owner"])
        rds = _split(bytes(r["wire"]))
        if r["type"] == 46:
            sigs[owner] = rds
        elif r["type"] == 50:
            nsec3[owner] = rds[0]
        else:
            data.setdefault(owner, {})[r["type"]] = (r["ttl"], rds)
    keyset = dns.rrset.from_rdata_list(APEX, 3600, [dns.rdata.from_wire(1, 48, w, 0, len(w)) for w in data[apex][48][1]])
    cuts = {o for o, t in data.items() if o != apex and 2 in t}

    def above(o):
        n = dns.name.from_wire(o, 0)[0]
        while n != APEX:
            n = n.parent()
            if n != APEX:
                yield n.to_wire()

    auth = {o for o in data if not any(a in cuts for a in above(o))}
    checked = 0
    for o in auth:
        for t, (ttl, rds) in data[o].items():
            if o in cuts and t == 2:
                continue
            rrset = dns.rrset.from_rdata_list(dns.name.from_wire(o, 0)[0], ttl, [dns.rdata.from_wire(1, t, w, 0, len(w)) for w in rds])
            covering = [w for w in sigs.get(o, []) if unpack_from("!H", w)[0] == t]
            assert covering, f"no RRSIG for {rrset.name} {dns.rdatatype.to_text(t)}"
            sigset = dns.rrset.from_rdata_list(rrset.name, ttl, [dns.rdata.from_wire(1, 46, w, 0, len(w)) for w in covering])
            dns.dnssec.validate(rrset, sigset, {APEX: keyset}, now=now)
            checked += 1
    unsigned = {o for o in cuts if 43 not in data[o]} if optout else set()  # RFC 5155 §6: left out
    names = (set(auth) - unsigned) | {a for o in auth for a in above(o)}
    want = sorted(nsec3_hash(n) for n in names)
    assert sorted(nsec3) == sorted(nsec3_owner(h, apex) for h in want), "the chain holds the wrong names"
    for i, h in enumerate(want):
        owner = nsec3_owner(h, apex)
        assert nsec3_next(nsec3[owner]) == want[(i + 1) % len(want)], "a broken chain link"
        assert nsec3[owner][1] == (1 if optout else 0), "the Opt-Out flag"
        rrset = dns.rrset.from_rdata_list(dns.name.from_wire(owner, 0)[0], 60, [dns.rdata.from_wire(1, 50, nsec3[owner], 0, len(nsec3[owner]))])
        sigset = dns.rrset.from_rdata_list(rrset.name, 60, [dns.rdata.from_wire(1, 46, w, 0, len(w)) for w in sigs[owner]])
        dns.dnssec.validate(rrset, sigset, {APEX: keyset}, now=now)
        checked += 1
    for n in names:  # each name's NSEC3 lists its types
        rd = dns.rdata.from_wire(1, 50, nsec3[nsec3_owner(nsec3_hash(n), apex)], 0, len(nsec3[nsec3_owner(nsec3_hash(n), apex)]))
        got = {t for w in rd.windows for t in _types(w)}
        own = set(data.get(n, {}))
        expect = own | ({46} if own - ({2} if n in cuts else set()) else set()) if n in auth else set()
        assert got == expect, (dns.name.from_wire(n, 0)[0], got, expect)
    return checked


def _types(window):
    num, bits = window
    return {num * 256 + i * 8 + b for i, octet in enumerate(bits) for b in range(8) if octet & (0x80 >> b)}


async def test_enable_signs_the_whole_zone_with_an_nsec3_chain(store, pool, signed):  # noqa: F811
    rows = await zone_rows(pool, signed.zone_id)
    assert check_signed(rows) >= 8
    types = {r["type"] for r in rows}
    assert {46, 50, 51, 48, 59, 60} <= types


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
async def test_every_change_keeps_the_zone_signed_and_the_log_carries_it(store, pool, database_url, signed, seed):  # noqa: F811
    """Random changes (names appearing and vanishing, empty non-terminals, delegations coming and
    going, TTL changes…) and a follower applying the log: after each, the stored zone checks out
    and the follower's snapshot equals a reload."""
    f = Follower(database_url, Sink())
    await f.start()
    rnd = random.Random(seed)
    done = 0
    try:
        while done < 40:
            edits, fields = random_edits(rnd, await rrsets_now(pool, signed.zone_id))
            edits = [e for e in edits if e.name not in ("@",) or e.rtype not in ("DNSKEY",)]
            try:
                await store.change(signed.zone_id, edits, source="random", fields=fields)
            except (Invalid, NotFound):
                continue
            done += 1
            if done % 10 == 0:
                check_signed(await zone_rows(pool, signed.zone_id))
                await f.sync_zone(signed.zone_id)
                same_snapshot(f.sink.zones[ORIGIN], (await fresh(database_url))[ORIGIN])
        assert f.applied > 0
    finally:
        await f.stop()


async def test_empty_non_terminals_come_and_go_in_the_chain(store, pool, signed):  # noqa: F811
    before = {bytes(r["owner"]) for r in await zone_rows(pool, signed.zone_id) if r["type"] == 50}
    await store.change(ZONE, [Edit("add", "a.b.c", "TXT", None, ('"deep"',))], source="t")
    rows = await zone_rows(pool, signed.zone_id)
    check_signed(rows)
    after = {bytes(r["owner"]) for r in rows if r["type"] == 50}
    ents = {nsec3_owner(nsec3_hash(dns.name.from_text(n, APEX).to_wire()), APEX.to_wire()) for n in ("b.c", "c", "a.b.c")}
    assert after == before | ents
    await store.change(ZONE, [Edit("delete", "a.b.c", "TXT")], source="t")
    rows = await zone_rows(pool, signed.zone_id)
    check_signed(rows)
    assert {bytes(r["owner"]) for r in rows if r["type"] == 50} == before


async def test_a_change_signs_only_what_it_touches(store, pool, signed):  # noqa: F811
    await store.change(ZONE, [Edit("add", "new", "A", None, ("192.0.2.7",))], source="t")
    last = await pool.fetchrow("SELECT removed, added FROM zone_changes ORDER BY seq DESC LIMIT 1")
    added = unpack_rrs(last["added"])
    sig_owners = {dns.name.from_wire(rr[0], 0)[0].to_text() for rr in added if rr[1] == 46}
    # the new name, its NSEC3 and its predecessor's, and the apex (the new SOA)
    assert len(sig_owners) == 4 and "new.zone.test." in sig_owners and "zone.test." in sig_owners
    assert sum(1 for rr in added if rr[1] == 50) == 2  # the new NSEC3, and the predecessor's new next hash


async def test_events_batch_into_a_signed_zone(store, pool, signed):  # noqa: F811
    async with pool.acquire() as conn, conn.transaction():
        log = ZoneLog(store, "test")
        for i in range(5):
            log.keep(await log.write(conn, signed.zone_id, [Edit("add", f"h{i}", "A", None, (f"192.0.2.{i + 10}",))]), "test")
        await log.flush(conn)
    check_signed(await zone_rows(pool, signed.zone_id))


async def test_api_writes_batched_into_a_signed_zone(store, pool, signed):  # noqa: F811
    """The API's group commit (services/recordsets.py) makes one change of many creates, updates and
    deletes at once: names and NSEC3 hashes come and go together, and the zone stays signed."""
    writer = RecordsetWriter(store)
    zid = signed.zone_id
    made = await asyncio.gather(*[writer.create(zid, None, name=f"b{i}.{ZONE}", rtype="A", records=[f"192.0.2.{i + 1}"])
                                  for i in range(20)])  # fmt: skip
    serial = await pool.fetchval("SELECT serial FROM zones WHERE id = $1", zid)
    await asyncio.gather(*[writer.update(zid, None, r["id"], {"records": ["198.51.100.1", "198.51.100.2"], "ttl": 77})
                           for r in made[:10]],
                         *[writer.delete(zid, None, r["id"]) for r in made[10:]],
                         *[writer.create(zid, None, name=f"c{i}.deep.{ZONE}", rtype="TXT", records=[f'"{i}"'])
                           for i in range(5)])  # fmt: skip
    rows = await zone_rows(pool, zid)
    check_signed(rows)
    names = {r["name"] for r in rows if r["type"] == 1}
    assert {f"b{i}.{ZONE}" for i in range(10)} <= names and not names & {f"b{i}.{ZONE}" for i in range(10, 20)}
    assert await pool.fetchval("SELECT serial FROM zones WHERE id = $1", zid) - serial < 25  # batched: fewer serials


async def test_writing_a_signed_zone_needs_the_master_key(store, pool, signed):  # noqa: F811
    store.master = None
    serial = await pool.fetchval("SELECT serial FROM zones WHERE name = $1", ZONE)
    with pytest.raises(Unsignable, match="master key"):
        await store.change(ZONE, [Edit("add", "x", "A", None, ("192.0.2.9",))], source="t")
    assert await pool.fetchval("SELECT serial FROM zones WHERE name = $1", ZONE) == serial
    assert not await pool.fetchval("SELECT 1 FROM rrsets WHERE name = 'x.zone.test.'")


@pytest.mark.skipif(not all(shutil.which(t) for t in ("dnssec-verify", "ldns-verify-zone", "kzonecheck")),
                    reason="dnssec-verify, ldns-verify-zone and kzonecheck come with bind9-utils, ldnsutils, knot-dnssecutils")
async def test_the_stored_zone_passes_the_verifiers(store, pool, signed, tmp_path):  # noqa: F811
    await store.change(ZONE, [Edit("add", "a.b.c", "TXT", None, ('"x"',)), Edit("add", "sub", "NS", None, ("ns.sub",)),
                              Edit("add", "ns.sub", "A", None, ("192.0.2.54",))], source="t")  # fmt: skip
    await store.change(ZONE, [Edit("add", "sub", "DS", None, ("12345 13 2 " + "ab" * 32,))], source="t")
    text = await tasks.export_text(store, signed.zone_id)
    path = tmp_path / "zone.test.zone"
    path.write_text(text)
    for cmd in (["dnssec-verify", "-z", "-o", ZONE, str(path)], ["ldns-verify-zone", str(path)],
                ["kzonecheck", "-o", ZONE, "-d", "on", str(path)]):  # fmt: skip
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)


async def test_signatures_nearing_expiry_are_refreshed_with_a_new_serial(store, pool, signed):  # noqa: F811
    from minidns.store.signing import REFRESH_LEFT, VALIDITY

    rows = await zone_rows(pool, signed.zone_id)
    oldest = min(unpack_from("!I", w, 8)[0] for r in rows if r["type"] == 46 for w in _split(bytes(r["wire"])))
    nothing = await store.refresh_signatures(signed.zone_id)
    assert nothing.serial_to == nothing.serial_from  # none due: no change, no new serial
    real = store.clock
    later = real() + VALIDITY * (1 - REFRESH_LEFT) + 3600
    store.clock = lambda: later  # every signature now due
    try:
        change = await store.refresh_signatures(signed.zone_id)
    finally:
        store.clock = real
    assert change.serial_to == change.serial_from + 1
    rows = await zone_rows(pool, signed.zone_id)
    assert min(unpack_from("!I", w, 8)[0] for r in rows if r["type"] == 46 for w in _split(bytes(r["wire"]))) > oldest
    check_signed(rows, now=later)
    last = await pool.fetchrow("SELECT removed, added FROM zone_changes ORDER BY seq DESC LIMIT 1")
    assert sum(1 for rr in unpack_rrs(last["added"]) if rr[1] == 46) >= 10  # the new signatures travel by IXFR


async def test_nsec3_opt_out_leaves_delegations_without_ds_out(store, pool, signed, tmp_path):  # noqa: F811
    """RFC 5155 §6: under opt-out a delegation without a DS has no NSEC3 (every NSEC3 carries the
    flag); one that gets a DS joins the chain, and leaves it again with the DS."""
    await store.change(ZONE, [Edit("add", "open", "NS", None, ("ns.elsewhere.test.",)),
                              Edit("add", "closed", "NS", None, ("ns.elsewhere.test.",)),
                              Edit("add", "closed", "DS", None, ("12345 13 2 " + "ab" * 32,))], source="t")  # fmt: skip
    change = await dnssec.set_nsec3_optout(store, ZONE, True)
    assert change.serial_to == change.serial_from + 1
    rows = await zone_rows(pool, signed.zone_id)
    check_signed(rows, optout=True)
    chain = {bytes(r["owner"]) for r in rows if r["type"] == 50}
    owner = lambda n: nsec3_owner(nsec3_hash(dns.name.from_text(n, APEX).to_wire()), APEX.to_wire())  # noqa: E731
    assert owner("open") not in chain and owner("closed") in chain
    await store.change(ZONE, [Edit("add", "open", "DS", None, ("54321 13 2 " + "cd" * 32,))], source="t")
    rows = await zone_rows(pool, signed.zone_id)
    check_signed(rows, optout=True)
    assert owner("open") in {bytes(r["owner"]) for r in rows if r["type"] == 50}
    await store.change(ZONE, [Edit("delete", "open", "DS")], source="t")
    rows = await zone_rows(pool, signed.zone_id)
    check_signed(rows, optout=True)
    assert owner("open") not in {bytes(r["owner"]) for r in rows if r["type"] == 50}
    if all(shutil.which(t) for t in ("dnssec-verify", "ldns-verify-zone", "kzonecheck")):
        path = tmp_path / "optout.zone"
        path.write_text(await tasks.export_text(store, signed.zone_id))
        for cmd in (["dnssec-verify", "-z", "-o", ZONE, str(path)], ["ldns-verify-zone", str(path)],
                    ["kzonecheck", "-o", ZONE, "-d", "on", str(path)]):  # fmt: skip
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (cmd, p.stdout, p.stderr)
    await dnssec.set_nsec3_optout(store, ZONE, False)
    rows = await zone_rows(pool, signed.zone_id)
    check_signed(rows)
    assert owner("open") in {bytes(r["owner"]) for r in rows if r["type"] == 50}


async def test_a_new_negative_ttl_gives_the_chain_its_ttl_and_new_signatures(store, pool, signed):  # noqa: F811
    """NSEC3 records and NSEC3PARAM have the lesser of the SOA's TTL and MINIMUM (RFC 9077 §3):
    changing either re-signs them with that TTL as their signatures' Original TTL."""
    from minidns.dnssec.zone import covered, rrsig_original_ttl

    z = await pool.fetchrow("SELECT ttl, minimum FROM zones WHERE id = $1", signed.zone_id)
    for fields in ({"minimum": min(z["ttl"], z["minimum"]) + 77}, {"ttl": 45}):
        change = await store.change(ZONE, [], source="test", fields=fields)
        assert change.serial_to != change.serial_from
        zr = await pool.fetchrow("SELECT ttl, minimum FROM zones WHERE id = $1", signed.zone_id)
        neg = min(zr["ttl"], zr["minimum"])
        rows = await zone_rows(pool, signed.zone_id)
        made = [r for r in rows if r["type"] in (50, 51)]
        assert made and all(r["ttl"] == neg for r in made), (neg, {r["ttl"] for r in made})
        sigs = [w for r in rows if r["type"] == 46 for w in _split(bytes(r["wire"]))]
        assert {rrsig_original_ttl(w) for w in sigs if covered(w) in (50, 51)} == {neg}
        check_signed(rows)
