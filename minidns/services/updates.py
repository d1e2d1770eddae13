"""Dynamic UPDATE applied to a zone in the database (RFC 2136 §3): the prerequisites evaluated and
the updates applied under the zone row lock, then written through the store's one write path
(one transaction, one new serial, one change-log row, NOTIFY; a signed zone's changes signed).

Concurrent updates to one zone are group-committed (store/batch.py): one lock, one serial and one
change-log row per batch, each message still judged alone and in arrival order — each starts from
the zone as the messages before it left it, and one whose prerequisites fail leaves nothing
behind (§3.7) — and answered with its own rcode. The pure RFC 2136 rules are xfr/update.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from ..store.batch import GroupCommit
from ..store.creation import POOL_SOURCE
from ..store.edits import Edit
from ..store.records import GENERATED, Invalid, NotFound, Unsignable, email_to_rname, rdata_from_wire, rname_to_email
from ..store.rows import AT_OWNERS, soa_rdata, split_wire
from ..wire import NOERROR, NOTAUTH, REFUSED, SERVFAIL, SOA
from ..xfr.update import RRset, Update, UpdateError, View, apply_updates, check_prerequisites

log = logging.getLogger("minidns.update")
LINGER = 0.003  # seconds a batch may wait for the writers of the previous one (store/batch.py GroupCommit._fill)

# (owner, type) → whether this update may change an RRset the event sink made (a grant saying so)
MayTouchManaged = Callable[[dns.name.Name, int], bool]


@dataclass(frozen=True, slots=True)
class Request:
    """One UPDATE message to apply: checked already for form, TSIG and grants."""

    update: Update
    source: str  # the change log's source: "update:<key name>", or "update" when unsigned
    may_touch_managed: MayTouchManaged


@dataclass(frozen=True, slots=True)
class Outcome:
    rcode: int
    reason: str | None = None
    serial: int | None = None  # the zone's serial once the update is in


class Updates:
    """`await updates.apply(zone, request)` → Outcome; grouped per zone."""

    def __init__(self, store, max_batch: int = 200):
        self.store = store
        self.group = GroupCommit(self._apply, max_batch, linger=LINGER)

    async def apply(self, zone: str, request: Request) -> Outcome:
        return await self.group.submit(zone, request)

    async def _apply(self, zone: str, batch: list[Request]) -> list[Outcome]:
        try:
            return await self._write(zone, batch)
        except _Retry as e:
            if len(batch) == 1:
                return [e.outcome]
        outcomes = []
        for request in batch:  # the batch as a whole was refused: each alone, for its own answer
            try:
                outcomes += await self._write(zone, [request])
            except _Retry as e:
                outcomes.append(e.outcome)
        return outcomes

    async def _write(self, zone: str, batch: list[Request]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            async with self.store.change(zone, source=_source(batch)) as w:
                names = {k: v for r in batch for k, v in r.update.names().items()}
                rows = await _rows(w.conn, w.zone, names)
                before = _view(w.zone, rows)
                view, touched = before, set()
                for request in batch:
                    view, outcome = _judged(request, view)
                    touched |= view.touched
                    outcomes.append(outcome)
                edits, fields, serial = _edits(before, view, touched, names, w.zone)
                w.edit(*edits)
                w.set_fields(**fields)
                w.serial = serial
                w.rows = [r for r in rows if r["type"] != SOA]  # what the write would read again
        except NotFound as e:  # the zone was deleted since the server routed the message to it
            raise _Retry(Outcome(NOTAUTH, str(e))) from None
        except (Invalid, Unsignable) as e:  # what the store's checks refuse (RFC 2181 type rules, TTLs)
            raise _Retry(Outcome(REFUSED, f"refused by the zone's rules: {e}")) from None
        except Exception as e:  # noqa: BLE001 - the database: SERVFAIL, nothing written (§3.7)
            log.error("update of zone %s failed: %r", zone, e)
            raise _Retry(Outcome(SERVFAIL, f"the update could not be written: {e}")) from None
        serial = w.change.serial_to if w.change is not None else None
        return [Outcome(o.rcode, o.reason, serial) if o.rcode == NOERROR else o for o in outcomes]


class _Retry(Exception):
    def __init__(self, outcome: Outcome):
        super().__init__(outcome.reason)
        self.outcome = outcome


def _source(batch: list[Request]) -> str:
    sources = sorted({r.source for r in batch})
    return sources[0] if len(sources) == 1 else "update:" + ",".join(s.partition(":")[2] or "-" for s in sources)


def _judged(request: Request, view: View) -> tuple[View, Outcome]:
    """(the view after `request`, its outcome): its prerequisites (§3.2), then its updates
    (§3.4.2) on a copy — kept only when all of them went in (§3.7)."""
    update = request.update
    try:
        check_prerequisites(update, view)
        after = view.copy()
        apply_updates(update, after)
        put, gone = after.changes(view)
        names = update.names()
        for key in [*put, *gone]:
            made_by = view.managed.get(key)
            what = f"{names[key[0]]} {dns.rdatatype.to_text(key[1])}"
            if made_by == POOL_SOURCE:  # the pool writes them back (services/pools.py): changed there alone
                raise UpdateError(REFUSED, f"{what} is the pool's: change it with `minidns pool set-ns`")
            if made_by and not request.may_touch_managed(names[key[0]], key[1]):
                raise UpdateError(REFUSED, f"{what} is managed (made by {made_by}); no grant lets this key change it")
            if key[1] == SOA and put[key].rdatas[0].mname != view.rrsets[key].rdatas[0].mname:
                raise UpdateError(REFUSED, "the SOA MNAME is the pool's primary: change it with `minidns pool set-ns`")
    except UpdateError as e:
        return view, Outcome(e.rcode, str(e))
    return after, Outcome(NOERROR)


async def _rows(conn, z: dict, names: dict[bytes, dns.name.Name]) -> list:
    """The RRset rows at `names` (the store's own columns: the write takes them as read)."""
    return await conn.fetch(AT_OWNERS, [z["id"]] * len(names), list(names), SOA)


def _view(z: dict, rows) -> View:
    """The view of `rows`, with the SOA from the zone's row; what the signer makes left out."""
    origin = dns.name.from_text(z["name"])
    view = View(origin)
    for r in rows:
        if r["type"] in GENERATED:
            continue
        key = (bytes(r["owner"]), r["type"])
        view.put(key, RRset(r["ttl"], tuple(rdata_from_wire(r["type"], w) for w in split_wire(r["wire"]))))
        if r["managed"]:
            view.managed[key] = r["managed_source"] or "minidns"
    view.put((view.apex, SOA), RRset(z["ttl"], (rdata_from_wire(SOA, soa_rdata(z, z["serial"])),)))
    view.touched.clear()
    return view


def _edits(before: View, after: View, touched: set, names: dict, z: dict) -> tuple[list[Edit], dict, int | None]:
    """What the store is to write: (edits of the RRsets that changed, zone fields from a new SOA,
    the serial the update set or None)."""
    put, gone = after.changes(before, touched)
    edits = [Edit("delete", names[owner], rtype) for owner, rtype in gone]
    fields, serial = {}, None
    for (owner, rtype), rrset in put.items():
        if rtype == SOA:
            fields, serial = _soa_fields(rrset.rdatas[0], z)
            continue
        edits.append(Edit("replace", names[owner], rtype, rrset.ttl, rrset.rdatas))
    return edits, fields, serial


def _soa_fields(soa, z: dict) -> tuple[dict, int | None]:
    """The zone fields an UPDATE's SOA sets, and its serial when it moves forward (§3.6: then
    the serial policy does not bump it again). The SOA's TTL is the zone's default TTL here: an
    update does not change it."""
    fields = {k: getattr(soa, k) for k in ("refresh", "retry", "expire", "minimum") if getattr(soa, k) != z[k]}
    if soa.rname != email_to_rname(z["email"]):  # the MNAME is the pool's: _judged refused a new one
        fields["email"] = rname_to_email(soa.rname)
    return fields, (soa.serial if soa.serial != z["serial"] else None)
