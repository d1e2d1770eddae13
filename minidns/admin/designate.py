"""What the Designate v2 resources share: ids in paths (400 invalid_uuid, as utils.validate_uuid),
list parameters (filters with `*`, limit incl. "max", marker, sort_key, sort_dir), the list shape
{<name>: [...], links: {self, next}, metadata: {total_count}}, bodies checked as
DesignateAdapter.parse and validate check them (400 invalid_object), and the JSON of zones,
recordsets and tasks."""

from __future__ import annotations

import uuid

import dns.rdatatype
from aiohttp import web

from ..services.listing import Query
from ..services.zones import POOL_ID
from .common import ApiError, Ctx, base_url

MAX_LIMIT = 1000
MAX_STRING = 255  # the longest string field of the small resources, unless their table says
SCHEMA = "Provided object does not match schema: "
TYPE_NAMES = {str: "string", int: "integer", list: "array", dict: "object", bool: "boolean"}


def path_id(request: web.Request, name: str) -> uuid.UUID:
    """The UUID in the path parameter `name`."""
    value = request.match_info[name]
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(400, "invalid_uuid", f"Invalid UUID {name}: {value}") from None


# -- lists ----------------------------------------------------------------------------------------


def list_query(request: web.Request, filters: tuple[str, ...]) -> Query:
    """Designate's utils.get_paging_params and _apply_filter_params; unknown parameters are
    ignored, as Designate ignores them."""
    q = Query()
    raw = request.query.get("limit")
    if raw is not None:
        q.limit = _limit(raw)
    q.marker = _marker(request.query.get("marker"))
    q.sort_key = request.query.get("sort_key", "created_at")
    q.sort_dir = request.query.get("sort_dir", "asc").lower()
    q.filters = {k: request.query[k] for k in filters if k in request.query}
    return q


def _limit(raw: str) -> int:
    if raw.lower() == "max":
        return MAX_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_limit", "'limit' should be an integer or 'max'") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"'limit' must be between 1 and {MAX_LIMIT}")
    return limit


def _marker(marker: str | None) -> uuid.UUID | None:
    if marker is None or marker == "None":
        return None
    try:
        return uuid.UUID(marker)
    except ValueError:
        raise ApiError(400, "invalid_marker", f"Invalid marker {marker!r}: not a UUID") from None


def list_body(request: web.Request, key: str, items: list[dict], total: int, more: bool, limit: int) -> dict:
    links = {"self": str(request.url)}
    if more and items:
        links["next"] = str(request.url.update_query(marker=str(items[-1]["id"]), limit=str(limit)))
    return {key: items, "links": links, "metadata": {"total_count": total}}


def collection(request: web.Request, name: str, items: list[dict], limit: int | None = None,
               total: int | None = None) -> dict:  # fmt: skip
    """Designate's list shape for the small resources: `total` is how many match in all pages
    (without paging: the items); links.next when a page of `limit` is full."""
    more = limit is not None and len(items) == limit
    return list_body(request, name, items, len(items) if total is None else total, more, limit or 0)


def self_link(request: web.Request, path: str) -> dict:
    return {"self": f"{base_url(request)}{path}"}


# -- bodies ---------------------------------------------------------------------------------------


def check_body(body: dict, writable: dict[str, tuple], *, read_only: tuple = (), immutable: dict | None = None) -> dict:
    """A zone's or recordset's fields, as DesignateAdapter.parse and validate check them: known
    fields only, not read-only, immutable ones unchanged, each of an accepted type (None in the
    tuple: null allowed; a trailing int: the longest string)."""
    immutable = immutable or {}
    out = {}
    for key, value in body.items():
        if key in immutable:
            _check_unchanged(key, value, immutable[key])
            continue
        if key in read_only or key == "links":
            raise ApiError(400, "invalid_object", f"{SCHEMA}{key} is read-only")
        if key not in writable:
            raise ApiError(400, "invalid_object", f"{SCHEMA}'{key}' is not a valid field")
        spec = writable[key]
        maxlen = spec[-1] if spec and isinstance(spec[-1], int) and not isinstance(spec[-1], bool) else None
        out[key] = check_value(key, value, tuple(t for t in spec if t is None or isinstance(t, type)), maxlen)
    return out


def _check_unchanged(key: str, value, current) -> None:
    if value != current and str(value).lower() != str(current).lower():
        raise ApiError(400, "invalid_object", f"{SCHEMA}{key} is immutable")


def check_fields(body: dict, fields: dict[str, tuple], *, required: tuple = (), read_only: tuple = ()) -> dict:
    """A small resource's fields (TSIG keys, TLDs, blacklists, floating IPs), checked: `fields`
    maps each writable name to its accepted types (None in the tuple allows null) and optional
    max length for strings (else MAX_STRING)."""
    for key in body:
        if key in read_only:
            raise ApiError(400, "invalid_object", f"{SCHEMA}{key} is read-only")
        if key not in fields:
            raise ApiError(400, "invalid_object", f"{SCHEMA}unknown field {key!r}")
    missing = [k for k in required if k not in body]
    if missing:
        raise ApiError(400, "invalid_object", f"{SCHEMA}{', '.join(missing)} required")
    return {k: check_value(k, v, fields[k][0], fields[k][1] if len(fields[k]) > 1 else MAX_STRING) for k, v in body.items()}


def check_value(key: str, value, types: tuple, maxlen: int | None):
    """`value` when it is of one of `types` (None among them: null allowed; a bool is no
    integer) and, for a string, at most `maxlen` characters long."""
    if value is None:
        if None not in types:
            raise ApiError(400, "invalid_object", f"{SCHEMA}{key} may not be null")
    elif isinstance(value, bool) or not isinstance(value, tuple(t for t in types if t is not None)):
        names = "/".join("null" if t is None else TYPE_NAMES.get(t, t.__name__) for t in types)
        raise ApiError(400, "invalid_object", f"{SCHEMA}{key} must be {names}")
    elif isinstance(value, str) and maxlen is not None and len(value) > maxlen:
        raise ApiError(400, "invalid_object", f"{SCHEMA}{key} is longer than {maxlen} characters")
    return value


def check_options(body: dict, fields: dict[str, type]) -> dict:
    """A body of options (a zone's DNSSEC settings): only `fields`, each of its type (a bool is
    no other type, no other type a bool)."""
    for key, value in body.items():
        if key not in fields:
            raise ApiError(400, "invalid_object", f"{SCHEMA}'{key[:100]}' is not a valid field")
        want = fields[key]
        if (want is bool) != isinstance(value, bool) or not isinstance(value, want):
            raise ApiError(400, "invalid_object", f"{SCHEMA}{key} must be a {TYPE_NAMES[want]}")
    return body


def edit_managed(request: web.Request, c: Ctx) -> bool:
    """X-Designate-Edit-Managed-Records: true lets an admin edit records made by events."""
    if request.headers.get("X-Designate-Edit-Managed-Records", "").lower() not in ("true", "1", "yes"):
        return False
    if c.role != "admin":
        raise ApiError(403, "forbidden", "only an admin may edit managed records")
    return True


# -- objects --------------------------------------------------------------------------------------


def zone_json(request: web.Request, z: dict) -> dict:
    attrs = z.get("attributes") or {}
    return {
        "id": z["id"], "pool_id": z.get("pool_id") or POOL_ID, "project_id": z["project_id"], "name": z["name"], "email": z["email"],
        "ttl": z["ttl"], "serial": z["serial"], "status": z["status"], "action": z["action"],
        "description": z["description"], "masters": [], "type": z["type"], "transferred_at": None,
        "version": z.get("version", 1), "created_at": z["created_at"], "updated_at": z["updated_at"],
        "attributes": {k: v for k, v in attrs.items() if isinstance(v, str)}, "shared": bool(z.get("shared")),
        "links": {"self": f"{base_url(request)}/v2/zones/{z['id']}"},
    }  # fmt: skip


def rrset_json(request: web.Request, r: dict) -> dict:
    return {
        "id": r["id"], "zone_id": r["zone_id"], "project_id": r["project_id"], "name": r["name"],
        "zone_name": r["zone_name"], "type": dns.rdatatype.to_text(r["type"]), "records": list(r["records"]),
        "ttl": None if r["ttl_default"] else r["ttl"], "status": r["status"], "action": r["action"],
        "description": r["description"], "version": r["version"], "created_at": r["created_at"],
        "updated_at": r["updated_at"],
        "links": {"self": f"{base_url(request)}/v2/zones/{r['zone_id']}/recordsets/{r['id']}"},
    }  # fmt: skip


def task_json(request: web.Request, t: dict) -> dict:
    out = {
        "id": t["id"], "status": t["status"], "message": t["message"], "zone_id": t["zone_id"],
        "project_id": t["project_id"], "created_at": t["created_at"], "updated_at": t["updated_at"],
        "version": t["version"],
    }  # fmt: skip
    if t["kind"] == "EXPORT":
        out["location"] = t["location"]
        out["links"] = _export_links(request, t)
    else:
        out["links"] = _import_links(request, t)
    return out


def _export_links(request: web.Request, t: dict) -> dict:
    links = {"self": f"{base_url(request)}/v2/zones/tasks/exports/{t['id']}"}
    if t["location"] and t["location"].startswith("designate://"):
        links["export"] = f"{base_url(request)}/{t['location'].split('://', 1)[1]}"
    return links


def _import_links(request: web.Request, t: dict) -> dict:
    links = {"self": f"{base_url(request)}/v2/zones/tasks/imports/{t['id']}"}
    if t["zone_id"] is not None:
        links["zone"] = f"{base_url(request)}/v2/zones/{t['zone_id']}"
    return links
