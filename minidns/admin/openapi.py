"""/openapi.json: an OpenAPI 3.1 document made from the routes the application really has, so it
cannot list a path that is not served or miss one that is. Each operation's summary and
description come from its handler's docstring; a handler may add request and response details
with the `describe` decorator."""

from __future__ import annotations

import inspect
import re

from aiohttp import web

from .common import json_response

routes = web.RouteTableDef()

PUBLIC_PATHS = {"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/v2", "/v2/"}


def describe(**spec):
    """Attach OpenAPI details (requestBody, responses, parameters…) to a handler."""

    def mark(handler):
        handler.openapi = spec
        return handler

    return mark


def document(app: web.Application) -> dict:
    paths: dict[str, dict] = {}
    op_ids: set[str] = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or route.method == "HEAD":
            continue
        handler = route.handler
        doc = inspect.getdoc(handler) or ""
        summary, _, rest = doc.partition("\n")
        op_id = f"{handler.__module__.rsplit('.', 1)[-1]}_{handler.__name__}"
        if op_id in op_ids:  # one handler on several paths (/v2 and /v2/): operationIds stay unique
            op_id += "_" + (re.sub(r"\W+", "_", path).strip("_") or "root") + ("_slash" if path.endswith("/") else "")
        op_ids.add(op_id)
        op = {"summary": summary.strip() or route.method + " " + path, "operationId": op_id}
        if rest.strip():
            op["description"] = rest.strip()
        extra = dict(getattr(handler, "openapi", {}))
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in re.findall(r"{(\w+)}", path)]
        params += extra.pop("parameters", [])  # a handler's own (query) parameters come after the path's
        if params:
            op["parameters"] = params
        op["responses"] = {"default": {"description": "Errors: {code, type, message, request_id}"}}
        op.update(extra)
        if path not in PUBLIC_PATHS:
            op.setdefault("security", [{"token": []}])
        paths.setdefault(path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "minidns API", "version": "2", "description": "Designate v2 compatible admin API and event ingest."},
        "components": {"securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
        "paths": dict(sorted(paths.items())),
    }


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return json_response(document(request.app))
