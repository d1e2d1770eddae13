"""Fuzzed messages through the real TCP protocol (RFC 1035 §4.2.2 framing, RFC 7766 pipelining):
streams of generated and mutated messages, cut into chunks at random points, on loopback. Every
message that needs a reply gets one, in order, each with the properties of tests/fuzz/target.py
(transfers included: their messages come before the replies behind them); nothing is logged at
ERROR and the event loop sees no exception."""

from __future__ import annotations

import asyncio
import random
from struct import pack, unpack

import pytest

from minidns.server.transport import TcpLimits, TcpProtocol
from tests.fuzz.gen import RandomChoices, generate, mutate
from tests.fuzz.target import CORPUS, KEYS, Target, check_replies

SEEDS = [p.read_bytes() for p in sorted(CORPUS.glob("*.bin"))]


def stream_of_messages(r: RandomChoices, count: int) -> list[bytes]:
    """Messages whose IDs are their index (a TSIG MAC covers the original ID, not the header's)."""
    out = []
    for i in range(count):
        _, wire = generate(r, KEYS)
        if r.chance(0.3):
            wire = mutate(r, wire if r.chance(0.5) else r.pick(SEEDS), SEEDS)
        out.append(pack("!H", i) + wire[2:] if len(wire) >= 2 else wire)
    return out


async def read_message(reader: asyncio.StreamReader, timeout: float) -> bytes:
    size = unpack("!H", await asyncio.wait_for(reader.readexactly(2), timeout))[0]
    return await asyncio.wait_for(reader.readexactly(size), timeout)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_pipelined_stream_cut_anywhere(seed):
    loop = asyncio.get_running_loop()
    loop_errors = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    r = RandomChoices(random.Random(seed))
    with Target() as target:
        limits = TcpLimits(max_connections=8, idle_timeout=30)
        server = await loop.create_server(lambda: TcpProtocol(target.full, limits), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            queries = stream_of_messages(r, 150)
            data = b"".join(pack("!H", len(q)) + q for q in queries)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            at = 0
            while at < len(data):  # the stream in chunks of 1 to 300 octets, some reads apart
                step = r.int(1, 300)
                writer.write(data[at : at + step])
                at += step
                if r.chance(0.3):
                    await writer.drain()
                    await asyncio.sleep(0)
            await writer.drain()
            expected = [i for i, q in enumerate(queries) if len(q) >= 12 and not q[2] & 0x80]
            groups: dict[int, list[bytes]] = {}
            last = -1
            while len(groups) < len(expected) or last in groups:
                try:
                    msg = await read_message(reader, 10 if len(groups) < len(expected) else 0.3)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError):
                    if len(groups) < len(expected):
                        missing = [i for i in expected if i not in groups]
                        pytest.fail(f"no reply to message {missing[0]}: {queries[missing[0]].hex()}")
                    break
                rid = unpack("!H", msg[:2])[0]
                assert rid in expected, f"a reply to message {rid}, which needs none: {queries[rid].hex()}"
                assert rid >= last, f"reply to {rid} after the reply to {last} (RFC 7766 §6.2.1.1: in order)"
                if rid != last:
                    assert all(i in groups for i in expected if i < rid), f"message {rid} answered before an earlier one"
                groups.setdefault(rid, []).append(msg)
                last = rid
            writer.close()
            for i, messages in groups.items():
                check_replies(queries[i], messages, tcp=True)
        finally:
            server.close()
            await server.wait_closed()
        assert target.errors.count == 0, target.errors.first
    assert not loop_errors, loop_errors
