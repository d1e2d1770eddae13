"""Query bytes → reply bytes: the checks of RFC 1035/6891/8906, the zone lookup, the encoder and the
reply cache that makes repeated questions cost one dict lookup. No sockets here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from bisect import bisect_left
from dataclasses import dataclass
from struct import pack, unpack_from

from ..wire import (
    AA,
    EDE_NOT_AUTHORITATIVE,
    EDE_PROHIBITED,
    NOTAUTH,
    NOTIFY,
    NOERROR,
    NXDOMAIN,
    QR,
    ANYCLASS,
    AXFR,
    BADVERS,
    CD,
    CH,
    FORMERR,
    IN,
    IXFR,
    NOTIMP,
    QUERY,
    RD,
    REFUSED,
    SERVFAIL,
    TXT,
    NXNAME,
    OPT_COOKIE,
)
from ..dnssec.signer import EPOCH, SignatureCache, Signer
from ..wire.query import Query, QueryError, parse_query, question_name
from ..wire.render import RRset, opt_record, render, render_error
from ..zones.lookup import is_name_error, resolve
from ..zones.snapshot import Snapshot, Version
from ..zones.table import ZoneTable

log = logging.getLogger("minidns.engine")

_OPCODE_RD = 0x7800 | RD
MAX_UDP = 65507  # the largest UDP payload over IPv4
_NSID_ONLY = (b"", b"\x00\x03\x00\x00")  # option sets whose replies do not depend on the client
_XFR_TYPES = (AXFR, IXFR)
_COOKIE_HEADS = {n: pack("!HHH", n + 4, OPT_COOKIE, n) for n in (8, 24)}  # RDLENGTH, option code, length
_ONE_QUESTION_AND_OPT = b"\x00\x01\x00\x00\x00\x00\x00\x01"  # QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT
_NOT_QUICK = (AXFR, IXFR, NXNAME)  # query types the general way answers with an error
_ECHOED = (QUERY, NOTIFY)  # opcodes whose first section is a question, echoed in error replies (UPDATE's is a zone)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    edns_payload: int = 1232  # RFC 6891 §6.2.5 and the DNS flag day 2020 value
    nsid: bytes | None = None  # RFC 5001 server identifier, sent when asked for
    version: str | None = None  # CH TXT version.bind / version.server when set
    identity: str | None = None  # CH TXT id.server / hostname.bind when set
    cache_entries: int = 200_000  # replies kept, over two generations
    signature_cache_entries: int = 100_000  # DNSSEC signatures kept (least recently used dropped)


class ReplyCache:
    """Rendered replies keyed by the query's bytes after its ID.

    Two generations bound the memory, by entries and by octets: when the young one is full it
    becomes the old one and the previous old one is dropped; a hit in the old generation is moved to
    the young one, so what is asked often stays. A name error enters only when its name is asked
    a second time (Doorkeeper), so a flood of random names does not churn it at all. Each value
    is (reply without its ID, version) where `version.live` says whether the snapshot (or zone table) it
    came from is still current.
    """

    __slots__ = ("young", "old", "limit", "octets", "max_octets")

    ENTRY_OVERHEAD = 200  # dict slot, tuple and two bytes objects, roughly
    MAX_REPLY = 16384  # larger replies are rendered each time rather than kept

    def __init__(self, entries: int, max_octets: int = 64 << 20):
        self.limit = max(1, entries // 2)
        self.max_octets = max_octets // 2
        self.young: dict[bytes, tuple] = {}
        self.old: dict[bytes, tuple] = {}
        self.octets = 0

    def get(self, key: bytes):
        hit = self.young.get(key)
        if hit is None:
            hit = self.old.pop(key, None)
            if hit is not None:
                self.put(key, hit)
        return hit

    def put(self, key: bytes, value: tuple) -> None:
        if len(value[0]) > self.MAX_REPLY:
            return
        size = len(key) + len(value[0]) + self.ENTRY_OVERHEAD
        if len(self.young) >= self.limit or self.octets + size > self.max_octets:
            self.old = self.young
            self.young = {}
            self.octets = 0
        self.young[key] = value
        self.octets += size

    def clear(self) -> None:
        self.young = {}
        self.old = {}
        self.octets = 0

    def __len__(self) -> int:
        return len(self.young) + len(self.old)


class Doorkeeper:
    """Names seen once lately, over two generations of `size`: a name error's reply is cached only
    when its name is asked a second time. A random-subdomain flood asks each name once, so its
    replies never enter the reply cache and do not push out the replies real traffic asks for
    again and again; a missing name asked repeatedly (a typo, a resolver's retry, its AAAA after
    its A) is cached from its second time."""

    __slots__ = ("young", "old", "size")

    def __init__(self, size: int = 32768):
        self.size = max(1, size)
        self.young: set[bytes] = set()
        self.old: set[bytes] = set()

    def seen(self, key: bytes) -> bool:
        """Whether `key` came lately; if not, it is remembered."""
        if key in self.young or key in self.old:
            return True
        if len(self.young) >= self.size:
            self.old, self.young = self.young, set()
        self.young.add(key)
        return False


LATER = object()  # Engine.answer's reply when it was put in the caller's `later` list (Deferred)
MAX_LATER = 64  # deferred replies a caller holds at most before it finishes them


class Deferred:
    """A signed name error whose NSEC signatures are still to be made (Engine.finish): the reply
    before and after its RRSIG records, and what finishing needs (the query and the peer it came
    from, when for the statistics, the header and question for a SERVFAIL)."""

    __slots__ = ("head", "pending", "sigs", "tail", "query", "peer", "started", "qtype", "qid", "keep", "question")

    def __init__(self, head: bytes, pending: tuple, tail: bytes, qid: int, keep: int, question: bytes):
        self.head, self.pending, self.sigs, self.tail = head, pending, None, tail
        self.qid, self.keep, self.question = qid, keep, question
        self.query = self.peer = self.started = self.qtype = None


# Query types counted by name in the statistics; any other is counted as 0 ("other"), so a client
# cannot make the label set grow without bound.
STAT_TYPES = frozenset((1, 2, 5, 6, 12, 13, 15, 16, 28, 29, 33, 35, 39, 43, 44, 46, 47, 48, 50, 51, 52, 53, 59, 61, 64,
                        65, 99, 251, 252, 255, 256, 257))  # fmt: skip
MALFORMED = -1  # the qtype key of a query that did not parse


class QueryStats:
    """DNS query statistics, kept off the cached fast path: the protocols count their cache hits
    (one integer increment; see `hits`), and each query the engine answers after a cache miss is
    counted by (tcp, qtype, rcode) and timed into a histogram per transport."""

    BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)

    __slots__ = ("protocols", "engine_hits", "tcp_hits", "answers", "buckets", "sums", "counts")

    def __init__(self):
        self.protocols: list = []  # UDP protocols, each counting its hits in `.hits`
        self.engine_hits = [0, 0]  # hits found by Engine.answer (old generation, 0x20), [udp, tcp]
        self.tcp_hits = 0  # added by TCP connections once per read
        self.answers: dict[tuple[bool, int, int], int] = {}
        self.buckets = ([0] * (len(self.BUCKETS) + 1), [0] * (len(self.BUCKETS) + 1))
        self.sums = [0.0, 0.0]
        self.counts = [0, 0]

    def answered(self, tcp: bool, qtype: int, reply, seconds: float) -> None:
        rcode = reply[3] & 0xF if isinstance(reply, (bytes, bytearray)) and len(reply) > 3 else None
        if rcode is None:  # no reply (RFC 1035 §4.1.1), or a zone transfer: counted elsewhere
            return
        key = (tcp, qtype if qtype in STAT_TYPES or qtype == MALFORMED else 0, rcode)
        self.answers[key] = self.answers.get(key, 0) + 1
        self.buckets[tcp][bisect_left(self.BUCKETS, seconds)] += 1
        self.sums[tcp] += seconds
        self.counts[tcp] += 1

    def hits(self) -> tuple[int, int]:
        """Cache hits so far: (udp, tcp)."""
        udp = self.engine_hits[0] + sum(p.hits for p in self.protocols)
        return udp, self.engine_hits[1] + self.tcp_hits


class Engine:
    """Answers queries from the current zone table. `answer()` is the slow path: the protocols look
    up `data[2:]` in `udp_cache`/`tcp_cache` themselves first and splice the ID onto a live hit."""

    def __init__(self, settings: EngineSettings = EngineSettings(), clock=time.time):
        self.settings = settings
        self.clock = clock  # for signature validity; tests move it
        self.signer = Signer(SignatureCache(settings.signature_cache_entries))
        self.table = ZoneTable()
        self.udp_cache = ReplyCache(settings.cache_entries)
        self.tcp_cache = ReplyCache(settings.cache_entries // 4)
        self.doorkeeper = Doorkeeper(max(1024, settings.cache_entries // 8))
        self.chaos = _chaos_names(settings)
        self.xfr = None  # server/transfers.Transfers: transfers, NOTIFY and TSIG-signed messages
        self.stats = QueryStats()
        self.cookies = None  # server/cookies.Cookies: DNS cookies answered (RFC 7873); None ignores them
        self.cookie_seen = None  # (query, reply cookie, valid) of the last query with a COOKIE; for RRL
        self._quick_opts: dict[tuple[int, bool], bytes] = {}  # _quick_denial's OPT records

    def set_identity(self, nsid: bytes | None, version: str | None, identity: str | None) -> None:
        """New NSID and CH TXT answers (a SIGHUP); cached replies, which may hold the old, dropped."""
        self.settings = dataclasses.replace(self.settings, nsid=nsid, version=version, identity=identity)
        self.chaos = _chaos_names(self.settings)
        self.udp_cache.clear()
        self.tcp_cache.clear()

    # -- zone set changes -------------------------------------------------------------------
    def set_zones(self, snapshots: list[Snapshot]) -> None:
        """Serve exactly these zones. Replies cached from anything else are retired."""
        old = self.table
        self.table = ZoneTable(snapshots)
        old.live = False
        for zone in old.zones.values():
            if self.table.zones.get(zone.origin) is not zone:
                zone.live = False
        self.udp_cache.clear()
        self.tcp_cache.clear()

    def replace_zone(self, snapshot: Snapshot) -> None:
        """Swap in a new snapshot of a zone already served (one assignment); its cache starts empty."""
        old = self.table.zones.get(snapshot.origin)
        if old is None:
            self.set_zones([*self.table.zones.values(), snapshot])
            return
        self.table.zones[snapshot.origin] = snapshot
        old.live = False

    def remove_zone(self, snapshot: Snapshot) -> None:
        """Stop serving a zone, if `snapshot` is what is served for its origin."""
        if self.table.zones.get(snapshot.origin) is snapshot:
            self.set_zones([z for z in self.table.zones.values() if z is not snapshot])

    # -- answering --------------------------------------------------------------------------
    def answer(self, data: bytes, tcp: bool = False, peer=None, later: list | None = None):
        """The reply to one query message, or None when RFC 1035 §4.1.1 says not to reply. Over
        TCP a zone transfer is an async iterator of messages instead (server/transfers.py).

        `later` (UDP): a list the caller finishes (`finish`) once the datagrams at hand are read.
        A signed name error whose NSEC must be signed anew goes there and LATER is returned, so a
        burst of them — a random-subdomain flood — is signed back to back: signing one after
        another keeps the signing code and its tables in the CPU's caches, where answering in
        between evicts them (bench/dnssec.py --flood: 13,000 → 18,300 replies a second)."""
        started = time.perf_counter()
        quick = self._quick_denial(data, later) if later is not None else None
        reply, qtype = quick if quick is not None else self._answer_query(data, tcp, peer, later)
        if qtype is not None:  # not a cache hit: counted and timed here, off the fast path
            if reply is LATER:
                d = later[-1]
                d.query, d.peer, d.started, d.qtype = data, peer, started, qtype
            else:
                self.stats.answered(tcp, qtype, reply, time.perf_counter() - started)
        return reply

    def finish(self, later: list) -> list[tuple[bytes, object, bytes]]:
        """The replies deferred into `later` (which is emptied), each with the peer it goes to and
        the query it answers: their NSEC signatures made one after another."""
        signer = self.signer
        sign = signer.sign_pending
        for d in later:  # the signing alone first, one signature after another
            try:
                d.sigs = sign(d.pending)
            except Exception:  # noqa: BLE001 - RFC 8906: never leave a query unanswered
                log.exception("internal error signing a name error for %r", d.question)
        out = []
        answered = self.stats.answered
        clock = time.perf_counter
        records = signer.pending_records
        for d in later:
            if d.sigs is None:
                reply = render_error(d.qid, d.keep, d.question, SERVFAIL, None)
            else:
                reply = d.head + records(d.pending, d.sigs) + d.tail
            answered(False, d.qtype, reply, clock() - d.started)
            out.append((reply, d.peer, d.query))
        later.clear()
        return out

    def withdraw(self, later: list) -> Deferred:
        """The last reply deferred into `later`, taken out unsigned (response rate limiting will not
        send it whole); counted in the statistics as a reply made at once is, before RRL."""
        d = later.pop()
        self.stats.answered(False, d.qtype, d.head + d.tail, time.perf_counter() - d.started)
        return d

    def _answer_query(self, data: bytes, tcp: bool, peer, later: list | None = None):
        """(reply, the query type for the statistics — None for a cache hit, counted as one)."""
        try:
            query = parse_query(data)
        except QueryError as e:
            flags = int.from_bytes(data[2:4], "big")
            question = data[12 : e.qend] if e.qend and (flags >> 11) & 0xF in _ECHOED else b""
            return render_error(int.from_bytes(data[:2], "big"), flags & _OPCODE_RD, question, e.rcode, None), MALFORMED
        except Exception:  # noqa: BLE001 - whatever the parser missed is still a malformed message
            log.exception("unexpected error parsing %r", data)
            return render_error(int.from_bytes(data[:2], "big"), 0, b"", FORMERR, None), MALFORMED
        if query is None:
            return None, MALFORMED
        if query.edns is not None and query.edns.cookie is not None:
            query, fast = self._cookie(query, data, tcp, peer)
            if fast is not None:
                return fast
        if self.xfr is not None and (query.tsig or query.opcode == NOTIFY or query.qtype in _XFR_TYPES):
            try:
                return self.xfr.handle(query, data, tcp, peer), query.qtype
            except Exception:  # noqa: BLE001 - RFC 8906: never leave a query unanswered
                log.exception("internal error answering %r", data)
                return render_error(query.id, query.flags & _OPCODE_RD, data[12 : query.qend], SERVFAIL, None), query.qtype
        cache = self.tcp_cache if tcp else self.udp_cache
        # A client that varies letter case (DNS 0x20) is served from the lowercase entry; the
        # splice needs the question name as long as its lowercase form, i.e. not compressed.
        plain = len(query.qname) == query.qend - 16
        folded = plain and query.qname != query.key
        key = data[2:12] + query.key + data[query.qend - 4 :] if folded else data[2:]
        hit = cache.get(key) if plain else None
        if hit is not None and hit[1].live:
            self.stats.engine_hits[tcp] += 1
            tail = hit[0]
            return data[:2] + tail[:10] + data[12 : query.qend] + tail[query.qend - 2 :], None
        try:
            reply, owner = self._answer(query, data, tcp, 0, later)
        except Exception:  # noqa: BLE001 - RFC 8906: never leave a query unanswered
            log.exception("internal error answering %r", data)
            return render_error(query.id, query.flags & _OPCODE_RD, data[12 : query.qend], SERVFAIL, None), query.qtype
        cacheable = (query.edns is None or query.edns.options in _NSID_ONLY) and not query.tsig
        if owner is not None and cacheable and plain:
            tail = reply[2:]
            if folded:
                tail = tail[:10] + key[10 : query.qend - 2] + tail[query.qend - 2 :]
            cache.put(key, (tail, owner))
        return reply, query.qtype

    def _cookie(self, q: Query, data: bytes, tcp: bool, peer):
        """A query with a COOKIE option (RFC 7873 §5.2): (the query carrying the reply's cookie in
        place of the client's, or none when cookies are off; the (reply, qtype) when it was made the
        fast way). Replies with a cookie are never cached, since the cookie is the client's; the fast
        way is the cached reply to the same query without the option, with the cookie put into its
        OPT."""
        edns = q.edns
        cookie = None
        if self.cookies is not None:
            cookie, valid = self.cookies.reply(edns.cookie, peer)
            self.cookie_seen = (data, cookie, valid)
            fast = self._with_cookie(q, data, tcp, peer, cookie)
            if fast is not None:
                return q, fast
        return dataclasses.replace(q, edns=dataclasses.replace(edns, cookie=cookie)), None

    def cookie_hit(self, data: bytes, peer) -> bytes | None:
        """The UDP fast path of a query whose one EDNS option is a COOKIE of a client cookie, or a
        client and an RFC 9018 server cookie (what BIND's resolvers send): the cached reply to the
        same query without the option (the cache key: every other byte equal), its reply cookie
        (Cookies.reply) spliced into its OPT, without parsing the query. None sends the query the
        whole way (engine.answer), which gives the same reply."""
        cookies = self.cookies
        if cookies is None:
            return None
        for size in (24, 8):
            # From the end: root owner, type OPT, payload, TTL (4), RDLENGTH = 4 + size, option 10, size.
            if data[-size - 6 : -size] == _COOKIE_HEADS[size] and data[-size - 15 : -size - 12] == b"\x00\x00\x29":
                break
        else:
            return None
        plain = data[: -size - 6] + b"\x00\x00"
        hit = self.udp_cache.get(plain[2:])
        if hit is None or not hit[1].live:
            return None
        tail = hit[0]
        if tail[-11:-8] != b"\x00\x00\x29" or tail[-2:] != b"\x00\x00":  # our OPT last, without options
            return None
        payload = (data[-size - 12] << 8) | data[-size - 11]
        # The reply's cookie is always a client and a server cookie (24 octets): checked before it
        # is made, so a reply that would not fit goes the whole way without making it twice.
        if 2 + len(tail) + 4 + 24 > min(max(512, payload), self.settings.edns_payload, MAX_UDP):
            return None
        cookie, valid = cookies.reply(data[-size:], peer)
        reply = _put_cookie(data[:2] + tail, len(tail) - 9, cookie)
        self.cookie_seen = (data, cookie, valid)
        self.stats.engine_hits[0] += 1
        return reply

    def _with_cookie(self, q: Query, data: bytes, tcp: bool, peer, cookie: bytes):
        """(reply, qtype): the reply to `data` without its COOKIE option — from the cache when it is
        there — with `cookie` put first into its OPT; None when that cannot be done (another option,
        a transfer, a reply that would no longer fit)."""
        edns = q.edns
        n = len(edns.options)
        if edns.options[:2] != b"\x00\x0a" or n != len(edns.cookie) + 4 or q.tsig or q.opcode != QUERY or q.qtype in _XFR_TYPES:
            return None
        if not data.endswith(edns.options) or data[-n - 2 : -n] != pack("!H", n):  # the OPT is not last
            return None
        plain = data[: -n - 2] + b"\x00\x00"
        hit = (self.tcp_cache if tcp else self.udp_cache).get(plain[2:])
        if hit is not None and hit[1].live:
            self.stats.engine_hits[tcp] += 1
            reply, qtype = plain[:2] + hit[0], None
        else:
            reply, qtype = self._answer_query(plain, tcp, peer)
            if reply is None:
                return None
        an, ns, ar = unpack_from("!3H", reply, 6)
        if (an, ns, ar) == (0, 0, 1) and len(reply) >= q.qend + 11:
            at = q.qend  # a header-only reply: the OPT follows the question
        elif reply[-11:-8] == b"\x00\x00\x29" and reply[-2:] == b"\x00\x00":
            at = len(reply) - 11  # our OPT, without options, last
        else:
            return None
        reply = _put_cookie(reply, at, cookie)
        if not tcp and len(reply) > min(max(512, edns.payload), self.settings.edns_payload, MAX_UDP):
            return None
        return reply, qtype

    def _answer(self, q: Query, data: bytes, tcp: bool, room: int = 0, later: list | None = None) -> tuple[bytes, object | None]:
        """(reply, what its cache entry depends on, or None when it must not be cached); `room`
        octets are left free below the size limit (for the TSIG record of a signed reply); the
        reply is LATER when it was deferred into `later` (see `answer`)."""
        question = data[12 : q.qend] if q.opcode in _ECHOED else b""
        edns = q.edns
        keep = q.flags & (_OPCODE_RD | CD)
        if edns is not None and edns.version > 0:  # RFC 6891 §6.1.3: BADVERS, with our version 0
            return render_error(q.id, keep, question, 0, self._opt(q, BADVERS >> 4)), None
        if q.opcode != QUERY:
            if q.opcode == NOTIFY:  # no zone is a secondary here: NOTAUTH, as Knot answers
                return render_error(q.id, keep, question, NOTAUTH, self._opt(q)), None
            # RFC 8906 §3.1.4: NOTIMP; header only, as NSD sends it
            return render_error(q.id, keep, b"", NOTIMP, None), None
        if q.qtype == NXNAME:  # RFC 9824 §6: a meta type, only ever in a compact denial's bitmap
            return render_error(q.id, keep, question, FORMERR, self._opt(q)), None
        if q.qtype in (AXFR, IXFR):
            # Transfers are TCP-only (RFC 5936 §4.2): AXFR over UDP is NOTIMP; otherwise, until
            # transfers are served, REFUSED with EDE "Prohibited", as NSD answers.
            if q.qtype == AXFR and not tcp:
                return render_error(q.id, keep, question, NOTIMP, self._opt(q)), None
            return render_error(q.id, keep, question, REFUSED, self._opt(q, ede=EDE_PROHIBITED)), None
        if tcp:
            limit = 65535
        elif edns is None:
            limit = 512
        else:
            limit = self._udp_limit(edns.payload)
        limit -= room
        if q.qclass == CH:
            return self._answer_chaos(q, question, keep, limit), self.table.version
        table = self.table
        if q.qclass not in (IN, ANYCLASS):
            return render_error(q.id, keep, question, REFUSED, self._opt(q)), table.version
        zone = table.find(q.key, q.qtype)
        if zone is None:  # a name outside every zone: EDE "Not Authoritative", as NSD and Knot
            return render_error(q.id, keep, question, REFUSED, self._opt(q, ede=EDE_NOT_AUTHORITATIVE)), table.version
        owner = zone.version
        signed = zone.keys is not None and edns is not None and edns.do
        if signed and is_name_error(zone, q.key, q.qtype):  # what a random-subdomain flood asks for
            if not self.doorkeeper.seen(q.key):
                owner = None  # not cached before the name is asked again
            reply = self._compact_nxdomain(zone, q, question, keep, limit, later)
            if reply is not None:
                return reply, (owner if reply is not LATER else None)
        ans = resolve(zone, q.key, q.qtype)
        if not signed and ans.nxname is not None and not ans.answer and not self.doorkeeper.seen(q.key):
            owner = None
        if signed:
            self._sign(zone, q, ans)
        flags = keep | ans.rcode | (AA if ans.aa else 0)
        sections = (ans.answer, ans.authority, ans.additional)
        return render(q.id, flags, question, q.key, sections, self._opt(q), limit, ans.glue), owner

    def _sign(self, zone: Snapshot, q: Query, ans) -> None:
        """The signing stage (RFC 4035 §3.1, RFC 9824): RRSIGs from the signature cache, denial
        by compact NSECs."""
        zk = zone.keys
        now = self.clock()
        if not zk.epoch_until:
            zk.epoch_until = now + EPOCH
        self.signer.sign_answer(zone, zk, q.qtype, ans, now, q.edns.co)

    def _udp_limit(self, payload: int) -> int:
        """The largest UDP reply to a client that offers `payload`: below 512 counts as 512
        (RFC 6891 §6.2.5); never more than ours or one IPv4 datagram."""
        return min(max(512, payload), self.settings.edns_payload, MAX_UDP)

    def _compact_nxdomain(self, zone: Snapshot, q: Query, question: bytes, keep: int, limit: int,
                          later: list | None = None):  # fmt: skip
        """A signed name error (RFC 9824 §3.1): NOERROR, or NXDOMAIN with the CO flag; encoded
        straight from the signer's records. None when it does not fit `limit` (the general
        encoder then truncates); LATER when it went into `later` to be signed (`answer`)."""
        return self._denial(zone, q.key, q.id, keep, question, q.edns.co, self._opt(q), limit, later)

    def _denial(self, zone: Snapshot, qkey: bytes, qid: int, keep: int, question: bytes, co: bool, opt: bytes,
                limit: int, later: list | None):  # fmt: skip
        zk = zone.keys
        now = self.clock()
        if not zk.epoch_until:
            zk.epoch_until = now + EPOCH
        authority, count, pending = self.signer.compact_nxdomain(zone, zk, qkey, len(question), now, later is not None)
        head = pack("!6H", qid, keep | QR | AA | (NXDOMAIN if co else NOERROR), 1, 0, count, 1)
        if pending is not None:
            head += question + authority
            if len(head) + zk.nsec_sig_octets + len(opt) > limit:
                return None
            later.append(Deferred(head, pending, opt, qid, keep, question))
            return LATER
        reply = head + question + authority + opt
        return reply if len(reply) <= limit else None

    def _quick_denial(self, data: bytes, later: list):
        """The query of a random-subdomain flood against a signed zone, answered without the
        general parse: (reply or LATER, qtype), or None for any other query, which goes the
        general way. It takes one shape — a QUERY with one question in class IN and one OPT
        record (version 0, DO set, no options) ending the message — and only a name never asked
        lately that does not exist (the general way caches a repeated one). The reply is the one
        `_answer` gives (tests compare the two byte for byte)."""
        try:
            if data[-2:] != b"\x00\x00" or data[4:12] != _ONE_QUESTION_AND_OPT or data[2] & 0xF8:
                return None  # not ending with an OPT without options, other counts, QR or an opcode set
            try:
                qname, off = question_name(data)
            except QueryError:
                return None  # the general way answers FORMERR
            qend = off + 4
            if (len(data) != qend + 11 or data[qend - 2 : qend + 3] != b"\x00\x01\x00\x00\x29" or data[qend + 6]
                    or not data[qend + 7] & 0x80):  # fmt: skip
                return None  # not class IN, OPT not right after the question, EDNS version > 0, no DO
            qtype = (data[off] << 8) | data[off + 1]
            if qtype in _NOT_QUICK:
                return None
            qkey = qname.lower()
            zone = self.table.find(qkey, qtype)
            if zone is None or zone.keys is None or not is_name_error(zone, qkey, qtype) or self.doorkeeper.seen(qkey):
                return None
            co = bool(data[qend + 7] & 0x40)
            opt = self._quick_opts.get((self.settings.edns_payload, co))
            if opt is None:
                opt = self._quick_opts[(self.settings.edns_payload, co)] = opt_record(self.settings.edns_payload, 0, True, None, None, co)
            limit = self._udp_limit((data[qend + 3] << 8) | data[qend + 4])
            keep = ((data[2] << 8) | data[3]) & (_OPCODE_RD | CD)
            reply = self._denial(zone, qkey, (data[0] << 8) | data[1], keep, data[12:qend], co, opt, limit, later)
        except Exception:  # noqa: BLE001 - never expected: logged, and the general way answers it
            log.exception("internal error in the quick way for %r", data)
            return None
        return None if reply is None else (reply, qtype)

    def renew_signed(self) -> int:
        """Retire the cached replies of each signed zone whose epoch (EPOCH seconds) has ended, so
        that no reply is served with older signatures than the signer would now give; how many
        zones. The server calls this every minute."""
        now = self.clock()
        renewed = 0
        for zone in self.table.zones.values():
            zk = zone.keys
            if zk is not None and zk.epoch_until and now >= zk.epoch_until:
                old, zone.version = zone.version, Version()
                old.live = False
                zk.epoch_until = now + EPOCH
                renewed += 1
        return renewed

    def _opt(self, q: Query, ext_rcode: int = 0, ede: int | None = None) -> bytes | None:
        """Our OPT for the reply, when the query had one (RFC 6891 §7); the CO flag echoed when
        the client sent it with DO (RFC 9824 §4)."""
        edns = q.edns
        if edns is None:
            return None
        nsid = self.settings.nsid if edns.nsid and not ext_rcode else None
        return opt_record(self.settings.edns_payload, ext_rcode, edns.do, nsid, ede, edns.co and edns.do, edns.cookie)

    def _answer_chaos(self, q: Query, question: bytes, keep: int, limit: int) -> bytes:
        """CH TXT version.bind/id.server (RFC 4892) when configured, without AA as NSD and Knot
        answer them; REFUSED otherwise."""
        text = self.chaos.get(q.key)
        if text is None or q.qtype != TXT:
            return render_error(q.id, keep, question, REFUSED, self._opt(q))
        rrset = RRset(q.key, TXT, 0, (bytes([len(text)]) + text,), CH)
        return render(q.id, keep, question, q.key, ([rrset], [], []), self._opt(q), limit)


def _put_cookie(reply: bytes, at: int, cookie: bytes) -> bytes:
    """`reply` with a COOKIE option carrying `cookie` first in the OPT record that starts at `at`."""
    rdlen = unpack_from("!H", reply, at + 9)[0]
    return reply[: at + 9] + pack("!HHH", rdlen + 4 + len(cookie), OPT_COOKIE, len(cookie)) + cookie + reply[at + 11 :]


def _chaos_names(settings: EngineSettings) -> dict[bytes, bytes]:
    names = {}
    if settings.version:
        v = settings.version.encode()[:255]
        names[b"\x07version\x04bind\x00"] = names[b"\x07version\x06server\x00"] = v
    if settings.identity:
        i = settings.identity.encode()[:255]
        names[b"\x02id\x06server\x00"] = names[b"\x08hostname\x04bind\x00"] = i
    return names
