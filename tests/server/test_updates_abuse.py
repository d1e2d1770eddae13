"""Bad input for dynamic UPDATE (issue #20, "Bad input") against one real `minidns serve` on a real
PostgreSQL, shared by the module: unsigned, unknown key, wrong secret and a stale time (RFC 8945
§5.2: NOTAUTH with the TSIG error; the BADTIME reply signed, §5.3.2), a replayed message,
names outside the zone (RFC 2136 §3.4.1.3 NOTZONE), the biggest update one TCP message holds
against `update_max_records`, header counts that lie, a message cut short or sent in slow pieces
(RFC 1035 §4.2.2 framing), the same updates over UDP and TCP, and 50 clients updating one zone at
once. Last, a fresh `minidns serve` on the same database serves exactly what the running one does:
what was acknowledged is committed, and nothing is half-written or only in memory. Fuzzed
UPDATE messages are in test_updates_fuzzed.py."""

from __future__ import annotations

import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.zone
import pytest

from test_transfers import SECRET, ZONE, axfr_zone, make_zone, write_config  # tests/server is on sys.path
from tests.fuzz.make_corpus import tsig

KEYRING = dns.tsigkeyring.from_text({"upd-key.": ("hmac-sha256", SECRET)})
KEY = KEYRING[dns.name.from_text("upd-key.")]
UNKNOWN = dns.tsigkeyring.from_text({"no-such-key.": ("hmac-sha256", SECRET)})
WRONG = dns.tsigkeyring.from_text({"upd-key.": ("hmac-sha256", "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")})
MAX_RECORDS = 4000  # below the count of the biggest update one TCP message holds (test_the_biggest_update...)
CONFIG = f"""
tsig_keys = [{{ name = "upd-key.", algorithm = "hmac-sha256", secret = "{SECRET}" }}]
update_grants = [{{ key = "upd-key.", zone = "{ZONE}", match = "zone" }}]
update_max_records = {MAX_RECORDS}
"""


@pytest.fixture(scope="module")
def server(module_serve, new_database, tmp_path_factory):
    """One server for the module, on its own database holding ZONE (h0..h2, ns1, mail, txt); key
    upd-key. may change the whole zone. `server.args` start another on the same database."""
    with new_database() as url:
        make_zone(url, hosts=3)
        conf = write_config(tmp_path_factory.mktemp("abuse"), CONFIG)
        args = ("--database-url", url, "--config", conf, "--listen", "127.0.0.1:0")
        s = module_serve(*args)
        s.args = args
        yield s
        s.stop()  # before its database is dropped


# -- talking to the server ------------------------------------------------------------------------


def update(zone: str = ZONE, keyring=KEYRING) -> dns.update.UpdateMessage:
    return dns.update.UpdateMessage(zone, keyring=keyring, keyalgorithm="hmac-sha256") if keyring else dns.update.UpdateMessage(zone)


def exchange(port: int, wire: bytes, tcp: bool, timeout: float = 10) -> bytes:
    """The reply to `wire` sent as it is (no re-signing, unlike dns.query)."""
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            return read_frame(sock)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(wire, ("127.0.0.1", port))
        while True:
            reply, _ = sock.recvfrom(65535)
            if reply[:2] == wire[:2]:
                return reply


def read_frame(sock: socket.socket) -> bytes:
    size = struct.unpack("!H", read_exactly(sock, 2))[0]
    return read_exactly(sock, size)


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} octets")
        data += chunk
    return data


def signed_reply(reply: bytes, request: dns.message.Message) -> dns.message.Message:
    """The reply read by dnspython, its TSIG checked against the request's MAC."""
    return dns.message.from_wire(reply, keyring=KEYRING, request_mac=request.mac)


def ask(port: int, name: str, rdtype: str) -> list[str]:
    r = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=5)
    return sorted(rd.to_text() for rrset in r.answer for rd in rrset)


def serial(port: int) -> int:
    return int(ask(port, ZONE, "SOA")[0].split()[2])


def send(port: int, m: dns.message.Message, tcp: bool = False) -> int:
    q = dns.query.tcp if tcp else dns.query.udp
    return q(m, "127.0.0.1", port=port, timeout=10).rcode()


# -- who may update --------------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_unsigned_is_refused_and_nothing_written(server, tcp):
    m = update(keyring=None)
    m.add(f"unsigned-{tcp}", 60, "A", "192.0.2.1")
    before = serial(server.port)
    r = dns.message.from_wire(exchange(server.port, m.to_wire(), tcp))
    assert r.rcode() == dns.rcode.REFUSED and not r.had_tsig and r.opcode() == dns.opcode.UPDATE
    assert ask(server.port, f"unsigned-{tcp}.{ZONE}", "A") == [] and serial(server.port) == before


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("keyring, error, raised", [
    (UNKNOWN, dns.rcode.BADKEY, dns.tsig.PeerBadKey),
    (WRONG, dns.rcode.BADSIG, dns.tsig.PeerBadSignature),
], ids=["unknown-key", "wrong-secret"])  # fmt: skip
def test_a_key_the_server_cannot_verify_is_notauth_with_an_unsigned_tsig_error(server, tcp, keyring, error, raised):
    """RFC 8945 §5.2.1, §5.2.2: NOTAUTH, the TSIG error in a TSIG record without a MAC (§5.3.2: the
    server cannot sign with a key it does not have or a MAC it could not verify)."""
    m = update(keyring=keyring)
    m.add(f"badkey-{tcp}", 60, "A", "192.0.2.1")
    wire = m.to_wire()
    r = dns.message.from_wire(exchange(server.port, wire, tcp), keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and r.opcode() == dns.opcode.UPDATE and r.id == m.id
    assert r.had_tsig and r.tsig_error == error and r.tsig[0].mac == b""
    with pytest.raises(raised):  # what a client sees: dnspython raises on the reply's TSIG error
        dns.message.from_wire(exchange(server.port, wire, tcp), keyring=keyring, request_mac=m.mac)
    assert ask(server.port, f"badkey-{tcp}.{ZONE}", "A") == []


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("offset", [-3600, 3600], ids=["an-hour-ago", "an-hour-ahead"])
def test_a_stale_signature_is_notauth_badtime_signed_with_the_servers_time(server, tcp, offset):
    """RFC 8945 §5.2.3: a time off by more than the fudge is NOTAUTH with BADTIME; the reply is
    signed with the key (§5.3.2) over the request's MAC, and its Other Data is the server's time
    so that the client can tell how far off its clock is. dnspython raises PeerBadTime on it."""
    m = update(keyring=None)
    m.id = 0x4242
    m.add(f"stale-{tcp}-{offset}", 60, "A", "192.0.2.1")
    wire = tsig(m.to_wire(), KEY, time=int(time.time()) + offset)
    request_mac = dns.message.from_wire(wire, keyring=False).tsig[0].mac
    reply = exchange(server.port, wire, tcp)
    r = dns.message.from_wire(reply, keyring=False)
    assert r.rcode() == dns.rcode.NOTAUTH and r.opcode() == dns.opcode.UPDATE and r.id == 0x4242
    assert r.had_tsig and r.tsig_error == dns.rcode.BADTIME
    rd = r.tsig[0]
    assert abs(int.from_bytes(rd.other, "big") - time.time()) < 5 and len(rd.other) == 6
    start = len(reply) - len(KEY.name.to_wire()) - 10 - len(rd.to_wire())
    body = reply[:10] + struct.pack("!H", struct.unpack_from("!H", reply, 10)[0] - 1) + reply[12:start]
    assert dns.tsig.sign(body, KEY, rd.replace(mac=b""), rd.time_signed, request_mac)[0].mac == rd.mac
    with pytest.raises(dns.tsig.PeerBadTime):
        dns.message.from_wire(reply, keyring=KEYRING, request_mac=request_mac)
    assert ask(server.port, f"stale-{tcp}-{offset}.{ZONE}", "A") == []


# -- a replayed message ----------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_replayed_idempotent_update_is_answered_twice_and_changes_the_zone_once(server, tcp):
    """The same signed bytes sent twice inside the fudge: TSIG keeps no replay cache (RFC 8945 §5.2.3
    only bounds the time; BIND and Knot keep none either), so both are verified and applied — and
    an add of what is there is no change (RFC 2136 §3.4.2.2): one new serial, one record."""
    m = update()
    m.add(f"replay-{tcp}", 60, "A", "192.0.2.7")
    wire = m.to_wire()
    before = serial(server.port)
    assert signed_reply(exchange(server.port, wire, tcp), m).rcode() == dns.rcode.NOERROR
    assert serial(server.port) == before + 1
    assert signed_reply(exchange(server.port, wire, tcp), m).rcode() == dns.rcode.NOERROR
    assert serial(server.port) == before + 1
    assert ask(server.port, f"replay-{tcp}.{ZONE}", "A") == ["192.0.2.7"]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_replay_is_stopped_by_the_updates_own_prerequisites(server, tcp):
    """What protects against a replay is the prerequisites (RFC 2136 §2.4, as nsupdate and Kea
    write them): "name not in use" + add is NOERROR once, then YXDOMAIN, and changes nothing."""
    m = update()
    m.absent(f"guarded-{tcp}")
    m.add(f"guarded-{tcp}", 60, "TXT", '"first"')
    wire = m.to_wire()
    before = serial(server.port)
    assert signed_reply(exchange(server.port, wire, tcp), m).rcode() == dns.rcode.NOERROR
    assert signed_reply(exchange(server.port, wire, tcp), m).rcode() == dns.rcode.YXDOMAIN
    assert serial(server.port) == before + 1
    assert ask(server.port, f"guarded-{tcp}.{ZONE}", "TXT") == ['"first"']


# -- names outside the zone -----------------------------------------------------------------------


@pytest.mark.parametrize("outside", ["x.elsewhere.", "xxfr.test.", "test.", "."])
@pytest.mark.parametrize("section", ["update", "prerequisite"])
def test_a_name_outside_the_zone_is_notzone_and_nothing_of_the_message_is_written(server, outside, section):
    """RFC 2136 §3.2 and §3.4.1.3: a record whose owner is not in the zone — a sibling whose name
    merely ends in the zone's text ("xxfr.test.") included — makes the whole message NOTZONE; the
    in-zone add before it is not written (§3.7)."""
    m = update()
    name = f"nz-{section}-{outside.replace('.', '-')}"
    m.add(name, 60, "A", "192.0.2.1")
    if section == "update":
        m.add(outside, 60, "A", "192.0.2.2")
    else:
        m.present(outside)
    assert send(server.port, m) == dns.rcode.NOTZONE
    assert ask(server.port, f"{name}.{ZONE}", "A") == []


@pytest.mark.parametrize("zone", [f"sub.{ZONE}", "test.", "nothere.test."])
def test_a_zone_section_not_naming_a_served_zone_exactly_is_notauth(server, zone):
    """RFC 2136 §3.1.1: the zone section names the zone itself; a name below or above it is not a
    zone served here."""
    m = update(zone)
    m.add(f"na.{zone}", 60, "A", "192.0.2.1")
    assert send(server.port, m) == dns.rcode.NOTAUTH
    assert ask(server.port, f"na.{zone}", "A") == []


# -- the biggest update -----------------------------------------------------------------------------


BIG = f"big.{ZONE}"
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
TYPES = ("A", "AAAA", "TXT", "MX", "SRV", "CAA", "PTR", "HINFO")


def short_names():
    """Owners of one and two letters below BIG: each written as its label and a pointer (RFC 1035
    §4.1.4), 4 or 5 octets."""
    for a in ALPHABET:
        yield a
    for a in ALPHABET:
        for b in ALPHABET:
            yield a + b


def deletions(n: int) -> list[tuple[str, str]]:
    """`n` delete-RRset records (RFC 2136 §2.5.2: class ANY, TTL 0, no data), a TYPES each at the
    short names in turn: the densest real records (14 or 15 octets each)."""
    out = []
    for name in short_names():
        for rtype in TYPES:
            out.append((name, rtype))
            if len(out) == n:
                return out
    raise AssertionError("not enough short names")


def big_update(records: list[tuple[str, str]]) -> dns.update.UpdateMessage:
    m = update()
    for name, rtype in records:
        m.delete(f"{name}.{BIG}", rtype)
    return m


def biggest_that_fits() -> int:
    """How many deletions one TCP message holds at most (65535 octets, RFC 1035 §4.2.2), signed."""
    lo, hi = 1000, 6000
    while lo < hi:  # the largest n whose message renders within 65535 octets
        mid = (lo + hi + 1) // 2
        try:
            big_update(deletions(mid)).to_wire(max_size=65535)
            lo = mid
        except dns.exception.TooBig:
            hi = mid - 1
    return lo


def test_the_biggest_update_one_tcp_message_holds_is_taken_whole_or_refused(server):
    """10,000 records do not fit one TCP message (65535 octets, RFC 1035 §4.2.2) with real records:
    the densest real ones, deletions of RRsets at one- and two-letter names, give some 4,600. Over
    update_max_records (4000 here) it is REFUSED before its records are read and nothing is
    written; at the limit it is applied, all of it (§3.7); one over is REFUSED; and a message whose
    counts claim 10,000 records but carries fewer is FORMERR (RFC 1035 §4.1.1), nothing written."""
    n = biggest_that_fits()
    assert n > MAX_RECORDS and len(big_update(deletions(n)).to_wire()) <= 65535
    with pytest.raises(dns.exception.TooBig):
        big_update(deletions(n + 1)).to_wire(max_size=65535)
    setup = update()
    setup.add(f"a.{BIG}", 60, "A", "192.0.2.1")  # deleted by the first record of every big update
    setup.add(f"9.{BIG}", 60, "TXT", '"nine"')  # by record 35 * 8 + 3
    assert send(server.port, setup, tcp=True) == dns.rcode.NOERROR
    before = serial(server.port)

    biggest = big_update(deletions(n))
    assert send(server.port, biggest, tcp=True) == dns.rcode.REFUSED
    over = big_update(deletions(MAX_RECORDS + 1))
    assert send(server.port, over, tcp=True) == dns.rcode.REFUSED
    lying = update(keyring=None)
    for name, rtype in deletions(n):
        lying.delete(f"{name}.{BIG}", rtype)
    wire = lying.to_wire()
    wire = tsig(wire[:8] + struct.pack("!H", 10_000) + wire[10:], KEY, time=int(time.time()))
    r = dns.message.from_wire(exchange(server.port, wire, tcp=True), keyring=False)
    assert r.rcode() == dns.rcode.FORMERR and r.opcode() == dns.opcode.UPDATE
    assert ask(server.port, f"a.{BIG}", "A") == ["192.0.2.1"] and ask(server.port, f"9.{BIG}", "TXT") == ['"nine"']
    assert serial(server.port) == before

    assert send(server.port, big_update(deletions(MAX_RECORDS)), tcp=True) == dns.rcode.NOERROR
    assert ask(server.port, f"a.{BIG}", "A") == [] and ask(server.port, f"9.{BIG}", "TXT") == []
    assert serial(server.port) == before + 1


# -- framing ----------------------------------------------------------------------------------------


def two_records(name: str) -> dns.update.UpdateMessage:
    m = update()
    m.add(name, 60, "A", "192.0.2.31")
    m.add(name, 60, "TXT", '"second half"')
    return m


@pytest.mark.parametrize("cut", ["in-the-length", "after-the-length", "mid-message", "before-the-tsig"])
def test_a_message_in_slow_tcp_segments_is_applied_whole(server, cut):
    """RFC 1035 §4.2.2, RFC 7766 §8: a message may come in any number of segments; the server
    reads the two-octet length, then waits for the rest (within its query timeout), and applies
    the update once, whole."""
    name = f"slow-{cut}"
    m = two_records(name)
    wire = m.to_wire()
    framed = struct.pack("!H", len(wire)) + wire
    at = {"in-the-length": 1, "after-the-length": 2, "mid-message": 2 + len(wire) // 2,
          "before-the-tsig": 2 + len(wire) - 80}[cut]  # fmt: skip
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(framed[:at])
        time.sleep(0.4)
        assert ask(server.port, f"{name}.{ZONE}", "A") == []  # nothing before the message is whole
        sock.sendall(framed[at:])
        r = signed_reply(read_frame(sock), m)
    assert r.rcode() == dns.rcode.NOERROR and r.id == m.id
    assert ask(server.port, f"{name}.{ZONE}", "A") == ["192.0.2.31"]
    assert ask(server.port, f"{name}.{ZONE}", "TXT") == ['"second half"']


def test_a_message_cut_short_is_never_applied(server):
    """A TCP message whose connection ends before its length is read gets no reply and is not
    applied; a message cut short inside its framing or datagram (the counts then claim more than
    it carries, or its TSIG is gone) is FORMERR and not applied."""
    m = two_records("cut")
    wire = m.to_wire()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire[: len(wire) // 2])
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""  # closed without a reply
    for at in (20, len(wire) // 2, len(wire) - 81, len(wire) - 1):
        for tcp in (False, True):
            r = dns.message.from_wire(exchange(server.port, wire[:at], tcp), keyring=False)
            assert r.rcode() == dns.rcode.FORMERR and r.opcode() == dns.opcode.UPDATE, (at, tcp)
    assert ask(server.port, f"cut.{ZONE}", "A") == [] and ask(server.port, f"cut.{ZONE}", "TXT") == []


# -- UDP and TCP alike --------------------------------------------------------------------------------


def same_sequence(prefix: str) -> list[tuple[dns.update.UpdateMessage, int]]:
    """(update, rcode it must get) in order: add, add again, prerequisites that hold and fail, delete
    one RR, delete the RRset, delete the name."""
    name = f"{prefix}.same"
    steps = []

    def step(rcode, *ops):
        m = update()
        for op, *args in ops:
            getattr(m, op)(*args)
        steps.append((m, rcode))

    step(dns.rcode.NOERROR, ("absent", name), ("add", name, 60, "A", "192.0.2.1"), ("add", name, 60, "A", "192.0.2.2"))
    step(dns.rcode.YXDOMAIN, ("absent", name), ("add", name, 60, "A", "192.0.2.3"))
    step(dns.rcode.NOERROR, ("present", name, "A"), ("add", name, 60, "TXT", '"t"'))
    step(dns.rcode.NXRRSET, ("present", name, "MX"), ("add", name, 60, "TXT", '"never"'))
    step(dns.rcode.YXRRSET, ("absent", name, "TXT"), ("add", name, 60, "TXT", '"never"'))
    step(dns.rcode.NOERROR, ("delete", name, "A", "192.0.2.1"))
    step(dns.rcode.NOERROR, ("delete", name, "TXT"))
    step(dns.rcode.NOERROR, ("add", f"gone.{name}", 60, "A", "192.0.2.9"))
    step(dns.rcode.NOERROR, ("delete", f"gone.{name}"))
    return steps


def test_the_same_updates_over_udp_and_tcp_give_the_same_rcodes_and_data(server):
    got = {}
    for tcp in (False, True):
        prefix = "tcp" if tcp else "udp"
        rcodes = [send(server.port, m, tcp) for m, _ in same_sequence(prefix)]
        assert rcodes == [rc for _, rc in same_sequence(prefix)], prefix
        got[tcp] = [ask(server.port, f"{prefix}.same.{ZONE}", t) for t in ("A", "TXT")]
        got[tcp].append(ask(server.port, f"gone.{prefix}.same.{ZONE}", "A"))
    assert got[False] == got[True] == [["192.0.2.2"], [], []]


# -- many clients at once ----------------------------------------------------------------------------


CLIENTS, EACH, SLOTS = 50, 20, 30


def client_update(c: int, i: int) -> tuple[dns.update.UpdateMessage, str, tuple]:
    """Update i of client c: (message, kind, effect). Kinds: "add" its own name; "claim" a slot shared
    with other clients, guarded by "name not in use" (one wins, the others get YXDOMAIN); "delete"
    its previous add, guarded by "RRset exists"."""
    m = update()
    if i % 4 == 1:
        slot = f"slot{(c * 7 + i) % SLOTS}.conc"
        m.absent(slot)
        m.add(slot, 60, "TXT", f'"c{c}-{i}"')
        return m, "claim", (slot, f'"c{c}-{i}"')
    if i % 4 == 3:
        own = f"c{c}-{i - 1}.conc"
        m.present(own, "A")
        m.delete(own, "A")
        return m, "delete", (own,)
    own = f"c{c}-{i}.conc"
    m.add(own, 60, "A", f"10.0.{c}.{i}")
    return m, "add", (own, f"10.0.{c}.{i}")


def run_client(port: int, c: int) -> list[tuple[str, tuple, int]]:
    out = []
    for i in range(EACH):
        m, kind, effect = client_update(c, i)
        out.append((kind, effect, send(port, m, tcp=(c + i) % 2 == 1)))  # dnspython checks ID and TSIG
    return out


def test_fifty_clients_updating_one_zone_at_once(server):
    """50 clients each send 20 updates (UDP and TCP) to the zone at once: every one answered with its
    own rcode (a slot is claimed by exactly one; the other claims are YXDOMAIN), the zone ends with
    exactly what was acknowledged NOERROR, and the updates were group-committed (fewer serials than
    updates applied)."""
    before = serial(server.port)
    lines = len(server.lines)
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for rs in pool.map(lambda c: run_client(server.port, c), range(CLIENTS)) for r in rs]
    assert len(results) == CLIENTS * EACH
    want: dict[str, set] = {}
    claims: dict[str, list] = {}
    for kind, effect, rcode in results:
        if kind == "claim":
            claims.setdefault(effect[0], []).append((rcode, effect[1]))
            if rcode == dns.rcode.NOERROR:
                want[effect[0]] = {("TXT", effect[1])}
        elif kind == "add":
            assert rcode == dns.rcode.NOERROR
            want.setdefault(effect[0], set()).add(("A", effect[1]))
        else:
            assert rcode == dns.rcode.NOERROR  # its own add was acknowledged before
            want.pop(effect[0])
    for slot, outcomes in claims.items():
        assert sorted(rc for rc, _ in outcomes) == [dns.rcode.NOERROR] + [dns.rcode.YXDOMAIN] * (len(outcomes) - 1), slot
    zone = axfr_zone(server.port)
    conc = dns.name.from_text(f"conc.{ZONE}")
    have = {}
    for name, node in zone.nodes.items():
        if name.is_subdomain(conc) and name != conc:
            have[name.relativize(dns.name.from_text(ZONE)).to_text()] = {
                (dns.rdatatype.to_text(rds.rdtype), rd.to_text()) for rds in node.rdatasets for rd in rds}
    assert have == want
    applied = sum(1 for kind, _, rcode in results if rcode == dns.rcode.NOERROR)
    serials = serial(server.port) - before
    assert 0 < serials < applied, f"{serials} serials for {applied} updates: not group-committed"
    assert len({ln.rsplit("serial", 1)[1] for ln in server.lines[lines:] if "NOERROR, serial" in ln}) == serials


# -- after all of it ----------------------------------------------------------------------------------


def fresh_server_serves_the_same(serve, args, port: int) -> None:
    """A new `minidns serve` on the same database answers AXFR exactly as the running one (at port)
    does: what the running one serves is all committed; nothing was half-written."""
    running = axfr_zone(port)
    fresh = serve(*args)
    try:
        again = axfr_zone(fresh.port)
    finally:
        fresh.stop()
    assert running.find_rdataset(ZONE, "SOA")[0] == again.find_rdataset(ZONE, "SOA")[0]
    assert running == again, sorted(set(map(str, running.nodes)) ^ set(map(str, again.nodes)))


def test_a_fresh_server_on_the_same_database_serves_exactly_the_same(server, serve):
    fresh_server_serves_the_same(serve, server.args, server.port)
    assert "Traceback" not in server.log and "internal error" not in server.log
    assert server.proc.poll() is None

