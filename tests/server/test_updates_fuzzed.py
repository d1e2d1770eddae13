"""Fuzzed UPDATE messages against the real door (server/updates.py): a real `minidns serve` on a real
PostgreSQL takes unsigned updates from loopback (update_require_tsig = false, update_acl) and
signed ones from the fuzz keys (tests/fuzz/target.py: one granted the zone, one a subdomain and
three types, one nothing), so that well-formed and mutated messages (tests/fuzz/gen_update.py,
seeded) reach the zone's data, each sent over UDP and over TCP.

Every message gets exactly one reply — none only where RFC 1035 §4.1.1 says so (shorter than a
header, or QR set) — with its ID and opcode, that dnspython reads, with the properties
tests/fuzz/target.py checks (TSIG: signed when the request verified, BADKEY/BADSIG unsigned,
BADTIME signed); an UPDATE's rcode is one RFC 2136 §2.2 and RFC 6891 give, never SERVFAIL;
nothing in the server's log says it failed inside; after every message the server still answers a
query; and at the end a fresh server on the same database serves exactly what the running one
serves (nothing half-written, nothing only in memory)."""

from __future__ import annotations

import random
import socket
import struct
import time
from collections import Counter

import dns.message
import dns.rcode
import pytest

from test_transfers import SECRET, ZONE, make_zone, write_config  # tests/server is on sys.path
from test_updates_abuse import fresh_server_serves_the_same, read_frame
from tests.fuzz.gen import RandomChoices
from tests.fuzz.gen_update import fuzzed_update
from tests.fuzz.target import KEYS, OTHER_SECRET, Failure, check_replies

MESSAGES = 500
OTHER_ZONES = ("nothere.test.", "test.", "sub." + ZONE)
R = dns.rcode
UPDATE_RCODES = {R.NOERROR, R.FORMERR, R.NXDOMAIN, R.NOTIMP, R.REFUSED, R.YXDOMAIN, R.YXRRSET, R.NXRRSET,
                 R.NOTAUTH, R.NOTZONE, R.BADVERS}  # fmt: skip
CONFIG = f"""
update_require_tsig = false
update_acl = ["127.0.0.0/8"]
tsig_keys = [{{ name = "xfr-key.", algorithm = "hmac-sha256", secret = "{SECRET}" }},
             {{ name = "md5-key.", algorithm = "hmac-md5", secret = "{SECRET}" }},
             {{ name = "sha512-key.example.", algorithm = "hmac-sha512", secret = "{OTHER_SECRET}" }}]
[[update_grants]]
key = "xfr-key."
zone = "{ZONE}"
match = "zone"
[[update_grants]]
key = "md5-key."
zone = "{ZONE}"
match = "subdomain"
pattern = "fz.{ZONE}"
types = ["A", "AAAA", "TXT"]
"""


class Client:
    """UDP and TCP to one server: `send(wire, tcp)` → the replies that carry `wire`'s ID, read until
    a probe query sent after it is answered (so that a missing or extra reply shows)."""

    def __init__(self, port: int):
        self.port = port
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.settimeout(10)
        self.tcp = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.probes = 0

    def close(self):
        self.udp.close()
        self.tcp.close()

    def probe(self) -> bytes:
        self.probes += 1
        q = dns.message.make_query(f"probe{self.probes}.{ZONE}", "A")
        q.id = 0xF000 | self.probes & 0xFFF
        return q.to_wire()

    def send(self, wire: bytes, tcp: bool, needs_reply: bool) -> list[bytes]:
        probe = self.probe()
        if tcp:
            self.tcp.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (wire, probe)))
            receive = lambda: read_frame(self.tcp)  # noqa: E731
        else:
            self.udp.sendto(wire, ("127.0.0.1", self.port))
            receive = lambda: self.udp.recvfrom(65535)[0]  # noqa: E731
        replies: list[bytes] = []
        if not tcp and needs_reply:  # an UPDATE's reply is made by a coroutine: it may come after the probe's
            replies.append(self._until(receive, wire[:2]))
            self.udp.sendto(probe, ("127.0.0.1", self.port))
        elif not tcp:
            self.udp.sendto(probe, ("127.0.0.1", self.port))
        while True:
            reply = receive()
            if reply[:2] == probe[:2] and probe[12:30] in reply:
                assert reply[3] & 0xF == R.NXDOMAIN, "the probe query is not answered as before"
                return replies
            replies.append(reply)

    @staticmethod
    def _until(receive, qid: bytes) -> bytes:
        while True:
            reply = receive()
            if reply[:2] == qid:
                return reply


def checked(wire: bytes, replies: list[bytes], tcp: bool, sent_at: int) -> int | None:
    """The rcode of the one reply to `wire` (None: no reply, where none is due), its properties checked."""
    needs_reply = len(wire) >= 12 and not wire[2] & 0x80
    assert len(replies) == (1 if needs_reply else 0), f"{len(replies)} replies to {wire.hex()}"
    if not needs_reply:
        return None
    failure = None
    for now in (sent_at, sent_at + 1, sent_at + 2):  # the server's clock, a second or two later
        try:
            check_replies(wire, replies, tcp, now=now, door=True)
            break
        except Failure as e:
            failure = failure or e
    else:
        raise AssertionError(f"{failure} — request {wire.hex()} reply {replies[0].hex()}")
    rcode = dns.message.from_wire(replies[0], keyring=False).rcode()
    if (wire[2] >> 3) & 0xF == 5:
        assert rcode in UPDATE_RCODES, f"UPDATE answered {dns.rcode.to_text(rcode)}: {wire.hex()}"
    return rcode


@pytest.fixture
def door(serve, database_url, tmp_path):
    make_zone(database_url, hosts=3)
    args = ("--database-url", database_url, "--config", write_config(tmp_path, CONFIG), "--listen", "127.0.0.1:0")
    s = serve(*args)
    s.args = args
    return s


def test_fuzzed_updates_get_one_clear_reply_each_and_leave_the_zone_whole(door, serve):
    r = RandomChoices(random.Random(2136))
    client = Client(door.port)
    seen: Counter = Counter()
    try:
        for i in range(MESSAGES):
            sent_at = int(time.time())
            wire = fuzzed_update(r, KEYS, ZONE, OTHER_ZONES, i, sent_at)
            needs_reply = len(wire) >= 12 and not wire[2] & 0x80
            for tcp in (False, True):
                rcode = checked(wire, client.send(wire, tcp, needs_reply), tcp, sent_at)
                seen[dns.rcode.to_text(rcode) if rcode is not None else "no reply"] += 1
    finally:
        client.close()
    # the generator reaches every stage of the door: form, zone, TSIG, prescan, grants, prerequisites
    assert {"NOERROR", "FORMERR", "NOTAUTH", "NOTZONE", "REFUSED", "no reply"} <= set(seen), seen
    assert len({"YXDOMAIN", "NXDOMAIN", "YXRRSET", "NXRRSET"} & set(seen)) >= 3, seen
    assert seen["NOERROR"] >= MESSAGES // 10, seen
    for bad in ("Traceback", "internal error", "SERVFAIL", "unexpected error"):
        assert bad not in door.log, door.log[door.log.find(bad) - 2000 :][:4000]
    fresh_server_serves_the_same(serve, door.args, door.port)
