"""The DNS listeners of a process: UDP and TCP on each configured address, sharing the port with
the other workers (SO_REUSEPORT) when there are several; port 0 picks a port free for both."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

from .config import Config, parse_listen
from .transport import LoggingTcpProtocol, LoggingUdpProtocol, RrlUdpProtocol, TcpProtocol, UdpProtocol

log = logging.getLogger("minidns")

SOCKET_BUFFER = 4 << 20  # room for bursts on UDP before the kernel drops
PORT_TRIES = 20  # port 0: addresses tried for one free for both UDP and TCP


def udp_socket(family: int, host: str, port: int, reuse_port: bool = False) -> socket.socket:
    udp = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # several worker processes on one address; the kernel spreads clients over them
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        udp.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
    udp.bind((host, port))
    return udp


class Listeners:
    """Every address a process answers on, with the engine, TCP limits and RRL they answer with."""

    def __init__(self, config: Config, engine, limits, rrl, reuse_port: bool):
        self.config = config
        self.engine = engine
        self.limits = limits
        self.rrl = rrl
        self.reuse_port = reuse_port
        self.closers: list = []
        self.bound: list[str] = []  # the listen addresses as bound (port 0 resolved)

    async def listen(self, spec: str) -> None:
        """UDP and TCP on one address. Port 0 picks a port free for both (tried a few times)."""
        family, host, port = parse_listen(spec)
        for attempt in range(PORT_TRIES if port == 0 else 1):
            udp = udp_socket(family, host, port, self.reuse_port)
            try:
                await self._serve_on(udp, family, host)
                return
            except OSError as e:
                udp.close()
                if port != 0 or e.errno != errno.EADDRINUSE or attempt == PORT_TRIES - 1:
                    raise

    async def _serve_on(self, udp: socket.socket, family: int, host: str) -> None:
        loop = asyncio.get_running_loop()
        port = udp.getsockname()[1]
        make_udp, make_tcp = self.protocols()
        tcp = await loop.create_server(make_tcp, host, port, family=family, reuse_address=True, backlog=1024,
                                       reuse_port=self.reuse_port or None)  # fmt: skip
        transport, _ = await loop.create_datagram_endpoint(make_udp, sock=udp)
        self.closers += [transport, tcp]
        self.bound.append(f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}")
        log.info("listening on %s port %d (udp, tcp)", host, port)

    def protocols(self) -> tuple:
        """(UDP, TCP) protocol factories: with the query log when it is on, RRL on UDP when on."""
        udp_proto, tcp_proto = (LoggingUdpProtocol, LoggingTcpProtocol) if self.config.query_log else (UdpProtocol, TcpProtocol)
        if self.rrl is not None:  # the plain protocol stays free of any RRL work when it is off
            make_udp = lambda: RrlUdpProtocol(self.engine, self.rrl, self.config.query_log)  # noqa: E731
        else:
            make_udp = lambda: udp_proto(self.engine)  # noqa: E731
        return make_udp, lambda: tcp_proto(self.engine, self.limits)

    async def close(self) -> None:
        """Stop listening; wait (2 s at most each) for the TCP servers to close."""
        for closer in self.closers:
            closer.close()
        for closer in self.closers:
            if hasattr(closer, "wait_closed"):
                try:
                    await asyncio.wait_for(closer.wait_closed(), 2)
                except asyncio.TimeoutError:
                    pass
