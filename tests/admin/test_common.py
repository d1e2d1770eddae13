"""What every API module shares (admin/common.py), through a real aiohttp server with the error
middleware (admin/errors.py): JSON bodies read whole and refused with Designate's error body,
?limit/?marker paging and its links, ids in paths, the auth context's roles, and the JSON encoding
of ids and times (RFC 3339)."""

from __future__ import annotations

import datetime
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from minidns.admin.common import ApiError, Ctx, dumps, page_links, paging, parse_uuid, read_body, read_json
from minidns.admin.errors import BUSY, request_id_and_errors

ID = uuid.UUID("6f6c7a54-4a1b-4f2e-9a4e-0c0b3a9e1d10")


async def echo(request):
    body = await read_json(request, limit=64)
    return web.json_response({"got": body})


async def raw(request):
    return web.Response(body=await read_body(request, 16, "the zone file"))


async def items(request):
    limit, marker = paging(request, default=2, maximum=5)
    found = [{"id": str(uuid.UUID(int=i))} for i in range(1, 4)]
    if marker is not None:
        found = [i for i in found if i["id"] > str(marker)]
    page = found[:limit]
    return web.json_response({"items": page, "links": page_links(request, page, limit)})


async def one(request):
    return web.json_response({"id": str(parse_uuid(request.match_info["id"], "zone"))})


async def admin_only(request):
    Ctx(request.headers["X-Project"], request.headers["X-Role"]).need("admin")
    return web.json_response({})


@pytest.fixture
async def client():
    app = web.Application(middlewares=[request_id_and_errors])
    app[BUSY] = [0, 8]
    app.router.add_post("/echo", echo)
    app.router.add_post("/raw", raw)
    app.router.add_get("/items", items)
    app.router.add_get("/zones/{id}", one)
    app.router.add_get("/admin", admin_only)
    c = TestClient(TestServer(app))
    await c.start_server()
    yield c
    await c.close()


async def error_of(response) -> tuple[int, str]:
    body = await response.json()
    assert body["code"] == response.status and body["request_id"] == response.headers["X-Openstack-Request-Id"]
    return response.status, body["type"]


async def test_a_json_object_body_is_read_whole(client):
    async def pieces():
        for part in (b'{"name": ', b'"a.test.", ', b'"ttl": 300}'):
            yield part

    r = await client.post("/echo", data=pieces())  # chunked (RFC 9112 §7.1)
    assert r.status == 200 and await r.json() == {"got": {"name": "a.test.", "ttl": 300}}
    r = await client.post("/raw", data=b"$ORIGIN a.test.\n")
    assert await r.read() == b"$ORIGIN a.test.\n"


@pytest.mark.parametrize("body, status, kind", [
    (b"{not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_object"),
    (b"", 400, "invalid_object"),
    (b'{"name": "' + b"x" * 64 + b'"}', 413, "request_too_large"),
])  # fmt: skip
async def test_a_body_that_is_not_a_json_object_is_refused(client, body, status, kind):
    assert await error_of(await client.post("/echo", data=body)) == (status, kind)


async def test_a_chunked_body_growing_past_the_bound_is_refused(client):
    async def pieces():
        for _ in range(4):
            yield b"x" * 8

    r = await client.post("/raw", data=pieces())
    assert await error_of(r) == (413, "request_too_large")
    assert "the zone file is larger than 16 octets" in (await r.json())["message"]


async def test_paging_with_limit_marker_and_next_link(client):
    r = await client.get("/items")
    page = await r.json()
    assert [i["id"] for i in page["items"]] == [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
    assert f"marker={uuid.UUID(int=2)}" in page["links"]["next"] and "limit=2" in page["links"]["next"]
    last = await (await client.get(page["links"]["next"].replace(str(client.make_url("")), ""))).json()
    assert [i["id"] for i in last["items"]] == [str(uuid.UUID(int=3))] and "next" not in last["links"]


@pytest.mark.parametrize("query, kind", [
    ("limit=x", "invalid_limit"), ("limit=0", "invalid_limit"), ("limit=6", "invalid_limit"),
    ("marker=nonsense", "invalid_marker"),
])  # fmt: skip
async def test_bad_paging_is_400(client, query, kind):
    assert await error_of(await client.get(f"/items?{query}")) == (400, kind)


async def test_an_id_in_the_path(client):
    assert await (await client.get(f"/zones/{ID}")).json() == {"id": str(ID)}
    assert await error_of(await client.get("/zones/not-an-id")) == (404, "zone_not_found")


@pytest.mark.parametrize("role, status", [("admin", 200), ("member", 403), ("reader", 403), ("ingest", 403)])
async def test_a_role_below_the_one_needed_is_403(client, role, status):
    r = await client.get("/admin", headers={"X-Project": "p1", "X-Role": role})
    assert r.status == status


def test_the_context_sees_its_project_or_all():
    assert Ctx("p1", "member", acting_project="p1").project_filter() == "p1"
    assert Ctx("p1", "admin", all_projects=True, acting_project="p1").project_filter() is None


def test_ids_and_times_are_json_text():
    t = datetime.datetime(2026, 1, 2, 4, 4, 5, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert dumps({"id": ID, "created_at": t}) == f'{{"id":"{ID}","created_at":"2026-01-02T04:04:05.000006+01:00"}}'.encode()
    with pytest.raises(TypeError):
        dumps({"x": object()})
    e = ApiError(409, "duplicate_zone", "zone a.test. exists")
    assert (e.status, e.type, e.message, e.headers) == (409, "duplicate_zone", "zone a.test. exists", {})
