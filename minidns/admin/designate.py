"""What the Designate v2 zone, recordset and task resources share: ids in paths (400 invalid_uuid
as utils.validate_uuid), list parameters (filters with `*`, limit incl. "max", marker, sort_key,
sort_dir) and the list shape {<name>: [...], links: {self, next}, metadata: {total_count}},
bodies checked as DesignateAdapter.parse checks them, store errors as Designate's replies, and the
JSON of each object."""

from __future__ import annotations

import contextlib
import uuid

import dns.rdatatype
from aiohttp import web

from ..store.records import Invalid
from ..services.recordsets import (
    POOL_ID,
    BadPlacement,
    DuplicateRecordSet,
    Forbidden,
    MarkerNotFound,
    Query,
    RecordSetNotFound,
    Refused,
    ZoneNotFound,
)
from ..services import shares, transfers
from ..services.tasks import TaskNotFound
from ..store.writer import Conflict, NotFound, Unsignable
from .common import ApiError, Ctx, base_url

try:
    from ..services.policy import PolicyError
except ImportError:  # pragma: no cover

    class PolicyError(Exception):
        status, type = 400, "bad_request"


DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
PAGING = ("limit", "marker", "sort_key", "sort_dir")


def path_id(request: web.Request, name: str) -> uuid.UUID:
    value = request.match_info[name]
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(400, "invalid_uuid", f"Invalid UUID {name}: {value}") from None


def list_query(request: web.Request, filters: tuple[str, ...]) -> Query:
    """Designate's utils.get_paging_params and _apply_filter_params; unknown parameters are
    ignored, as Designate ignores them."""
    q = Query()
    raw = request.query.get("limit")
    if raw is not None:
        if raw.lower() == "max":
            q.limit = MAX_LIMIT
        else:
            try:
                q.limit = int(raw)
            except ValueError:
                raise ApiError(400, "invalid_limit", "'limit' should be an integer or 'max'") from None
            if not 1 <= q.limit <= MAX_LIMIT:
                raise ApiError(400, "invalid_limit", f"'limit' must be between 1 and {MAX_LIMIT}")
    marker = request.query.get("marker")
    if marker is not None and marker != "None":
        try:
            q.marker = uuid.UUID(marker)
        except ValueError:
            raise ApiError(400, "invalid_marker", f"Invalid marker {marker!r}: not a UUID") from None
    q.sort_key = request.query.get("sort_key", "created_at")
    q.sort_dir = request.query.get("sort_dir", "asc").lower()
    q.filters = {k: request.query[k] for k in filters if k in request.query}
    return q


def list_body(request: web.Request, key: str, items: list[dict], total: int, more: bool, limit: int) -> dict:
    links = {"self": str(request.url)}
    if more and items:
        links["next"] = str(request.url.update_query(marker=str(items[-1]["id"]), limit=str(limit)))
    return {key: items, "links": links, "metadata": {"total_count": total}}


def check_body(body: dict, writable: dict[str, tuple], *, read_only: tuple = (), immutable: dict | None = None) -> dict:
    """The body's fields, as DesignateAdapter.parse and validate check them: known fields only,
    not read-only, immutable ones unchanged, each of an accepted type (None in the tuple: null
    allowed; a trailing int: the longest string)."""
    immutable = immutable or {}
    out = {}
    for key, value in body.items():
        if key in immutable:
            if value != immutable[key] and str(value).lower() != str(immutable[key]).lower():
                raise ApiError(400, "invalid_object", f"Provided object does not match schema: {key} is immutable")
            continue
        if key in read_only or key == "links":
            raise ApiError(400, "invalid_object", f"Provided object does not match schema: {key} is read-only")
        if key not in writable:
            raise ApiError(400, "invalid_object", f"Provided object does not match schema: '{key}' is not a valid field")
        spec = writable[key]
        maxlen = spec[-1] if spec and isinstance(spec[-1], int) and not isinstance(spec[-1], bool) else None
        types = tuple(t for t in spec if t is None or isinstance(t, type))
        if value is None:
            if None not in types:
                raise ApiError(400, "invalid_object", f"Provided object does not match schema: {key} may not be null")
        elif isinstance(value, bool) or not isinstance(value, tuple(t for t in types if t is not None)):
            names = "/".join("null" if t is None else {str: "string", int: "integer", list: "array",
                                                       dict: "object"}.get(t, t.__name__) for t in types)  # fmt: skip
            raise ApiError(400, "invalid_object", f"Provided object does not match schema: {key} must be {names}")
        elif isinstance(value, str) and maxlen is not None and len(value) > maxlen:
            raise ApiError(400, "invalid_object",
                           f"Provided object does not match schema: {key} is longer than {maxlen} characters")  # fmt: skip
        out[key] = value
    return out


def edit_managed(request: web.Request, c: Ctx) -> bool:
    """X-Designate-Edit-Managed-Records: true lets an admin edit records made by events."""
    if request.headers.get("X-Designate-Edit-Managed-Records", "").lower() not in ("true", "1", "yes"):
        return False
    if c.role != "admin":
        raise ApiError(403, "forbidden", "only an admin may edit managed records")
    return True


@contextlib.contextmanager
def store_errors(task: str = "zone_import"):
    """Store exceptions as Designate answers them."""
    try:
        yield
    except (*shares.ERRORS, *transfers.ERRORS) as e:  # each names its own status and type
        raise ApiError(e.status, e.type, str(e)) from None
    except Unsignable as e:  # the server lacks the DNSSEC master key: nothing written, try later
        raise ApiError(503, "service_unavailable", str(e), {"Retry-After": "60"}) from None
    except ZoneNotFound as e:
        raise ApiError(404, "zone_not_found", str(e)) from None
    except RecordSetNotFound as e:
        raise ApiError(404, "recordset_not_found", str(e)) from None
    except TaskNotFound as e:
        raise ApiError(404, f"{task}_not_found", str(e)) from None
    except NotFound as e:
        raise ApiError(404, "not_found", str(e)) from None
    except DuplicateRecordSet as e:
        raise ApiError(409, "duplicate_recordset", str(e)) from None
    except Conflict as e:
        raise ApiError(409, "duplicate_zone", f"Duplicate Zone: {e}") from None
    except Forbidden as e:
        raise ApiError(403, "forbidden", str(e)) from None
    except PolicyError as e:
        raise ApiError(e.status, e.type, str(e)) from None
    except BadPlacement as e:
        raise ApiError(400, "invalid_recordset_location", str(e)) from None
    except Refused as e:
        raise ApiError(400, "bad_request", str(e)) from None
    except MarkerNotFound as e:
        raise ApiError(400, "invalid_marker", str(e)) from None
    except Invalid as e:
        raise ApiError(400, "invalid_object", str(e)) from None


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
    url = base_url(request)
    out = {
        "id": t["id"], "status": t["status"], "message": t["message"], "zone_id": t["zone_id"],
        "project_id": t["project_id"], "created_at": t["created_at"], "updated_at": t["updated_at"],
        "version": t["version"],
    }  # fmt: skip
    if t["kind"] == "EXPORT":
        out["location"] = t["location"]
        out["links"] = {"self": f"{url}/v2/zones/tasks/exports/{t['id']}"}
        if t["location"] and t["location"].startswith("designate://"):
            out["links"]["export"] = f"{url}/{t['location'].split('://', 1)[1]}"
    else:
        out["links"] = {"self": f"{url}/v2/zones/tasks/imports/{t['id']}"}
        if t["zone_id"] is not None:
            out["links"]["zone"] = f"{url}/v2/zones/{t['zone_id']}"
    return out
