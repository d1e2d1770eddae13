"""/openapi.json describes exactly the routes the application has, and a fuzz pass over every
documented operation: malformed bodies, ids and parameters get a Designate-shaped 4xx (never a
500) and write nothing. Operations added later (zones, recordsets…) are covered as they appear."""

from __future__ import annotations

import re
import uuid
from types import SimpleNamespace

import pytest
from conftest import ADMIN
from policyutil import counts

from minidns.admin.app import make_app
from minidns.server.config import Config

WRITE = ("post", "put", "patch")
ERROR_KEYS = {"code", "type", "message", "request_id"}


def app_routes() -> set[tuple[str, str]]:
    """The routes of the application object itself, built in-process (nothing is started: the
    database and server are stand-ins with the attributes make_app reads)."""
    database = SimpleNamespace(pool=None, store=None, url="", embedded=None)
    server = SimpleNamespace(engine=None, state="loading", notifier=None, database=database)
    app = make_app(database, server, Config())
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD":
            out.add((path, route.method.lower()))
    return out


def documented(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in doc["paths"].items() for method in ops}


def test_document_lists_exactly_the_routes(api):
    doc = api.get("/openapi.json", token=None).json()
    assert doc["openapi"].startswith("3.")
    assert documented(doc) == app_routes()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["operationId"], (method, path)
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == set(re.findall(r"{(\w+)}", path))
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def fill(path: str, value: str) -> str:
    return re.sub(r"{\w+}", value, path)


def test_every_documented_operation_is_routed(api):
    doc = api.get("/openapi.json", token=None).json()
    for path, ops in doc["paths"].items():
        for method in ops:
            r = api.request(method.upper(), fill(path, str(uuid.uuid4())), token=ADMIN, json={} if method in WRITE else None)
            assert r.status_code != 405, (method, path, r.text)
            if r.status_code == 404:  # a resource's own 404, not the router's
                assert r.json()["message"] != "Not Found", (method, path)


def wrong_values(schema: dict) -> list:
    t = schema.get("type")
    types = set(t) if isinstance(t, list) else {t}
    out = [{"nested": ["x"]}, "z" * 100_000]
    if "string" not in types:
        out.append("text")
    if "integer" not in types:
        out.append(12345)
    if "null" not in types:
        out.append(None)
    return out


def bodies(op: dict) -> list:
    """Malformed bodies: not JSON, not an object, unknown fields, and each property of the
    operation's schema given a wrong type or a huge string."""
    out = [b"{not json", b"[1, 2]", b"\"text\"", b"\xff\xfe", b"{\"a\": " * 50, {"unknown-field": 1}]
    schema = (op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema") or {})
    for name, prop in schema.get("properties", {}).items():
        if prop.get("readOnly"):
            out.append({name: "x"})
            continue
        out += [{name: v} for v in wrong_values(prop)]
    return out


IDS = [str(uuid.uuid4()), "nope", "a" * 2000, "RegionOne:" + str(uuid.uuid4()), "-1", "%2e%2e"]
QUERIES = ["limit=abc", "limit=-5", "limit=100000000", "marker=zzz", f"marker={uuid.uuid4()}", "name=" + "n" * 5000]


def check_reply(r, what, path="", op=None):
    """A 4xx in Designate's shape; 501 only from an operation that documents it (a feature minidns
    does not have: admin/unsupported.py)."""
    allowed = {501} if op is not None and "501" in op.get("responses", {}) else set()
    assert r.status_code < 500 or r.status_code in allowed, (what, r.status_code, r.text[:500])
    if path.startswith("/v1/"):  # event ingest answers a batch with a result per event, not Designate's shape
        return
    if r.status_code >= 400:
        assert r.headers["Content-Type"].startswith("application/json"), what
        body = r.json()
        assert set(body) == ERROR_KEYS and body["code"] == r.status_code, (what, body)
        assert body["request_id"] == r.headers["X-Openstack-Request-Id"], what


def test_fuzz_from_the_document(api):
    doc = api.get("/openapi.json", token=None).json()
    before = counts(api)
    sent = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = re.findall(r"{\w+}", path)
            targets = [fill(path, i) for i in IDS] if params else [path]
            if method in WRITE:
                for target in targets[:2] if params else targets:
                    for body in bodies(op):
                        data = body if isinstance(body, bytes) else None
                        js = None if isinstance(body, bytes) else body
                        r = api.request(method.upper(), target, token=ADMIN, data=data, json=js,
                                        headers={"Content-Type": "application/json"})  # fmt: skip
                        check_reply(r, (method, target, str(body)[:80]), path, op)
                        assert path.startswith("/v1/") or r.status_code >= 400, (method, target, str(body)[:80], r.status_code, r.text[:300])
                        sent += 1
                if not params:
                    r = api.request(method.upper(), path, token=ADMIN, data=b"{" + b" " * (2 << 20) + b"}",
                                    headers={"Content-Type": "application/json"})  # fmt: skip
                    check_reply(r, (method, path, "2 MiB"), path, op)
                    assert r.status_code >= 400
            else:
                for target in targets:
                    r = api.request(method.upper(), target, token=ADMIN)
                    check_reply(r, (method, target), path, op)
                    if params and method == "delete":
                        assert r.status_code in (204, 400, 403, 404), (method, target, r.status_code)
                    sent += 1
                if method == "get" and not params:
                    for q in QUERIES:
                        r = api.request("GET", f"{path}?{q}", token=ADMIN)
                        check_reply(r, (path, q), path)
                        sent += 1
    assert sent > 100
    assert counts(api) == before, "a refused request wrote something"
