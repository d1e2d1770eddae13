"""A recording DNS proxy for tests: forwards every UDP datagram and TCP message it gets on a free
127.0.0.1 port to one upstream server (UDP to UDP, TCP to TCP) and keeps what the client sent,
parsed, so a test can say what a real client puts on the wire (opcode, prerequisites, TSIG
algorithm, transport) without trusting the client's documentation.

    with Spy(("127.0.0.1", server_port)) as spy:
        ...point the client at spy.port...
        updates = [m for m in spy.messages() if m.opcode == "UPDATE"]

Messages are parsed with dnspython without checking their TSIG (keyring=False); one that does not
parse is kept as its raw bytes.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
from secondaries import free_port

RECV_TIMEOUT = 5.0  # seconds the proxy waits for the upstream's reply to one message


@dataclass
class Seen:
    """One message a client sent: over `transport` ("udp"/"tcp"), `wire` as sent, `msg` parsed
    (None if it did not parse), and the server's `reply` (the first message back with its id;
    None until it came)."""
    transport: str
    wire: bytes
    msg: dns.message.Message | None
    reply: dns.message.Message | None = None

    @property
    def rcode(self) -> str | None:
        """The reply's RCODE as text (NOERROR, YXDOMAIN, NXRRSET, ...), None without a reply."""
        return dns.rcode.to_text(self.reply.rcode()) if self.reply is not None else None

    @property
    def opcode(self) -> str:
        return dns.opcode.to_text(self.msg.opcode()) if self.msg is not None else "?"

    @property
    def tsig_algorithm(self) -> str | None:
        """The TSIG algorithm name (e.g. "hmac-sha256."), None when unsigned."""
        if self.msg is None or not self.msg.had_tsig:
            return None
        return self.msg.keyalgorithm.to_text()

    @property
    def mac_size(self) -> int | None:
        """The length of the TSIG MAC in octets (shorter than the hash's when truncated)."""
        if self.msg is None or not self.msg.had_tsig:
            return None
        return len(self.msg.tsig[0].mac)

    def describe(self) -> str:
        """One line: transport, opcode, question/zone and the sections' records in short."""
        if self.msg is None:
            return f"{self.transport} unparsable {len(self.wire)} octets"
        m = self.msg
        q = " ".join(f"{r.name} {dns.rdatatype.to_text(r.rdtype)}" for r in m.question)
        parts = [self.transport, self.opcode, q]
        if self.opcode == "UPDATE":
            parts.append("prereq=[" + "; ".join(short(r) for r in m.answer) + "]")
            parts.append("update=[" + "; ".join(short(r) for r in m.authority) + "]")
        if m.had_tsig:
            parts.append(f"tsig={self.tsig_algorithm} mac={self.mac_size}")
        parts.append(f"-> {self.rcode}")
        return " ".join(parts)


def short(rrset) -> str:
    """An RRset of an UPDATE message as "name CLASS TYPE ttl [rdata, ...]"."""
    import dns.rdataclass
    rd = ",".join(r.to_text() for r in rrset)
    cls = dns.rdataclass.to_text(rrset.deleting if rrset.deleting is not None else rrset.rdclass)
    return f"{rrset.name} {cls} {dns.rdatatype.to_text(rrset.rdtype)} {rrset.ttl} [{rd}]"


def _parse(wire: bytes) -> dns.message.Message | None:
    try:
        return dns.message.from_wire(wire, keyring=False)
    except (dns.exception.DNSException, ValueError):
        return None


class Spy:
    """The proxy: UDP and TCP on 127.0.0.1:`port`, forwarding to `upstream`."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = free_port()
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", self.port))
        self._udp.settimeout(0.2)
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind(("127.0.0.1", self.port))
        self._tcp.listen(16)
        self._tcp.settimeout(0.2)
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]

    def __enter__(self) -> Spy:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self._udp.close()
        self._tcp.close()

    def messages(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def _keep(self, transport: str, wire: bytes) -> Seen:
        seen = Seen(transport, wire, _parse(wire))
        with self._lock:
            self._seen.append(seen)
        return seen

    def _answered(self, asked: list[Seen], wire: bytes) -> None:
        """Attach a reply to the first of `asked` with its message id still waiting for one."""
        reply = _parse(wire)
        if reply is None:
            return
        with self._lock:
            for seen in asked:
                if seen.reply is None and seen.msg is not None and seen.msg.id == reply.id:
                    seen.reply = reply
                    return

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            seen = self._keep("udp", wire)
            threading.Thread(target=self._relay_udp, args=(seen, wire, client), daemon=True).start()

    def _relay_udp(self, seen: Seen, wire: bytes, client) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(RECV_TIMEOUT)
            up.sendto(wire, self.upstream)
            try:
                reply, _ = up.recvfrom(65535)
            except TimeoutError:
                return
        self._answered([seen], reply)
        try:
            self._udp.sendto(reply, client)
        except OSError:
            pass

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay_tcp, args=(conn,), daemon=True).start()

    def _back(self, up: socket.socket, conn: socket.socket, asked: list[Seen]) -> None:
        """The upstream's messages back to the client, one by one, each offered to _answered."""
        up.settimeout(RECV_TIMEOUT)
        try:
            while True:
                head = _read_exact(up, 2)
                wire = head and _read_exact(up, struct.unpack("!H", head)[0])
                if wire is None:
                    break
                self._answered(asked, wire)
                conn.sendall(head + wire)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)

    def _relay_tcp(self, conn: socket.socket) -> None:
        """Messages from the client go up one by one; whatever the upstream sends comes back
        (a transfer's many messages too), until either side closes."""
        conn.settimeout(RECV_TIMEOUT)
        try:
            up = socket.create_connection(self.upstream, timeout=RECV_TIMEOUT)
        except OSError:
            conn.close()
            return
        asked: list[Seen] = []
        back = threading.Thread(target=self._back, args=(up, conn, asked), daemon=True)
        back.start()
        try:
            while not self._stop.is_set():
                head = _read_exact(conn, 2)
                if head is None:
                    break
                wire = _read_exact(conn, struct.unpack("!H", head)[0])
                if wire is None:
                    break
                asked.append(self._keep("tcp", wire))
                up.sendall(head + wire)
        except OSError:
            pass
        finally:
            try:
                up.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            back.join(RECV_TIMEOUT)
            up.close()
            conn.close()


def _read_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except TimeoutError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf
