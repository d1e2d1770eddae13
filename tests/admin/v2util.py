"""Helpers of the Designate v2 zone/recordset/task tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid

import asyncpg
import orjson
import dns.rcode
import dns.rdatatype

from conftest import ADMIN


def error(r, status: int, kind: str | None = None) -> dict:
    """A Designate-shaped error reply: {code, type, message, request_id}."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"code", "type", "message", "request_id"} and body["code"] == status, body
    if kind is not None:
        assert body["type"] == kind, body
    return body


def make_zone(api, name: str, token=ADMIN, **extra) -> dict:
    r = api.post("/v2/zones", json={"name": name, "email": f"hostmaster@{name.rstrip('.')}", **extra}, token=token)
    assert r.status_code == 202, r.text
    return r.json()


def make_rrset(api, zone_id: str, name: str, rtype: str, records: list, token=ADMIN, **extra) -> dict:
    r = api.post(f"/v2/zones/{zone_id}/recordsets", json={"name": name, "type": rtype, "records": records, **extra},
                 token=token)  # fmt: skip
    assert r.status_code == 202, r.text
    return r.json()


def wait_active(api, zone_id: str, token=ADMIN, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        z = api.get(f"/v2/zones/{zone_id}", token=token).json()
        if z["status"] == "ACTIVE":
            return z
        assert time.monotonic() < deadline, z
        time.sleep(0.02)


def answers(name: str, rtype: str, values: set):
    """A check for api.wait_dns: the answer's records of `rtype` are exactly `values` (text)."""
    t = dns.rdatatype.from_text(rtype)

    def check(reply) -> bool:
        got = {rd.to_text() for rrset in reply.answer if rrset.rdtype == t for rd in rrset}
        return got == values

    return check


def nxdomain(reply) -> bool:
    return reply.rcode() == dns.rcode.NXDOMAIN


def sql(api, query: str, *args):
    """Run one statement on the server's database (for what the API cannot do: e.g. mark a
    recordset as made by an event)."""

    async def run():
        conn = await asyncpg.connect(api.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@contextlib.contextmanager
def holding(api, sql: str, *args):
    """Run `sql` (which takes a lock) in a transaction of another connection and hold it until the
    block ends, as a long write would: the API's writes needing that lock queue up behind it."""
    locked, release = threading.Event(), threading.Event()

    async def hold():
        conn = await asyncpg.connect(api.database_url)
        try:
            async with conn.transaction():
                await conn.execute(sql, *args)
                locked.set()
                await asyncio.to_thread(release.wait, 30)
        finally:
            await conn.close()

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join(30)


def zone_locked(api, zone_id: str):
    """The zone's row lock held (writes to the zone wait)."""
    return holding(api, "SELECT 1 FROM zones WHERE id = $1 FOR UPDATE", uuid.UUID(zone_id))


def post_and_hang_up(api, path: str, body, token: str, wait: float = 0.5) -> None:
    """POST `body` (JSON) to `path` over a connection of its own, and close it after `wait`
    seconds without reading the reply: a client that gives up."""
    host, port = api.url.removeprefix("http://").split(":")
    data = orjson.dumps(body)
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        time.sleep(wait)  # long enough for the server to have taken the request
