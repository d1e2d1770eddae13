"""What the end-to-end bus tests look at: DNS answers of a running minidns (dnspython over UDP), rows
of its database, and the depth of a RabbitMQ queue (a passive queue.declare)."""

from __future__ import annotations

import asyncio
import re
import time

import aio_pika
import dns.message
import dns.query
import dns.rcode

from minidns.store import db


def answer(port: int, name: str, rdtype: str) -> set[str] | None:
    """The answer's records as text; None for NXDOMAIN."""
    r = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", timeout=2, port=port)
    if r.rcode() == dns.rcode.NXDOMAIN:
        return None
    return {rd.to_text() for rrset in r.answer for rd in rrset}


def until(get, check, timeout: float = 30.0, what: str = ""):
    """get() again until check(its value) holds (a deadline, not a timing assertion); the value."""
    deadline = time.monotonic() + timeout
    while not check(value := get()):
        assert time.monotonic() < deadline, f"{what}: still {value!r}"
        time.sleep(0.05)
    return value


def wait_answer(port: int, name: str, rdtype: str, want: set[str] | None, timeout: float = 30.0) -> None:
    until(lambda: answer(port, name, rdtype), lambda a: a == want, timeout, f"{name} {rdtype}")


def sql(url: str, query: str, *args):
    """The rows of `query` on the database at `url`."""

    async def go():
        conn = await db.connect(url)
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


def created(url: str, prefix: str) -> dict:
    """The instance-create events recorded for hostnames starting with `prefix`: rows, distinct
    message ids, applied ones, the most attempts any took."""
    [row] = sql(url, "SELECT count(*) AS rows, count(DISTINCT message_id) AS ids, count(*) FILTER (WHERE status = 'applied')"
                     " AS applied, coalesce(max(attempts), 0) AS attempts FROM events WHERE event_type = 'compute.instance.create.end'"
                     " AND event->'payload'->>'hostname' LIKE $1", prefix + "%")  # fmt: skip
    return row


def depth(amqp_url: str, queue: str) -> int:
    """Messages ready in `queue`."""

    async def go():
        conn = await aio_pika.connect(amqp_url)
        try:
            q = await (await conn.channel()).declare_queue(queue, passive=True)
            return q.declaration_result.message_count
        finally:
            await conn.close()

    return asyncio.run(go())


def delete_queue(amqp_url: str, queue: str) -> None:
    async def go():
        conn = await aio_pika.connect(amqp_url)
        try:
            await (await conn.channel()).queue_delete(queue)
        finally:
            await conn.close()

    asyncio.run(go())


def publish_raw(amqp_url: str, exchange: str, bodies: list[bytes], key: str = "notifications.info") -> None:
    """Bodies sent as they are, persistent, confirmed by the broker (what no oslo publisher sends)."""

    async def go():
        conn = await aio_pika.connect(amqp_url)
        try:
            ex = await (await conn.channel()).get_exchange(exchange, ensure=False)
            for body in bodies:
                await ex.publish(aio_pika.Message(body, delivery_mode=2), routing_key=key)
        finally:
            await conn.close()

    asyncio.run(go())


def api_base(served) -> str:
    return re.search(r"(http://\S+?)/?$", served.wait_for(r"API listening on", 30).strip()).group(1)


def serve_openstack(serve, rabbit, url: str, pool: str):
    """`minidns serve` (the `serve` fixture) on the database at `url`, consuming OpenStack
    notifications from `rabbit` in bus pool `pool`, once it says it is connected."""
    s = serve("--database-url", url, "--openstack-transport-url", rabbit.url, "--events-zone", "cloud.test.",
              "--bus-pool", pool, "--bus-prefetch", "50")  # fmt: skip
    s.wait_for(r"bus openstack: connected to 127\.0\.0\.1", 30)
    return s
