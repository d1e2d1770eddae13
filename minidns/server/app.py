"""Run the server: load zones, listen on UDP and TCP, reload on SIGHUP, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import time
from importlib import resources

from ..zones.loader import ZoneFileError, load_zone_file
from ..zones.snapshot import Snapshot
from .config import Config, parse_listen
from .engine import Engine, EngineSettings
from .transport import LoggingTcpProtocol, LoggingUdpProtocol, TcpLimits, TcpProtocol, UdpProtocol

log = logging.getLogger("minidns")

SOCKET_BUFFER = 4 << 20  # room for bursts on UDP before the kernel drops


def _udp_socket(family: int, host: str, port: int) -> socket.socket:
    udp = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        udp.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
    udp.bind((host, port))
    return udp


def example_zone_path() -> str:
    """The small zone shipped with the package, served when no zone is configured."""
    return str(resources.files("minidns").joinpath("data/example.com.zone"))


def zone_sources(config: Config) -> list[tuple[str | None, str]]:
    """(origin or None, path) for every configured zone file, or the shipped example."""
    specs = config.zone_files or (example_zone_path(),)
    out = []
    for spec in specs:
        origin, sep, path = spec.partition("=")
        out.append((origin, path) if sep and not os.path.exists(spec) else (None, spec))
    return out


def load_zones(sources: list[tuple[str | None, str]]) -> tuple[list[Snapshot], list[str]]:
    """Load every zone file; a bad one is reported (file:line: reason) and the rest still load."""
    zones, errors = [], []
    for origin, path in sources:
        started = time.monotonic()
        try:
            zone = load_zone_file(path, origin)
        except ZoneFileError as e:
            errors.append(str(e))
            log.error("zone not loaded: %s", e)
            continue
        log.info("loaded zone %s serial %d (%d names) from %s in %.2fs", zone.name, zone.serial, len(zone), path, time.monotonic() - started)
        zones.append(zone)
    return zones, errors


class Server:
    """One server process: the engine plus its listeners."""

    def __init__(self, config: Config):
        self.config = config
        self.engine = Engine(
            EngineSettings(
                edns_payload=config.edns_payload,
                nsid=config.nsid.encode() if config.nsid else None,
                version=config.version,
                identity=config.identity,
                cache_entries=config.cache_entries,
            )
        )
        self.limits = TcpLimits(config.tcp_max_connections, config.tcp_idle_timeout)
        self.closers: list = []
        self.stopping = asyncio.Event()
        self.reloading: asyncio.Task | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        zones, _ = await loop.run_in_executor(None, load_zones, zone_sources(self.config))
        self.engine.set_zones(zones)
        for spec in self.config.listen:
            await self._listen(spec)
        log.info("serving %d zone(s) on %s", len(zones), ", ".join(self.config.listen))

    async def _listen(self, spec: str) -> None:
        """UDP and TCP on one address. Port 0 picks a port free for both (tried a few times)."""
        family, host, port = parse_listen(spec)
        for attempt in range(20 if port == 0 else 1):
            udp = _udp_socket(family, host, port)
            try:
                await self._serve_on(udp, family, host)
                return
            except OSError as e:
                udp.close()
                if port != 0 or e.errno != errno.EADDRINUSE or attempt == 19:
                    raise

    async def _serve_on(self, udp: socket.socket, family: int, host: str) -> None:
        loop = asyncio.get_running_loop()
        port = udp.getsockname()[1]
        udp_proto, tcp_proto = (LoggingUdpProtocol, LoggingTcpProtocol) if self.config.query_log else (UdpProtocol, TcpProtocol)
        tcp = await loop.create_server(
            lambda: tcp_proto(self.engine, self.limits), host, port, family=family, reuse_address=True, backlog=1024
        )
        transport, _ = await loop.create_datagram_endpoint(lambda: udp_proto(self.engine), sock=udp)
        self.closers += [transport, tcp]
        log.info("listening on %s port %d (udp, tcp)", host, port)

    async def reload(self) -> None:
        """SIGHUP: re-read every zone file aside, then swap each good zone in; a bad file keeps the
        zone it would have replaced serving."""
        loop = asyncio.get_running_loop()
        zones, errors = await loop.run_in_executor(None, load_zones, zone_sources(self.config))
        for zone in zones:
            self.engine.replace_zone(zone)
        log.info("reload: %d zone(s) swapped in, %d kept as they were", len(zones), len(errors))

    def _on_hup(self) -> None:
        if self.reloading is None or self.reloading.done():
            self.reloading = asyncio.ensure_future(self.reload())
        else:
            log.warning("reload already running; SIGHUP ignored")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        start = asyncio.ensure_future(self.start())
        await asyncio.wait([start, asyncio.ensure_future(self.stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
        if start.done():
            start.result()  # a listen error ends the run here
            await self.stopping.wait()
        else:
            start.cancel()
        log.info("stopping")
        for closer in self.closers:
            closer.close()
        for closer in self.closers:
            if hasattr(closer, "wait_closed"):
                try:
                    await asyncio.wait_for(closer.wait_closed(), 2)
                except asyncio.TimeoutError:
                    pass


def serve(config: Config) -> None:
    """Run until SIGTERM/SIGINT, on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        asyncio.run(Server(config).run())
        return
    uvloop.run(Server(config).run())
