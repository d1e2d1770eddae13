"""Edits of a zone's RRsets, applied in memory before any row is written: the values checked (owner
inside the zone, types users may write, TTLs, RFC 2181 §10.1 / RFC 6672 §2.4 type rules) and the
difference in RFC 1995 §4 form (RRs removed, then RRs added) that the change log keeps."""

from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdatatype

from ..wire import CNAME, DNAME
from .records import (
    GENERATED, KEY_TYPES, Conflict, Invalid, NotFound, check_owner_types, check_ttl, parse_owner, parse_rdata,
    parse_type, rdata_from_wire,
)  # fmt: skip
from .rows import MANAGED, RRset, meta_default, row_meta, split_wire


class ResignWhole(Exception):
    """Raised by a signing stage: the change alters what is glue or the keys, so the zone is to be
    signed whole."""


@dataclass(frozen=True, slots=True)
class Edit:
    """One change to one RRset.

    op: "replace" (the RRset becomes exactly `records`; none → deleted), "create" (as replace, but
    Conflict when the RRset exists), "add" (records added; a given TTL applies to the whole RRset),
    "remove" (records removed, TTL ignored as in RFC 2136 §2.5.4; none → the whole RRset),
    "delete" (the RRset).

    `name` is a name relative to the zone (or absolute, or "@"), or a dns.name.Name; `records` are
    dnspython rdata already checked (a door that parsed them once), RDATA in wire form, or
    presentation text, parsed here relative to the zone.
    """

    op: str
    name: str | dns.name.Name
    rtype: str | int
    ttl: int | None = None
    records: tuple = ()
    description: str | None = None
    managed: dict | None = None  # provenance of event-made records: source, resource_type, resource_id, tenant_id, extra


def edit_owner(origin: dns.name.Name, name: str | dns.name.Name) -> dns.name.Name:
    """An edit's owner, checked to be inside the zone `origin`."""
    if not isinstance(name, dns.name.Name):
        return parse_owner(name, origin)
    if not name.is_subdomain(origin):
        raise Invalid(f"{name} is not inside the zone {origin}")
    return name


class RRsetEdits:
    """The RRsets at the owners a write touches, before and after its edits. With `key_records`
    (DNSSEC key management only) the apex DNSKEY, CDS and CDNSKEY RRsets may be written too."""

    def __init__(self, origin: dns.name.Name, default_ttl: int, key_records: bool = False):
        self.origin = origin
        self.default_ttl = default_ttl
        self.key_records = key_records
        self.before: dict[tuple[bytes, int], RRset] = {}
        self.after: dict[tuple[bytes, int], RRset] = {}

    def owner(self, name: str | dns.name.Name) -> dns.name.Name:
        return edit_owner(self.origin, name)

    def load(self, rows) -> None:
        """Take stored RRset rows as the state before (and, until edited, after) the edits."""
        for r in rows:
            rtype = r["type"]
            recs = [(rdata_from_wire(rtype, rd), rd) for rd in split_wire(r["wire"])]
            meta = row_meta(r)
            key = (bytes(r["owner"]), rtype)
            self.before[key] = RRset(r["name"], r["ttl"], recs, meta)
            self.after[key] = RRset(r["name"], r["ttl"], list(recs), dict(meta))

    def apply(self, e: Edit) -> None:
        owner = self.owner(e.name)
        rtype = parse_type(e.rtype)
        if rtype in GENERATED and not (self.key_records and rtype in KEY_TYPES and owner == self.origin):
            raise Invalid(f"{dns.rdatatype.to_text(rtype)} records are made by minidns, not written")
        key = (owner.to_wire().lower(), rtype)
        new = [_value(rtype, r, self.origin) for r in e.records]
        if e.op in ("remove", "delete"):
            self._remove(e.op, owner, key, new)
        else:
            self._put(e, owner, key, new)

    def _remove(self, op: str, owner: dns.name.Name, key: tuple, new: list) -> None:
        cur = self.after.get(key)
        if cur is None:
            raise NotFound(f"no {dns.rdatatype.to_text(key[1])} records at {owner}")
        if op == "delete" or not new:
            del self.after[key]
            return
        for rd in new:
            if not any(rd == have for have, _ in cur.recs):
                raise NotFound(f"{owner} {dns.rdatatype.to_text(key[1])} {rd} does not exist")
        cur.recs = [(have, w) for have, w in cur.recs if have not in new]
        if not cur.recs:
            del self.after[key]

    def _put(self, e: Edit, owner: dns.name.Name, key: tuple, new: list) -> None:
        cur, op = self.after.get(key), e.op
        if op == "create":
            if cur is not None:
                raise Conflict(f"{owner} {dns.rdatatype.to_text(key[1])} exists")
            if not new:
                raise Invalid("no records to create")
            op = "replace"
        if op not in ("replace", "add"):
            raise Invalid(f"unknown edit {e.op!r}")
        if not new and op == "add":
            raise Invalid("no records to add")
        ttl = check_ttl(e.ttl) if e.ttl is not None else (cur.ttl if cur and op == "add" else self.default_ttl)
        if op == "replace":
            if not new:
                self.after.pop(key, None)
                return
            # Records that stay keep their place and stored form, new ones follow: the order that
            # applying the logged difference gives (zones/changes.py), so a follower equals a reload.
            kept = [(have, w) for have, w in cur.recs if have in new] if cur else []
            cur = self.after[key] = RRset(owner.to_text().lower(), ttl, kept, dict(cur.meta) if cur else meta_default())
        elif cur is None:
            cur = self.after[key] = RRset(owner.to_text().lower(), ttl, [], meta_default())
        cur.ttl = ttl
        for rd in new:
            if not any(rd == have for have, _ in cur.recs):
                cur.recs.append((rd, rd.to_wire()))
        _describe(cur, e)

    def check(self, apex: bytes) -> None:
        """The type rules at every owner as the edits leave it."""
        owners: dict[bytes, dict[int, int]] = {}
        for (owner, rtype), rr in self.after.items():
            owners.setdefault(owner, {})[rtype] = len(rr.recs)
        for owner, types in owners.items():
            if CNAME in types or DNAME in types:  # the only types with rules across an owner
                check_owner_types(dns.name.from_wire(owner, 0)[0].to_text(), types, owner == apex)

    def diff(self):
        """(removed RRs, added RRs, RRsets to write, RRset keys to delete)."""
        removed, added, write, delete = [], [], [], []
        for key in self.before.keys() | self.after.keys():
            old, new = self.before.get(key), self.after.get(key)
            if new is None:
                removed += [(*key, old.ttl, w) for _, w in old.recs]
                delete.append(key)
                continue
            gone, came = _rr_diff(key, old, new)
            removed += gone
            added += came
            if gone or came or (old is not None and old.meta != new.meta):
                write.append((key, new))
        return removed, added, write, delete


def _rr_diff(key: tuple, old: RRset | None, new: RRset) -> tuple[list, list]:
    owner, rtype = key
    if old is not None and old.ttl == new.ttl:
        kept, had = {rd for rd, _ in new.recs}, {rd for rd, _ in old.recs}
        gone = [(owner, rtype, old.ttl, w) for rd, w in old.recs if rd not in kept]
        came = [(owner, rtype, new.ttl, w) for rd, w in new.recs if rd not in had]
        return gone, came
    # a new RRset, or a new TTL: the whole RRset goes and comes back (RFC 1995 §4)
    gone = [(owner, rtype, old.ttl, w) for _, w in old.recs] if old else []
    return gone, [(owner, rtype, new.ttl, w) for _, w in new.recs]


def _value(rtype: int, record, origin: dns.name.Name) -> dns.rdata.Rdata:
    """A record as dnspython rdata: given so (checked by the door that parsed it), as RDATA in wire
    form, or as presentation text relative to the zone."""
    if isinstance(record, dns.rdata.Rdata):
        return record
    if isinstance(record, bytes):
        try:
            return rdata_from_wire(rtype, record)
        except Exception as e:  # noqa: BLE001 - dnspython's many kinds of bad wire
            raise Invalid(f"bad {dns.rdatatype.to_text(rtype)} RDATA {record.hex()}: {e}") from None
    return parse_rdata(rtype, record, origin)


def _describe(rr: RRset, e: Edit) -> None:
    if e.description is not None:
        rr.meta["description"] = e.description
    if e.managed is not None:
        rr.meta["managed"] = True
        for m in MANAGED:
            rr.meta["managed_" + m] = e.managed.get(m)


def then(removed: list, added: list, gone: list, came: list) -> tuple[list, list]:
    """One difference (RFC 1995 §4: removals, then additions) for a difference followed by another:
    an RR the first added and the second removes is in neither; the others are kept as they are.
    RRs match by owner, type and data (a removal ignores the TTL, zones/changes.py)."""
    removing = {(o, t, rd) for o, t, _, rd in gone}
    kept = [a for a in added if (a[0], a[1], a[3]) not in removing]
    cancelled = {(o, t, rd) for o, t, _, rd in added} - {(o, t, rd) for o, t, _, rd in kept}
    return removed + [g for g in gone if (g[0], g[1], g[3]) not in cancelled], kept + came


def check_rows(rows: list[tuple], apex: bytes) -> None:
    """The type rules at every owner of new RRset rows (rows.RRSET_COLUMNS)."""
    owners: dict[bytes, dict[int, int]] = {}
    for row in rows:
        owners.setdefault(row[3], {})[row[4]] = len(row[6])
    for owner, types in owners.items():
        check_owner_types(dns.name.from_wire(owner, 0)[0].to_text(), types, owner == apex)
