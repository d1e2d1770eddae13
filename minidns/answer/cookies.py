"""DNS cookies, server side (RFC 7873, with the interoperable server cookie of RFC 9018): checking
the server cookie a client sends back and making new ones, and where a query's COOKIE option sits.
No sockets here; the clock is passed in.

A server cookie (RFC 9018 §4) is 16 octets: version 1, three reserved zero octets, a 32-bit
timestamp (seconds, RFC 1982 arithmetic) and an 8-octet SipHash-2-4 over client cookie | version |
reserved | timestamp | client address, keyed with a 16-octet secret. Servers of one anycast set
must share the secret, so that each accepts the cookies the others made.
"""

from __future__ import annotations

import os
import socket
import time
from struct import pack, unpack

from siphash24 import siphash24 as _siphash24

from ..wire import OPT_COOKIE

VERSION = 1
MAX_AGE = 3600  # RFC 9018 §4.3: a cookie older than an hour is not accepted
MAX_AHEAD = 300  # ... nor one more than five minutes in the future
REFRESH_AFTER = 1800  # ... and one older than half an hour is replaced in the reply
REUSE = 60  # seconds a cookie made for a client cookie is given again to the same client and cookie
REPLY_COOKIE = 24  # octets of the COOKIE a reply carries: a client and a server cookie
# The end of a query whose one EDNS option is a COOKIE of `n` octets: RDLENGTH, option code, length.
_COOKIE_HEADS = {n: pack("!HHH", n + 4, OPT_COOKIE, n) for n in (8, 24)}


def siphash24(key: bytes, data: bytes) -> bytes:
    """SipHash-2-4 (Aumasson and Bernstein) of `data` under the 16-octet `key`, as 8 octets in the
    byte order of the reference implementation (little-endian), as RFC 9018 §4.4 uses it. The
    `siphash24` package's C implementation: about 1 µs where Python took 17."""
    return _siphash24(data, key=key).digest()


def address_octets(peer) -> bytes:
    """The client address as RFC 9018 §4.4 hashes it: 4 octets for IPv4, 16 for IPv6."""
    host = peer[0] if isinstance(peer, tuple) else str(peer or "")
    host = host.split("%", 1)[0]
    try:
        return _inet(host)
    except OSError:
        return b""


def _inet(host: str) -> bytes:
    if ":" in host:
        raw = socket.inet_pton(socket.AF_INET6, host)
        return raw[12:] if raw[:12] == b"\0" * 10 + b"\xff\xff" else raw  # an IPv4-mapped address
    return socket.inet_pton(socket.AF_INET, host)


class Cookies:
    """Checks and makes server cookies. `reply(option, peer)` gives the COOKIE option data for the
    reply and whether the query's server cookie was valid. Checks already made are remembered (at
    most `memo` of them), so a client that keeps sending the same cookie costs a dict lookup."""

    def __init__(self, secret: bytes | None = None, clock=time.time, memo: int = 65536):
        self.secret = secret if secret is not None else os.urandom(16)
        if len(self.secret) != 16:
            raise ValueError("a cookie secret is 16 octets")
        self.clock = clock
        self.memo_size = memo
        self.memo: dict[tuple[bytes, object], int] = {}  # (option, client host) -> cookie timestamp when valid
        self.fresh: dict[tuple[bytes, object], tuple[int, bytes]] = {}  # (client cookie, host) -> (when, made)
        self.valid = 0  # queries with a valid server cookie; for the metrics
        self.made = 0  # server cookies made

    def make(self, client: bytes, address: bytes, now: int) -> bytes:
        head = pack("!B3xI", VERSION, now & 0xFFFFFFFF)
        return head + siphash24(self.secret, client + head + address)

    def check(self, option: bytes, peer, now: int) -> int | None:
        """The timestamp of the option's server cookie when it is ours, intact and within its
        lifetime (RFC 9018 §4.3); else None."""
        if len(option) != 24 or option[8] != VERSION:
            return None
        key = (option, peer[0] if isinstance(peer, tuple) else peer)
        stamp = self.memo.get(key)
        if stamp is None:
            if self.make(option[:8], address_octets(peer), unpack("!I", option[12:16])[0]) != option[8:]:
                return None
            stamp = unpack("!I", option[12:16])[0]
            if len(self.memo) >= self.memo_size:
                self.memo.clear()
            self.memo[key] = stamp
        age = (now - stamp) & 0xFFFFFFFF  # RFC 1982: the timestamp wraps in 2106
        if age >= 0x80000000:
            age -= 1 << 32
        return stamp if -MAX_AHEAD <= age <= MAX_AGE else None

    def reply(self, option: bytes, peer) -> tuple[bytes, bool]:
        """(COOKIE option data for the reply, the query's server cookie was valid). A valid cookie
        younger than half an hour goes back as it came; otherwise a new one is made (RFC 9018
        §4.3), also for a cookie that is not valid (RFC 7873 §5.2.3: answered as if it had only the
        client cookie)."""
        now = int(self.clock())
        stamp = self.check(option, peer, now) if len(option) > 8 else None
        if stamp is not None:
            self.valid += 1
            age = (now - stamp) & 0xFFFFFFFF
            if age < REFRESH_AFTER or age >= 0x80000000:
                return option, True
        return option[:8] + self._new(option[:8], peer, now), stamp is not None

    def _new(self, client: bytes, peer, now: int) -> bytes:
        """A server cookie for `client`: the one made for it less than a minute ago, else a new one."""
        key = (client, peer[0] if isinstance(peer, tuple) else peer)
        made = self.fresh.get(key)
        if made is not None and 0 <= now - made[0] < REUSE:
            return made[1]
        self.made += 1
        server = self.make(client, address_octets(peer), now)
        if len(self.fresh) >= self.memo_size:
            self.fresh.clear()
        self.fresh[key] = (now, server)
        return server


def trailing_cookie(data: bytes) -> int | None:
    """The length of the COOKIE option (a client cookie, or a client and an RFC 9018 server cookie)
    when it is the one option of an OPT record ending the query — what BIND's resolvers send —
    else None. Read from the end: root owner, type OPT, payload, TTL (4), RDLENGTH, option, size."""
    for size in (24, 8):
        if data[-size - 6 : -size] == _COOKIE_HEADS[size] and data[-size - 15 : -size - 12] == b"\x00\x00\x29":
            return size
    return None


def option_free_opt(reply: bytes, qend: int) -> int | None:
    """Where our OPT record, without options, starts in `reply` (a header-only reply: right after
    the question ending at `qend`; otherwise last); None when there is none such."""
    if reply[6:12] == b"\x00\x00\x00\x00\x00\x01" and len(reply) >= qend + 11:
        return qend
    if reply[-11:-8] == b"\x00\x00\x29" and reply[-2:] == b"\x00\x00":
        return len(reply) - 11
    return None
