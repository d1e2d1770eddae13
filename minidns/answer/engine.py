"""Query bytes → reply bytes from the current zone table, in one fixed order of stages: check
(opcode, class, EDNS, cookie) → route (zone) → look up → sign → encode; the reply cache in front.
No sockets and no asyncio here: the transports (server/transport.py) only move bytes."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from ..dnssec.signer import EPOCH, SignatureCache, Signer
from ..wire import (
    AA,
    ANYCLASS,
    AXFR,
    CH,
    EDE_NOT_AUTHORITATIVE,
    IN,
    IXFR,
    NOTIFY,
    QUERY,
    REFUSED,
    SERVFAIL,
    UPDATE,
)
from ..wire.query import Query, parse_query
from ..wire.render import insert_cookie, opt_record, render, render_error
from ..zones.lookup import is_name_error, resolve
from ..zones.snapshot import Snapshot, Version
from ..zones.table import ZoneTable
from . import denial
from .cache import Doorkeeper, ReplyCache
from .chaos import answer_chaos, chaos_names
from .check import ECHOED, KEEP, OPCODE_RD, check, malformed, udp_limit
from .cookies import REPLY_COOKIE, option_free_opt, trailing_cookie
from .denial import LATER, MAX_LATER, flood_question
from .stats import MALFORMED, QueryStats

__all__ = ["Engine", "EngineSettings", "LATER", "MAX_LATER", "ReplyCache"]

log = logging.getLogger("minidns.engine")

_NSID_ONLY = (b"", b"\x00\x03\x00\x00")  # option sets whose replies do not depend on the client
_XFR_TYPES = (AXFR, IXFR)
_XFR_OPCODES = (NOTIFY, UPDATE)  # handed to the transfers' side (server/transfers.py), as signed messages are
_ANSWERED_CLASSES = (IN, ANYCLASS)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    edns_payload: int = 1232  # RFC 6891 §6.2.5 and the DNS flag day 2020 value
    nsid: bytes | None = None  # RFC 5001 server identifier, sent when asked for
    version: str | None = None  # CH TXT version.bind / version.server when set
    identity: str | None = None  # CH TXT id.server / hostname.bind when set
    cache_entries: int = 200_000  # replies kept, over two generations
    signature_cache_entries: int = 100_000  # DNSSEC signatures kept (least recently used dropped)


class Engine:
    """Answers queries from the current zone table. The transports probe `udp_cache`/`tcp_cache`
    themselves first (ReplyCache.probe) and splice the ID onto a live hit; `answer`/`respond` is
    everything else."""

    def __init__(self, settings: EngineSettings = EngineSettings(), clock=time.time):
        self.settings = settings
        self.clock = clock  # for signature validity; tests move it
        self.signer = Signer(SignatureCache(settings.signature_cache_entries))
        self.table = ZoneTable()
        self.udp_cache = ReplyCache(settings.cache_entries)
        self.tcp_cache = ReplyCache(settings.cache_entries // 4)
        self.doorkeeper = Doorkeeper(max(1024, settings.cache_entries // 8))
        self.chaos = chaos_names(settings.version, settings.identity)
        self.xfr = None  # server/transfers.Transfers: transfers, NOTIFY and TSIG-signed messages
        self.stats = QueryStats()
        self.cookies = None  # answer/cookies.Cookies: DNS cookies answered (RFC 7873); None ignores them
        self._quick_opts: dict[tuple[int, bool], bytes] = {}  # quick_denial's OPT records

    def set_identity(self, nsid: bytes | None, version: str | None, identity: str | None) -> None:
        """New NSID and CH TXT answers (a SIGHUP); cached replies, which may hold the old, dropped."""
        self.settings = dataclasses.replace(self.settings, nsid=nsid, version=version, identity=identity)
        self.chaos = chaos_names(version, identity)
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

    # -- answering --------------------------------------------------------------------------
    def answer(self, data: bytes, tcp: bool = False, peer=None, later: list | None = None):
        """The reply to one query message (`respond` without its cookie outcome)."""
        return self.respond(data, tcp, peer, later)[0]

    def respond(self, data: bytes, tcp: bool = False, peer=None, later: list | None = None):
        """(reply, cookie): the reply to one query message, or None when RFC 1035 §4.1.1 says not
        to reply — over TCP a zone transfer is an async iterator of messages instead
        (server/transfers.py); and for a query with a COOKIE, (the reply's cookie, whether the
        query's server cookie was valid) — what RRL needs (RFC 7873 §5.2.3) — else None.

        `later` (UDP): a list the caller finishes (`finish`) once the datagrams at hand are read.
        A signed name error whose NSEC must be signed anew goes there and LATER is returned, so a
        burst of them — a random-subdomain flood — is signed back to back: signing one after
        another keeps the signing code and its tables in the CPU's caches, where answering in
        between evicts them (bench/dnssec.py --flood: 13,000 → 18,300 replies a second)."""
        started = time.perf_counter()
        quick = self.quick_denial(data, later) if later is not None else None
        if quick is not None:
            reply, qtype, cookie = quick[0], quick[1], None
        else:
            reply, qtype, cookie = self._answer_message(data, tcp, peer, later)
        if qtype is not None:  # not a cache hit: counted and timed here, off the fast path
            if reply is LATER:
                d = later[-1]
                d.query, d.peer, d.started, d.qtype = data, peer, started, qtype
            else:
                self.stats.answered(tcp, qtype, reply, time.perf_counter() - started)
        return reply, cookie

    def finish(self, later: list) -> list[tuple[bytes, object, bytes]]:
        """The replies deferred into `later` (which is emptied), each with the peer it goes to and
        the query it answers: their NSEC signatures made one after another (denial.finish)."""
        return denial.finish(self.signer, self.stats, later, time.perf_counter)

    def withdraw(self, later: list) -> denial.Deferred:
        """The last reply deferred into `later`, taken out unsigned (response rate limiting will not
        send it whole); counted in the statistics as a reply made at once is, before RRL."""
        d = later.pop()
        self.stats.answered(False, d.qtype, d.head + d.tail, time.perf_counter() - d.started)
        return d

    def _answer_message(self, data: bytes, tcp: bool, peer, later: list | None = None):
        """(reply, the query type for the statistics — None for a cache hit, counted as one — and
        the cookie outcome)."""
        try:
            query = parse_query(data)
        except Exception as e:  # noqa: BLE001 - whatever the parser missed is still a malformed message
            return malformed(data, e), MALFORMED, None
        if query is None:  # a response: RFC 1035 §4.1.1, no reply
            return None, MALFORMED, None
        cookie = None
        if query.edns is not None and query.edns.cookie is not None:
            query, fast, cookie = self.check_cookie(query, data, tcp, peer)
            if fast is not None:
                return fast[0], fast[1], cookie
        if self.xfr is not None and (query.tsig or query.opcode in _XFR_OPCODES or query.qtype in _XFR_TYPES):
            try:
                return self.xfr.handle(query, data, tcp, peer), query.qtype, cookie
            except Exception:  # noqa: BLE001 - RFC 8906: never leave a query unanswered
                log.exception("internal error answering %r", data)
                return self._servfail(query, data), query.qtype, cookie
        reply, qtype = self._answer_cached(query, data, tcp, later)
        return reply, qtype, cookie

    def _answer_cached(self, query: Query, data: bytes, tcp: bool, later: list | None):
        """(reply, qtype or None for a hit): the cache stage — the whole reply cache, letter case
        folded (DNS 0x20) — in front of the stages, and what they give kept in it."""
        cache = self.tcp_cache if tcp else self.udp_cache
        # A client that varies letter case is served from the lowercase entry; the splice needs
        # the question name as long as its lowercase form, i.e. not compressed.
        plain = len(query.qname) == query.qend - 16
        folded = plain and query.qname != query.key
        key = data[2:12] + query.key + data[query.qend - 4 :] if folded else data[2:]
        hit = cache.get(key) if plain else None
        if hit is not None and hit[1].live:
            self.stats.engine_hits[tcp] += 1
            tail = hit[0]
            return data[:2] + tail[:10] + data[12 : query.qend] + tail[query.qend - 2 :], None
        try:
            reply, owner = self.stages(query, data, tcp, 0, later)
        except Exception:  # noqa: BLE001 - RFC 8906: never leave a query unanswered
            log.exception("internal error answering %r", data)
            return self._servfail(query, data), query.qtype
        cacheable = (query.edns is None or query.edns.options in _NSID_ONLY) and not query.tsig
        if owner is not None and cacheable and plain:
            tail = reply[2:]
            if folded:
                tail = tail[:10] + key[10 : query.qend - 2] + tail[query.qend - 2 :]
            cache.put(key, (tail, owner))
        return reply, query.qtype

    @staticmethod
    def _servfail(query: Query, data: bytes) -> bytes:
        return render_error(query.id, query.flags & OPCODE_RD, data[12 : query.qend], SERVFAIL, None)

    # -- the stages -------------------------------------------------------------------------
    def stages(self, q: Query, data: bytes, tcp: bool, room: int = 0, later: list | None = None):
        """check → route → look up → sign → encode: (reply, what its cache entry depends on, or
        None when it must not be cached). `room` octets are left free below the size limit (for
        the TSIG record of a signed reply); the reply is LATER when it was deferred into `later`
        (see `respond`)."""
        question = data[12 : q.qend] if q.opcode in ECHOED else b""
        error = check(q, tcp, question, self.reply_opt)
        if error is not None:
            return error, None
        if tcp:
            limit = 65535 - room
        elif q.edns is None:
            limit = 512 - room
        else:
            limit = udp_limit(q.edns.payload, self.settings.edns_payload) - room
        keep = q.flags & KEEP
        table = self.table
        if q.qclass == CH:
            return answer_chaos(self.chaos, q, question, keep, self.reply_opt(q), limit), table.version
        if q.qclass not in _ANSWERED_CLASSES:
            return render_error(q.id, keep, question, REFUSED, self.reply_opt(q)), table.version
        zone = table.find(q.key, q.qtype)
        if zone is None:  # a name outside every zone: EDE "Not Authoritative", as NSD and Knot
            opt = self.reply_opt(q, 0, EDE_NOT_AUTHORITATIVE)
            return render_error(q.id, keep, question, REFUSED, opt), table.version
        return self.zone_stages(zone, q, question, keep, limit, later)

    def zone_stages(self, zone: Snapshot, q: Query, question: bytes, keep: int, limit: int, later: list | None):
        """look up → sign → encode in a routed zone: (reply, cache owner or None). A signed name
        error takes the compact-denial stage; anything it cannot fit goes the general way."""
        owner = zone.version
        signed = zone.keys is not None and q.edns is not None and q.edns.do
        if signed and is_name_error(zone, q.key, q.qtype):  # what a random-subdomain flood asks for
            if not self.doorkeeper.seen(q.key):
                owner = None  # not cached before the name is asked again
            reply = self.compact_denial(zone, q, question, keep, limit, later)
            if reply is not None:
                return reply, (owner if reply is not LATER else None)
        ans = resolve(zone, q.key, q.qtype)
        if not signed and ans.nxname is not None and not ans.answer and not self.doorkeeper.seen(q.key):
            owner = None
        if signed:
            ans = self.sign(zone, q, ans)
        flags = keep | ans.rcode | (AA if ans.aa else 0)
        sections = (ans.answer, ans.authority, ans.additional)
        return render(q.id, flags, question, q.key, sections, self.reply_opt(q), limit, ans.glue), owner

    def sign(self, zone: Snapshot, q: Query, ans):
        """The sign stage (RFC 4035 §3.1, RFC 9824): the Answer with RRSIGs from the signature
        cache and denial by compact NSECs, as a new Answer."""
        return self.signer.sign_answer(zone, self._zone_keys(zone), q.qtype, ans, self.clock(), q.edns.co)

    def _zone_keys(self, zone: Snapshot):
        """The zone's keys, its signing epoch started on first use (see renew_signed)."""
        zk = zone.keys
        if not zk.epoch_until:
            zk.epoch_until = self.clock() + EPOCH
        return zk

    def compact_denial(self, zone: Snapshot, q: Query, question: bytes, keep: int, limit: int,
                       later: list | None = None):  # fmt: skip
        """A signed name error (RFC 9824 §3.1): NOERROR, or NXDOMAIN with the CO flag; encoded
        from the signer's records. None when it does not fit `limit` (the general encoder then
        truncates); LATER when it went into `later` to be signed (`respond`)."""
        return self._denial(zone, q.key, q.id, keep, question, q.edns.co, self.reply_opt(q), limit, later)

    def _denial(self, zone: Snapshot, qkey: bytes, qid: int, keep: int, question: bytes, co: bool, opt: bytes,
                limit: int, later: list | None):  # fmt: skip
        zk = zone.keys
        now = self.clock()
        if not zk.epoch_until:  # the signing epoch starts on first use (see renew_signed)
            zk.epoch_until = now + EPOCH
        records = self.signer.compact_nxdomain(zone, zk, qkey, len(question), now, later is not None)
        return denial.encode_denial(records, qid, keep, question, co, opt, limit, zk.nsec_sig_octets, later)

    def quick_denial(self, data: bytes, later: list):
        """The compact-denial stage for a query of the random-subdomain flood's shape
        (denial.flood_question), without the general parse: (reply or LATER, qtype), or None for
        any other query, which goes the general way — as does a name asked lately (the general
        way caches a repeated one). The reply is the one `stages` gives (tests compare the two
        byte for byte)."""
        try:
            found = flood_question(data)
            if found is None:
                return None
            qname, qend, qtype = found
            qkey = qname.lower()
            zone = self.table.find(qkey, qtype)
            if zone is None or zone.keys is None or not is_name_error(zone, qkey, qtype) or self.doorkeeper.seen(qkey):
                return None
            co = bool(data[qend + 7] & 0x40)
            limit = udp_limit((data[qend + 3] << 8) | data[qend + 4], self.settings.edns_payload)
            keep = ((data[2] << 8) | data[3]) & KEEP
            opt = self._quick_opts.get((self.settings.edns_payload, co)) or self._quick_opt(co)
            reply = self._denial(zone, qkey, (data[0] << 8) | data[1], keep, data[12:qend], co, opt, limit, later)
        except Exception:  # noqa: BLE001 - never expected: logged, and the general way answers it
            log.exception("internal error in the quick way for %r", data)
            return None
        return None if reply is None else (reply, qtype)

    def _quick_opt(self, co: bool) -> bytes:
        """Our OPT for a flood-shaped query's reply (DO set, no options; CO echoed), made once."""
        payload = self.settings.edns_payload
        opt = self._quick_opts[(payload, co)] = opt_record(payload, 0, True, None, None, co)
        return opt

    def reply_opt(self, q: Query, ext_rcode: int = 0, ede: int | None = None) -> bytes | None:
        """Our OPT for the reply, when the query had one (RFC 6891 §7); the CO flag echoed when
        the client sent it with DO (RFC 9824 §4)."""
        edns = q.edns
        if edns is None:
            return None
        nsid = self.settings.nsid if edns.nsid and not ext_rcode else None
        return opt_record(self.settings.edns_payload, ext_rcode, edns.do, nsid, ede, edns.co and edns.do, edns.cookie)

    # -- the cookie stages (RFC 7873) -------------------------------------------------------
    def check_cookie(self, q: Query, data: bytes, tcp: bool, peer):
        """The check stage of a query with a COOKIE option (RFC 7873 §5.2): (the query carrying
        the reply's cookie in place of the client's, or none when cookies are off; the (reply,
        qtype) when it was made by splicing; the cookie outcome (cookie, valid), or None). Replies
        with a cookie are never cached, since the cookie is the client's; the splice is the
        cached reply to the same query without the option, with the cookie put into its OPT."""
        edns = q.edns
        if self.cookies is None:
            return dataclasses.replace(q, edns=dataclasses.replace(edns, cookie=None)), None, None
        cookie, valid = self.cookies.reply(edns.cookie, peer)
        fast = self._with_cookie(q, data, tcp, peer, cookie)
        if fast is not None:
            return q, fast, (cookie, valid)
        return dataclasses.replace(q, edns=dataclasses.replace(edns, cookie=cookie)), None, (cookie, valid)

    def splice_cookie(self, data: bytes, peer):
        """The UDP cookie-splice stage, for a query whose one EDNS option is a COOKIE, last
        (cookies.trailing_cookie), without parsing it: (the cached reply to the same query without
        the option — every other byte equal — with the reply's cookie spliced into its OPT, the
        cookie outcome (cookie, valid)). None sends the query the whole way (`respond`), which
        gives the same reply."""
        if self.cookies is None:
            return None
        size = trailing_cookie(data)
        if size is None:
            return None
        hit = self.udp_cache.get(data[2 : -size - 6] + b"\x00\x00")
        if hit is None or not hit[1].live:
            return None
        tail = hit[0]
        if tail[-11:-8] != b"\x00\x00\x29" or tail[-2:] != b"\x00\x00":  # our OPT last, without options
            return None
        payload = (data[-size - 12] << 8) | data[-size - 11]
        # The reply's cookie is checked to fit before it is made, so a reply that would not fit
        # goes the whole way without making it twice.
        if 2 + len(tail) + 4 + REPLY_COOKIE > udp_limit(payload, self.settings.edns_payload):
            return None
        cookie, valid = self.cookies.reply(data[-size:], peer)
        self.stats.engine_hits[0] += 1
        return insert_cookie(data[:2] + tail, len(tail) - 9, cookie), (cookie, valid)

    def _with_cookie(self, q: Query, data: bytes, tcp: bool, peer, cookie: bytes):
        """(reply, qtype): the reply to `data` without its COOKIE option — from the cache when it is
        there — with `cookie` put first into its OPT; None when that cannot be done (another option,
        a transfer, a reply that would no longer fit)."""
        edns = q.edns
        n = len(edns.options)
        if edns.options[:2] != b"\x00\x0a" or n != len(edns.cookie) + 4 or q.tsig or q.opcode != QUERY or q.qtype in _XFR_TYPES:
            return None
        if not data.endswith(edns.options) or data[-n - 2 : -n] != n.to_bytes(2, "big"):  # the OPT is not last
            return None
        plain = data[: -n - 2] + b"\x00\x00"
        hit = (self.tcp_cache if tcp else self.udp_cache).get(plain[2:])
        if hit is not None and hit[1].live:
            self.stats.engine_hits[tcp] += 1
            reply, qtype = plain[:2] + hit[0], None
        else:
            reply, qtype, _ = self._answer_message(plain, tcp, peer)
            if reply is None:
                return None
        at = option_free_opt(reply, q.qend)
        if at is None:
            return None
        reply = insert_cookie(reply, at, cookie)
        if not tcp and len(reply) > udp_limit(edns.payload, self.settings.edns_payload):
            return None
        return reply, qtype
