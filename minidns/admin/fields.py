"""Designate's object checks for the small admin resources (TSIG keys, TLDs, blacklists, quotas,
floating IPs): a body is an object with only known, writable fields of the right types (else 400
invalid_object, as DesignateAdapter.parse and validate answer), ids in paths are UUIDs (else 400
invalid_uuid, as utils.validate_uuid), and store errors become Designate's replies."""

from __future__ import annotations

import contextlib
import uuid

from aiohttp import web

from ..services.policy import PolicyError
from ..store.records import Invalid
from ..store.writer import Conflict, NotFound
from .common import ApiError, base_url

MAX_STRING = 255


def path_uuid(request: web.Request, name: str) -> uuid.UUID:
    value = request.match_info[name]
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(400, "invalid_uuid", f"Invalid UUID {name}: {value}") from None


def check_body(body: dict, fields: dict[str, tuple], *, required: tuple = (), read_only: tuple = ()) -> dict:
    """The body's fields, checked: `fields` maps each writable name to its accepted types
    (None in the tuple allows null) and optional max length for strings."""
    for key in body:
        if key in read_only:
            raise ApiError(400, "invalid_object", f"Provided object does not match schema: {key} is read-only")
        if key not in fields:
            raise ApiError(400, "invalid_object", f"Provided object does not match schema: unknown field {key!r}")
    missing = [k for k in required if k not in body]
    if missing:
        raise ApiError(400, "invalid_object", f"Provided object does not match schema: {', '.join(missing)} required")
    out = {}
    for key, value in body.items():
        types, maxlen = fields[key][0], (fields[key][1] if len(fields[key]) > 1 else MAX_STRING)
        if value is None:
            if None not in types:
                raise ApiError(400, "invalid_object", f"Provided object does not match schema: {key} may not be null")
        elif isinstance(value, bool) or not isinstance(value, tuple(t for t in types if t is not None)):
            names = "/".join("null" if t is None else {str: "string", int: "integer"}.get(t, t.__name__) for t in types)
            raise ApiError(400, "invalid_object", f"Provided object does not match schema: {key} must be {names}")
        elif isinstance(value, str) and len(value) > maxlen:
            raise ApiError(400, "invalid_object",
                           f"Provided object does not match schema: {key} is longer than {maxlen} characters")  # fmt: skip
        out[key] = value
    return out


@contextlib.contextmanager
def store_errors(what: str):
    """Store exceptions as Designate answers them for resource `what` (tsigkey, tld, blacklist…)."""
    try:
        yield
    except PolicyError as e:
        raise ApiError(e.status, e.type, str(e)) from None
    except Invalid as e:
        raise ApiError(400, "invalid_object", str(e)) from None
    except NotFound as e:
        raise ApiError(404, f"{what}_not_found", str(e)) from None
    except Conflict as e:
        raise ApiError(409, f"duplicate_{what}", str(e)) from None


def self_link(request: web.Request, path: str) -> dict:
    return {"self": f"{base_url(request)}{path}"}


def collection(request: web.Request, name: str, items: list[dict], limit: int | None = None,
               total: int | None = None) -> dict:  # fmt: skip
    """Designate's list shape: {name: [...], links: {self, next?}, metadata: {total_count}};
    `total` is how many match in all pages (without paging: the items)."""
    links = {"self": str(request.url)}
    if limit is not None and len(items) == limit and items:
        links["next"] = str(request.url.update_query(marker=str(items[-1]["id"]), limit=str(limit)))
    return {name: items, "links": links, "metadata": {"total_count": len(items) if total is None else total}}
