"""The signed zone kept in the database, so that transfers carry it whole (secondaries sign
nothing): an RRSIG row at each owner with authoritative data, and the NSEC3 chain (RFC 5155, with
RFC 9276's parameters: SHA-1, no salt, no extra iterations; opt-out per zone, §6) with its
NSEC3PARAM.

Every write to a signed zone goes through here inside the writer's transaction, so the signatures
and chain links it changes are in that change's log row and IXFR carries them:
- `update` signs what a change touched: the RRsets whose data changed (the others keep their
  signatures), the NSEC3 records of owners whose types changed, and the chain links of names that
  appear or vanish (empty non-terminals included, RFC 5155 §7.1);
- `sign_soa` gives each new serial's SOA its signature (store/change.log_change);
- `sign_whole` (re)signs the zone from its rows: on enabling, on a key change, when a delegation
  appears or goes (which changes what is glue), and hourly for the signatures nearing expiry
  (Store.refresh_signatures: a change with a new serial, so secondaries get them by IXFR).

What is signed (RFC 4035 §2.2): every RRset at or above the zone's cuts but the NS RRset at a cut;
glue (names below a cut) is neither signed nor in the chain.
"""

from __future__ import annotations

import dns.name

from ..dnssec.keys import SigningKey
from ..dnssec.nsec3 import (
    NSEC3PARAM_RDATA, ancestors, authoritative, chain, chain_bitmap, delegations, in_chain, is_below, nsec3_bitmap,
    nsec3_hash, nsec3_next, nsec3_owner, nsec3_rdata, nsec3_with_next, owner_hash,
)  # fmt: skip
from ..dnssec.records import VALIDITY, count_labels, expiration_for, rrsig_rdatas, signers_for
from ..dnssec.zone import covered, nsec3_text, rrsig_expiration, rrsig_key_tag, rrsig_original_ttl, rrsig_text
from ..wire import DNSKEY, NS, NSEC3, NSEC3PARAM, RRSIG, SOA
from .edits import ResignWhole
from .records import rdata_from_wire
from .rows import UPSERT, RRset, meta_default, pack_rr, rrset_row, split_wire

REFRESH_LEFT = 0.25  # of the validity: a stored signature with less than this left is made again
_MADE = (RRSIG, NSEC3)


def _types(after: dict, owner: bytes, apex: bytes) -> set[int]:
    types = {t for (o, t) in after if o == owner and t not in _MADE}
    if owner == apex:
        types.add(SOA)
    return types


def _rdata(rtype: int, wire: bytes):
    return rdata_from_wire(rtype, wire), wire


class _Signing:
    """One change's signing work over the store/edits.RRsetEdits (edit.before / edit.after)."""

    def __init__(self, conn, z: dict, edit, keys: list[SigningKey], now: float, validity: int = VALIDITY):
        self.conn, self.z, self.edit, self.keys, self.now, self.validity = conn, z, edit, keys, now, validity
        self.apex = dns.name.from_text(z["name"]).to_wire().lower()
        self.neg_ttl = min(z["ttl"], z["minimum"])  # NSEC3 TTL (RFC 9077 §3)
        self.optout = bool(z.get("nsec3_optout"))  # RFC 5155 §6: no NSEC3 for delegations without DS
        self.removed: set[bytes] = set()  # hashes taken out of the chain in this change
        self.inserted: set[bytes] = set()

    # -- signatures --------------------------------------------------------------------------
    def _sigs(self, owner: bytes, rtype: int, ttl: int, wires) -> list[bytes]:
        inception, expiration = expiration_for(owner, rtype, self.now, self.validity)
        return list(rrsig_rdatas(signers_for(self.keys, rtype), self.apex, owner, rtype, ttl, tuple(wires),
                                 count_labels(owner), inception, expiration))  # fmt: skip

    def _fresh(self, sig: bytes) -> bool:
        tags = {k.key_tag for k in self.keys}
        return rrsig_key_tag(sig) in tags and rrsig_expiration(sig) - self.now > self.validity * REFRESH_LEFT

    def resign(self, owner: bytes, signed: set[int]) -> None:
        """Make the RRSIG row at `owner` cover exactly the `signed` types: signatures of RRsets whose
        data did not change (and are not near expiry) are kept, the others made."""
        before, after = self.edit.before, self.edit.after
        old = after.get((owner, RRSIG))
        have: dict[int, list] = {}
        for rd, w in old.recs if old else ():
            have.setdefault(covered(w), []).append((rd, w))
        keep, made, ttl = set(), [], None
        for t in sorted(signed):
            rr = after.get((owner, t))
            if t == SOA:  # signed with each new serial (sign_soa)
                keep.add(SOA)
                continue
            if rr is None:
                continue
            b = before.get((owner, t))
            same = b is not None and b.ttl == rr.ttl and {w for _, w in b.recs} == {w for _, w in rr.recs}
            kept = have.get(t, []) if same else []
            if kept and len(kept) == len(signers_for(self.keys, t)) and all(self._fresh(w) for _, w in kept):
                keep.add(t)
            else:
                made += [_rdata(RRSIG, s) for s in self._sigs(owner, t, rr.ttl, [w for _, w in rr.recs])]
            ttl = rr.ttl if ttl is None else min(ttl, rr.ttl)
        # Kept signatures stay where they were and new ones follow: the order applying the log gives.
        recs = [(rd, w) for rd, w in (old.recs if old else ()) if covered(w) in keep] + made
        if not recs:
            after.pop((owner, RRSIG), None)
            return
        name = old.name if old else dns.name.from_wire(owner, 0)[0].to_text().lower()
        after[(owner, RRSIG)] = RRset(name, ttl or (old.ttl if old else self.z["ttl"]), recs,
                                       dict(old.meta) if old else meta_default())  # fmt: skip

    # -- the chain ---------------------------------------------------------------------------
    def _put_nsec3(self, h: bytes, rdata: bytes) -> None:
        owner = nsec3_owner(h, self.apex)
        old = self.edit.after.get((owner, NSEC3))
        if old is not None and old.recs[0][1] == rdata:
            return
        name = dns.name.from_wire(owner, 0)[0].to_text().lower()
        self.edit.after[(owner, NSEC3)] = RRset(name, self.neg_ttl, [_rdata(NSEC3, rdata)], meta_default())
        sigs = self._sigs(owner, NSEC3, self.neg_ttl, [rdata])
        self.edit.after[(owner, RRSIG)] = RRset(name, self.neg_ttl, [_rdata(RRSIG, s) for s in sigs], meta_default())

    def _nsec3(self, h: bytes) -> bytes | None:
        rr = self.edit.after.get((nsec3_owner(h, self.apex), NSEC3))
        return rr.recs[0][1] if rr else None

    async def _load(self, owners: list[bytes]) -> None:
        want = [o for o in owners if (o, NSEC3) not in self.edit.before and (o, NSEC3) not in self.edit.after]
        if want:
            self.edit.load(await self.conn.fetch(
                "SELECT * FROM rrsets WHERE zone_id = $1 AND owner = ANY($2::bytea[]) AND type = ANY($3::int[])",
                self.z["id"], want, [NSEC3, RRSIG],
            ))  # fmt: skip

    async def _predecessor(self, h: bytes) -> bytes | None:
        """The hash before `h` in the chain as this change leaves it (wrapping round), or None
        when the chain is otherwise empty."""
        gone = [nsec3_owner(x, self.apex) for x in self.removed | {h}]
        row = await self.conn.fetchrow(
            "SELECT owner FROM rrsets WHERE zone_id = $1 AND type = $2 AND owner <> ALL($3::bytea[])"
            " ORDER BY (owner < $4) DESC, owner DESC LIMIT 1", self.z["id"], NSEC3, gone, nsec3_owner(h, self.apex),
        )  # fmt: skip
        candidates = [x for x in self.inserted if x != h]
        if row is not None:
            candidates.append(owner_hash(bytes(row["owner"])))
        if not candidates:
            return None
        below = [x for x in candidates if x < h]
        return max(below) if below else max(candidates)

    async def insert(self, h: bytes, bitmap: bytes) -> None:
        p = await self._predecessor(h)
        if p is None:
            self._put_nsec3(h, nsec3_rdata(h, bitmap, self.optout))
        else:
            await self._load([nsec3_owner(p, self.apex)])
            prev = self._nsec3(p)
            self._put_nsec3(h, nsec3_rdata(nsec3_next(prev), bitmap, self.optout))
            self._put_nsec3(p, nsec3_with_next(prev, h))
        self.inserted.add(h)
        self.removed.discard(h)

    async def remove(self, h: bytes) -> None:
        owner = nsec3_owner(h, self.apex)
        mine = self._nsec3(h)
        self.removed.add(h)
        self.inserted.discard(h)
        self.edit.after.pop((owner, NSEC3), None)
        self.edit.after.pop((owner, RRSIG), None)
        p = await self._predecessor(h)
        if p is not None and mine is not None:
            await self._load([nsec3_owner(p, self.apex)])
            prev = self._nsec3(p)
            nxt = nsec3_next(mine)
            self._put_nsec3(p, nsec3_with_next(prev, nxt))

    async def set_bitmap(self, h: bytes, bitmap: bytes) -> None:
        cur = self._nsec3(h)
        self._put_nsec3(h, nsec3_rdata(nsec3_next(cur), bitmap, self.optout))


async def update(conn, z: dict, edit, keys: list[SigningKey], now: float) -> None:
    """Sign what `edit` (the store/edits.RRsetEdits, after its edits were applied) changes in signed zone
    `z`, into `edit.after`. Raises ResignWhole when the change alters cuts or keys."""
    s = _Signing(conn, z, edit, keys, now)
    apex = s.apex
    before, after = edit.before, edit.after
    touched = {o for (o, t) in before.keys() | after.keys() if t not in _MADE}
    if not touched:
        return
    for o in touched:
        if o != apex and ((o, NS) in before) != ((o, NS) in after):
            raise ResignWhole("a delegation appears or goes")
        if o == apex and (before.get((o, DNSKEY)) is None) != (after.get((o, DNSKEY)) is None):
            raise ResignWhole("the keys change")
        if o == apex and before.get((o, DNSKEY)) and {w for _, w in before[(o, DNSKEY)].recs} != {w for _, w in after[(o, DNSKEY)].recs}:
            raise ResignWhole("the keys change")
    above = {a for o in touched for a in ancestors(o, apex)}
    cuts = {bytes(r["owner"]) for r in await conn.fetch(
        "SELECT owner FROM rrsets WHERE zone_id = $1 AND type = $2 AND owner = ANY($3::bytea[])", z["id"], NS, list(above),
    )} if above else set()  # fmt: skip
    glue = {o for o in touched if any(a in cuts for a in ancestors(o, apex))}
    mine = sorted(touched - glue, key=lambda o: (-len(o), o))  # deepest first: descendants decide before ancestors
    names = set(mine) | {a for o in mine for a in ancestors(o, apex)} | {apex}
    hashes = {n: nsec3_hash(n) for n in names}
    await s._load([nsec3_owner(h, apex) for h in hashes.values()])
    exists_after: dict[bytes, bool] = {}
    for o in mine:
        types = _types(after, o, apex)
        is_cut = o != apex and NS in types
        s.resign(o, types - {NS} if is_cut else types)
        had = s._nsec3(hashes[o]) is not None
        # In the chain: a name with data (not, under opt-out, a delegation without DS), or an empty
        # non-terminal with something below it (below a delegation there is only glue).
        member = in_chain(types, is_cut, s.optout)
        exists = member or (had and not is_cut and await _has_descendants(conn, z, o, touched, exists_after))
        exists_after[o] = exists
        if exists and had:
            await s.set_bitmap(hashes[o], chain_bitmap(types, is_cut))
        elif exists:
            await s.insert(hashes[o], chain_bitmap(types, is_cut))
            for a in ancestors(o, apex):  # new empty non-terminals above it
                if a in touched or s._nsec3(hashes[a]) is not None:
                    break
                await s.insert(hashes[a], b"")
                exists_after[a] = True
        elif had:
            await s.remove(hashes[o])
            for a in ancestors(o, apex):  # empty non-terminals left with nothing below
                if a in touched:
                    break
                cur = s._nsec3(hashes[a])
                if cur is None or nsec3_bitmap(cur) or await _has_descendants(conn, z, a, touched, exists_after):
                    break
                await s.remove(hashes[a])
                exists_after[a] = False


async def _has_descendants(conn, z: dict, name: bytes, touched: set, exists_after: dict) -> bool:
    """Whether anything stays below `name`: touched names as this change leaves them, the others
    as stored (found by reversed name, rrsets_rname index)."""
    if any(exists_after.get(o) for o in touched if len(o) > len(name) and o.endswith(name) and is_below(o, name)):
        return True
    text = dns.name.from_wire(name, 0)[0].to_text().lower()
    return bool(await conn.fetchval(
        "SELECT 1 FROM rrsets WHERE zone_id = $1 AND reverse(name) LIKE $2 AND type <> ALL($3::int[])"
        " AND owner <> ALL($4::bytea[]) LIMIT 1",
        z["id"], _like_prefix(text[::-1] + "."), list(_MADE), list(touched),
    ))  # fmt: skip


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def sign_soa(conn, z: dict, apex: bytes, soa_ttl: int, soa: bytes, keys: list[SigningKey], now: float) -> tuple[list, list]:
    """The apex RRSIG row with the signature of the new SOA in place of the old one; the RRs
    (owner, type, ttl, rdata) removed and added, for the change's log row."""
    row = await conn.fetchrow("SELECT * FROM rrsets WHERE zone_id = $1 AND owner = $2 AND type = $3", z["id"], apex, RRSIG)
    old = split_wire(row["wire"]) if row else []
    s = _Signing(conn, z, None, keys, now)
    new_sigs = s._sigs(apex, SOA, soa_ttl, [soa])
    keep = [w for w in old if covered(w) != SOA]
    removed = [(apex, RRSIG, row["ttl"], w) for w in old if covered(w) == SOA] if row else []
    ttl = row["ttl"] if row else soa_ttl
    recs = [_rdata(RRSIG, w) for w in keep + new_sigs]
    rr = RRset(row["name"] if row else z["name"], ttl, recs, meta_default())
    await conn.execute(UPSERT, *rrset_row(z["id"], (apex, RRSIG), rr))
    return removed, [(apex, RRSIG, ttl, w) for w in new_sigs]


async def sign_whole(conn, z: dict, keys: list[SigningKey], now: float, force: set[bytes] = frozenset()) -> tuple[list, list]:
    """(Re)sign the zone from its rows: the RRSIG rows, the NSEC3 chain and NSEC3PARAM made anew
    where they differ from what is stored (signatures of RRsets at owners not in `force` are kept
    while made by the zone's keys and not near expiry; the SOA's is left to sign_soa). Rows are
    rewritten; the RRs (owner, type, ttl, rdata) removed and added are returned for the log row."""
    s = _Signing(conn, z, None, keys, now)
    # Signing a large zone takes seconds of work between two statements of this transaction.
    await conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
    data, made, names = await _stored(conn, z["id"])
    # NSEC3PARAM with the negative TTL, as Knot and PowerDNS give it (PowerDNS as a secondary
    # serves it so, whatever it was given: with TTL 0 its copy no longer matches the signature).
    data.setdefault(s.apex, {})[NSEC3PARAM] = (s.neg_ttl, [NSEC3PARAM_RDATA])
    want: dict[tuple[bytes, int], tuple[int, list[bytes]]] = {(s.apex, NSEC3PARAM): (s.neg_ttl, [NSEC3PARAM_RDATA])}
    cuts = delegations({o: set(types) for o, types in data.items()}, s.apex)
    for o in authoritative(data, s.apex, cuts):
        sigs = _whole_rrsigs(s, o, data[o], o in cuts, made.get((o, RRSIG), (0, []))[1], o in force)
        if sigs[1]:
            want[(o, RRSIG)] = sigs
    for owner, rdata in chain({o: set(types) for o, types in data.items()}, s.apex, s.optout).items():
        names[owner] = owner[1 : 1 + owner[0]].decode() + "." + z["name"]
        want[(owner, NSEC3)] = (s.neg_ttl, [rdata])
        want[(owner, RRSIG)] = (s.neg_ttl, _nsec3_rrsigs(s, owner, rdata, made.get((owner, NSEC3)),
                                                         made.get((owner, RRSIG), (0, []))[1]))  # fmt: skip
    return await _rewrite(conn, z["id"], made, want, names)


async def _stored(conn, zid) -> tuple[dict, dict, dict]:
    """The zone's rows: data (owner → type → (ttl, RDATAs)), what signing made ((owner, type) →
    (ttl, RDATAs)) and the owners' names."""
    data: dict[bytes, dict[int, tuple[int, list[bytes]]]] = {}
    names: dict[bytes, str] = {}
    made: dict[tuple[bytes, int], tuple[int, list[bytes]]] = {}
    for r in await conn.fetch("SELECT owner, name, type, ttl, wire FROM rrsets WHERE zone_id = $1", zid):
        owner, rtype = bytes(r["owner"]), r["type"]
        names[owner] = r["name"]
        entry = (r["ttl"], split_wire(r["wire"]))
        if rtype in (RRSIG, NSEC3, NSEC3PARAM):
            made[(owner, rtype)] = entry
        else:
            data.setdefault(owner, {})[rtype] = entry
    return data, made, names


def _whole_rrsigs(s: _Signing, o: bytes, types: dict, is_cut: bool, current: list[bytes], forced: bool) -> tuple[int, list]:
    """The RRSIG RRset at authoritative owner `o`: stored signatures kept while fresh (and not
    `forced`), the others made; (TTL, RDATAs)."""
    tags = {k.key_tag for k in s.keys}
    have: dict[int, list[bytes]] = {}
    for w in current:
        have.setdefault(covered(w), []).append(w)
    keep, new, ttl = set(), [], None
    for t in sorted(set(types) - ({NS} if is_cut else set())):
        t_ttl, wires = types[t]
        old = have.get(t, [])
        fresh = {rrsig_key_tag(w) for w in old} == {k.key_tag for k in signers_for(s.keys, t)} and all(
            rrsig_key_tag(w) in tags and rrsig_expiration(w) - s.now > s.validity * REFRESH_LEFT
            and rrsig_original_ttl(w) == t_ttl for w in old)  # a new TTL (NSEC3PARAM's) is signed anew
        if t == SOA or (old and fresh and not forced):  # the SOA's: sign_soa signs each new serial
            keep.add(t)
        else:
            new += s._sigs(o, t, t_ttl, wires)
        ttl = t_ttl if ttl is None else min(ttl, t_ttl)
    return ttl, [w for w in current if covered(w) in keep] + new  # the order applying the log gives


def _nsec3_rrsigs(s: _Signing, owner: bytes, rdata: bytes, old: tuple | None, old_sigs: list[bytes]) -> list[bytes]:
    """The signature of an NSEC3 record: the stored one while the record is unchanged and it is fresh."""
    tags = {k.key_tag for k in s.keys}
    if old and old[1] == [rdata] and old_sigs and all(rrsig_key_tag(w) in tags and rrsig_original_ttl(w) == s.neg_ttl
                                                      and rrsig_expiration(w) - s.now > s.validity * REFRESH_LEFT for w in old_sigs):  # fmt: skip
        return old_sigs
    return s._sigs(owner, NSEC3, s.neg_ttl, [rdata])


async def _rewrite(conn, zid, made: dict, want: dict, names: dict) -> tuple[list, list]:
    """The RRsets signing made rewritten where `want` differs from what is stored; the RRs
    removed and added."""
    removed, added = [], []
    for key in made.keys() | want.keys():
        old, new = made.get(key), want.get(key)
        if old == new:
            continue
        o, t = key
        if old:
            removed += [(o, t, old[0], w) for w in old[1] if not new or w not in new[1] or old[0] != new[0]]
        if new:
            added += [(o, t, new[0], w) for w in new[1] if not old or w not in old[1] or old[0] != new[0]]
    changed = [k for k in made.keys() | want.keys() if made.get(k) != want.get(k)]
    if changed:
        await conn.execute(
            "DELETE FROM rrsets WHERE zone_id = $1 AND (owner, type) IN (SELECT * FROM unnest($2::bytea[], $3::int[]))",
            zid, [o for o, _ in changed], [t for _, t in changed],
        )  # fmt: skip
        rows = [(zid, names.get(o) or dns.name.from_wire(o, 0)[0].to_text().lower(), o, t, want[(o, t)][0],
                 [_text(t, w) for w in want[(o, t)][1]], b"".join(pack_rr(t, want[(o, t)][0], w) for w in want[(o, t)][1]))
                for o, t in changed if (o, t) in want]  # fmt: skip
        if rows:
            await conn.copy_records_to_table("rrsets", records=rows, columns=("zone_id", "name", "owner", "type", "ttl", "records", "wire"))
    return removed, added


def _text(rtype: int, wire: bytes) -> str:
    if rtype == RRSIG:
        return rrsig_text(wire)
    if rtype == NSEC3:
        return nsec3_text(wire)
    return "1 0 0 -"  # NSEC3PARAM_RDATA
