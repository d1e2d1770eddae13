"""Response rate limiting for UDP (as BIND's and Knot's RRL): replies that would go to one client
prefix too often are dropped, and every `slip`-th of those is sent truncated instead (TC, no
records) so that a real client asks again over TCP, which is never limited. No sockets here.

Replies are counted per (client prefix, kind, what the reply is about): a positive answer per
question (name and type); a denial (NXDOMAIN or NODATA) per zone, so that random names do not each
get an allowance; a referral per delegation; any other error per prefix alone. Each account is a
token bucket credited `rate` a second, holding at most `rate` and at least `-rate * window`: a
flood keeps its account negative for up to `window` seconds after it stops.
"""

from __future__ import annotations

import ipaddress
import logging
from struct import unpack_from

from ..wire import AA, BADCOOKIE, NOERROR, NXDOMAIN, TC
from ..wire.query import QueryError, parse_query, read_name
from ..wire.render import opt_record, render_error
from .cookies import address_octets

log = logging.getLogger("minidns.rrl")

ANSWER, DENIAL, REFERRAL, ERROR = 0, 1, 2, 3
KIND_NAMES = ("answer", "denial", "referral", "error")
SEND, DROP, SLIP = 0, 1, 2


class RateLimiter:
    """`check(host, query, reply, now)` → SEND, DROP or SLIP. At most `max_table` accounts are
    kept (the oldest not used within the window go first), and as many client prefixes and
    reply kinds are remembered."""

    def __init__(self, responses: int, errors: int = 0, nxdomains: int = 0, *, slip: int = 2, window: int = 15,
                 ipv4_prefix: int = 24, ipv6_prefix: int = 56, exempt=(), max_table: int = 100_000):  # fmt: skip
        self.rates = (float(responses), float(nxdomains or responses), float(responses), float(errors or responses))
        self.slip = slip
        self.window = window
        self.masks = (_mask(32, ipv4_prefix), _mask(128, ipv6_prefix))
        self.exempt = [ipaddress.ip_network(p, strict=False) for p in exempt]
        self.max_table = max_table
        self.table: dict[tuple, list] = {}  # (prefix, (kind, token)) -> [balance, last used, limited count]
        self.kinds: dict[bytes, tuple] = {}  # a cached reply (its bytes object) -> its (kind, token)
        self.prefixes: dict[str, bytes | None] = {}  # client address -> its prefix; None when exempt
        self.limited: dict[bytes, float] = {}  # prefix -> until when it counts as being limited (logging)
        self.dropped = 0
        self.slipped = 0

    def prefix(self, host: str) -> bytes | None:
        """The client's prefix as octets (family marker first), or None when it is exempt."""
        p = self.prefixes.get(host, b"")
        if p != b"":
            return p
        if len(self.prefixes) >= self.max_table:
            self.prefixes.clear()
        p = self.prefixes[host] = self._prefix(host)
        return p

    def _prefix(self, host: str) -> bytes | None:
        raw = address_octets(host)
        if not raw:
            return b"?"
        ip = ipaddress.ip_address(raw)
        if any(ip in net for net in self.exempt):
            return None
        v6 = len(raw) == 16
        masked = int.from_bytes(raw, "big") & self.masks[v6]
        return (b"6" if v6 else b"4") + masked.to_bytes(len(raw), "big")

    def check(self, host: str, query: bytes, reply: bytes, now: float, tail: bytes | None = None) -> int:
        """SEND, DROP or SLIP for `reply` to `query` from `host`. `tail` is the cached reply the
        reply was made from, if any: its kind is then remembered rather than worked out again."""
        prefix = self.prefixes.get(host, b"")
        if prefix == b"":
            prefix = self.prefix(host)
        if prefix is None:
            return SEND
        what = classify(query, reply) if tail is None else self._kind(query, reply, tail)
        key = (prefix, what)
        acct = self.table.get(key)
        rate = self.rates[what[0]]
        if acct is None:
            acct = self._open(key, rate, now)
            balance = rate - 1
        else:
            balance = acct[0] + (now - acct[1]) * rate
            if balance > rate:
                balance = rate
            balance -= 1
            acct[1] = now
        if balance >= 0:
            acct[0] = balance
            return SEND
        acct[0] = balance if balance > -rate * self.window else -rate * self.window
        self._limiting(prefix, what, now)
        acct[2] += 1
        if self.slip and acct[2] % self.slip == 0:
            self.slipped += 1
            return SLIP
        self.dropped += 1
        return DROP

    def _kind(self, query: bytes, reply: bytes, tail: bytes) -> tuple:
        """The (kind, token) of a reply made from the cached `tail`, remembered by the tail."""
        what = self.kinds.get(tail)
        if what is None:
            if len(self.kinds) >= self.max_table:
                self.kinds.clear()
            what = self.kinds[tail] = classify(query, reply)
        return what

    def _open(self, key: tuple, rate: float, now: float) -> list:
        """A new account, full but for the reply at hand; room made for it first."""
        if len(self.table) >= self.max_table:
            self._evict(now)
        acct = self.table[key] = [rate, now, 0]
        return acct

    def _evict(self, now: float) -> None:
        """Make room: the oldest accounts go first, except those used within the window, which
        are moved to the end (a few at a time, so a full table of busy accounts still makes room)."""
        table = self.table
        for _ in range(8):
            key = next(iter(table))
            acct = table.pop(key)
            if now - acct[1] > self.window:
                return
            table[key] = acct
        del table[next(iter(table))]

    def _limiting(self, prefix: bytes, what: tuple, now: float) -> None:
        """One log line per prefix when limiting starts (again after `window` quiet seconds)."""
        until = self.limited.get(prefix)
        if until is None or until < now:
            if until is None and len(self.limited) >= self.max_table:
                self.limited = {p: u for p, u in self.limited.items() if u >= now}
                if len(self.limited) >= self.max_table:
                    self.limited.clear()
            log.warning("rate limiting replies to %s (%s %s): dropped, %s", _describe(prefix, self), KIND_NAMES[what[0]],
                        _token_text(what[1]), f"1 in {self.slip} sent truncated" if self.slip else "none sent")  # fmt: skip
        self.limited[prefix] = now + self.window


def classify(query: bytes, reply: bytes) -> tuple[int, object]:
    """(kind, token) of a reply: what RRL counts it against (see the module docstring)."""
    rcode = reply[3] & 0xF
    qend = _question_end(query)
    if rcode not in (NOERROR, NXDOMAIN) or qend is None or len(reply) < qend:
        return ERROR, None
    ancount, nscount = unpack_from("!HH", reply, 6)
    if rcode == NOERROR and ancount:
        return ANSWER, query[12:qend].lower()
    owner = b""
    if nscount:
        try:
            owner = read_name(reply, qend)[0].lower()  # the SOA's owner (the zone) or the delegation
        except QueryError:
            pass
    if rcode == NOERROR and not reply[2] & (AA >> 8) and nscount:
        return REFERRAL, owner
    return DENIAL, owner


def _question_end(query: bytes) -> int | None:
    off, n = 12, len(query)
    while off < n:
        length = query[off]
        if length == 0:
            return off + 5 if off + 5 <= n else None
        if length & 0xC0:
            return None
        off += length + 1
    return None


def slip_reply(query: bytes, reply: bytes, cookie: bytes | None, payload: int) -> bytes:
    """What a slipped reply is: the reply's header with TC set and no records, the question, and
    the OPT when the reply ends with ours (no options). When the query carried a COOKIE that
    was not valid, BADCOOKIE with a fresh server cookie instead (RFC 7873 §5.2.3), so the client
    retries with it and is then not limited."""
    qend = _question_end(query) or 12
    question = query[12:qend] if qend > 12 else b""
    if cookie is not None:
        return _badcookie(query, reply, question, cookie, payload)
    opt = reply[-11:] if len(reply) >= qend + 11 and reply[-11:-8] == b"\x00\x00\x29" and reply[-2:] == b"\x00\x00" else b""
    flags = unpack_from("!H", reply, 2)[0] | TC
    return render_error(unpack_from("!H", reply)[0], flags, question, 0, opt)


def _badcookie(query: bytes, reply: bytes, question: bytes, cookie: bytes, payload: int) -> bytes:
    """BADCOOKIE (RFC 7873 §5.2.3) with the reply's opcode, AA and RD and a fresh server cookie."""
    try:
        q = parse_query(query)
        do = bool(q and q.edns and q.edns.do)
    except QueryError:
        do = False
    opt = opt_record(payload, BADCOOKIE >> 4, do, None, cookie=cookie)
    flags = unpack_from("!H", reply, 2)[0] & 0x7900
    return render_error(unpack_from("!H", reply)[0], flags, question, BADCOOKIE & 0xF, opt)


def _mask(bits: int, prefix: int) -> int:
    return ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1)


def _describe(prefix: bytes, rrl: RateLimiter) -> str:
    if prefix[:1] == b"4":
        return f"{ipaddress.IPv4Address(prefix[1:])}/{bin(rrl.masks[0]).count('1')}"
    if prefix[:1] == b"6":
        return f"{ipaddress.IPv6Address(prefix[1:])}/{bin(rrl.masks[1]).count('1')}"
    return "?"


def _token_text(token) -> str:
    if not token:
        return "-" if token is None else "."
    labels, off = [], 0
    while off < len(token) and token[off]:
        labels.append(token[off + 1 : off + 1 + token[off]].decode("ascii", "replace"))
        off += token[off] + 1
    return ".".join(labels) + "."
