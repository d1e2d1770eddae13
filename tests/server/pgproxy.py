"""A TCP proxy in front of PostgreSQL (or any TCP service: the Kafka broker of tests/bus) that a test
(or bench/faults.py) can cut, as a network partition would: `cut()` resets every connection through it and refuses new ones; `restore()`
takes connections again; `silence()` makes the open connections drop everything, without a reset. A writer that connects to PostgreSQL directly is not affected, so it can
commit while a server behind the proxy cannot reach the database.

It runs its own event loop in a thread, so synchronous tests drive it with plain calls.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import socket
import struct
import threading
from urllib.parse import parse_qs, urlparse


def unix_socket_of(url: str) -> str:
    """The Unix socket file of an embedded PostgreSQL's URL (postgresql://u:@/db?host=DIR)."""
    u = urlparse(url)
    sock_dir = parse_qs(u.query)["host"][0]
    port = u.port
    found = glob.glob(os.path.join(sock_dir, f".s.PGSQL.{port}" if port else ".s.PGSQL.*"))
    found = [f for f in found if not f.endswith(".lock")]
    if len(found) != 1:
        raise RuntimeError(f"no single PostgreSQL socket in {sock_dir}: {found}")
    return found[0]


def tcp_url(url: str, port: int) -> str:
    """`url` (a Unix-socket URL) pointed at 127.0.0.1:port instead."""
    u = urlparse(url)
    user = u.username or "postgres"
    query = re.sub(r"(^|&)host=[^&]*", "", u.query).lstrip("&")
    return f"postgresql://{user}@127.0.0.1:{port}{u.path}" + (f"?{query}" if query else "")


class PgProxy:
    """127.0.0.1:`port` → `target`, a Unix socket's path or (host, port); it may be set after the
    proxy is made (the port is known at once). Counts connections made through it."""

    def __init__(self, target: str | tuple[str, int]):
        self.target = target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.base_events.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()
        self.links: set[_Link] = set()
        self.port = 0
        self.connections = 0
        self._call(self._listen())

    def _call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self.server = await asyncio.start_server(self._client, sock=sock)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if isinstance(self.target, str):
                up_reader, up_writer = await asyncio.open_unix_connection(self.target)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        self.pipes.update((writer, up_writer))
        link = _Link()
        self.links.add(link)
        await asyncio.gather(_pump(reader, up_writer, link), _pump(up_reader, writer, link), return_exceptions=True)
        self.links.discard(link)
        for w in (writer, up_writer):
            self.pipes.discard(w)
            w.close()

    def url(self, url: str) -> str:
        """`url` of the embedded PostgreSQL behind the proxy, through the proxy."""
        return tcp_url(url, self.port)

    def cut(self) -> None:
        """Reset every connection through the proxy and refuse new ones (connection refused)."""

        async def go():
            self.server.close()
            for w in list(self.pipes):
                _reset(w)
            self.pipes.clear()

        self._call(go())

    def silence(self) -> None:
        """Drop whatever the connections open now carry, both ways, for ever, without closing them
        (packets lost on a dead path: no reset, no FIN); new connections work normally (the path
        came back another way, as after a failover)."""

        async def go():
            for link in self.links:
                link.silent = True

        self._call(go())

    def restore(self) -> None:
        """Take connections again, on the same port."""
        self._call(self._listen())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) where it is a TCP socket, as a cut path would."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family == socket.AF_INET:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class _Link:
    """One client connection and its upstream; silent: what they send is dropped."""

    silent = False


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
    try:
        while data := await reader.read(65536):
            if link.silent:
                continue
            writer.write(data)
            await writer.drain()
    finally:
        if not writer.is_closing():
            writer.close()
