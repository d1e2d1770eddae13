"""Event ingest (the "sink"): Nova, Neutron and CloudStack notifications turned into A, AAAA and PTR
records, through the one write path (writer.Store).

Events are applied in batches, one transaction each (those that arrive while the previous batch
commits; a batch may be a single event): the transaction takes the events lock (events are applied
one at a time, in the order they commit), looks the batch's message ids up (an event already
applied or ignored changes nothing again), runs each event's handler (inside its own savepoint once
one has failed), and writes each event's row in `events` — applied, ignored or failed, with the
reason and the records it changed. A handler that fails rolls back to its savepoint, so a failed
event leaves no records behind, only its row (the batch runs without savepoints until one of its
events fails, and is then rolled back and run again with them). The record changes of the batch's
events are logged once per zone (writer.ZoneLog): one new serial and change-log row per zone per
batch, holding their net effect. When the transaction commits the events and all their effects are
there; when the database is away none is, and the caller is told so (`Unavailable` → 503). An event
the database refuses to store spoils its batch's transaction: the batch is then applied again an
event at a time, so that only that event fails.

Handlers work by desired state. For each cloud resource (a Nova instance, a Neutron floating IP, a
CloudStack VM, a CloudStack VM group) the handler works out the RRsets it should have, and `sync`
makes the zones match: RRsets carrying the resource's provenance (managed_source,
managed_resource_type, managed_resource_id) that are no longer wanted are deleted, wanted ones are
written. A delete wants nothing, so it removes exactly what that resource made. What the sink knows
of each resource — an instance's name and fixed IPs, where a floating IP points — is kept in
`event_resources`; a deleted resource stays there as a tombstone, so a create that arrives after
its delete is ignored, and an event older than the newest one applied to the resource is ignored.

A name is only written when nothing at that owner belongs to someone else (a person, or another
resource): otherwise the record goes to the fallback `<first label>-<address>` form, and if that is
taken too, it is left out and the event's reason says so. A human record is never touched.

Event shapes:
- oslo.messaging notifications (Nova, Neutron), plain or wrapped as {"oslo.version": "2.0",
  "oslo.message": "<JSON>"}: event_type, payload, publisher_id, message_id, timestamp,
  _context_project_id, _context_project_name…
- CloudStack event-bus events (the JSON CloudStack publishes: event, status, account, entity,
  entityuuid, eventDateTime, description…) carrying the VM's details as the bridge adds them:
  "vm" (a listVirtualMachines item: id, name, displayname, group, account, domain, nic [{ipaddress,
  ip6address…}]), "account_details" {id, name, networkdomain} and "domain_details" {id, name,
  networkdomain}. The message id is "message_id", else "eventUuid" / "uuid".
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import unicodedata
import uuid
from dataclasses import dataclass, field

import asyncpg
import dns.exception
import dns.name
import dns.rdatatype
import dns.reversename
import orjson

from ..wire import SOA
from . import floatingips as fips
from .db import DB_DOWN, DB_FULL, LOST_MIDWAY
from .records import Invalid, zone_name
from .writer import Conflict, Edit, NotFound, Store, Unsignable, ZoneLog

EVENTS_LOCK = 0x6D696E65  # advisory lock key ("mine"): events and reconciles apply one at a time
DEFAULT_TEMPLATES = {
    "nova": "%(hostname)s.%(zone)s",  # an instance's fixed IPs
    "neutron": "%(hostname)s.fip.%(zone)s",  # a floating IP, named after the instance behind it
    "neutron_unknown": "%(octet0)s-%(octet1)s-%(octet2)s-%(octet3)s.%(zone)s",  # instance not known
    "cloudstack": "%(hostname)s.%(zone)s",  # a CloudStack VM
}
TEMPLATE_FIELDS = (
    "hostname", "display_name", "id", "instance_id", "project", "project_id", "tenant_id", "zone",
    "ip_address", "ip_dashed", "ip_version", "octet0", "octet1", "octet2", "octet3", "group", "account", "domain",
)  # fmt: skip
NOVA_CREATE = ("compute.instance.create.end",)
NOVA_DELETE = ("compute.instance.delete.start", "compute.instance.delete.end")
FIP_UPDATE = ("floatingip.create.end", "floatingip.update.end")
FIP_DELETE = ("floatingip.delete.start", "floatingip.delete.end")
PORT_DELETE = ("port.delete.end",)
CS_UP = ("VM.CREATE", "VM.START")
CS_DOWN = ("VM.DESTROY", "VM.EXPUNGE")
RESOURCE_TYPES = {"nova": "instance", "neutron": "floatingip", "cloudstack": "vm"}


class BadEvent(ValueError):
    """The event cannot be used; the message says why (recorded as failed)."""

    status, type = 400, "invalid_event"


class Unavailable(Exception):
    """The database cannot be reached: nothing was recorded; send the event again later."""

    status, type, retry_after = 503, "service_unavailable", 5


@dataclass(frozen=True)
class EventSettings:
    zone: str | None = None  # the zone of Nova/Neutron records; may use %(project_id)s, %(project)s
    zone_suffix: str | None = None  # <project id>.<suffix> when that zone exists, before `zone`
    templates: dict = field(default_factory=dict)  # handler → name template (DEFAULT_TEMPLATES)
    ptr: bool = True  # PTR records in the reverse zone when it exists
    create_ptr_zones: bool = False  # … and create the reverse zone (/24, /64) when none exists
    cloudstack_common_zone: str | None = None  # CloudStack VMs whose account and domain have no network domain
    region: str | None = None  # Neutron's floating IPs are offered for reverse DNS (/v2/reverse/floatingips) in this region

    @classmethod
    def from_config(cls, config) -> "EventSettings":
        return cls(config.events_zone, config.events_zone_suffix, dict(config.events_templates), config.events_ptr,
                   config.events_create_ptr_zones, config.cloudstack_common_zone, config.events_region or None)  # fmt: skip

    def template(self, handler: str) -> str:
        return self.templates.get(handler) or DEFAULT_TEMPLATES[handler]


def check_templates(templates: dict) -> None:
    """Raise ValueError naming a template that is not a string or uses an unknown field."""
    sample = {f: "x" for f in TEMPLATE_FIELDS}
    for handler, tpl in templates.items():
        if handler not in DEFAULT_TEMPLATES:
            raise ValueError(f"events_templates: unknown handler {handler!r} (one of {', '.join(DEFAULT_TEMPLATES)})")
        if not isinstance(tpl, str):
            raise ValueError(f"events_templates.{handler} must be a string")
        try:
            tpl % sample
        except KeyError as e:
            raise ValueError(f"events_templates.{handler}: unknown field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"events_templates.{handler}: {e}") from None


@dataclass
class Outcome:
    message_id: str
    source: str
    event_type: str
    status: str  # applied, ignored, failed
    reason: str | None = None
    changes: list = field(default_factory=list)
    duplicate: bool = False

    def to_json(self) -> dict:
        return {"message_id": self.message_id, "source": self.source, "event_type": self.event_type,
                "status": self.status, "reason": self.reason, "changes": self.changes,
                "duplicate": self.duplicate}  # fmt: skip


# -- the envelope -----------------------------------------------------------------------------------


def unwrap(raw) -> dict:
    """The notification itself: oslo.messaging's 2.0 envelope opened, anything else as it is."""
    if not isinstance(raw, dict):
        raise BadEvent("an event is a JSON object")
    if "oslo.message" in raw:
        msg = raw["oslo.message"]
        if raw.get("oslo.version") not in (None, "2.0"):
            raise BadEvent(f"oslo.version {raw.get('oslo.version')!r} is not 2.0")
        if not isinstance(msg, str):
            raise BadEvent("oslo.message must be a string holding the JSON notification")
        try:
            inner = orjson.loads(msg)
        except orjson.JSONDecodeError as e:
            raise BadEvent(f"oslo.message is not JSON: {e}") from None
        if not isinstance(inner, dict):
            raise BadEvent("oslo.message must hold a JSON object")
        return inner
    return raw


def describe(ev: dict) -> tuple[str, str, str | None, datetime.datetime | None]:
    """(source, event type, message id, timestamp) of an unwrapped event."""
    if isinstance(ev.get("event_type"), str):
        et = ev["event_type"]
        source = "nova" if et.startswith("compute.") else "neutron" if et.split(".")[0] in ("floatingip", "port") else "openstack"
        mid = ev.get("message_id")
        ts = _time(ev.get("timestamp"))
    elif isinstance(ev.get("event"), str):
        source, et = "cloudstack", ev["event"]
        mid = ev.get("message_id") or ev.get("eventUuid") or ev.get("uuid")
        ts = _time(ev.get("eventDateTime"))
    else:
        raise BadEvent("neither an oslo.messaging notification (event_type) nor a CloudStack event (event)")
    if mid is not None and (not isinstance(mid, str) or not mid or len(mid) > 255):
        raise BadEvent("message_id must be a non-empty string of at most 255 characters")
    return source, et, mid, ts


def _time(value) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    text = re.sub(r"\s+([+-]\d{2}:?\d{2})$", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        t = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)


# -- names ------------------------------------------------------------------------------------------


def safe_label(value) -> str:
    """A label from free text: lower case, runs of anything but letters, digits and '-' become one
    '-'; non-ASCII letters stay (the name is IDNA-encoded when made)."""
    s = unicodedata.normalize("NFC", str(value or "")).strip().lower()
    s = re.sub(r"[^\w-]+|_", "-", s)
    s = re.sub(r"-{2,}", "-", s).strip("-")
    return s[:63].strip("-")


def _idna(label: str) -> str:
    if label.isascii():
        return label
    try:
        import idna

        return idna.encode(label, uts46=True).decode("ascii")
    except Exception:  # noqa: BLE001 - the idna package missing or refusing: IDNA 2003
        try:
            return label.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise BadEvent(f"cannot IDNA-encode {label!r}: {e}") from None


def make_name(text: str) -> dns.name.Name:
    """An absolute DNS name from a rendered template; non-ASCII labels IDNA-encoded."""
    try:
        labels = [_idna(lab) for lab in text.rstrip(".").split(".")]
        return dns.name.from_text(".".join(labels) + ".")
    except dns.exception.DNSException as e:
        raise BadEvent(f"{text!r} is not a usable name: {e}") from None


def ip_fields(address: str) -> dict:
    ip = ipaddress.ip_address(address)
    out = {"ip_address": str(ip), "ip_version": str(ip.version)}
    if ip.version == 4:
        out["ip_dashed"] = str(ip).replace(".", "-")
        out.update({f"octet{i}": part for i, part in enumerate(str(ip).split("."))})
    else:
        out["ip_dashed"] = "-".join(format(int(h, 16), "x") for h in ip.exploded.split(":"))
    return out


def render(template: str, fields: dict, address: str | None = None) -> dns.name.Name:
    values = dict(fields)
    if address is not None:
        values.update(ip_fields(address))
    try:
        text = template % values
    except KeyError as e:
        if address is not None and str(e.args[0]).startswith("octet"):  # an IPv6 address in an IPv4 template
            text = "%(ip_dashed)s.%(zone)s" % values
        else:
            raise BadEvent(f"name template {template!r}: no value for {e.args[0]!r} in this event") from None
    return make_name(text)


def fallback_name(name: dns.name.Name, address: str) -> dns.name.Name:
    """The `name-1-2-3-4` form: the address appended to the first label."""
    first = name.labels[0].decode("ascii") + "-" + ip_fields(address)["ip_dashed"]
    return dns.name.Name((first[:63].encode(),) + name.labels[1:])


# -- what an event wants written ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ident:
    """A resource's provenance, as stored on each RRset it made."""

    source: str
    rtype: str
    rid: str
    tenant: str | None = None
    extra: dict | None = None

    def managed(self) -> dict:
        return {"source": self.source, "resource_type": self.rtype, "resource_id": self.rid,
                "tenant_id": self.tenant, "extra": self.extra}  # fmt: skip

    def owns(self, row) -> bool:
        return bool(row["managed"]) and (row["managed_source"], row["managed_resource_type"],
                                         row["managed_resource_id"]) == (self.source, self.rtype, self.rid)  # fmt: skip


@dataclass
class Want:
    zone_id: uuid.UUID
    zone: str
    owner: dns.name.Name
    rtype: str
    records: tuple[str, ...]


class _Held:
    """A pool stand-in that hands out one connection already in a transaction, so that a Store
    method run through it happens inside that transaction (its own becomes a savepoint)."""

    def __init__(self, conn):
        self.conn = conn

    def acquire(self, **_kw):
        return self

    async def __aenter__(self):
        return self.conn

    async def __aexit__(self, *_exc):
        return False


class Run:
    """One event's (or reconcile's) work inside its transaction."""

    def __init__(self, conn, store: Store, settings: EventSettings, log: ZoneLog, source: str,
                 message_id: str | None, event_time: datetime.datetime | None):  # fmt: skip
        self.conn, self.store, self.settings, self.log = conn, store, settings, log
        self.source, self.message_id, self.event_time = source, message_id, event_time
        self.changes: list[dict] = []
        self.notes: list[str] = []
        self.written: list = []  # ZoneLog.write results, kept by the log once the savepoint holds

    # -- zones --
    async def zone(self, name: str) -> dict | None:
        """The zone row (locked for the transaction), or None when there is no such zone."""
        return await self.log.zone(self.conn, name)

    async def reverse_zone(self, address: str, forward) -> asyncpg.Record | None:
        rev = dns.reversename.from_address(address)
        names = [dns.name.Name(rev.labels[i:]).to_text().lower() for i in range(len(rev.labels) - 2)]
        row = await self.conn.fetchrow(
            "SELECT id, name, email, mname FROM zones WHERE name = ANY($1::text[]) ORDER BY length(name) DESC LIMIT 1 FOR UPDATE",
            names,
        )  # fmt: skip
        if row is None and self.settings.create_ptr_zones:
            keep = 16 if ipaddress.ip_address(address).version == 6 else 1  # a /64 or a /24
            name = dns.name.Name(rev.labels[keep:]).to_text().lower()
            await Store(_Held(self.conn), self.store.settings, self.store.clock).create_zone(
                name, email=forward["email"], source=f"event:{self.source}", pool_id=forward["pool_id"],
                description="reverse zone made for event records",  # in the forward zone's pool, with its NS
            )  # fmt: skip
            self.changes.append({"op": "create_zone", "zone": name})
            row = await self.conn.fetchrow("SELECT id, name, email, mname FROM zones WHERE name = $1 FOR UPDATE", name)
        return row

    async def openstack_zone(self, tenant: str | None, project: str | None):
        """The zone of a project's records: <project id>.<events_zone_suffix> when that zone exists,
        else events_zone; None when neither is configured."""
        s = self.settings
        tried = []
        if s.zone_suffix and tenant:
            name = f"{safe_label(tenant)}.{s.zone_suffix}"
            z = await self.zone(name)
            if z is not None:
                return z
            tried.append(zone_name(name).to_text().lower())
        if s.zone:
            try:
                name = s.zone % {"project_id": tenant or "", "tenant_id": tenant or "", "project": safe_label(project or tenant)}
            except (KeyError, TypeError, ValueError) as e:
                raise BadEvent(f"events_zone {s.zone!r}: {e}") from None
            z = await self.zone(name)
            if z is not None:
                return z
            tried.append(zone_name(name).to_text().lower())
        if not tried:
            if s.zone_suffix:
                raise BadEvent("the event names no project, and the zone is per project (events_zone_suffix)")
            return None
        raise BadEvent(f"zone {' nor '.join(tried)} does not exist")

    # -- owners --
    async def free(self, zone_id, owner: dns.name.Name, ident: Ident) -> bool:
        """Nothing at `owner` belongs to anyone but `ident`."""
        rows = await self.conn.fetch(
            "SELECT managed, managed_source, managed_resource_type, managed_resource_id FROM rrsets"
            " WHERE zone_id = $1 AND owner = $2 AND type <> $3", zone_id, owner.to_wire().lower(), SOA,
        )  # fmt: skip
        return all(ident.owns(r) for r in rows)

    async def address_wants(self, ident: Ident, zone, name: dns.name.Name, addresses: list[str]) -> list[Want]:
        """A/AAAA at `name` (else each address at its fallback name) and a PTR for each address."""
        origin = dns.name.from_text(zone["name"])
        if not name.is_subdomain(origin) or name == origin:
            raise BadEvent(f"{name} is not a name inside the zone {zone['name']}")
        placed: dict[dns.name.Name, list[str]] = {}
        if await self.free(zone["id"], name, ident):
            placed[name] = list(addresses)
        else:
            for a in addresses:
                fb = fallback_name(name, a)
                if await self.free(zone["id"], fb, ident):
                    placed.setdefault(fb, []).append(a)
                    self.notes.append(f"{name} is taken; {a} is at {fb}")
                else:
                    self.notes.append(f"{name} and {fb} are taken; no record for {a}")
        wants = []
        for owner, addrs in placed.items():
            for rtype, version in (("A", 4), ("AAAA", 6)):
                recs = tuple(sorted({a for a in addrs if ipaddress.ip_address(a).version == version}))
                if recs:
                    wants.append(Want(zone["id"], zone["name"], owner, rtype, recs))
            if self.settings.ptr:
                for a in addrs:
                    rz = await self.reverse_zone(a, zone)
                    if rz is None:
                        continue
                    rname = dns.reversename.from_address(a)
                    if await self.free(rz["id"], rname, ident):
                        wants.append(Want(rz["id"], rz["name"], rname, "PTR", (owner.to_text(),)))
                    else:
                        self.notes.append(f"{rname} is taken; no PTR for {a}")
        return wants

    # -- writing --
    async def sync(self, ident: Ident, wants: list[Want]) -> None:
        """Make the RRsets carrying `ident`'s provenance exactly `wants`."""
        have = await self.conn.fetch(
            "SELECT r.zone_id, z.name AS zone, r.name, r.type, r.records, r.managed_extra FROM rrsets r"
            " JOIN zones z ON z.id = r.zone_id WHERE r.managed AND r.managed_source = $1"
            " AND r.managed_resource_type = $2 AND r.managed_resource_id = $3",
            ident.source, ident.rtype, ident.rid,
        )  # fmt: skip
        want = {(w.zone_id, w.owner.to_text().lower(), dns.rdatatype.from_text(w.rtype)): w for w in wants}
        edits: dict[uuid.UUID, list[Edit]] = {}
        log: dict[uuid.UUID, list[dict]] = {}
        seen = set()
        for h in have:
            key = (h["zone_id"], h["name"], h["type"])
            rtype = dns.rdatatype.to_text(h["type"])
            w = want.get(key)
            if w is None:
                edits.setdefault(h["zone_id"], []).append(Edit("delete", h["name"], h["type"]))
                log.setdefault(h["zone_id"], []).append(
                    {"op": "remove", "zone": h["zone"], "name": h["name"], "type": rtype, "records": list(h["records"])})
                continue
            seen.add(key)
            if set(_norm(w.rtype, w.records)) == set(_norm(rtype, h["records"])) and (h["managed_extra"] or None) == (ident.extra or None):
                continue
            edits.setdefault(w.zone_id, []).append(Edit("replace", h["name"], h["type"], None, w.records, managed=ident.managed()))
            log.setdefault(w.zone_id, []).append({"op": "replace", "zone": w.zone, "name": h["name"], "type": rtype,
                                                  "records": list(w.records), "previous": list(h["records"])})  # fmt: skip
        for key, w in want.items():
            if key in seen:
                continue
            owner = w.owner.to_text().lower()
            edits.setdefault(w.zone_id, []).append(Edit("replace", owner, w.rtype, None, w.records, managed=ident.managed()))
            log.setdefault(w.zone_id, []).append({"op": "add", "zone": w.zone, "name": owner, "type": w.rtype,
                                                  "records": list(w.records)})  # fmt: skip
        for zone_id in sorted(edits, key=lambda z: min(e["zone"] for e in log[z])):
            await self.write(zone_id, edits[zone_id])
            self.changes += log[zone_id]

    async def write(self, zone_id: uuid.UUID, edits: list[Edit]) -> None:
        """Write to the zone's rows; its change-log row is the batch's (writer.ZoneLog)."""
        self.written.append(await self.log.write(self.conn, zone_id, edits))

    # -- resources --
    async def resource(self, source: str, rtype: str, rid: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM event_resources WHERE source = $1 AND resource_type = $2 AND resource_id = $3 FOR UPDATE",
            source, rtype, rid,
        )  # fmt: skip

    def skip_reason(self, row, what: str) -> str | None:
        """Why an event about resource `row` is not applied: it is a tombstone, or newer news of
        it has been applied already."""
        if row is None:
            return None
        if row["state"] == "deleted":
            return f"{what} was deleted (by {row['last_message_id']}) before this event arrived"
        if self.event_time and row["event_time"] and self.event_time < row["event_time"]:
            return f"{what} has a newer event applied already ({row['last_message_id']})"
        return None

    async def put(self, source: str, rtype: str, rid: str, state: str, tenant: str | None, data: dict) -> None:
        await self.conn.execute(
            "INSERT INTO event_resources (source, resource_type, resource_id, state, tenant_id, data, event_time,"
            " last_message_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, resource_type, resource_id)"
            " DO UPDATE SET state = $4, tenant_id = COALESCE($5, event_resources.tenant_id), data = $6,"
            " event_time = GREATEST(event_resources.event_time, $7), last_message_id = $8, updated_at = now()",
            source, rtype, rid, state, tenant, data, self.event_time, self.message_id,
        )  # fmt: skip


def _norm(rtype: str, records) -> list[str]:
    if rtype in ("A", "AAAA"):
        return [str(ipaddress.ip_address(r)) for r in records]
    return [r.lower() for r in records]


def _str(d: dict, key: str, what: str) -> str:
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, str) or not v:
        raise BadEvent(f"{what} has no {key}")
    return v


def _addr(value, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise BadEvent(f"{what}: {value!r} is not an IP address") from None


# -- Nova ---------------------------------------------------------------------------------------------


async def _nova(run: Run, ev: dict) -> tuple[str, str | None]:
    et = ev["event_type"]
    if et not in NOVA_CREATE + NOVA_DELETE:
        return "ignored", f"{et} is not an event the sink acts on"
    p = ev.get("payload")
    if not isinstance(p, dict):
        raise BadEvent("the notification has no payload object")
    iid = _str(p, "instance_id", "the payload")
    tenant = p.get("tenant_id") or ev.get("_context_project_id") or ev.get("_context_tenant")
    ident = Ident("nova", "instance", iid, tenant)
    row = await run.resource("nova", "instance", iid)
    if et in NOVA_DELETE:
        if row is not None and row["state"] == "deleted":
            return "ignored", f"instance {iid} is deleted already"
        await run.put("nova", "instance", iid, "deleted", tenant, dict(row["data"]) if row else {})
        await run.sync(ident, [])
        await _resync_fips(run, (row["data"] or {}).get("addresses", []) if row else [])
        return "applied", None if run.changes else "nothing to remove (tombstone kept for a late create)"
    skip = run.skip_reason(row, f"instance {iid}")
    if skip:
        return "ignored", skip
    fixed = p.get("fixed_ips") or []
    if not isinstance(fixed, list):
        raise BadEvent("payload.fixed_ips must be a list")
    addresses = []
    for f in fixed:
        if not isinstance(f, dict):
            raise BadEvent("payload.fixed_ips entries must be objects")
        a = _addr(f.get("address"), "payload.fixed_ips")
        if a not in addresses:
            addresses.append(a)
    host = safe_label(p.get("hostname") or p.get("display_name"))
    if not host:
        raise BadEvent("the instance has neither a usable hostname nor display_name")
    project = ev.get("_context_project_name") or ev.get("_context_tenant_name")
    zone = await run.openstack_zone(tenant, project)
    if zone is None:
        return "ignored", "no zone for instance records: set events_zone or events_zone_suffix"
    fields = {"hostname": host, "display_name": safe_label(p.get("display_name")) or host, "id": iid, "instance_id": iid,
              "project": safe_label(project or tenant), "project_id": tenant or "", "tenant_id": tenant or "",
              "zone": zone["name"]}  # fmt: skip
    data = {"hostname": host, "display_name": p.get("display_name"), "project": project, "addresses": addresses,
            "zone": zone["name"]}  # fmt: skip
    await run.put("nova", "instance", iid, "live", tenant, data)
    name = render(run.settings.template("nova"), fields)
    await run.sync(ident, await run.address_wants(ident, zone, name, addresses))
    await _resync_fips(run, addresses)
    return "applied", None


# -- Neutron ------------------------------------------------------------------------------------------


async def _neutron(run: Run, ev: dict) -> tuple[str, str | None]:
    et = ev["event_type"]
    if et not in FIP_UPDATE + FIP_DELETE + PORT_DELETE:
        return "ignored", f"{et} is not an event the sink acts on"
    p = ev.get("payload")
    if not isinstance(p, dict):
        raise BadEvent("the notification has no payload object")
    if et in PORT_DELETE:
        pid = p.get("port_id") or (p.get("port") or {}).get("id")
        if not isinstance(pid, str) or not pid:
            raise BadEvent("the payload has no port_id")
        await run.put("neutron", "port", pid, "deleted", ev.get("_context_project_id"), {})
        for r in await run.conn.fetch(
            "SELECT resource_id FROM event_resources WHERE source = 'neutron' AND resource_type = 'floatingip'"
            " AND state = 'live' AND data->>'port_id' = $1 FOR UPDATE", pid,
        ):  # fmt: skip
            row = await run.resource("neutron", "floatingip", r["resource_id"])
            data = {**row["data"], "port_id": None, "fixed_ip": None}
            await run.put("neutron", "floatingip", r["resource_id"], "live", row["tenant_id"], data)
            await _sync_fip(run, r["resource_id"])
        # Anything else made on behalf of this port.
        for r in await run.conn.fetch(
            "SELECT DISTINCT managed_source, managed_resource_type, managed_resource_id FROM rrsets"
            " WHERE managed AND managed_extra->>'port_id' = $1", pid,
        ):  # fmt: skip
            await run.sync(Ident(r["managed_source"], r["managed_resource_type"], r["managed_resource_id"]), [])
        return "applied", None if run.changes else "nothing to remove"
    if et in FIP_DELETE:
        fid = p.get("floatingip_id") or (p.get("floatingip") or {}).get("id")
        if not isinstance(fid, str) or not fid:
            raise BadEvent("the payload has no floatingip_id")
        row = await run.resource("neutron", "floatingip", fid)
        if row is not None and row["state"] == "deleted":
            return "ignored", f"floating IP {fid} is deleted already"
        await run.put("neutron", "floatingip", fid, "deleted", ev.get("_context_project_id"), dict(row["data"]) if row else {})
        await run.sync(Ident("neutron", "floatingip", fid), [])
        if run.settings.region and _uuid(fid):
            await fips.release(run.conn, run.write, run.settings.region, _uuid(fid))
        return "applied", None if run.changes else "nothing to remove (tombstone kept for a late update)"
    fip = p.get("floatingip")
    if not isinstance(fip, dict):
        raise BadEvent("the payload has no floatingip object")
    fid = _str(fip, "id", "payload.floatingip")
    address = _addr(fip.get("floating_ip_address"), "payload.floatingip.floating_ip_address")
    fixed = fip.get("fixed_ip_address")
    fixed = _addr(fixed, "payload.floatingip.fixed_ip_address") if fixed else None
    port_id = fip.get("port_id") if fixed else None
    row = await run.resource("neutron", "floatingip", fid)
    skip = run.skip_reason(row, f"floating IP {fid}")
    if skip:
        return "ignored", skip
    if port_id:
        port = await run.resource("neutron", "port", port_id)
        if port is not None and port["state"] == "deleted":
            return "ignored", f"port {port_id} was deleted (by {port['last_message_id']}) before this event arrived"
    tenant = fip.get("tenant_id") or fip.get("project_id") or ev.get("_context_project_id")
    data = {"address": address, "fixed_ip": fixed, "port_id": port_id,
            "project": ev.get("_context_project_name") or ev.get("_context_tenant_name")}  # fmt: skip
    await run.put("neutron", "floatingip", fid, "live", tenant, data)
    if run.settings.region:
        await _hold_fip(run, fid, address, tenant)
    await _sync_fip(run, fid, strict=True)
    return "applied", None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def _hold_fip(run: Run, fid: str, address: str, tenant: str | None) -> None:
    """The floating IP is its project's in /v2/reverse/floatingips, where the project may set the
    PTR for it, as Designate offers the floating IPs Neutron says a project holds."""
    if _uuid(fid) is None or not tenant:
        run.notes.append(f"floating IP {fid} not offered for reverse DNS: {'its id is not a UUID' if tenant else 'no project'}")
        return
    await fips.hold(run.conn, run.write, run.settings.region, _uuid(fid), address, tenant, take_over=True)


async def _sync_fip(run: Run, fid: str, strict: bool = False) -> None:
    """Make floating IP `fid`'s records match what is known of it: an A record named after the
    instance behind its fixed IP (or after its own address), or nothing when it is unassociated."""
    row = await run.resource("neutron", "floatingip", fid)
    ident = Ident("neutron", "floatingip", fid, row["tenant_id"] if row else None)
    data = row["data"] if row else {}
    if row is None or row["state"] != "live" or not data.get("fixed_ip"):
        await run.sync(ident, [])
        return
    try:
        zone = await run.openstack_zone(row["tenant_id"], data.get("project"))
    except BadEvent as e:
        if strict:
            raise
        run.notes.append(f"floating IP {fid} not renamed: {e}")
        return
    if zone is None:
        run.notes.append("no zone for floating IP records: set events_zone or events_zone_suffix")
        return
    inst = await run.conn.fetchrow(
        "SELECT resource_id, tenant_id, data FROM event_resources WHERE source = 'nova' AND resource_type = 'instance'"
        " AND state = 'live' AND data->'addresses' ? $1 ORDER BY (tenant_id IS NOT DISTINCT FROM $2) DESC, updated_at DESC LIMIT 1",
        data["fixed_ip"], row["tenant_id"],
    )  # fmt: skip
    extra = {"port_id": data.get("port_id"), "fixed_ip": data["fixed_ip"], "instance_id": inst["resource_id"] if inst else None}
    ident = Ident("neutron", "floatingip", fid, row["tenant_id"], extra)
    fields = {"id": fid, "zone": zone["name"], "project_id": row["tenant_id"] or "", "tenant_id": row["tenant_id"] or "",
              "project": safe_label(data.get("project") or row["tenant_id"])}  # fmt: skip
    if inst is not None:
        d = inst["data"]
        fields.update(hostname=d["hostname"], display_name=safe_label(d.get("display_name")) or d["hostname"],
                      instance_id=inst["resource_id"])  # fmt: skip
        name = render(run.settings.template("neutron"), fields, data["address"])
    else:
        name = render(run.settings.template("neutron_unknown"), fields, data["address"])
    await run.sync(ident, await run.address_wants(ident, zone, name, [data["address"]]))


async def _resync_fips(run: Run, addresses: list[str]) -> None:
    """Floating IPs pointing at these fixed IPs take the instance's new name (or lose it)."""
    if not addresses:
        return
    for r in await run.conn.fetch(
        "SELECT resource_id FROM event_resources WHERE source = 'neutron' AND resource_type = 'floatingip'"
        " AND state = 'live' AND data->>'fixed_ip' = ANY($1::text[]) ORDER BY resource_id", addresses,
    ):  # fmt: skip
        await _sync_fip(run, r["resource_id"])


# -- CloudStack ---------------------------------------------------------------------------------------


async def _cloudstack(run: Run, ev: dict) -> tuple[str, str | None]:
    et = ev["event"]
    if et not in CS_UP + CS_DOWN:
        return "ignored", f"{et} is not an event the sink acts on"
    status = ev.get("status")
    if status is not None and status != "Completed":
        return "ignored", f"status {status} (only Completed events are acted on)"
    vm = ev.get("vm") if isinstance(ev.get("vm"), dict) else {}
    vid = vm.get("id") or ev.get("entityuuid") or ev.get("VirtualMachine")
    if not isinstance(vid, str) or not vid:
        raise BadEvent("the event names no VM (vm.id or entityuuid)")
    row = await run.resource("cloudstack", "vm", vid)
    if et in CS_DOWN:
        if row is not None and row["state"] == "deleted":
            return "ignored", f"VM {vid} is deleted already"
        data = dict(row["data"]) if row else {}
        await run.put("cloudstack", "vm", vid, "deleted", row["tenant_id"] if row else None, data)
        await run.sync(Ident("cloudstack", "vm", vid), [])
        if data.get("group"):
            await _sync_group(run, data["account_id"], data["group"])
        return "applied", None if run.changes else "nothing to remove (tombstone kept for a late create)"
    skip = run.skip_reason(row, f"VM {vid}")
    if skip:
        return "ignored", skip
    if not vm:
        raise BadEvent(f"{et} carries no vm details")
    acct = ev.get("account_details") if isinstance(ev.get("account_details"), dict) else {}
    dom = ev.get("domain_details") if isinstance(ev.get("domain_details"), dict) else {}
    account_id = acct.get("id") or vm.get("accountid") or (ev.get("account") if isinstance(ev.get("account"), str) else None)
    if not account_id:
        raise BadEvent("the event names no account uuid")
    host = safe_label(vm.get("name") or vm.get("hostname") or vm.get("displayname"))
    if not host:
        raise BadEvent("the VM has no usable name")
    addresses = []
    nics = vm.get("nic") or []
    if not isinstance(nics, list):
        raise BadEvent("vm.nic must be a list")
    for nic in nics:
        if not isinstance(nic, dict):
            raise BadEvent("vm.nic entries must be objects")
        for k in ("ipaddress", "ip6address"):
            if nic.get(k):
                a = _addr(nic[k], f"vm.nic.{k}")
                if a not in addresses:
                    addresses.append(a)
    tried, zone = [], None
    for candidate in (acct.get("networkdomain"), dom.get("networkdomain"), run.settings.cloudstack_common_zone):
        if candidate:
            tried.append(candidate)
            zone = await run.zone(candidate)
            if zone is not None:
                break
    if zone is None:
        if tried:
            raise BadEvent(f"none of the zones {', '.join(tried)} exists")
        return "ignored", "neither the account nor the domain has a network domain, and cloudstack_common_zone is not set"
    previous = dict(row["data"]) if row else {}
    group = vm.get("group") or None
    data = {"hostname": host, "display_name": vm.get("displayname"), "group": group, "account_id": account_id,
            "account": vm.get("account") or acct.get("name"), "domain": vm.get("domain") or dom.get("name"),
            "addresses": addresses, "zone": zone["name"]}  # fmt: skip
    await run.put("cloudstack", "vm", vid, "live", account_id, data)
    fields = {"hostname": host, "display_name": safe_label(vm.get("displayname")) or host, "id": vid,
              "instance_id": vid, "project": safe_label(data["account"] or account_id), "project_id": account_id,
              "tenant_id": account_id, "zone": zone["name"], "group": safe_label(group or ""),
              "account": safe_label(data["account"] or ""), "domain": safe_label(data["domain"] or "")}  # fmt: skip
    ident = Ident("cloudstack", "vm", vid, account_id)
    name = render(run.settings.template("cloudstack"), fields)
    await run.sync(ident, await run.address_wants(ident, zone, name, addresses))
    for g in {group, previous.get("group")} - {None}:
        await _sync_group(run, account_id if g == group else previous.get("account_id", account_id), g)
    return "applied", None


def group_label(group: str, account_id: str) -> str:
    """`<safe-group>-<first 8 of the account uuid>`."""
    acct8 = re.sub(r"[^0-9a-z]", "", account_id.lower())[:8]
    return f"{safe_label(group)[:54].strip('-')}-{acct8}"


async def _sync_group(run: Run, account_id: str, group: str) -> None:
    """The group's records hold every live VM of the group (of that account), per zone."""
    ident = Ident("cloudstack", "vm_group", f"{account_id}/{group}", account_id)
    members = await run.conn.fetch(
        "SELECT data FROM event_resources WHERE source = 'cloudstack' AND resource_type = 'vm' AND state = 'live'"
        " AND data->>'account_id' = $1 AND data->>'group' = $2 ORDER BY resource_id", account_id, group,
    )  # fmt: skip
    per_zone: dict[str, list[str]] = {}
    for m in members:
        per_zone.setdefault(m["data"]["zone"], []).extend(m["data"]["addresses"])
    wants = []
    for zname, addrs in sorted(per_zone.items()):
        zone = await run.zone(zname)
        if zone is None:
            continue
        owner = make_name(f"{group_label(group, account_id)}.{zone['name']}")
        if not await run.free(zone["id"], owner, ident):
            run.notes.append(f"{owner} is taken; no group records there")
            continue
        for rtype, version in (("A", 4), ("AAAA", 6)):
            recs = tuple(sorted({a for a in addrs if ipaddress.ip_address(a).version == version}))
            if recs:
                wants.append(Want(zone["id"], zone["name"], owner, rtype, recs))
    await run.sync(ident, wants)


HANDLERS = {"nova": _nova, "neutron": _neutron, "cloudstack": _cloudstack}


# -- the entry points ---------------------------------------------------------------------------------


async def ingest_many(store: Store, settings: EventSettings, raws: list) -> list:
    """Apply several events in one transaction (group commit: one lock, one commit), each handler
    in its own savepoint, in order; an Outcome or a BadEvent per event. Their record changes are
    logged once per zone for the whole batch (writer.ZoneLog). Unavailable (for all of them) when
    the database is away: then none is committed. When the batch fails for another reason (an
    event the database will not store), each event is tried on its own so that only that one
    fails."""
    results: list = [None] * len(raws)
    ready = []
    for i, raw in enumerate(raws):
        try:
            ready.append((i, *_prepare(raw)))
        except BadEvent as e:
            results[i] = e
    if not ready:
        return results
    try:
        for i, outcome in zip([i for i, _, _ in ready], await _apply(store, settings, [r[1:] for r in ready])):
            results[i] = outcome
    except DB_DOWN as e:
        midway = "; the connection was lost during the request, so they may have been stored: sending them again is safe"
        raise Unavailable(f"the database is not reachable: {e}{midway if isinstance(e, LOST_MIDWAY) else ''}") from None
    except DB_FULL as e:  # disk full: rolled back, none is stored; the sender tries again later
        raise Unavailable(f"the database cannot store events now: {e}") from None
    except Unsignable as e:  # a signed zone and no master key here: the sender tries again later
        raise Unavailable(str(e)) from None
    except Exception:  # noqa: BLE001 - one event spoils the batch: each on its own, the error to its caller
        if len(ready) == 1:
            raise
        for i, ev, described in ready:
            try:
                results[i] = (await _apply(store, settings, [(ev, described)]))[0]
            except DB_DOWN as e:
                raise Unavailable(f"the database is not reachable: {e}") from None
            except DB_FULL as e:
                raise Unavailable(f"the database cannot store events now: {e}") from None
            except Exception as e:  # noqa: BLE001 - handed to this event's caller
                results[i] = e
    return results


_RECORD_EVENT = (
    "INSERT INTO events (message_id, source, event_type, publisher_id, status, reason, changes, event,"
    " event_time, applied_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $5 = 'applied' THEN now() END)"
    " ON CONFLICT (message_id) DO UPDATE SET status = $5, reason = $6, changes = $7, event = $8,"
    " attempts = events.attempts + 1, received_at = now(), applied_at = CASE WHEN $5 = 'applied' THEN now() END"
)


class _Failed(Exception):
    """An event's handler failed in a batch applied without savepoints."""


async def _apply(store: Store, settings: EventSettings, ready: list) -> list:
    """A batch's outcomes. Savepoints cost two round trips per event and are needed only when an
    event fails: so the batch runs without them, and when one of its events fails, it is rolled
    back and run again with a savepoint around each event."""
    try:
        return await _transaction(store, settings, ready, savepoints=False)
    except _Failed:
        return await _transaction(store, settings, ready, savepoints=True)


async def _transaction(store: Store, settings: EventSettings, ready: list, savepoints: bool) -> list:
    """The transaction of a batch: the events lock, the batch's message ids looked up at once, each
    event applied, one change per zone logged, the events' rows written."""
    async with store.pool.acquire(timeout=10) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", EVENTS_LOCK)
        known = {r["message_id"]: dict(r) for r in await conn.fetch(
            "SELECT message_id, source, event_type, status, reason, changes FROM events"
            " WHERE message_id = ANY($1::text[]) FOR UPDATE", [d[2] for _, d in ready],
        )}  # fmt: skip
        log = ZoneLog(store, "event")
        rows: list[tuple] = []
        out = [await _ingest_in(conn, store, settings, log, known, rows, savepoints, ev, *described)
               for ev, described in ready]  # fmt: skip
        await log.flush(conn)
        if rows:
            await conn.executemany(_RECORD_EVENT, rows)
        return out


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _prepare(raw) -> tuple[dict, tuple]:
    ev = unwrap(raw)
    if _has_nul(ev):  # PostgreSQL's text and jsonb cannot hold U+0000
        raise BadEvent("the event holds a NUL character (U+0000), which cannot be stored")
    source, et, mid, ts = describe(ev)
    if mid is None:
        raise BadEvent("the event has no message_id (nor eventUuid)")
    return ev, (source, et, mid, ts)


async def _ingest_in(conn, store: Store, settings: EventSettings, log: ZoneLog, known: dict, rows: list,
                     savepoints: bool, ev: dict, source, et, mid, ts) -> Outcome:  # fmt: skip
    """One event inside the batch's transaction (which holds the events lock): its outcome, and
    its row added to `rows`. `known` holds the outcomes recorded before, by message id. Without
    `savepoints`, a failing handler raises _Failed."""
    old = known.get(mid)
    if old is not None and old["status"] != "failed":
        return Outcome(mid, old["source"], old["event_type"], old["status"], old["reason"], old["changes"], True)
    run = Run(conn, store, settings, log, source, mid, ts)
    handler = HANDLERS.get(source)
    if handler is None:
        status, reason = "ignored", f"{et}: no handler for this source"
    else:
        try:
            if savepoints:
                async with conn.transaction():
                    status, reason = await handler(run, ev)
            else:
                status, reason = await handler(run, ev)
        except (BadEvent, Invalid, NotFound, Conflict, KeyError, TypeError, ValueError) as e:
            if not savepoints:
                raise _Failed from e  # its writes are in the transaction: the batch again, with savepoints
            status, reason, run.changes, run.notes, run.written = "failed", _why(e), [], [], []
            log.rows.clear()  # rows read inside the rolled-back savepoint may be gone again
    for written in run.written:  # the savepoint holds: the batch's change-log takes them
        log.keep(written, f"event:{source}")
    if run.notes:
        reason = "; ".join(filter(None, [reason, *run.notes]))
    publisher = ev.get("publisher_id") if isinstance(ev.get("publisher_id"), str) else None
    rows.append((mid, source, et, publisher, status, reason, run.changes, _kept(ev), ts))
    known[mid] = {"source": source, "event_type": et, "status": status, "reason": reason, "changes": run.changes}
    return Outcome(mid, source, et, status, reason, run.changes)


def _kept(ev: dict) -> dict:
    """The event as stored: without the credentials an oslo context carries."""
    return {k: v for k, v in ev.items() if "auth_token" not in k and k not in ("_context_service_catalog",)}


def _why(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"malformed event: missing {e.args[0]!r}"
    if isinstance(e, (BadEvent, Invalid, NotFound, Conflict)):
        return str(e)
    return f"malformed event: {e}"


async def get_event(pool, message_id: str) -> dict | None:
    try:
        row = await pool.fetchrow(
            "SELECT message_id, source, event_type, publisher_id, status, reason, changes, attempts, event_time,"
            " received_at, applied_at FROM events WHERE message_id = $1", message_id,
        )  # fmt: skip
    except DB_DOWN as e:
        raise Unavailable(f"the database is not reachable: {e}") from None
    return dict(row) if row else None


async def list_events(pool, status: str | None, limit: int) -> list[dict]:
    try:
        rows = await pool.fetch(
            "SELECT message_id, source, event_type, status, reason, received_at, applied_at FROM events"
            " WHERE $1::text IS NULL OR status = $1 ORDER BY received_at DESC LIMIT $2", status, limit,
        )  # fmt: skip
    except DB_DOWN as e:
        raise Unavailable(f"the database is not reachable: {e}") from None
    return [dict(r) for r in rows]


async def prune(pool, keep_days: float, chunk: int = 5000) -> tuple[int, int]:
    """Retention: events received more than `keep_days` ago (a message id sent again after that is
    applied as new), and tombstones of resources deleted that long ago (a create arriving that late
    makes records again). Live resources are kept whatever their age. Deleted in chunks, each its
    own short transaction, so that ingest never waits long. (events, tombstones) removed."""
    removed = [0, 0]
    for i, sql in enumerate((
        "DELETE FROM events WHERE message_id IN (SELECT message_id FROM events"
        " WHERE received_at < now() - make_interval(secs => $1) LIMIT $2)",
        "DELETE FROM event_resources WHERE (source, resource_type, resource_id) IN (SELECT source, resource_type,"
        " resource_id FROM event_resources WHERE state = 'deleted' AND updated_at < now() - make_interval(secs => $1) LIMIT $2)",
    )):  # fmt: skip
        while True:
            try:
                status = await pool.execute(sql, keep_days * 86400.0, chunk)
            except DB_DOWN as e:
                raise Unavailable(f"the database is not reachable: {e}") from None
            n = int(status.split()[-1])
            removed[i] += n
            if n < chunk:
                break
    return removed[0], removed[1]


class _DryRun(Exception):
    pass


async def reconcile(store: Store, settings: EventSettings, source: str, live_ids, resource_type: str | None = None,
                    dry_run: bool = False) -> dict:  # fmt: skip
    """Given the ids of the resources of `source` that exist now, remove the records of every other
    one (and keep a tombstone for it). Returns {source, resource_type, resources, removed}."""
    rtype = resource_type or RESOURCE_TYPES.get(source)
    if rtype is None:
        raise Invalid(f"unknown source {source!r}: give resource_type too")
    if isinstance(live_ids, (str, bytes)) or not all(isinstance(i, str) for i in live_ids):
        raise Invalid("resource ids must be a list of strings")
    live = set(live_ids)
    result = {}
    try:
        async with store.pool.acquire(timeout=10) as conn:
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", EVENTS_LOCK)
                    known = {r[0] for r in await conn.fetch(
                        "SELECT resource_id FROM event_resources WHERE source = $1 AND resource_type = $2 AND state = 'live'",
                        source, rtype)}  # fmt: skip
                    made = {r[0] for r in await conn.fetch(
                        "SELECT DISTINCT managed_resource_id FROM rrsets WHERE managed AND managed_source = $1"
                        " AND managed_resource_type = $2", source, rtype)}  # fmt: skip
                    gone = sorted((known | made) - live)
                    log = ZoneLog(store, "event:reconcile")
                    run = Run(conn, store, settings, log, "reconcile", None, None)
                    for rid in gone:
                        row = await run.resource(source, rtype, rid)
                        data = dict(row["data"]) if row else {}
                        await run.put(source, rtype, rid, "deleted", row["tenant_id"] if row else None, data)
                        await run.sync(Ident(source, rtype, rid), [])
                        if (source, rtype) == ("cloudstack", "vm") and data.get("group"):
                            await _sync_group(run, data["account_id"], data["group"])
                        if (source, rtype) == ("nova", "instance"):
                            await _resync_fips(run, data.get("addresses", []))
                    for written in run.written:
                        log.keep(written, "event:reconcile")
                    await log.flush(conn)
                    result = {"source": source, "resource_type": rtype, "resources": gone,
                              "removed": run.changes, "dry_run": dry_run}  # fmt: skip
                    if dry_run:
                        raise _DryRun
            except _DryRun:
                pass
    except DB_DOWN as e:
        raise Unavailable(f"the database is not reachable: {e}") from None
    return result
