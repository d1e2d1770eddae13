"""The fuzz target: an Engine serving the test zones, DNSSEC-signed zones and one whose AXFR takes
several messages, with transfers, TSIG keys and NOTIFY handling as `minidns serve` sets them up;
and the properties every reply must have.

`Target.run(wire, tcp, peer)` pushes one message through `Engine.answer` (after the reply-cache
lookup the UDP and TCP protocols do first) and checks, raising `Failure` when one does not hold:

- no exception escapes, and nothing is logged at ERROR by minidns (the engine turns internal
  errors into SERVFAIL and logs them, so a log record is how an escaped exception shows);
- no reply only to a message shorter than a header or with QR set (RFC 1035 §4.1.1; RFC 8906
  §3.1: anything else gets an answer); never SERVFAIL;
- every reply, and every message of a transfer, parses with dnspython; its ID and opcode are the
  query's, QR is set; over UDP it fits the client's payload size (512 without EDNS);
- TSIG (RFC 8945): a reply to a request whose MAC verifies is signed and its MAC verifies against
  the request's (every message of a transfer, each chained to the one before); an unknown key
  or algorithm is NOTAUTH with an unsigned BADKEY, a MAC shorter than §5.2.2.1 allows (10 octets
  and half the hash) or longer than the hash an unsigned FORMERR, a wrong MAC an unsigned BADSIG, a
  time off by more than the fudge NOTAUTH with a BADTIME record signed with the key (§5.2,
  §5.3.2); a truncated MAC is checked on its octets, and the replies' MACs are truncated alike; a
  reply signed without error only to a request that verified.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from struct import pack, unpack_from

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.tsig

from minidns.dnssec import keys as K
from minidns.dnssec.signer import ZoneKeys
from minidns.answer.cookies import Cookies
from minidns.answer.engine import LATER, Engine, EngineSettings
from minidns.server.transfers import Acl, Transfers
from minidns.xfr.tsig import make_key
from minidns.zones.changes import pack_rrs
from minidns.zones.loader import load_zone_file, load_zone_text

from .gen import NOW, Keys

ZONES = Path(__file__).resolve().parent.parent / "zones"
CORPUS = Path(__file__).resolve().parent / "corpus"
COOKIE_SECRET = bytes(range(16))
SECRET = "c2VjcmV0LWZvci10aGUtdGVzdHMtb2YtbWluaWRucw=="
OTHER_SECRET = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="
SIGNED_ZONE = """
$TTL 300
@        SOA  ns1 hostmaster 7 7200 3600 1209600 60
@        NS   ns1
{dnskeys}
ns1      A    192.0.2.53
www      A    192.0.2.80
www      AAAA 2001:db8::80
mail     MX   10 mx
mx       A    192.0.2.25
alias    CNAME www
dangling CNAME nothere
*.wild   TXT  "from the wildcard"
a.b.c    TXT  "below an empty non-terminal"
dn       DNAME other.test.
secure   NS   ns.secure
secure   DS   12345 13 2 {digest}
ns.secure A   192.0.2.99
insecure NS   ns.elsewhere.test.
"""

GOOD_KEYS = (
    make_key("xfr-key.", "hmac-sha256", SECRET),
    make_key("md5-key.", "hmac-md5", SECRET),
    make_key("sha512-key.example.", "hmac-sha512", OTHER_SECRET),
)
KEYS = Keys(
    good=GOOD_KEYS,
    unknown=(make_key("other-key.", "hmac-sha256", SECRET), make_key("x.", "hmac-sha1", SECRET)),
    wrong=(make_key("xfr-key.", "hmac-sha256", OTHER_SECRET), make_key("md5-key.", "hmac-sha256", SECRET)),
)
KEYRING = {k.name: k for k in GOOD_KEYS}
TRUSTED = ("127.0.0.1", 53000)  # a peer the transfer ACL allows by address
STRANGER = ("198.51.100.7", 53000)
PEERS = (TRUSTED, STRANGER, ("::1", 53000), ("::ffff:127.0.0.1", 1), None)


class Failure(AssertionError):
    """A reply (or its absence) that breaks one of the properties above."""


class ErrorCounter(logging.Handler):
    """Counts records at ERROR and above, keeping the first few and the last."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: list[str] = []
        self.last = ""

    def emit(self, record):
        self.count += 1
        self.last = self.format(record)  # with the traceback, when there is one
        if len(self.first) < 5:
            self.first.append(self.last)


def signed_zone(origin: str = "signed.test."):
    keys = [K.generate(K.ECDSAP256SHA256, "csk")] if origin == "signed.test." else [K.generate(K.ED25519, "ksk"), K.generate(K.ED25519, "zsk")]
    lines = "\n".join(f"@ 3600 DNSKEY {k.flags} 3 {k.algorithm} {base64.b64encode(k.public).decode()}" for k in keys)
    snap = load_zone_text(SIGNED_ZONE.format(dnskeys=lines, digest="AB" * 32), origin)
    snap.keys = ZoneKeys(snap.origin, keys)
    return snap


def many_zone(records: int = 1500):
    """A zone whose AXFR takes several messages, so that TSIG chaining across them is checked."""
    lines = ["$TTL 60", "@ SOA ns1 hostmaster 1 7200 3600 1209600 60", "@ NS ns1", "ns1 A 192.0.2.1"]
    lines += [f'r{i} TXT "{"x" * 40} {i}"' for i in range(records)]
    return load_zone_text("\n".join(lines) + "\n", "many.test.")


def fake_history(zones):
    """A change log for example.com: serials 2026112199 -> 2026112200 -> 2026112201 (the served one)."""
    origin = dns.name.from_text("example.com.").to_wire()
    soa = lambda serial: (origin, 6, 3600, dns.name.from_text("ns1.example.com.").to_wire()  # noqa: E731
                          + dns.name.from_text("hostmaster.example.com.").to_wire() + pack("!5I", serial, 7200, 3600, 1209600, 300))  # fmt: skip
    www = dns.name.from_text("old.example.com.").to_wire()
    rows = [
        (2026112199, 2026112200, pack_rrs([soa(2026112199), (www, 1, 60, b"\xc0\0\2\1")]), pack_rrs([soa(2026112200)])),
        (2026112200, 2026112201, pack_rrs([soa(2026112200)]), pack_rrs([soa(2026112201), (www, 16, 60, b"\x02hi")])),
    ]

    async def history(snapshot):
        return rows if snapshot.origin == origin else None

    return history


class Target:
    """Engines to fuzz: `full` as `minidns serve` runs it (transfers, TSIG, NOTIFY, DNS cookies),
    `plain` without the transfer handler and cookies (what the engine answers by itself)."""

    def __init__(self, cache_entries: int = 200_000, signature_cache_entries: int = 100_000, cookie_memo: int = 65536):
        settings = EngineSettings(nsid=b"fuzz", version="minidns-fuzz", identity="fuzz-1", cache_entries=cache_entries,
                                  signature_cache_entries=signature_cache_entries)  # fmt: skip
        zones = [load_zone_file(str(p)) for p in sorted(ZONES.glob("*.zone"))]
        self.full = Engine(settings, clock=lambda: NOW)
        self.full.set_zones([*zones, signed_zone("signed.test."), signed_zone("ed.test."), many_zone()])
        xfr = Transfers(self.full, keyring=dict(KEYRING), acl=Acl.parse(["127.0.0.0/8", "::1", "key:xfr-key."]),
                        history=fake_history(zones), clock=lambda: NOW)  # fmt: skip
        xfr.zone_acls = {dns.name.from_text("signed.test.").to_wire(): Acl.parse(["key:xfr-key.", "key:md5-key."])}
        self.full.xfr = xfr
        self.full.cookies = Cookies(COOKIE_SECRET, clock=lambda: NOW, memo=cookie_memo)
        self.plain = Engine(settings, clock=lambda: NOW)
        self.plain.set_zones([*[load_zone_file(str(p)) for p in sorted(ZONES.glob("*.zone"))], signed_zone()])
        self.errors = ErrorCounter()
        self.counts = {"packets": 0, "replies": 0, "transfers": 0, "messages": 0, "signed": 0, "none": 0}
        self.rcodes: dict[int, int] = {}

    # -- logging ----------------------------------------------------------------------------------
    def __enter__(self):
        """Count ERROR records of minidns; keep its lower-level records (TSIG failures, refused
        transfers: warnings by design) from flooding whatever handlers the process has."""
        logger = logging.getLogger("minidns")
        self._saved = logger.propagate, logger.level
        logger.addHandler(self.errors)
        logger.propagate = False
        logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        logger = logging.getLogger("minidns")
        logger.removeHandler(self.errors)
        logger.propagate, level = self._saved
        logger.setLevel(level)

    # -- one message --------------------------------------------------------------------------------
    def run(self, wire: bytes, tcp: bool = False, peer=TRUSTED, plain: bool = False) -> list[bytes]:
        """Answer `wire` as the protocols do and check the reply; the reply messages."""
        engine = self.plain if plain else self.full
        self.counts["packets"] += 1
        before = self.errors.count
        cache = engine.tcp_cache if tcp else engine.udp_cache
        hit = cache.probe(wire[2:])  # what UdpProtocol/TcpProtocol look up before the engine
        if hit is not None and hit[1].live:
            reply = wire[:2] + hit[0]
        else:
            try:
                # UdpProtocol tries the cookie fast path first (Engine.splice_cookie), and finishes
                # the signed name errors it deferred (Engine.answer's `later`) after its reads.
                later = None if tcp else []
                spliced = None if tcp else engine.splice_cookie(wire, peer)
                reply = spliced[0] if spliced is not None else engine.answer(wire, tcp, peer, later)
                if reply is LATER:
                    reply = engine.finish(later)[0][0]
            except Exception as e:  # noqa: BLE001 - that is what the fuzzer looks for
                raise Failure(f"exception escaped Engine.answer: {e!r}") from e
        if self.errors.count != before:
            raise Failure("logged at ERROR: " + self.errors.last)
        if reply is None:
            self.counts["none"] += 1
            if len(wire) >= 12 and not wire[2] & 0x80:
                raise Failure("no reply to a message that needs one (RFC 8906)")
            return []
        if isinstance(reply, (bytes, bytearray)):
            messages = [bytes(reply)]
        else:
            if not tcp:
                raise Failure("a transfer stream over UDP")
            messages = drain(reply)
            self.counts["transfers"] += 1
        if self.errors.count != before:
            raise Failure("logged at ERROR during a transfer: " + self.errors.last)
        self.counts["replies"] += 1
        self.counts["messages"] += len(messages)
        check_replies(wire, messages, tcp, tsig=not plain)
        rc = messages[0][3] & 0xF
        self.rcodes[rc] = self.rcodes.get(rc, 0) + 1
        if len(messages[0]) > 12 and _has_tsig(messages[0]):
            self.counts["signed"] += 1
        return messages


def drain(stream, limit: int = 10_000) -> list[bytes]:
    """The messages of a transfer's async iterator, run without an event loop: nothing in it may
    wait on I/O (the fuzz target's change log answers at once)."""
    out = []
    agen = stream.__aiter__()
    while True:
        step = agen.__anext__()
        try:
            step.send(None)
        except StopIteration as e:
            out.append(e.value)
        except StopAsyncIteration:
            return out
        else:
            step.close()
            raise Failure("a transfer waited on something")
        if len(out) > limit:
            raise Failure("a transfer of more than %d messages" % limit)


def _has_tsig(msg: bytes) -> bool:
    return msg.find(b"\x00\xfa\x00\xff\x00\x00\x00\x00") >= 0


# -- the properties --------------------------------------------------------------------------


def read_request(wire: bytes):
    """The request as dnspython reads it (its TSIG not checked), or None when it cannot."""
    try:
        return dns.message.from_wire(wire, keyring=False)
    except Exception:  # noqa: BLE001 - a request dnspython does not parse
        return None


def tsig_status(wire: bytes, msg, now: int = NOW):
    """What the server should make of the request's TSIG, judged with dnspython's MAC and the clock
    (the fuzz clock unless `now` is given): (status, key, rdata) with status one of "unparsed" (dnspython cannot read the request:
    no expectation), None (no TSIG), "badkey", "formerr", "badsig", "badtime", "good"."""
    if msg is None:
        return "unparsed", None, None
    if not msg.had_tsig:
        return None, None, None
    rdata = msg.tsig[0]
    key = KEYRING.get(msg.keyname)
    if key is None or key.algorithm != rdata.algorithm:
        return "badkey", None, rdata
    full = dns.tsig.mac_sizes[key.algorithm]
    if not max(10, full // 2) <= len(rdata.mac) <= full:  # RFC 8945 §5.2.2.1 rules 1 and 3
        return "formerr", key, rdata
    expect = _full_mac(wire[: _request_tsig_start(wire, msg.keyname)], key, rdata, rdata.time_signed, None)
    if rdata.error or expect[: len(rdata.mac)] != rdata.mac:
        return "badsig", key, rdata
    if abs(rdata.time_signed - now) > rdata.fudge:
        return "badtime", key, rdata
    return "good", key, rdata


def _request_tsig_start(wire: bytes, owner: dns.name.Name) -> int:
    """Where the TSIG record that ends a request dnspython read starts (its owner may be compressed)."""
    for start in range(len(wire) - 11, 11, -1):
        try:
            name, used = dns.name.from_wire(wire, start)
        except dns.exception.DNSException:
            continue
        at = start + used
        if name == owner and unpack_from("!H", wire, at)[0] == 250 and at + 10 + unpack_from("!H", wire, at + 8)[0] == len(wire):
            return start
    raise Failure("no TSIG record at the end of a request dnspython read as signed")


def _full_mac(signed: bytes, key, rdata, time_signed: int, prior: bytes | None, ctx=None) -> bytes:
    """dnspython's untruncated MAC of a message given with its TSIG record cut off (and still
    counted in ARCOUNT), for the variables of `rdata`."""
    body = signed[:10] + pack("!H", unpack_from("!H", signed, 10)[0] - 1) + signed[12:]
    return dns.tsig.sign(body, key, rdata.replace(mac=b""), time_signed, prior, ctx, ctx is not None)[0].mac


def _tsig_start(msg: bytes, owner: dns.name.Name, rdata) -> int:
    """Where our reply's TSIG record starts: it is last and written uncompressed."""
    start = len(msg) - len(owner.to_wire()) - 10 - len(rdata.to_wire())
    if msg[start : start + len(owner.to_wire())].lower() != owner.to_wire().lower():
        raise Failure("the reply's TSIG record is not last or its owner is compressed")
    return start


def check_replies(wire: bytes, messages: list[bytes], tcp: bool, tsig: bool = True, now: int = NOW,
                  door: bool = False) -> None:  # fmt: skip
    """The properties above for the replies to `wire`; `now` is the server's clock, and `door` says
    that UPDATE is taken (a real server, tests/server/test_updates_fuzzed.py), not NOTIMP."""
    qid, qflags = unpack_from("!HH", wire)
    opcode = (qflags >> 11) & 0xF
    request = read_request(wire)
    parsed = []
    for i, msg in enumerate(messages):
        what = f"reply message {i}" if len(messages) > 1 else "reply"
        if len(msg) < 12:
            raise Failure(f"{what} shorter than a header")
        rid, rflags = unpack_from("!HH", msg)
        if rid != qid:
            raise Failure(f"{what} ID {rid} is not the query's {qid}")
        if not rflags & 0x8000:
            raise Failure(f"{what} without QR")
        if (rflags >> 11) & 0xF != opcode:
            raise Failure(f"{what} opcode {(rflags >> 11) & 0xF} is not the query's {opcode}")
        try:
            m = dns.message.from_wire(msg, keyring=False)
        except Exception as e:  # noqa: BLE001
            raise Failure(f"{what} does not parse with dnspython: {e!r}") from None
        if m.rcode() == dns.rcode.SERVFAIL:
            raise Failure(f"{what} is SERVFAIL (an internal error)")
        if tcp and rflags & 0x0200:
            raise Failure(f"{what} over TCP with TC set")
        if len(msg) > 65535:
            raise Failure(f"{what} longer than 65535 octets")
        _check_cookie(request, m, what)
        if opcode not in (0, 4) and not (door and opcode == 5) and m.rcode() not in _UNKNOWN_OPCODE_RCODES:
            raise Failure(f"opcode {opcode} answered {dns.rcode.to_text(m.rcode())}, not NOTIMP (RFC 8906 §3.1.4)")
        parsed.append(m)
    if not tcp:
        limit = _udp_limit(request)
        if len(messages[0]) > limit:
            raise Failure(f"UDP reply of {len(messages[0])} octets, over the client's {limit}")
    if tsig:
        _check_tsig(wire, request, messages, parsed, now)


def _check_cookie(request, reply, what: str) -> None:
    """A COOKIE option in a reply (RFC 7873 §5.2.2): the request's client cookie, then a server
    cookie of 8 to 32 octets."""
    for option in reply.options:
        if option.otype != 10:
            continue
        data = option.to_wire() if hasattr(option, "to_wire") else b""
        if not 16 <= len(data) <= 40:
            raise Failure(f"{what} COOKIE option of {len(data)} octets")
        sent = [o.to_wire() for o in (request.options if request is not None else ()) if o.otype == 10]
        if sent and sent[0][:8] != data[:8]:
            raise Failure(f"{what} COOKIE does not start with the request's client cookie")


# An opcode other than QUERY and NOTIFY: NOTIMP, or an error found before the opcode is looked at
# (FORMERR, BADVERS, a TSIG failure's NOTAUTH).
_UNKNOWN_OPCODE_RCODES = (dns.rcode.NOTIMP, dns.rcode.FORMERR, dns.rcode.BADVERS, dns.rcode.NOTAUTH)


def _udp_limit(q) -> int:
    if q is None:  # not a query dnspython can read: only an error reply goes back
        return 65507
    if q.edns < 0:
        return 512
    return max(512, min(q.payload, 65507))


def _check_tsig(wire: bytes, request, messages: list[bytes], parsed, now: int = NOW) -> None:
    status, key, qrdata = tsig_status(wire, request, now)
    first = parsed[0]
    rcode = first.rcode()
    if status == "unparsed":
        return
    if status is None:
        for m in parsed:
            if m.had_tsig and m.tsig_error == 0:
                raise Failure("a signed reply to a request without a valid TSIG")
        return
    if rcode == dns.rcode.FORMERR and not first.had_tsig:
        return  # a request that did not parse far enough to reach its TSIG (RFC 8945 §5.4 allows it)
    if status == "formerr":
        if rcode != dns.rcode.FORMERR or first.had_tsig:
            raise Failure(f"MAC of {len(qrdata.mac)} octets: reply rcode {dns.rcode.to_text(rcode)}; want an unsigned FORMERR")
        return
    if status in ("badkey", "badsig"):
        want = dns.rcode.BADKEY if status == "badkey" else dns.rcode.BADSIG
        if rcode != dns.rcode.NOTAUTH or not first.had_tsig or first.tsig_error != want:
            raise Failure(f"{status} request: reply rcode {dns.rcode.to_text(rcode)}, "
                          f"TSIG error {first.tsig_error if first.had_tsig else 'none'}; want NOTAUTH + {dns.rcode.to_text(want)}")  # fmt: skip
        if first.tsig[0].mac:
            raise Failure(f"{status} reply is signed (RFC 8945 §5.3.2: it must not be)")
        return
    if not first.had_tsig:
        raise Failure(f"unsigned reply (rcode {dns.rcode.to_text(rcode)}) to a request whose TSIG is {status}")
    if status == "badtime":
        if rcode != dns.rcode.NOTAUTH or first.tsig_error != dns.rcode.BADTIME:
            raise Failure(f"badtime request: reply rcode {dns.rcode.to_text(rcode)} TSIG error {first.tsig_error}")
        r = first.tsig[0]
        start = _tsig_start(messages[0], first.keyname, r)
        if _full_mac(messages[0][:start], key, r, r.time_signed, qrdata.mac)[: len(qrdata.mac)] != r.mac:
            raise Failure("BADTIME reply's MAC does not verify (truncated as the request's)")
        return
    # good: every message signed, MACs truncated as the request's and chained as sent (RFC 8945
    # §5.2.2.1, §5.3.1)
    prior = qrdata.mac
    for i, (msg, m) in enumerate(zip(messages, parsed)):
        if not m.had_tsig:
            raise Failure(f"reply message {i} to a signed request is unsigned")
        r = m.tsig[0]
        if m.tsig_error:
            raise Failure(f"reply message {i} to a valid signed request has TSIG error {m.tsig_error}")
        if m.keyname != key.name:
            raise Failure(f"reply signed with {m.keyname}, not the request's {key.name}")
        try:
            ctx = None
            if i > 0:
                ctx = dns.tsig.get_context(key)
                ctx.update(pack("!H", len(prior)) + prior)
            expect = _full_mac(msg[: _tsig_start(msg, m.keyname, r)], key, r, r.time_signed, prior if i == 0 else None, ctx)
            if len(r.mac) != len(qrdata.mac) or expect[: len(r.mac)] != r.mac:
                raise dns.tsig.BadSignature
            prior = r.mac
        except dns.exception.DNSException as e:
            raise Failure(f"reply message {i}: its MAC does not verify ({type(e).__name__})") from None
