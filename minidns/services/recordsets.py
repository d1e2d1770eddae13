"""RRsets as the Designate-shaped API sees them: listing with filters, sorting and marker paging,
per-project visibility, and the writes with Designate's rules (duplicate recordsets, CNAME
placement, the SOA read-only, event-managed recordsets) checked inside the very transaction that
writes — every write goes through the store's unit of work (zone row locked, one new serial, one
change-log row, NOTIFY). Zones themselves are services/zones.py.

`project` arguments are the project whose objects the caller sees, or None for every project (an
admin with all-projects). An object of another project is NotFound, exactly as one that does not
exist — except in a zone shared with the project (services/shares.py): it sees the zone and its
RRsets, writes RRsets and changes those it made; a change only the owner may make is Forbidden.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from ..store.batch import GroupCommit
from ..store.records import GENERATED, MAX_TTL, Invalid, parse_owner, parse_rdata, parse_type
from ..store.writer import Conflict, NotFound, Store
from ..wire import CNAME, SOA
from . import policy
from .listing import Query, Where, int_filter, page
from .shares import targets, visible
from .zones import Forbidden, Refused, ZoneNotFound, get_zone


class RecordSetNotFound(NotFound):
    status, type = 404, "recordset_not_found"


class DuplicateRecordSet(Conflict):
    status, type = 409, "duplicate_recordset"


class BadPlacement(Invalid):
    """Designate's InvalidRecordSetLocation (400 invalid_recordset_location)."""

    status, type = 400, "invalid_recordset_location"


# -- SQL building -------------------------------------------------------------------------------

# An RRset's status follows its zone's: PENDING while the zone's latest change (which wrote it) has
# not reached the secondaries, as Designate shows a recordset PENDING until its zone is updated.
# `project_id` is the project that made the RRset (the zone's owner, or one the zone is shared with).
_RRSET_SELECT = """SELECT r.id, r.zone_id, coalesce(r.project_id, z.project_id) AS project_id,
  z.project_id AS zone_project_id, r.name, z.name AS zone_name, r.type, r.ttl, r.ttl_default,
  r.records, r.description, r.version, r.created_at, r.updated_at, r.managed, r.owner,
  CASE WHEN z.status <> 'ACTIVE' AND coalesce(r.updated_at, r.created_at) >= coalesce(z.updated_at, z.created_at)
       THEN z.status ELSE 'ACTIVE' END AS status,
  CASE WHEN z.status <> 'ACTIVE' AND coalesce(r.updated_at, r.created_at) >= coalesce(z.updated_at, z.created_at)
       THEN (CASE WHEN r.updated_at IS NULL THEN 'CREATE' ELSE 'UPDATE' END) ELSE 'NONE' END AS action
FROM rrsets r JOIN zones z ON z.id = r.zone_id"""

RRSET_SORT = {"created_at": "created_at", "id": "id", "updated_at": "coalesce(updated_at, created_at)",
              "zone_id": "zone_id", "tenant_id": "project_id", "project_id": "project_id", "name": "name",
              "type": "type", "ttl": "ttl", "records": "records"}  # fmt: skip
RRSET_FILTERS = ("name", "type", "data", "ttl", "status", "description", "zone_id")


def rrset_where(project: str | None, zone_id: uuid.UUID | None, filters: dict) -> Where:
    w = Where()
    if project is not None:
        w.add(visible("zone_project_id", "zone_id", w.arg(project)))
    if zone_id is not None:
        w.add(f"zone_id = {w.arg(zone_id)}")
    for key, value in filters.items():
        if key == "ttl":
            w.add(f"ttl = {w.arg(int_filter(key, value))}")
        elif key == "name":
            w.text_match("name", value.lower())
        elif key == "type":
            w.add(f"type = {w.arg(parse_type(value.upper()))}")
        elif key == "data":
            if "*" in value:
                sub = Where()
                sub.args = w.args
                sub.text_match("d", value)
                w.add(f"EXISTS (SELECT 1 FROM unnest(records) d WHERE {sub.conds[0]})")
            else:
                w.add(f"{w.arg(value)} = ANY(records)")
        elif key == "status":
            w.text_match("status", value.upper())
        elif key == "description":
            w.text_match("description", value)
        elif key == "zone_id":
            try:
                w.add(f"zone_id = {w.arg(uuid.UUID(value))}")
            except ValueError:
                raise Invalid(f"filter zone_id {value!r} is not a UUID") from None
        else:
            raise Invalid(f"unknown filter {key!r}")
    return w


# -- zones --------------------------------------------------------------------------------------


_RRSET_RE = re.compile(r"^(?!.{255,})(?:\*\.)?(?:(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\.)+$")


# -- recordsets ---------------------------------------------------------------------------------


async def list_rrsets(pool, project: str | None, zone_id: uuid.UUID | None, q: Query) -> tuple[list[dict], int, bool]:
    async with pool.acquire() as conn:
        if zone_id is not None:
            await get_zone(conn, zone_id, project, shared=True)
        rows, total = await page(conn, _RRSET_SELECT, rrset_where(project, zone_id, q.filters), q, RRSET_SORT, "recordset")
    return rows[: q.limit], total, len(rows) > q.limit


async def get_rrset(conn_or_pool, project: str | None, zone_id: uuid.UUID | None, rrset_id: uuid.UUID) -> dict:
    if zone_id is not None:
        await get_zone(conn_or_pool, zone_id, project, shared=True)
    row = await conn_or_pool.fetchrow(
        f"{_RRSET_SELECT} WHERE r.id = $1 AND ($2::uuid IS NULL OR r.zone_id = $2)"
        f" AND ($3::text IS NULL OR {visible('z.project_id', 'z.id', '$3')})",
        rrset_id, zone_id, project,
    )  # fmt: skip
    if row is None:
        raise RecordSetNotFound(f"Could not find RecordSet {rrset_id}")
    return dict(row)


def check_records(records, rtype: int) -> tuple[str, ...]:
    if not isinstance(records, list) or not records:
        raise Invalid("records must be a list of at least one record")
    if not all(isinstance(r, str) and r.strip() for r in records):
        raise Invalid("each record must be a non-empty string")
    if rtype == CNAME and len(set(records)) > 1:
        raise Invalid("a CNAME recordset holds exactly one record (RFC 2181 §10.1)")
    return tuple(records)


def check_rrset_ttl(ttl) -> int | None:
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL):
        raise Invalid(f"ttl {ttl!r} must be a whole number from 1 to {MAX_TTL}, or null")
    return ttl


# -- writes: group commit per zone ---------------------------------------------------------------
#
# Every recordset write goes through RecordsetWriter: the creates, updates and deletes to one zone
# that arrive while its previous batch commits go in together — one zone lock, one set of checks
# and quota counts, one new serial and change-log row, one commit — and each caller gets its own
# recordset or its own error. Under load the zone row lock is the bottleneck (a transaction holds
# it for as many round trips as it makes), so the number of transactions, not of writes, is what
# has to stay small.


class _Retry(Exception):
    """A batch that cannot be judged as one (a zone-wide quota would be passed, a record the writer
    refuses): each item alone."""


@dataclass
class _NewRRset:
    project: str | None
    name: str
    rtype: int
    recs: tuple[str, ...]
    ttl: int | None
    description: str | None


@dataclass
class _Update:
    project: str | None
    rrset_id: uuid.UUID
    values: dict  # records, ttl (None: the zone's), description; as the API was given them
    edit_managed: bool


@dataclass
class _Delete:
    project: str | None
    rrset_id: uuid.UUID
    edit_managed: bool


class RecordsetWriter:
    """Recordset creates, updates and deletes, grouped per zone (store/batch.py). A batch is
    judged as if its items ran one after the other — creates first, checked against the zone as
    it was and against each other, then updates and deletes — which is an order the concurrent
    requests could have run in; an RRset named by two items of a batch splits it, so each RRset
    changes once per transaction. A batch that cannot be judged as a whole is retried one item
    at a time, each getting exactly the outcome it would have alone."""

    def __init__(self, store: Store):
        self.store = store
        self.group = GroupCommit(self._apply)

    async def create(self, zone_id: uuid.UUID, project: str | None, *, name, rtype, records, ttl=None,
                     description=None) -> dict:  # fmt: skip
        rtype_n = _check_new(name, rtype)
        item = _NewRRset(project, name, rtype_n, check_records(records, rtype_n), check_rrset_ttl(ttl), description)
        return await self.group.submit(zone_id, item)

    async def update(self, zone_id: uuid.UUID, project: str | None, rrset_id: uuid.UUID, values: dict, *,
                     edit_managed: bool = False) -> dict:  # fmt: skip
        """PUT: new records, ttl (null: the zone's default) and/or description."""
        if "ttl" in values:
            check_rrset_ttl(values["ttl"])
        return await self.group.submit(zone_id, _Update(project, rrset_id, dict(values), edit_managed))

    async def delete(self, zone_id: uuid.UUID, project: str | None, rrset_id: uuid.UUID, *,
                     edit_managed: bool = False) -> dict:  # fmt: skip
        """The recordset as it was, status PENDING and action DELETE."""
        return await self.group.submit(zone_id, _Delete(project, rrset_id, edit_managed))

    async def _apply(self, zone_id: uuid.UUID, batch: list) -> list:
        results: list = []
        for run in _runs(batch):
            if len(run) > 1:
                try:
                    results += await _write(self.store, zone_id, run, alone=False)
                    continue
                except _Retry:
                    pass
                except Exception as e:  # noqa: BLE001 - the run failed as a whole (the database): its callers hear it
                    results += [e] * len(run)
                    continue
            for it in run:
                try:
                    results += await _write(self.store, zone_id, [it], alone=True)
                except Exception as e:  # noqa: BLE001 - handed to its caller
                    results.append(e)
        return results


def _runs(batch: list) -> list[list]:
    """`batch` cut into consecutive runs in which no recordset id is named twice."""
    runs: list[list] = [[]]
    seen: set = set()
    for it in batch:
        rid = getattr(it, "rrset_id", None)  # None: a create
        if rid is not None:
            if rid in seen:
                runs.append([])
                seen = set()
            seen.add(rid)
        runs[-1].append(it)
    return runs


def _check_new(name, rtype) -> int:
    """The checks of a new recordset that need no database, made before it joins a batch."""
    if not isinstance(name, str) or not name.endswith("."):
        raise Invalid(f"name {name!r} must be a fully qualified name ending in a dot")
    if not _RRSET_RE.match(name):
        raise Invalid(f"name {name!r}: labels are letters, digits, '_' and '-' (not first or last), or a first '*'")
    if not isinstance(rtype, str):
        raise Invalid("type must be a string such as \"A\"")
    rtype_n = parse_type(rtype.upper())
    if rtype_n == SOA:
        raise Refused("Creating a SOA recordset is not allowed")
    if rtype_n in GENERATED:
        raise Refused(f"Creating a {dns.rdatatype.to_text(rtype_n)} recordset is not allowed: minidns makes them")
    return rtype_n


def _writable(z: dict) -> None:
    if z["action"] == "DELETE":
        raise Refused("Can not update a deleting zone")
    if z["type"] == "CATALOG":
        raise Refused("a catalog zone's records are made by minidns")


def _check_cname(rtype: int, types: set, apex: bool) -> None:
    if rtype == CNAME and apex:
        raise BadPlacement("CNAME recordsets may not be created at the zone apex")
    if (rtype == CNAME and types - {CNAME}) or (rtype != CNAME and CNAME in types):
        raise BadPlacement("CNAME recordsets may not share a name with any other records")


def _parse_all(rtype: int, recs: tuple[str, ...], origin: dns.name.Name) -> tuple:
    """`recs` as dnspython reads each as `rtype` (else Invalid naming the bad one): a bad record
    is its own request's error, not a reason to retry the whole batch one by one. The values go
    to the write path as they are: each record is parsed once."""
    return tuple(parse_rdata(rtype, text, origin) for text in recs)


def _rrset_error(it, r: dict | None, z: dict) -> Exception | None:
    """Why an update or delete of the recordset row `r` may not go ahead, or None."""
    verb = "update" if isinstance(it, _Update) else "delete"
    if r is None:
        return RecordSetNotFound(f"Could not find RecordSet {it.rrset_id}")
    if it.project not in (None, z["project_id"], r["project_id"]):  # a project the zone is shared with
        return Forbidden(f"recordset {r['name']} {dns.rdatatype.to_text(r['type'])} is not your project's: in a shared "
                         "zone a project may only change the recordsets it created")  # fmt: skip
    if r["type"] == SOA:
        return Refused("Updating SOA recordsets is not allowed" if verb == "update"
                       else "Deleting a SOA recordset is not allowed")  # fmt: skip
    try:
        _writable(z)
    except Refused as e:
        return e
    if r["managed"] and not it.edit_managed:
        return Refused(f"Managed records may not be {verb}d")
    return None


async def _write(store: Store, zone_id: uuid.UUID, batch: list, *, alone: bool) -> list:
    """Apply a batch of _NewRRset/_Update/_Delete (no recordset id twice) in one transaction; a
    result or an exception per item. With `alone` (one item) every failure is the item's own;
    otherwise one that depends on the batch as a whole raises _Retry."""
    results: list = [None] * len(batch)
    async with store.pool.acquire() as conn, conn.transaction():
        z = await get_zone(conn, zone_id, None, lock=True)
        origin = dns.name.from_text(z["name"])
        rows = {}
        ids = [it.rrset_id for it in batch if not isinstance(it, _NewRRset)]
        if ids:
            rows = {r["id"]: dict(r) for r in await conn.fetch(
                f"{_RRSET_SELECT} WHERE r.id = ANY($1::uuid[]) AND r.zone_id = $2", ids, zone_id)}  # fmt: skip
        guests = {it.project for it in batch if it.project not in (None, z["project_id"])}
        sharers = await targets(conn, zone_id) if guests else set()  # projects the zone is shared with
        creates, updates, deletes, values = _judge(batch, rows, z, origin, sharers, results)
        if creates:
            await _check_creates(conn, zone_id, origin, batch, creates, results)
        if (creates or any(u["given"] is not None for u in updates.values())):
            await _batch_quotas(conn, z, batch, creates, updates, rows, results, alone)
        if not (creates or updates or deletes):
            return results
        try:
            async with conn.transaction(), store.change(zone_id, source="api", conn=conn) as w:
                _edit(w, z, batch, rows, creates, updates, deletes, values)
        except (Invalid, Conflict) as e:
            if alone:
                results[0] = e
                return results
            raise _Retry() from None  # a record the writer refuses: find whose, one at a time
        wanted = {i: batch[i].rrset_id for i in updates}  # item → the id of the recordset it answers with
        if creates:
            created = {(bytes(r["owner"]), r["type"]): r["id"] for r in await conn.fetch(
                "SELECT id, owner, type FROM rrsets WHERE zone_id = $1 AND owner = ANY($2::bytea[])",
                zone_id, list({key for _, key in creates.values()}))}  # fmt: skip
            wanted.update({i: created[(key, batch[i].rtype)] for i, (_, key) in creates.items()})
        if wanted:
            out = {r["id"]: dict(r) for r in await conn.fetch(f"{_RRSET_SELECT} WHERE r.id = ANY($1::uuid[])",
                                                              list(wanted.values()))}  # fmt: skip
            for i, rid in wanted.items():
                results[i] = out[rid]
    return results


def _judge(batch: list, rows: dict, z: dict, origin: dns.name.Name, sharers: set, results: list):
    """Each item judged on its own: its error in `results`, or its place among the creates (item →
    (owner, owner key)), updates (item → its recordset's new records, ttl, ttl_default,
    description) and deletes; `values`: item → its records parsed (creates, updates given records)."""
    creates: dict[int, tuple[dns.name.Name, bytes]] = {}
    values: dict[int, tuple] = {}
    updates: dict[int, dict] = {}
    deletes: list[int] = []
    for i, it in enumerate(batch):
        if it.project is not None and it.project != z["project_id"] and it.project not in sharers:
            results[i] = ZoneNotFound(f"Could not find Zone {z['id']}")
        elif isinstance(it, _NewRRset):
            try:
                _writable(z)
                owner = parse_owner(it.name, origin)
                values[i] = _parse_all(it.rtype, it.recs, origin)
                creates[i] = (owner, owner.to_wire().lower())
            except Invalid as e:
                results[i] = BadPlacement("RecordSet is not contained within it's parent zone") if "not inside the zone" in str(e) else e
        elif (error := _rrset_error(it, rows.get(it.rrset_id), z)) is not None:
            results[i] = error
        elif isinstance(it, _Delete):
            deletes.append(i)
            results[i] = {**rows[it.rrset_id], "status": "PENDING", "action": "DELETE"}
        else:
            try:
                updates[i], value = _updated(it, rows[it.rrset_id], z, origin)
            except Invalid as e:
                results[i] = e
                continue
            if value is not None:
                values[i] = value
    return creates, updates, deletes, values


def _updated(it, r: dict, z: dict, origin: dns.name.Name) -> tuple[dict, tuple | None]:
    """An update's recordset as it will be — new records (as given, for the quotas), ttl,
    ttl_default, description — and its records parsed when new ones were given."""
    v = it.values
    given = check_records(v["records"], r["type"]) if "records" in v else None
    value = _parse_all(r["type"], given, origin) if given is not None else None
    ttl_default = v["ttl"] is None if "ttl" in v else r["ttl_default"]
    ttl = (z["ttl"] if ttl_default else v["ttl"]) if "ttl" in v else r["ttl"]
    return {"given": given, "recs": tuple(r["records"]) if given is None else given, "ttl": ttl,
            "ttl_default": ttl_default, "description": v.get("description", r["description"])}, value  # fmt: skip


async def _check_creates(conn, zone_id: uuid.UUID, origin: dns.name.Name, batch: list, creates: dict, results: list) -> None:
    """Creates checked against the RRsets at their owners and against each other; those that
    fail leave `creates` with their error."""
    types: dict[bytes, set] = {}
    for r in await conn.fetch("SELECT owner, type FROM rrsets WHERE zone_id = $1 AND owner = ANY($2::bytea[])",
                              zone_id, list({key for _, key in creates.values()})):  # fmt: skip
        types.setdefault(bytes(r["owner"]), set()).add(r["type"])
    for i, (owner, key) in list(creates.items()):
        it, have = batch[i], types.setdefault(key, set())
        try:
            if it.rtype in have:
                raise DuplicateRecordSet("Duplicate RecordSet")
            _check_cname(it.rtype, have, owner == origin)
        except Exception as e:  # noqa: BLE001 - this item's outcome
            results[i] = e
            del creates[i]
            continue
        have.add(it.rtype)


def _edit(w, z: dict, batch: list, rows: dict, creates: dict, updates: dict, deletes: list, values: dict) -> None:
    """The batch's edits, as values parsed once, and what Edit does not carry — a TTL that follows
    the zone's, a description taken away, the project that made a recordset in a shared zone —
    as row attributes of the same unit of work."""
    for i, (owner, _) in creates.items():
        it = batch[i]
        w.create(owner, it.rtype, values[i], it.ttl if it.ttl is not None else z["ttl"], description=it.description)
        if attributes := _new_attributes(it, z):
            w.set_attributes(owner, it.rtype, **attributes)
    for i, u in updates.items():
        r = rows[batch[i].rrset_id]
        w.replace(r["name"], r["type"], values.get(i, u["recs"]), u["ttl"], description=u["description"])
        attributes = {"ttl_default": u["ttl_default"]} if u["ttl_default"] != r["ttl_default"] else {}
        if u["description"] is None and r["description"] is not None:
            attributes["description"] = None
        if attributes:
            w.set_attributes(r["name"], r["type"], **attributes)
    for i in deletes:
        w.delete(rows[batch[i].rrset_id]["name"], rows[batch[i].rrset_id]["type"])


def _new_attributes(it: _NewRRset, z: dict) -> dict:
    """A created recordset's row attributes: a TTL that follows the zone's (none given), and the
    project that made it when the zone is shared with that project (its to manage)."""
    attributes = {"ttl_default": True} if it.ttl is None else {}
    if it.project not in (None, z["project_id"]):
        attributes["project_id"] = it.project
    return attributes


async def _batch_quotas(conn, z: dict, batch: list, creates: dict, updates: dict, rows: dict, results: list,
                        alone: bool) -> None:  # fmt: skip
    """The project's quotas for the batch's creates and the updates given new records: the
    zone-wide ones for all of them together (past them: _Retry, or the item's own error when
    `alone`), then each recordset's size. Items that fail leave `creates`/`updates` with their error."""
    resized = [i for i, u in updates.items() if u["given"] is not None]
    limits = await policy.get_quotas(conn, z["project_id"])
    if limits["zone_recordsets"] >= 0 or limits["zone_records"] >= 0:
        n_rrsets, n_records = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(cardinality(records)) FILTER (WHERE NOT managed AND type <> $2), 0)"
            " FROM rrsets WHERE zone_id = $1", z["id"], SOA)  # fmt: skip
        grow = sum(len(set(batch[i].recs)) for i in creates)
        for i in resized:
            r = rows[batch[i].rrset_id]
            delta = len(set(updates[i]["given"])) - (0 if r["managed"] else len(r["records"]))
            grow += delta if alone else max(0, delta)  # a batch: as if every shrinking update came last
        error = ((policy.over_quota(limits, "zone_recordsets", n_rrsets, len(creates)) if creates else None)
                 or policy.over_quota(limits, "zone_records", n_records, grow))  # fmt: skip
        if error is not None:
            if not alone:
                raise _Retry()
            results[0] = error
            creates.clear()
            updates.clear()
            return
    for i in list(creates) + resized:
        recs = batch[i].recs if i in creates else updates[i]["given"]
        if (error := policy.over_quota(limits, "recordset_records", 0, len(set(recs)))) is not None:
            results[i] = error
            creates.pop(i, None)
            updates.pop(i, None)
