"""/v2/zones/{zone_id}/dnssec: a zone's DNSSEC signing as a sub-resource of the zone — its status
(keys without their private halves, the DS records for the parent, rollovers in progress),
enabling and disabling signing, starting a key rollover and confirming the parent's new DS
(services/dnssec.py, services/rollover.py).

The zone routes' rules apply: a member sees and changes its (acting) project's zones only —
another project's zone is 404, as one that does not exist; a reader may only read; an admin acts
for another project with X-Auth-Sudo-Project-ID or for all with X-Auth-All-Projects. Writes need
the DNSSEC master key, which the server reads at start ($MINIDNS_MASTER_KEY or
dnssec_master_key_file): without it they answer 503."""

from __future__ import annotations

import uuid

import dns.name
import dns.rdata
import dns.rdataclass
from aiohttp import web

from ..dnssec.keys import ALGORITHMS, SEP, ZONE_KEY, dnskey_rdata, ds_rdata
from ..services import dnssec, rollover
from ..services import zones
from ..wire import DNSKEY, DS
from .common import CONFIG, DATABASE, ApiError, base_url, ctx, json_response, read_json
from .designate import check_options, path_id
from .openapi import describe

routes = web.RouteTableDef()

_NAMES = {number: name for name, number in ALGORITHMS.items()}
_STAMP = {"type": ["string", "null"], "readOnly": True}
KEY_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "role": {"type": "string", "enum": ["csk", "ksk", "zsk"]},
        "algorithm": {"type": "string", "enum": list(ALGORITHMS)},
        "key_tag": {"type": "integer"},
        "flags": {"type": "integer"},
        "state": {"type": "string", "enum": ["published", "active", "retired"],
                  "description": "published: in the DNSKEY RRset (a KSK/CSK co-signs it), active: signing, "
                                 "retired: still published, signing nothing"},  # fmt: skip
        "dnskey": {"type": "string", "description": "DNSKEY RDATA, presentation form"},
        "ds": {"type": ["string", "null"], "description": "DS RDATA (SHA-256) of a KSK/CSK"},
        "created_at": _STAMP, "activated_at": _STAMP, "retired_at": _STAMP,
    },
}  # fmt: skip
ROLLOVER_SCHEMA = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "enum": ["zsk", "ksk"], "description": "ksk: the KSK, or the CSK of a CSK zone"},
        "role": {"type": "string", "enum": ["csk", "ksk", "zsk"]},
        "phase": {"type": "string", "enum": ["published", "retired"]},
        "old_key_tag": {"type": "integer"}, "new_key_tag": {"type": "integer"},
        "old_key_id": {"type": "string", "format": "uuid"}, "new_key_id": {"type": "string", "format": "uuid"},
        "started_at": {"type": "string"}, "phase_at": {"type": "string"},
        "next_step": {"type": "string"}, "next_step_due": {"type": "string"},
        "waiting_for_ds": {"type": "boolean", "description": "the rollover waits for POST .../dnssec/ds-seen"},
        "ds_seen_at": {"type": ["string", "null"]},
    },
}  # fmt: skip
STATUS_SCHEMA = {
    "type": "object",
    "properties": {
        "zone_id": {"type": "string", "format": "uuid"},
        "zone_name": {"type": "string"},
        "enabled": {"type": "boolean"},
        "nsec3_opt_out": {"type": "boolean"},
        "keys": {"type": "array", "items": KEY_SCHEMA},
        "ds": {"type": "array", "items": {"type": "string"}, "description": "DS records for the parent, zone-file lines"},
        "rollovers": {"type": "array", "items": ROLLOVER_SCHEMA},
        "links": {"type": "object"},
    },
}
ENABLE_BODY = {
    "type": "object",
    "properties": {
        "algorithm": {"type": "string", "enum": list(ALGORITHMS), "description": "default ecdsap256sha256"},
        "split": {"type": "boolean", "description": "a KSK and a ZSK instead of one combined key (CSK); default false"},
        "nsec3_opt_out": {"type": "boolean", "description": "NSEC3 opt-out (RFC 5155 §6) in the transferred zone; default false"},
    },
}
ROLLOVER_BODY = {"type": "object", "required": ["key"], "properties": {"key": ROLLOVER_SCHEMA["properties"]["key"]}}
EMPTY_BODY = {"type": "object", "properties": {}}


def _status_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": STATUS_SCHEMA}}}


async def _body(request: web.Request, fields: dict[str, type]) -> dict:
    """The request's JSON object (none at all: {}), with only `fields`, each of its type."""
    return check_options(await read_json(request) if request.body_exists else {}, fields)


def _text(rtype: int, rdata: bytes) -> str:
    return dns.rdata.from_wire(dns.rdataclass.IN, rtype, rdata, 0, len(rdata)).to_text()


async def _zone(request: web.Request, *, write: bool) -> uuid.UUID:
    """The zone's id, once the caller may see it (404 otherwise) and, for a write, change it (403)."""
    c = ctx(request)
    if write:
        c.need("member")
    zid = path_id(request, "zone_id")
    await zones.get_zone(request.app[DATABASE].pool, zid, c.project_filter())
    return zid


def _signing_store(request: web.Request):
    store = request.app[DATABASE].store
    if store.master is None:
        raise ApiError(503, "dnssec_unavailable", "this server has no usable DNSSEC master key ($MINIDNS_MASTER_KEY or "
                       "dnssec_master_key_file, read at start): zones cannot be signed through it")  # fmt: skip
    return store


async def _status(request: web.Request, zid: uuid.UUID) -> dict:
    pool = request.app[DATABASE].pool
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        z = await conn.fetchrow("SELECT id, name, dnssec, nsec3_optout FROM zones WHERE id = $1", zid)
        if z is None:
            raise ApiError(404, "zone_not_found", f"Could not find Zone {zid}")
        rows = await conn.fetch(  # never the private key
            "SELECT id, role, algorithm, key_tag, public_key, state, created_at, activated_at, retired_at"
            " FROM dnssec_keys WHERE zone_id = $1 ORDER BY created_at, role", zid,
        )  # fmt: skip
        rolls = await rollover.rollovers(conn, zid)
    origin = dns.name.from_text(z["name"])
    keys, ds = [], []
    for r in rows:
        flags = ZONE_KEY | (SEP if r["role"] in ("csk", "ksk") else 0)
        rdata = dnskey_rdata(flags, r["algorithm"], bytes(r["public_key"]))
        ds_text = _text(DS, ds_rdata(origin.to_wire().lower(), rdata)) if flags & SEP else None
        if ds_text and r["state"] != "retired":
            ds.append(f"{origin} IN DS {ds_text}")
        keys.append({
            "id": r["id"], "role": r["role"], "algorithm": _NAMES.get(r["algorithm"], str(r["algorithm"])),
            "key_tag": r["key_tag"], "flags": flags, "state": r["state"], "dnskey": _text(DNSKEY, rdata), "ds": ds_text,
            "created_at": r["created_at"], "activated_at": r["activated_at"], "retired_at": r["retired_at"],
        })  # fmt: skip
    return {"zone_id": zid, "zone_name": z["name"], "enabled": z["dnssec"], "nsec3_opt_out": z["nsec3_optout"], "keys": keys,
            "ds": ds, "rollovers": rolls,
            "links": {"self": f"{base_url(request)}/v2/zones/{zid}/dnssec", "zone": f"{base_url(request)}/v2/zones/{zid}"}}


@routes.get("/v2/zones/{zone_id}/dnssec")
@describe(responses={"200": _status_response("The zone's DNSSEC status")})
async def get_dnssec(request: web.Request) -> web.Response:
    """A zone's DNSSEC status.

    Whether it is signed; its keys (role, algorithm, key tag, state, DNSKEY and DS, dates — never a
    private key); the DS records the parent should hold; the key rollovers in progress, with their
    next step and when it is due."""
    zid = await _zone(request, write=False)
    return json_response(await _status(request, zid))


@routes.post("/v2/zones/{zone_id}/dnssec")
@describe(requestBody={"content": {"application/json": {"schema": ENABLE_BODY}}},
          responses={"201": _status_response("Signed: the new status"), "409": {"description": "Signed already"},
                     "503": {"description": "No DNSSEC master key on this server"}})  # fmt: skip
async def enable_dnssec(request: web.Request) -> web.Response:
    """Sign a zone (member).

    Body (optional): algorithm (ecdsap256sha256, ed25519, rsasha256), split (true: a KSK and a ZSK;
    default one combined key), nsec3_opt_out (default false). Makes the keys, publishes DNSKEY, CDS
    and CDNSKEY and signs the zone; give the parent the DS records of the reply."""
    body = await _body(request, {"algorithm": str, "split": bool, "nsec3_opt_out": bool})
    algorithm = body.get("algorithm", "ecdsap256sha256")
    if algorithm.lower() not in ALGORITHMS:
        raise ApiError(400, "invalid_object", f"Provided object does not match schema: algorithm must be one of {', '.join(ALGORITHMS)}")
    zid = await _zone(request, write=True)
    store = _signing_store(request)
    await dnssec.enable(store, zid, store.master, algorithm, bool(body.get("split", False)),
                        bool(body.get("nsec3_opt_out", False)))  # fmt: skip
    return json_response(await _status(request, zid), 201)


@routes.delete("/v2/zones/{zone_id}/dnssec")
@describe(responses={"204": {"description": "Unsigned"}, "404": {"description": "No such zone, or not signed"}})
async def disable_dnssec(request: web.Request) -> web.Response:
    """Stop signing a zone (member).

    Its keys are deleted and DNSKEY, CDS and CDNSKEY removed. Have the parent's DS removed (and its
    TTL passed) first, or validating resolvers will find the zone bogus."""
    zid = await _zone(request, write=True)
    await dnssec.disable(request.app[DATABASE].store, zid)
    return web.Response(status=204)


@routes.post("/v2/zones/{zone_id}/dnssec/rollover")
@describe(requestBody={"content": {"application/json": {"schema": ROLLOVER_BODY}}},
          responses={"202": _status_response("Started: the new key is published; the status"),
                     "409": {"description": "A rollover of that key is running already"}})  # fmt: skip
async def start_rollover(request: web.Request) -> web.Response:
    """Start a key rollover (member).

    Body: key, "zsk" (pre-publication: fully automatic, on a schedule the TTLs make) or "ksk" (the
    KSK, or a CSK zone's CSK: the new key co-signs the DNSKEY RRset and CDS/CDNSKEY name both keys;
    it finishes after POST .../dnssec/ds-seen). A CSK zone has no ZSK to roll: 400."""
    body = await _body(request, {"key": str})
    if body.get("key") not in rollover.KINDS:
        raise ApiError(400, "invalid_object", "Provided object does not match schema: key must be \"zsk\" or \"ksk\"")
    zid = await _zone(request, write=True)
    store = _signing_store(request)
    await rollover.start(store, zid, body["key"], margin=request.app[CONFIG].dnssec_rollover_margin)
    return json_response(await _status(request, zid), 202)


@routes.post("/v2/zones/{zone_id}/dnssec/ds-seen")
@describe(requestBody={"content": {"application/json": {"schema": EMPTY_BODY}}},
          responses={"200": _status_response("Noted (and the old key gone, when its time has come): the status"),
                     "400": {"description": "No KSK/CSK rollover waits for the parent's DS"}})  # fmt: skip
async def ds_seen(request: web.Request) -> web.Response:
    """Confirm the parent's new DS (member).

    The parent serves the DS of the new KSK/CSK and its TTL has passed: the rollover may finish —
    at once when the DNSKEY TTL (and margin) has passed since the new key was published, else when
    it has. Body: none, or {}."""
    await _body(request, {})
    zid = await _zone(request, write=True)
    store = _signing_store(request)
    await rollover.ds_seen(store, zid, margin=request.app[CONFIG].dnssec_rollover_margin)
    return json_response(await _status(request, zid))
