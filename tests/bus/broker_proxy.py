"""A TCP proxy on loopback in front of the Kafka-protocol broker of tests/bus/test_kafka.py, run in
its own thread: `stop()` closes its listener and every connection through it — for the clients, the
broker has gone away, exactly as when it stops or the network fails — and `start()` listens again
on the same port."""

from __future__ import annotations

import asyncio
import socket
import threading


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpProxy:
    def __init__(self, target: str | tuple[str, int]):
        self.target = target  # a Unix socket's path, or (host, port)
        self.port = free_port()
        self.server = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        self.call(self.listen())

    def stop(self) -> None:
        self.call(self.cut())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def listen(self) -> None:
        self.server = await asyncio.start_server(self.pipe, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()

    async def connect(self):
        if isinstance(self.target, str):
            return await asyncio.open_unix_connection(self.target)
        return await asyncio.open_connection(*self.target)

    async def pipe(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await self.connect()
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self.writers -= {writer, up_writer}


async def copy(reader, writer) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ConnectionError):
        pass
    finally:
        writer.transport.abort()
