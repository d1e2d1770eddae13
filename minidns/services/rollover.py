"""DNSSEC key rollovers (RFC 7583), their state kept in the database (table dnssec_rollovers,
migration 10) so that any process can take the next step — `minidns serve`'s scheduler, or
`minidns dnssec advance` from cron — and a restart loses nothing. Every step is one transaction
that holds the zone's row lock (then the rollover's row) and makes one change through the write
path (source "dnssec"), so the change log, IXFR and the serving processes carry it.

ZSK: pre-publication (RFC 7583 §3.2.1), fully automatic:
  1. now: a new ZSK, state 'published', goes into the DNSKEY RRset; it signs nothing yet;
  2. once the DNSKEY TTL + margin has passed (Ipub: every cached DNSKEY RRset holds the new key):
     the new ZSK 'active', the old one 'retired', the zone signed whole anew with the new one;
  3. once the zone's largest TTL + margin has passed (Iret: no cache holds an RRset signed by the
     old key any more): the old ZSK leaves the DNSKEY RRset and is deleted.

KSK and CSK: double-RRset (RFC 7583 §3.3.3; for a CSK, with the ZSK side's retire step, §3.4),
with CDS/CDNSKEY (RFC 7344, RFC 8078) telling the parent what its DS should be:
  1. now: a new key, 'published', goes into the DNSKEY RRset and co-signs it at once (a published
     key-signing key signs the DNSKEY RRset only: store/keys.load_zone_keys), so the DNSKEY RRset is
     signed by both keys; CDS and CDNSKEY name both keys, so the parent adds the new DS beside the
     old one (both DS at the parent: "double-DS");
  2. once the operator says the parent serves the new DS and its TTL has passed (`minidns dnssec
     ds-seen`), and the DNSKEY TTL + margin has passed since 1 (no cache still holds a DNSKEY RRset
     without the new key, which the parent's DS may soon be the only way into): the new key
     'active', and CDS/CDNSKEY name it alone, so the parent may drop the old DS. An old KSK goes at
     once (it signed only the DNSKEY RRset, which resolvers fetch with its signatures); an old CSK
     is 'retired' and stays in the DNSKEY RRset while the zone's data signed by it may be cached;
  3. (CSK) once the zone's largest TTL + margin has passed: the old CSK goes.
The new key is pre-published in the DNSKEY RRset rather than only at the parent (strict §3.3.2
double-DS), so that every key CDS/CDNSKEY name is in the DNSKEY RRset and signs it — what parental
agents check the CDS against.

Timings come from the TTLs as stored when the step is taken, plus `margin` (the setting
`dnssec_rollover_margin`, seconds): the propagation to secondaries (Dprp) and a safety margin.
The clock is passed in (`now`, seconds since the epoch; default the store's clock).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from dataclasses import dataclass

import dns.name

from ..dnssec.keys import SEP, ZONE_KEY, BadKey, dnskey_rdata, generate, private_der, seal
from ..wire import DNSKEY
from ..store.keys import aad, check_master
from ..store.records import Invalid
from ..store.stages import write_stages
from ..store.writer import Change, Conflict, NotFound, Store, find_zone
from .dnssec import key_edits

log = logging.getLogger("minidns.store")

MARGIN = 3600  # seconds: the default dnssec_rollover_margin
KINDS = ("zsk", "ksk")
_DUE = "r.due_at <= $1 AND (r.kind = 'zsk' OR r.phase = 'retired' OR r.ds_seen_at IS NOT NULL)"


class RolloverInProgress(Conflict):
    status, type = 409, "rollover_in_progress"


@dataclass(frozen=True, slots=True)
class Step:
    """A rollover step taken (or, with `error`, one that could not be)."""

    zone: str
    kind: str
    done: str  # what it did, in words
    change: Change | None = None
    finished: bool = False  # the rollover is over
    due_at: datetime.datetime | None = None  # when the next step may be taken
    error: str | None = None


def _ts(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, datetime.timezone.utc)


def _flags(role: str) -> int:
    return ZONE_KEY | (SEP if role in ("csk", "ksk") else 0)


def _new_key(algorithm: int, role: str, taken: set[int]):
    key = generate(algorithm, role)
    while key.key_tag in taken:  # distinct tags spare validators a second try (RFC 4035 §5.3.1)
        key = generate(algorithm, role)
    return key


def _old_key(z, keys, kind: str):
    """The active key a rollover of `kind` replaces; Invalid when the zone has none to roll."""
    if not z["dnssec"]:
        raise Invalid(f"zone {z['name']} is not signed")
    if kind not in KINDS:
        raise Invalid("the key to roll is zsk or ksk")
    active = [k for k in keys if k["state"] == "active"]
    if kind == "zsk" and any(k["role"] == "csk" for k in active):
        raise Invalid(f"zone {z['name']} is signed with a CSK (one combined key), which has no separate ZSK:"
                      " roll it with --ksk (key \"ksk\"), which rolls the CSK")  # fmt: skip
    roles = ("zsk",) if kind == "zsk" else ("ksk", "csk")
    old = [k for k in active if k["role"] in roles]
    if len(old) != 1:
        raise Invalid(f"zone {z['name']} has {len(old)} active {'/'.join(r.upper() for r in roles)} key(s); one is needed to roll")
    return old[0]


async def _keys(conn, zone_id, *, lock: bool = False):
    return await conn.fetch(
        "SELECT id, role, algorithm, key_tag, public_key, state FROM dnssec_keys WHERE zone_id = $1"
        " ORDER BY created_at, role" + (" FOR UPDATE" if lock else ""), zone_id,
    )  # fmt: skip


async def _dnskey_ttl(conn, z) -> int:
    apex = dns.name.from_text(z["name"]).to_wire().lower()
    ttl = await conn.fetchval("SELECT ttl FROM rrsets WHERE zone_id = $1 AND owner = $2 AND type = $3", z["id"], apex, DNSKEY)
    return z["ttl"] if ttl is None else ttl


async def _max_ttl(conn, z) -> int:
    """How long a resolver may keep anything of the zone: its largest TTL, and the negative TTL
    (RFC 2308 §5: the SOA's TTL and MINIMUM, the lesser) its denials are cached for."""
    most = await conn.fetchval("SELECT max(ttl) FROM rrsets WHERE zone_id = $1", z["id"]) or 0
    return max(most, min(z["ttl"], z["minimum"]))


async def _publish(store: Store, conn, z, *, resign: bool = False) -> Change:
    """The apex key RRsets as the key rows say: DNSKEY holds every stored key (published, active,
    retired); CDS and CDNSKEY the key-signing keys not retired. One change; `resign` signs the
    zone whole anew with the keys now signing."""
    rows = await _keys(conn, z["id"])
    dnskeys = [dnskey_rdata(_flags(r["role"]), r["algorithm"], bytes(r["public_key"])) for r in rows]
    sep = [k for k, r in zip(dnskeys, rows) if r["role"] in ("csk", "ksk") and r["state"] != "retired"]
    origin = dns.name.from_text(z["name"]).to_wire().lower()
    edits = key_edits(origin, await _dnskey_ttl(conn, z), dnskeys, sep)
    return await store.change(z["id"], edits, source="dnssec", conn=conn, key_records=True, resign=resign)


# -- starting ---------------------------------------------------------------------------------------
async def start(store: Store, zone: str | uuid.UUID, kind: str, *, now: float | None = None, margin: int = MARGIN) -> Step:
    """Start rolling the zone's ZSK (`kind` "zsk") or its KSK or CSK ("ksk"): a new key,
    published in the DNSKEY RRset (and, for a key-signing key, co-signing it and named by CDS and
    CDNSKEY beside the old one), as one change. Invalid for a zone that is not signed, or "zsk" in a
    CSK zone; Conflict when a rollover of that kind is running already."""
    now = store.clock() if now is None else now
    async with store.pool.acquire() as conn:
        z = await find_zone(conn, zone, lock=False)
        keys = await _keys(conn, z["id"])
    old = _old_key(z, keys, kind)
    # Keys are made outside the transaction (RSA takes a while) and in a thread (off the loop).
    key = await asyncio.to_thread(_new_key, old["algorithm"], old["role"], {k["key_tag"] for k in keys})
    async with store.pool.acquire() as conn, conn.transaction():
        z = dict(await find_zone(conn, zone, lock=True))
        keys = await _keys(conn, z["id"], lock=True)
        old = _old_key(z, keys, kind)  # again, under the zone's lock
        running = await conn.fetchrow("SELECT phase FROM dnssec_rollovers WHERE zone_id = $1 AND kind = $2", z["id"], kind)
        if running is not None:
            raise RolloverInProgress(f"zone {z['name']}: a {kind.upper()} rollover is running already ({running['phase']});"
                           " `minidns dnssec status` says what it waits for")  # fmt: skip
        if key.key_tag in {k["key_tag"] for k in keys} or key.algorithm != old["algorithm"]:
            key = _new_key(old["algorithm"], old["role"], {k["key_tag"] for k in keys})
        await check_master(conn, store.master)
        key_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO dnssec_keys (id, zone_id, role, algorithm, key_tag, public_key, private_sealed, state)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, 'published')",  # created_at: the database's clock, which orders keys
            key_id, z["id"], key.role, key.algorithm, key.key_tag, key.public,
            seal(store.master, private_der(key), aad(z["id"], key_id)),
        )  # fmt: skip
        change = await _publish(store, conn, z)
        due = _ts(now + await _dnskey_ttl(conn, z) + margin)
        await conn.execute(
            "INSERT INTO dnssec_rollovers (zone_id, kind, phase, old_key, new_key, started_at, phase_at, due_at)"
            " VALUES ($1, $2, 'published', $3, $4, $5, $5, $6)", z["id"], kind, old["id"], key_id, _ts(now), due,
        )  # fmt: skip
    what = f"new {key.role.upper()} {key.key_tag} published beside {old['role'].upper()} {old['key_tag']}"
    if kind == "ksk":
        what += "; it co-signs the DNSKEY RRset, CDS/CDNSKEY name both keys"
    log.info("zone %s: %s rollover started: %s (serial %s)", z["name"], kind.upper(), what, change.serial_to)
    return Step(z["name"], kind, what, change, due_at=due)


# -- the steps --------------------------------------------------------------------------------------
def _due(r, now: float) -> bool:
    return r["due_at"] <= _ts(now) and (r["kind"] == "zsk" or r["phase"] == "retired" or r["ds_seen_at"] is not None)


async def _step(store: Store, conn, z: dict, r, now: float, margin: int) -> Step:
    """The next step of rollover `r` (its row locked, and due), in the caller's transaction."""
    old = await conn.fetchrow("SELECT role, key_tag FROM dnssec_keys WHERE id = $1", r["old_key"])
    new = await conn.fetchrow("SELECT role, key_tag FROM dnssec_keys WHERE id = $1", r["new_key"])
    o, n = f"{old['role'].upper()} {old['key_tag']}", f"{new['role'].upper()} {new['key_tag']}"
    at = _ts(now)
    if r["phase"] == "retired":  # the old key's signatures are out of every cache: it goes
        await conn.execute("DELETE FROM dnssec_keys WHERE id = $1", r["old_key"])  # and the rollover row with it
        change = await _publish(store, conn, z)
        return Step(z["name"], r["kind"], f"old {o} removed from the DNSKEY RRset and deleted; the rollover is done",
                    change, finished=True)  # fmt: skip
    await conn.execute("UPDATE dnssec_keys SET state = 'active', activated_at = $2 WHERE id = $1", r["new_key"], at)
    if new["role"] == "ksk":  # the old KSK signed only the DNSKEY RRset: it goes at once
        await conn.execute("DELETE FROM dnssec_keys WHERE id = $1", r["old_key"])
        change = await _publish(store, conn, z)
        return Step(z["name"], r["kind"], f"new {n} active, old {o} removed; CDS/CDNSKEY name the new key alone; the rollover is done",
                    change, finished=True)  # fmt: skip
    # ZSK or CSK: the new key signs the zone whole; the old one stays published, signing nothing.
    await conn.execute("UPDATE dnssec_keys SET state = 'retired', retired_at = $2 WHERE id = $1", r["old_key"], at)
    change = await _publish(store, conn, z, resign=True)
    due = _ts(now + await _max_ttl(conn, z) + margin)
    await conn.execute("UPDATE dnssec_rollovers SET phase = 'retired', phase_at = $3, due_at = $4 WHERE zone_id = $1 AND kind = $2",
                       z["id"], r["kind"], at, due)  # fmt: skip
    what = f"new {n} active, the zone signed with it; old {o} retired (still published)"
    if new["role"] == "csk":
        what += "; CDS/CDNSKEY name the new key alone"
    return Step(z["name"], r["kind"], what, change, due_at=due)


async def _advance_one(store: Store, zone_id: uuid.UUID, kind: str, now: float, margin: int) -> Step | None:
    async with store.pool.acquire() as conn, conn.transaction():
        try:
            z = dict(await find_zone(conn, zone_id, lock=True))
        except NotFound:
            return None
        r = await conn.fetchrow("SELECT * FROM dnssec_rollovers WHERE zone_id = $1 AND kind = $2 FOR UPDATE", zone_id, kind)
        if r is None or not _due(r, now):  # another process took this step first
            return None
        return await _step(store, conn, z, r, now, margin)


async def due(pool, now: float) -> bool:
    """Whether any rollover step is due at `now`."""
    return bool(await pool.fetchval(f"SELECT EXISTS (SELECT 1 FROM dnssec_rollovers r WHERE {_DUE})", _ts(now)))


async def advance(store: Store, now: float | None = None, *, margin: int = MARGIN) -> list[Step]:
    """Take every rollover step due at `now`, for all zones. Safe to run anywhere and at once: each
    step locks its zone's row and checks again that it is still due, so a step is taken once. A
    zone whose step fails (its keys cannot be opened…) is logged and left for the next run; the
    others go on."""
    now = store.clock() if now is None else now
    rows = await store.pool.fetch(
        f"SELECT r.zone_id, r.kind, z.name FROM dnssec_rollovers r JOIN zones z ON z.id = r.zone_id WHERE {_DUE}"
        " ORDER BY r.due_at", _ts(now),
    )  # fmt: skip
    steps = []
    for r in rows:
        try:
            step = await _advance_one(store, r["zone_id"], r["kind"], now, margin)
        except (BadKey, Invalid) as e:
            log.error("zone %s: %s rollover step not taken: %s", r["name"], r["kind"].upper(), e)
            steps.append(Step(r["name"], r["kind"], "", error=str(e)))
            continue
        if step is not None:
            log.info("zone %s: %s rollover: %s (serial %s)", step.zone, step.kind.upper(), step.done,
                     step.change.serial_to if step.change else "-")  # fmt: skip
            steps.append(step)
    return steps


def run_advance(url: str, master: bytes | None, settings, margin: int = MARGIN) -> list[Step]:
    """`advance` on an event loop and connection pool of its own, for a thread: a step that signs a
    zone whole is seconds of CPU work, which a server's own loop must not stall on."""
    from ..store.db import create_pool

    async def go():
        pool = await create_pool(url, size=2)
        try:
            return await advance(Store(pool, settings, master=master, stages=write_stages()), margin=margin)
        finally:
            await pool.close()

    return asyncio.run(go())


async def ds_seen(store: Store, zone: str | uuid.UUID, *, now: float | None = None, margin: int = MARGIN) -> Step:
    """The operator's word that the parent serves the new key's DS and its TTL has passed: the KSK
    or CSK rollover may finish. Taken at once when the DNSKEY TTL has passed too; else the
    scheduler takes it when it has (Step.due_at). Invalid when no KSK rollover waits for it."""
    now = store.clock() if now is None else now
    async with store.pool.acquire() as conn, conn.transaction():
        z = dict(await find_zone(conn, zone, lock=True))
        r = await conn.fetchrow("SELECT * FROM dnssec_rollovers WHERE zone_id = $1 AND kind = 'ksk' FOR UPDATE", z["id"])
        if r is None or r["phase"] != "published":
            raise Invalid(f"zone {z['name']}: no KSK rollover is waiting for the parent's DS")
        if r["ds_seen_at"] is None:
            await conn.execute("UPDATE dnssec_rollovers SET ds_seen_at = $2 WHERE zone_id = $1 AND kind = 'ksk'", z["id"], _ts(now))
            r = await conn.fetchrow("SELECT * FROM dnssec_rollovers WHERE zone_id = $1 AND kind = 'ksk'", z["id"])
        if not _due(r, now):
            return Step(z["name"], "ksk", "the parent's DS noted; the old key goes once the DNSKEY TTL and margin have passed",
                        due_at=r["due_at"])  # fmt: skip
        step = await _step(store, conn, z, r, now, margin)
    log.info("zone %s: KSK rollover: %s (serial %s)", step.zone, step.done, step.change.serial_to if step.change else "-")
    return step


# -- what is going on -------------------------------------------------------------------------------
_NEXT = {
    ("zsk", "published"): "activate the new ZSK, retire the old one, sign the zone with the new one",
    ("zsk", "retired"): "remove the old ZSK from the DNSKEY RRset",
    ("ksk", "published"): "activate the new KSK and remove the old one; CDS/CDNSKEY name the new key alone",
    ("csk", "published"): "sign the zone with the new CSK and retire the old one; CDS/CDNSKEY name the new key alone",
    ("csk", "retired"): "remove the old CSK from the DNSKEY RRset",
}


async def rollovers(conn, zone_id: uuid.UUID) -> list[dict]:
    """The zone's rollovers in progress: kind ("zsk", "ksk"), role of the keys, phase, the old and
    new key tags, when it started and its phase began, the next step, when it is due, and whether
    it waits for `ds-seen`."""
    rows = await conn.fetch(
        "SELECT r.*, o.key_tag AS old_tag, n.key_tag AS new_tag, n.role FROM dnssec_rollovers r"
        " JOIN dnssec_keys o ON o.id = r.old_key JOIN dnssec_keys n ON n.id = r.new_key WHERE r.zone_id = $1"
        " ORDER BY r.kind DESC", zone_id,
    )  # fmt: skip
    return [{
        "key": r["kind"], "role": r["role"], "phase": r["phase"], "old_key_tag": r["old_tag"], "new_key_tag": r["new_tag"],
        "old_key_id": r["old_key"], "new_key_id": r["new_key"], "started_at": r["started_at"], "phase_at": r["phase_at"],
        "next_step": _NEXT[(r["role"], r["phase"])], "next_step_due": r["due_at"],
        "waiting_for_ds": r["kind"] == "ksk" and r["phase"] == "published" and r["ds_seen_at"] is None,
        "ds_seen_at": r["ds_seen_at"],
    } for r in rows]  # fmt: skip
