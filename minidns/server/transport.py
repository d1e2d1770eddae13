"""UDP and TCP (RFC 7766) protocols: they only move bytes. A cached reply is sent straight from the
protocol (ReplyCache.probe); anything else goes to the engine (minidns/answer). The per-query path
here is kept to a dict lookup and a send."""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from ..wire.query import QueryError, parse_query
from ..answer import rrl
from ..answer.engine import LATER, MAX_LATER, Engine

qlog = logging.getLogger("minidns.query")
log = logging.getLogger("minidns.tcp")


class QueryLog:
    """The query log's sampling, shared by every protocol of a server: one query in `every` is
    logged, counted rather than drawn, so the cost per query is a decrement."""

    def __init__(self, sample: float = 1.0):
        self.every = max(1, round(1 / sample))
        self.left = 1

    def take(self) -> bool:
        self.left -= 1
        if self.left:
            return False
        self.left = self.every
        return True


def _log_query(proto: str, addr, data: bytes, reply: bytes | None) -> None:
    """One query-log line: client, transport, question and rcode (or 'drop'); the same as fields
    (client, transport, qname, qtype, qclass, rcode) for the JSON log."""
    fields = {"client": addr[0] if addr else None, "transport": proto}
    try:
        q = parse_query(data)
        what = f"{q.qname!r} type {q.qtype} class {q.qclass}" if q else "no reply"
        if q:
            fields.update(qname=_name_text(q.qname), qtype=dns.rdatatype.to_text(q.qtype),
                          qclass=dns.rdataclass.to_text(q.qclass))  # fmt: skip
    except QueryError as e:
        what = f"malformed ({e})"
        fields["malformed"] = str(e)
    rcode = (reply[3] & 0xF) if reply else "drop"
    fields["rcode"] = dns.rcode.to_text(rcode) if reply else "drop"
    qlog.info("%s %s %s rcode=%s", addr[0] if addr else "?", proto, what, rcode, extra=fields)


def _name_text(wire: bytes) -> str:
    try:
        return dns.name.from_wire(wire, 0)[0].to_text()
    except Exception:  # noqa: BLE001 - a name the parser took but dnspython does not: logged raw
        return repr(wire)


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, engine: Engine):
        self.engine = engine
        self.cache = engine.udp_cache  # probed first: ReplyCache.probe
        self.transport: asyncio.DatagramTransport | None = None
        self.hits = 0  # replies sent from the cache here; read by engine.stats.hits()
        self.later: list = []  # replies to sign once the datagrams at hand are read (finish)
        self.pending: set = set()  # replies being made by coroutines (_send_when_made)
        self.loop: asyncio.AbstractEventLoop | None = None
        engine.stats.protocols.append(self)

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()

    def datagram_received(self, data: bytes, addr) -> None:
        hit = self.cache.probe(data[2:])
        if hit is not None and hit[1].live:
            self.transport.sendto(data[:2] + hit[0], addr)
            self.hits += 1
            return
        spliced = self.engine.splice_cookie(data, addr)
        reply = spliced[0] if spliced is not None else self.engine.respond(data, False, addr, self.later)[0]
        if reply is None:
            return
        if reply is LATER:  # a signed name error, signed with the rest of this burst
            self._deferred()
            return
        if reply.__class__ is not bytes:  # made by a coroutine (a dynamic UPDATE): sent when done
            self._send_when_made(data, reply, addr)
            return
        self.transport.sendto(reply, addr)

    def _deferred(self) -> None:
        """A reply went into `later`: the batch is finished once the datagrams at hand are read
        (uvloop reads up to 32 before other callbacks run), or at once when it is full."""
        if len(self.later) == 1:
            self.loop.call_soon(self.finish)
        elif len(self.later) >= MAX_LATER:
            self.finish()

    def finish(self) -> None:
        """Sign and send the replies deferred while reading the datagrams at hand (Engine.answer)."""
        if not self.later:
            return
        replies = self.engine.finish(self.later)
        if self.transport is None or self.transport.is_closing():
            return
        for reply, addr, query in replies:
            self._send(query, reply, addr)

    def _send(self, data: bytes, reply: bytes | None, addr) -> None:
        """Send `reply` (None: nothing) to `data`'s sender."""
        if reply is not None:
            self.transport.sendto(reply, addr)

    def _send_when_made(self, data: bytes, reply, addr) -> None:
        """A reply that is an async iterator of one message (server/updates.py Deferred): sent
        once made, if the socket is still open."""

        async def send() -> None:
            async for message in reply:
                if self.transport is not None and not self.transport.is_closing():
                    self._send(data, message, addr)

        task = asyncio.ensure_future(send())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def error_received(self, exc) -> None:  # ICMP errors from earlier sends: nothing to do
        pass


class LoggingUdpProtocol(UdpProtocol):
    """UDP with the query log on: a sampled query goes through the engine and is logged; the others
    take the fast path (engine.query_log holds the sampling)."""

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.engine.query_log.take():
            return super().datagram_received(data, addr)
        reply = self.engine.answer(data, False, addr)
        if reply is not None and reply.__class__ is not bytes:
            self._send_when_made(data, reply, addr)
            return
        if reply is not None:
            self.transport.sendto(reply, addr)
        _log_query("udp", addr, data, reply)


class RrlUdpProtocol(UdpProtocol):
    """UDP with response rate limiting (answer/rrl.py): every reply, from the cache or not, is
    counted against its client's prefix before it goes; a limited one is dropped or slipped (sent
    truncated; BADCOOKIE instead when the query had a cookie, RFC 7873 §5.2.3). A query with a
    valid server cookie is never limited: its source address is proven. With the query log on,
    what was sent (or "drop") is logged, sampled as the query log is.

    A signed name error waiting for its signature (Engine.answer's `later`) is counted when it is
    answered, from its unsigned part — header, question and SOA, all that RRL classifies by — so
    one that is limited is never signed: under a flood, the signatures RRL would throw away are
    not made."""

    def __init__(self, engine: Engine, rrl, query_log: bool = False):
        super().__init__(engine)
        self.rrl = rrl
        self.query_log = query_log

    def datagram_received(self, data: bytes, addr) -> None:
        hit = self.cache.probe(data[2:])
        cookie = None
        if hit is not None and hit[1].live:
            tail = hit[0]
            reply = data[:2] + tail
            self.hits += 1
        else:
            spliced = self.engine.splice_cookie(data, addr)
            reply, seen = spliced if spliced is not None else self.engine.respond(data, False, addr, self.later)
            if reply is LATER:
                self._limit_later(data, addr, seen)
                return
            tail = None
            if reply is not None and reply.__class__ is not bytes:  # an UPDATE's: not rate limited
                self._send_when_made(data, reply, addr)
                return
            if reply is None or (seen is not None and seen[1]):  # a valid server cookie: never limited
                self._send(data, reply, addr)
                return
            cookie = seen[0] if seen is not None else None
        verdict = self.rrl.check(addr[0], data, reply, monotonic(), tail)
        if verdict == rrl.SLIP:
            reply = rrl.slip_reply(data, reply, cookie, self.engine.settings.edns_payload)
        self._send(data, reply if verdict != rrl.DROP else None, addr)

    def _limit_later(self, data: bytes, addr, seen) -> None:
        """The RRL verdict on the reply just deferred, as datagram_received gives it to the others;
        `seen` is the query's cookie outcome (Engine.respond)."""
        d = self.later[-1]
        cookie = None
        if seen is not None:
            if seen[1]:  # a valid server cookie: never limited
                self._deferred()
                return
            cookie = seen[0]
        verdict = self.rrl.check(addr[0], data, d.head, monotonic())
        if verdict == rrl.SEND:
            self._deferred()
            return
        self.engine.withdraw(self.later)
        reply = None
        if verdict == rrl.SLIP:
            reply = rrl.slip_reply(data, d.head + d.tail, cookie, self.engine.settings.edns_payload)
        self._send(data, reply, addr)

    def _send(self, data: bytes, reply: bytes | None, addr) -> None:
        super()._send(data, reply, addr)
        if self.query_log and self.engine.query_log.take():
            _log_query("udp", addr, data, reply)


class TcpLimits:
    """Connection accounting shared by every TCP listener of one server, and what the limits did
    (for the metrics)."""

    OUT_CHUNK = 64 << 10  # replies written at a time before checking whether the client reads them

    def __init__(self, max_connections: int, idle_timeout: float, max_per_client: int = 64, query_timeout: float = 5.0):
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.max_per_client = max_per_client
        self.query_timeout = query_timeout
        self.open = 0
        self.per_client: dict = {}  # client address -> connections open
        self.refused = 0  # connections closed at once: over max_connections or max_per_client
        self.timed_out = 0  # connections closed because a message did not arrive whole in time
        self.dropped = 0  # connections dropped because the client did not read its replies


class TcpProtocol(asyncio.Protocol):
    """DNS over TCP: 2-octet length framing (RFC 1035 §4.2.2), many pipelined queries per
    connection answered in order as they arrive (RFC 7766 §6.2.1.1), idle timeout (§6.2.3), a cap on
    connections, and reading paused while the client does not read its replies."""

    def __init__(self, engine: Engine, limits: TcpLimits):
        self.engine = engine
        self.cache = engine.tcp_cache
        self.stats = engine.stats  # cache hits are added to stats.tcp_hits once per read
        self.limits = limits
        self.buf = b""
        self.transport = None
        self.timer = None
        self.active = False
        self.counted = False
        self.peer = None
        self.sending: asyncio.Task | None = None  # a zone transfer being sent
        self.transfer = None  # ... and its messages (released when the connection ends)
        self.writable = asyncio.Event()
        self.writable.set()
        self.host = None
        self.query_timer = None  # runs while a message has started to arrive but is not whole

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        limits = self.limits
        host = self.peer[0] if isinstance(self.peer, tuple) else None
        if limits.open >= limits.max_connections or limits.per_client.get(host, 0) >= limits.max_per_client:
            limits.refused += 1
            transport.abort()
            return
        limits.open += 1
        limits.per_client[host] = limits.per_client.get(host, 0) + 1
        self.host = host
        self.counted = True
        self.loop = asyncio.get_running_loop()
        self.timer = self.loop.call_later(limits.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        """Idle for a whole period (RFC 7766 §6.2.3) — or not reading its replies for as long, which
        is the write timeout: then the connection is aborted, as a close would wait to flush."""
        if self.active:
            self.active = False
            self.timer = self.loop.call_later(self.limits.idle_timeout, self._idle_check)
        elif not self.writable.is_set() or self.transport.get_write_buffer_size():
            self.limits.dropped += 1
            log.info("TCP client %s does not read its replies: connection dropped", self.host)
            self.transport.abort()
        else:
            self.transport.close()

    def _query_timed_out(self) -> None:
        self.query_timer = None
        if self.sending is not None or not self.writable.is_set():  # the wait is ours, not the client's
            self._start_query_timer()
            return
        self.limits.timed_out += 1
        log.info("TCP client %s: a message not whole after %.1fs, connection closed", self.host, self.limits.query_timeout)
        self.transport.abort()

    def _start_query_timer(self) -> None:
        if self.query_timer is not None:
            self.query_timer.cancel()
        self.query_timer = self.loop.call_later(self.limits.query_timeout, self._query_timed_out)

    def data_received(self, data: bytes) -> None:
        self.active = True
        if self.sending is not None or not self.writable.is_set():
            # Queries behind a transfer, or arriving while the client does not read, wait (answered
            # in order); reading is paused meanwhile, so this holds at most one read more.
            self.buf += data
            return
        buf = self.buf + data if self.buf else data
        off, end = 0, len(buf)
        out = []
        pending = 0
        probe = self.cache.probe
        hits = 0
        while end - off >= 2:
            if pending >= TcpLimits.OUT_CHUNK:  # written in chunks: stop while the client does not read
                self.transport.write(b"".join(out))
                out, pending = [], 0
                if not self.writable.is_set():
                    break
            size = (buf[off] << 8) | buf[off + 1]
            if end - off - 2 < size:
                break
            msg = buf[off + 2 : off + 2 + size]
            off += 2 + size
            hit = probe(msg[2:])
            if hit is not None and hit[1].live:
                reply = msg[:2] + hit[0]
                hits += 1
            else:
                reply = self.answer(msg)
                if reply is None:
                    continue
                if not isinstance(reply, bytes):  # a zone transfer: sent before anything behind it
                    self.stats.tcp_hits += hits
                    self.buf = buf[off:]
                    if out:
                        self.transport.write(b"".join(out))
                    self.transport.pause_reading()
                    self.transfer = reply
                    self.sending = asyncio.ensure_future(self._send(reply))
                    self._watch_partial(True)
                    return
            out.append(len(reply).to_bytes(2, "big"))
            out.append(reply)
            pending += len(reply) + 2
        self.buf = buf[off:]
        if out:
            self.transport.write(b"".join(out))
        if hits:
            self.stats.tcp_hits += hits
        self._watch_partial(off > 0)

    def _watch_partial(self, progressed: bool) -> None:
        """The per-query timeout: runs from when a message starts to arrive until it is whole."""
        if not self.buf:
            if self.query_timer is not None:
                self.query_timer.cancel()
                self.query_timer = None
        elif progressed or self.query_timer is None:
            self._start_query_timer()

    def answer(self, msg: bytes):
        return self.engine.respond(msg, True, self.peer)[0]

    async def _send(self, messages) -> None:
        """Send a transfer's messages as the client takes them: each waits while the transport's
        buffer is above its high-water mark, so a transfer holds at most that much in memory."""
        transport = self.transport
        try:
            async for msg in messages:
                if transport.is_closing():
                    return
                self.active = True
                transport.write(len(msg).to_bytes(2, "big") + msg)
                if not self.writable.is_set():
                    await self.writable.wait()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the connection ends; the server goes on
            log.exception("transfer to %s failed", self.peer)
            transport.close()
            return
        finally:
            self.sending = None
            self._release_transfer()
        if not transport.is_closing() and self.writable.is_set():  # else resume_writing goes on
            transport.resume_reading()
            if self.buf:
                self.data_received(b"")

    def pause_writing(self) -> None:
        self.writable.clear()
        self.transport.pause_reading()  # a client that does not read gets no more answers queued

    def resume_writing(self) -> None:
        self.writable.set()
        if self.sending is None and not self.transport.is_closing():
            self.transport.resume_reading()
            if self.buf:
                self.data_received(b"")

    def _release_transfer(self) -> None:
        """Give back the transfer's slot (server/transfers.py caps how many run at once)."""
        transfer, self.transfer = self.transfer, None
        release = getattr(transfer, "release", None)
        if release is not None:
            release()

    def eof_received(self):
        return None  # half-closed by the client: replies already written are flushed, then close

    def connection_lost(self, exc) -> None:
        if self.sending is not None:
            self.sending.cancel()
        self._release_transfer()  # also when the sending task was cancelled before it started
        self.writable.set()
        if self.counted:
            limits = self.limits
            limits.open -= 1
            left = limits.per_client.get(self.host, 1) - 1
            if left:
                limits.per_client[self.host] = left
            else:
                limits.per_client.pop(self.host, None)
            self.counted = False
        if self.timer is not None:
            self.timer.cancel()
        if self.query_timer is not None:
            self.query_timer.cancel()
            self.query_timer = None


class _NeverHit:
    """A reply cache of no entries: its probe never hits."""

    probe = staticmethod({}.get)


_NEVER_HIT = _NeverHit()


class LoggingTcpProtocol(TcpProtocol):
    """TCP with the query log on: every query goes through the engine and is logged."""

    def __init__(self, engine: Engine, limits: TcpLimits):
        super().__init__(engine, limits)
        self.cache = _NEVER_HIT  # nothing skips the log

    def answer(self, msg: bytes):
        reply = self.engine.answer(msg, True, self.peer)
        if self.engine.query_log.take():
            _log_query("tcp", self.peer, msg, reply if isinstance(reply, bytes) or reply is None else b"\0\0\0\0")
        return reply
