"""What every API module shares: the typed application keys, the request's auth context, errors
shaped like Designate's, JSON with orjson, and Designate's limit/marker paging."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

# Typed application keys (aiohttp AppKey): what the handlers reach through request.app[...].
DATABASE = web.AppKey("database", object)  # store.database.Database: .pool, .store
SERVER = web.AppKey("server", object)  # server.app.Server: .state, .engine, .notifier
CONFIG = web.AppKey("config", object)  # server.config.Config
METRICS = web.AppKey("metrics", object)  # admin.metrics.Metrics
EVENTS = web.AppKey("event_batcher", object)  # admin.events.EventBatcher (group commit of events)
TOKEN_CACHE = web.AppKey("token_cache", dict)  # token → ((project, role) or None, when looked up)
WRITER = web.AppKey("recordset_writer", object)  # store.recordsets.RecordsetWriter (group commit per zone)

ROLE_RANK = {"reader": 1, "member": 2, "admin": 3}


@dataclass
class Ctx:
    """Who is asking: the token's project and role, and the project the request acts for (an admin
    may pick another with X-Auth-Sudo-Project-ID, or all with X-Auth-All-Projects)."""

    project_id: str
    role: str
    all_projects: bool = False
    acting_project: str = ""

    def need(self, role: str) -> None:
        """Refuse (403) a role below `role`; ingest tokens may only post events."""
        if ROLE_RANK.get(self.role, 0) < ROLE_RANK[role]:
            raise ApiError(403, "forbidden", f"this needs the {role} role; the token has {self.role}")

    def project_filter(self) -> str | None:
        """The project whose objects the request sees, or None for all (admin with all-projects)."""
        return None if self.all_projects else self.acting_project


class ApiError(Exception):
    """An error reply: HTTP `status` and a JSON body {code, type, message, request_id} as Designate
    sends it."""

    def __init__(self, status: int, type_: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers or {}


def _default(obj: Any):
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, datetime.datetime):
        return obj.astimezone(datetime.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")
    raise TypeError(f"{type(obj).__name__} is not JSON")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default)


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=dumps(obj), status=status, content_type="application/json", headers=headers)


async def read_body(request: web.Request, limit: int, what: str = "the body") -> bytes:
    """The request's whole body, however it arrives: in many TCP segments, slowly, or chunked
    (RFC 9112 §7.1). Reads until the end of the body, never only what is buffered. 413 past
    `limit` octets: at once when Content-Length says so (the body is not read), or as soon as a
    chunked body grows past it. 400 when the body stops short (the client closed before the end
    of its Content-Length, or a bad chunk)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(what, limit)
    body = bytearray()
    try:
        while chunk := await request.content.readany():
            body += chunk
            if len(body) > limit:
                raise _too_large(what, limit)
    except (ConnectionError, HttpProcessingError) as e:
        raise ApiError(400, "bad_request", f"{what} was cut off after {len(body)} octets: {e}") from None
    return bytes(body)


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(413, "request_too_large", f"{what} is larger than {limit} octets")


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body (empty: null); 400 when it is not JSON."""
    try:
        return orjson.loads(raw or b"null")
    except orjson.JSONDecodeError as e:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {e}") from None


async def read_json(request: web.Request, limit: int = 1 << 20) -> dict:
    """The request's JSON object body, read whole (read_body); 400 for anything else, 413 when
    larger than `limit` octets."""
    body = parse_json(await read_body(request, limit))
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_object", "the body must be a JSON object")
    return body


def ctx(request: web.Request) -> Ctx:
    return request["ctx"]


def parse_uuid(value: str, what: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        raise ApiError(404, f"{what}_not_found", f"could not find {what.replace('_', ' ')} {value!r}") from None


def paging(request: web.Request, default: int = 20, maximum: int = 1000) -> tuple[int, uuid.UUID | None]:
    """Designate's paging: ?limit=N&marker=<id of the last item seen>."""
    try:
        limit = int(request.query.get("limit", default))
    except ValueError:
        raise ApiError(400, "invalid_limit", "limit must be a whole number") from None
    if not 1 <= limit <= maximum:
        raise ApiError(400, "invalid_limit", f"limit must be between 1 and {maximum}")
    marker = request.query.get("marker")
    if marker is None:
        return limit, None
    try:
        return limit, uuid.UUID(marker)
    except ValueError:
        raise ApiError(400, "invalid_marker", f"marker {marker!r} is not an id") from None


def page_links(request: web.Request, items: list[dict], limit: int) -> dict:
    """links.self, and links.next when the page is full (the marker is its last item)."""
    links = {"self": str(request.url)}
    if len(items) == limit and items:
        links["next"] = str(request.url.update_query(marker=str(items[-1]["id"]), limit=str(limit)))
    return links


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"
