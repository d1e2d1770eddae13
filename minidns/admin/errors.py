"""Where exceptions become HTTP responses, for every route: Designate's JSON error body {code,
type, message, request_id}. A domain error carries its own `status` and `type` (and may carry
`reply`, Designate's wording of its message, and `retry_after`, seconds); a database that is away
or full answers 503 (RFC 9110 §15.6.4); anything else is a bug: 500, logged with the request id."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from aiohttp import web

from ..store.db import DB_DOWN, DB_FULL, LOST_MIDWAY
from .common import METRICS, ApiError, json_response

log = logging.getLogger("minidns.api")

# Paths anyone may read: liveness, readiness, metrics, the API description and version discovery.
PUBLIC = {"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v2", "/v2/"}
BUSY = web.AppKey("busy", list)  # [requests being worked on, the most at once] (api_max_requests)
HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
INTERNAL = (500, "internal_error", "internal error; see the log", None)


@web.middleware
async def request_id_and_errors(request: web.Request, handler):
    """Give each request an id (returned in X-Openstack-Request-Id and in error bodies, logged),
    and turn every error into Designate's JSON shape."""
    rid = f"req-{uuid.uuid4()}"
    request["request_id"] = rid
    started = time.monotonic()
    try:
        response = await _bounded(request, handler)
    except asyncio.CancelledError:  # the client is gone (or the server stopping): nobody to answer
        raise
    except web.HTTPException as e:
        if e.status < 400:
            raise
        response = error_response(request, e)
    except Exception as e:  # noqa: BLE001 - every error answers in Designate's shape
        response = error_response(request, e)
    response.headers["X-Openstack-Request-Id"] = rid
    _account(request, response, time.monotonic() - started)
    return response


async def _bounded(request: web.Request, handler) -> web.StreamResponse:
    """Requests worked on at once are bounded (api_max_requests), and with them the memory their
    bodies and results hold; the monitoring routes always answer."""
    busy = request.app[BUSY]
    if busy[0] >= busy[1] and request.path not in PUBLIC:
        raise ApiError(503, "service_unavailable", f"{busy[0]} requests are being worked on; try again shortly",
                       {"Retry-After": "1"})  # fmt: skip
    busy[0] += 1
    try:
        return await handler(request)
    finally:
        busy[0] -= 1


def _account(request: web.Request, response: web.StreamResponse, took: float) -> None:
    log.info("%s %s %s -> %d in %.1f ms", request["request_id"], request.method, request.path_qs, response.status,
             took * 1000)  # fmt: skip
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.api_request(request.method, response.status, took)


def error_response(request: web.Request, e: Exception) -> web.Response:
    """Designate's error body for `e`, with the request's id."""
    status, kind, message, headers = answer(request, e)
    return json_response({"code": status, "type": kind, "message": message, "request_id": request["request_id"]},
                         status, headers)  # fmt: skip


def answer(request: web.Request, e: Exception) -> tuple[int, str, str, dict | None]:
    """(status, type, message, headers) of the answer to `e`."""
    if isinstance(e, web.HTTPException):  # aiohttp's own: no such route, method, too large
        return e.status, HTTP_TYPES.get(e.status, "error"), e.reason, None
    carried = domain_reply(e)
    if carried is not None:
        return carried
    if isinstance(e, DB_DOWN):
        return _database_away(request, e)
    if isinstance(e, DB_FULL):
        log.warning("%s %s %s: the database cannot take this now: %s", request["request_id"], request.method, request.path, e)
        return 503, "service_unavailable", f"the database cannot take this now: {e}", {"Retry-After": "30"}
    log.error("%s %s %s failed", request["request_id"], request.method, request.path, exc_info=e)
    return INTERNAL


def domain_reply(e: Exception) -> tuple[int, str, str, dict] | None:
    """What a domain error (or an ApiError) carries: its status, Designate type, message (its
    `reply` wording, else its own) and headers (Retry-After from `retry_after`); None for an
    exception that names no status and type."""
    if not (isinstance(getattr(e, "status", None), int) and isinstance(getattr(e, "type", None), str)):
        return None
    return e.status, e.type, getattr(e, "reply", "{0}").format(e), _headers(e)


def _headers(e: Exception) -> dict:
    headers = dict(getattr(e, "headers", None) or {})
    if getattr(e, "retry_after", None) is not None:
        headers["Retry-After"] = str(e.retry_after)
    return headers


def _database_away(request: web.Request, e: Exception) -> tuple[int, str, str, dict]:
    """PostgreSQL is away (or too busy to answer): nothing was done; try again. Lost at the
    COMMIT, a write may be in: the client should read before sending it again."""
    why = "did not answer in time (busy, or away)" if isinstance(e, asyncio.TimeoutError) else "is not reachable"
    detail = f": {e}" if str(e) else ""
    log.warning("%s %s %s: the database %s%s", request["request_id"], request.method, request.path, why, detail)
    message = f"the database {why}{detail}"
    if isinstance(e, LOST_MIDWAY) and request.method != "GET":
        message += "; the connection was lost during the request, so a write may have been committed: read before sending it again"
    return 503, "service_unavailable", message, {"Retry-After": "5"}
