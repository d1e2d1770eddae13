"""RFC 2136 UPDATE, compared case by case: the real clients nsupdate and knsupdate send the same
messages to BIND 9 and Knot DNS (update_peers.py starts them as primaries accepting updates
signed with one TSIG key) and to minidns; each case's outcome is the rcode of every message and
the zone read back by AXFR (its SOA serial only as "same"/"up"/"down"/"=N": servers bump it
differently). Every case gets a fresh copy of one zone (ZONE_TEXT in update_peers.py) named after
the case, on every server, so the cases do not depend on each other.

BIND and Knot agree on every case but those in DIFFERENCES, each noted with what minidns does and
why; minidns must give the outcome of the server it follows (MINIDNS_OWN: what it does by design
where neither is followed). knsupdate must get what nsupdate gets from each server. Finally BIND
and Knot secondaries of minidns, NOTIFYed after the updates, must reach minidns's serial and hold
the same records.

Seen here (BIND 9.18.49, Knot 3.2.6, Debian 12), besides DIFFERENCES: both treat an empty
non-terminal as a name not in use (yxdomain fails NXDOMAIN, nxdomain holds); compare names in
prerequisites and deletions without case and TXT with case; ignore silently a CNAME beside data,
data beside a CNAME, a CNAME or an SOA where they cannot go, the apex NS RRset or its last NS
deleted, the apex SOA deleted, and an SOA whose serial is lower OR EQUAL (soa-same-serial: its
other fields are not taken either); apply a higher serial exactly; bump the serial only when the
data changed (a no-op update, a failed prerequisite: same serial); give a whole RRset the TTL of
an RR added to it; answer NOTZONE for a prerequisite or an update outside the zone and NOTAUTH for
a zone they do not serve.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from minidns.services.zonefile import import_zone
from secondaries import TsigKey, free_port, soa_serial
from test_transfers_interop import KEY, Setup
from update_peers import run_client, serial_move, update_primaries, zone_file, zone_state

OTHER_SECRET = "b3RoZXItc2VjcmV0LW5vdC10aGUtb25lLXRoZS1zZXJ2ZXJzLWhvbGQ="


@dataclass(frozen=True)
class Case:
    """`messages`: nsupdate/knsupdate commands per message, `{z}` standing for the case's zone
    (`server`, `zone` and `send` are added by the runner). `key`: good (KEY), none (unsigned),
    unknown (a key name no server has), badsecret (KEY's name, another secret). `zone`: the zone
    section's name when it is not the case's own. `knsupdate`: also run with knsupdate.
    `serials`: serials the case itself sets, reported as "=N"."""
    id: str
    messages: tuple[tuple[str, ...], ...]
    key: str = "good"
    zone: str | None = None
    knsupdate: bool = False
    serials: tuple[int, ...] = ()


def case(id, *messages, **kw) -> Case:
    return Case(id, tuple(tuple(m) for m in messages), **kw)


# SOA serials an update sets: lower and higher (RFC 1982) than the zone file's 2026010101
LOW, HIGH = 2000000000, 2100000000

CASES = [
    # -- prerequisites (RFC 2136 §2.4, §3.2), each satisfied and failing
    case("yxdomain-ok", ["prereq yxdomain www.{z}", "update add new.{z} 300 A 192.0.2.10"], knsupdate=True),
    case("yxdomain-fail", ["prereq yxdomain nope.{z}", "update add new.{z} 300 A 192.0.2.10"], knsupdate=True),
    case("yxdomain-glue", ["prereq yxdomain ns.sub.{z}", "update add new.{z} 300 A 192.0.2.10"]),
    case("nxdomain-ok", ["prereq nxdomain nope.{z}", "update add nope.{z} 300 A 192.0.2.10"], knsupdate=True),
    case("nxdomain-fail", ["prereq nxdomain www.{z}", "update add new.{z} 300 A 192.0.2.10"], knsupdate=True),
    case("yxrrset-ok", ["prereq yxrrset www.{z} A", "update add new.{z} 300 A 192.0.2.10"], knsupdate=True),
    case("yxrrset-fail", ["prereq yxrrset www.{z} MX", "update add new.{z} 300 A 192.0.2.10"], knsupdate=True),
    case("yxrrset-fail-no-name", ["prereq yxrrset nope.{z} A", "update add new.{z} 300 A 192.0.2.10"]),
    case("nxrrset-ok", ["prereq nxrrset www.{z} MX", "update add www.{z} 300 MX 10 mail.{z}"], knsupdate=True),
    case("nxrrset-fail", ["prereq nxrrset www.{z} A", "update add new.{z} 300 A 192.0.2.10"], knsupdate=True),
    # value-dependent (§2.4.2): the RRset must equal the prerequisite's RRs exactly
    case("value-ok", ["prereq yxrrset www.{z} A 192.0.2.80", "prereq yxrrset www.{z} A 192.0.2.81",
                      "update delete www.{z} A", "update add www.{z} 300 A 192.0.2.90"], knsupdate=True),
    case("value-subset", ["prereq yxrrset www.{z} A 192.0.2.80", "update add new.{z} 300 A 192.0.2.10"],
         knsupdate=True),
    case("value-mismatch", ["prereq yxrrset www.{z} A 192.0.2.80", "prereq yxrrset www.{z} A 192.0.2.99",
                            "update add new.{z} 300 A 192.0.2.10"], knsupdate=True),
    case("value-superset", ["prereq yxrrset www.{z} A 192.0.2.80", "prereq yxrrset www.{z} A 192.0.2.81",
                            "prereq yxrrset www.{z} A 192.0.2.82", "update add new.{z} 300 A 192.0.2.10"]),
    case("value-txt-ok", ['prereq yxrrset www.{z} TXT "web server"', "update add new.{z} 300 A 192.0.2.10"]),
    case("value-name-case", ["prereq yxrrset ftp.{z} CNAME WWW.{z}", "update add new.{z} 300 A 192.0.2.10"]),
    case("value-txt-case", ['prereq yxrrset www.{z} TXT "Web Server"', "update add new.{z} 300 A 192.0.2.10"]),
    case("yxdomain-empty-nonterminal", ["prereq yxdomain deep.{z}", "update add new.{z} 300 A 192.0.2.10"]),
    case("nxdomain-empty-nonterminal", ["prereq nxdomain deep.{z}", "update add new.{z} 300 A 192.0.2.10"]),
    case("nxrrset-at-cname", ["prereq nxrrset ftp.{z} A", "update add new.{z} 300 A 192.0.2.10"]),
    case("value-no-name", ["prereq yxrrset nope.{z} A 192.0.2.80", "update add new.{z} 300 A 192.0.2.10"]),
    case("prereqs-all-hold", ["prereq yxdomain www.{z}", "prereq nxdomain nope.{z}", "prereq yxrrset www.{z} AAAA",
                              "prereq nxrrset www.{z} MX", "update add new.{z} 300 A 192.0.2.10"]),
    # §3.7: one failing prerequisite and nothing of the update happens
    case("all-or-nothing", ["prereq yxrrset www.{z} A", "prereq nxdomain mail.{z}",
                            "update add new.{z} 300 A 192.0.2.10", "update delete www.{z}",
                            "update delete {z} MX"], knsupdate=True),
    case("prereq-notzone", ["prereq nxdomain www.example.org.", "update add new.{z} 300 A 192.0.2.10"]),

    # -- additions (§3.4.2.2)
    case("add-new-rrset", ["update add new.{z} 300 A 192.0.2.10", "update add new.{z} 300 AAAA 2001:db8::10"],
         knsupdate=True),
    case("add-to-rrset", ["update add www.{z} 3600 A 192.0.2.82"], knsupdate=True),
    case("add-ttl-change", ["update add www.{z} 600 A 192.0.2.82"], knsupdate=True),
    case("add-existing-rr", ["update add www.{z} 3600 A 192.0.2.80"]),
    case("add-existing-rr-new-ttl", ["update add www.{z} 600 A 192.0.2.80"]),
    case("add-below-apex-deep", ["update add a.b.c.{z} 300 TXT \"deep\""]),
    case("add-mx-txt", ["update add {z} 300 MX 20 www.{z}", 'update add {z} 3600 TXT "second"']),
    case("add-mx-dangling", ["update add {z} 3600 MX 20 mail2.{z}", "update add new.{z} 300 A 192.0.2.10"]),
    case("add-wildcard", ["update add *.{z} 300 A 192.0.2.10"]),
    case("add-below-delegation", ["update add x.sub.{z} 300 A 192.0.2.10"]),
    case("add-at-empty-nonterminal", ["update add deep.{z} 300 A 192.0.2.10"]),
    case("add-case-duplicate", ["update add FTP.{z} 3600 CNAME WWW.{z}"]),
    case("add-dnskey", [("update add {z} 3600 DNSKEY 257 3 13 "
                         "mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==")]),
    case("add-soa-below-apex", ["update add www.{z} 3600 SOA ns1.{z} hostmaster.{z} 1 1 1 1 1"]),
    case("add-cname-at-apex", ["update add {z} 300 CNAME www.{z}"]),
    case("add-delegation-ns", ["update add sub.{z} 3600 NS ns2.sub.{z}", "update add ns2.sub.{z} 3600 A 192.0.2.98"]),

    # -- deletions (§3.4.2.3, §3.4.2.4)
    case("delete-rr", ["update delete www.{z} A 192.0.2.80"], knsupdate=True),
    case("delete-last-rr", ["update delete mail.{z} A 192.0.2.25"], knsupdate=True),
    case("delete-rrset", ["update delete www.{z} A"], knsupdate=True),
    case("delete-name", ["update delete www.{z}"], knsupdate=True),
    case("delete-absent-rr", ["update delete www.{z} A 192.0.2.99"], knsupdate=True),
    case("delete-absent-rrset", ["update delete www.{z} MX"]),
    case("delete-absent-name", ["update delete nope.{z}"]),
    case("delete-case-insensitive", ["update delete WWW.{z} A 192.0.2.80", "update delete ftp.{z} CNAME WwW.{z}"]),
    case("delete-empty-nonterminal", ["update delete deep.{z}"]),
    case("delete-cname", ["update delete ftp.{z} CNAME"]),
    case("delete-delegation", ["update delete sub.{z} NS"]),

    # -- CNAME beside other data, both ways (§3.4.2.2; RFC 1034 §3.6.2)
    case("cname-beside-data", ["update add www.{z} 300 CNAME mail.{z}"], knsupdate=True),
    case("data-beside-cname", ["update add ftp.{z} 300 A 192.0.2.10"], knsupdate=True),
    case("cname-replaces-cname", ["update add ftp.{z} 300 CNAME mail.{z}"], knsupdate=True),
    case("cname-after-delete", ["update delete www.{z}", "update add www.{z} 300 CNAME mail.{z}"]),
    case("cname-new-name", ["update add alias.{z} 300 CNAME www.{z}"]),

    # -- the apex: SOA and NS (§3.4.2.3, §3.4.2.4)
    case("apex-delete-ns-rrset", ["update delete {z} NS"], knsupdate=True),
    case("apex-delete-one-ns", ["update delete {z} NS ns1.{z}"], knsupdate=True),
    case("apex-delete-every-ns", ["update delete {z} NS ns1.{z}", "update delete {z} NS ns2.{z}"], knsupdate=True),
    case("apex-delete-name", ["update delete {z}"], knsupdate=True),
    case("apex-delete-soa", ["update delete {z} SOA"]),
    case("apex-add-ns", ["update add {z} 3600 NS ns3.example.net."]),
    case("soa-lower-serial", [f"update add {{z}} 3600 SOA ns1.{{z}} hostmaster.{{z}} {LOW} 1800 900 1209600 300"],
         serials=(LOW,), knsupdate=True),
    case("soa-same-serial", ["update add {z} 3600 SOA ns1.{z} hostmaster.{z} 2026010101 1800 900 1209600 300"],
         serials=(2026010101,)),
    case("soa-lower-serial-and-data", [f"update add {{z}} 3600 SOA ns1.{{z}} hostmaster.{{z}} {LOW} 1800 900 1209600 300",
                                       "update add new.{z} 300 A 192.0.2.10"]),
    case("soa-higher-serial", [f"update add {{z}} 3600 SOA ns1.{{z}} hostmaster.{{z}} {HIGH} 1800 900 1209600 300"],
         serials=(HIGH,), knsupdate=True),
    case("soa-higher-serial-and-data", [f"update add {{z}} 3600 SOA ns1.{{z}} hostmaster.{{z}} {HIGH} 7200 900 1209600 300",
                                        "update add new.{z} 300 A 192.0.2.10"], serials=(HIGH,)),

    # -- the zone section and names outside the zone (§3.1, §3.4.1.3)
    case("notzone", ["update add www.example.org. 300 A 192.0.2.10"], knsupdate=True),
    case("notzone-after-good", ["update add new.{z} 300 A 192.0.2.10", "update add www.example.org. 300 A 192.0.2.10"]),
    case("notauth", ["update add www.nothere.upd.test. 300 A 192.0.2.10"], zone="nothere.upd.test.", knsupdate=True),

    # -- several changes in one message, applied in order (§3.4.2); several messages
    case("in-order", ["update add new.{z} 300 A 192.0.2.10", "update delete new.{z} A",
                      "update add new.{z} 300 A 192.0.2.11", "update add new.{z} 300 TXT \"x\"",
                      "update delete new.{z} TXT \"x\""], knsupdate=True),
    case("replace-rrset", ["update delete www.{z} A", "update add www.{z} 60 A 192.0.2.90"]),
    case("two-messages", ["update add new.{z} 300 A 192.0.2.10"],
         ["prereq nxdomain new.{z}", "update add new.{z} 300 A 192.0.2.11"],
         ["prereq yxdomain new.{z}", "update add new.{z} 300 A 192.0.2.12"], knsupdate=True),

    # -- authentication (RFC 8945 §5.2)
    case("unsigned", ["update add new.{z} 300 A 192.0.2.10"], key="none", knsupdate=True),
    case("unknown-key", ["update add new.{z} 300 A 192.0.2.10"], key="unknown", knsupdate=True),
    case("bad-secret", ["update add new.{z} 300 A 192.0.2.10"], key="badsecret", knsupdate=True),
]
BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES)

# Where BIND and Knot differ: case id -> the server whose outcome minidns follows (and why), or
# "minidns" (MINIDNS_OWN). Where they agree minidns does as both.
DIFFERENCES: dict[str, str] = {
    # Unsigned, with updates allowed to the key only: BIND answers REFUSED, Knot NOTAUTH (no ACL
    # rule matched). The issue says refusals are REFUSED; NOTAUTH would tell a client the server
    # is not authoritative for the zone, which it is.
    "unsigned": "bind",
    # An RR already in the zone added again with another TTL: BIND gives the RRset the new TTL,
    # Knot keeps the old one and changes nothing. RFC 2136 §3.4.2.2: a duplicate "Zone RR is
    # replaced by Update RR", TTL included; and both servers give the whole RRset the TTL of an
    # added RR that is new (add-ttl-change), so an operator expects the same here.
    "add-existing-rr-new-ttl": "bind",
    # An apex MX pointing at a name in the zone with no A/AAAA: BIND refuses the whole update
    # (its check-integrity / check-mx, on by default for primaries, logs "has no address
    # records"), Knot applies it. RFC 2136 has no such rule, minidns's API and zone files accept
    # such an MX, and the target may be added by the next update: minidns applies it.
    "add-mx-dangling": "knot",
    # An RR already in the zone added again in other letter case (FTP CNAME WWW for ftp CNAME
    # www): BIND replaces the RR, serves FTP/WWW from then on and bumps the serial; Knot changes
    # nothing. Names compare without case (RFC 4343) and the data is the same: no change, no new
    # serial for the secondaries to fetch.
    "add-case-duplicate": "knot",
    # A DNSKEY added to the unsigned zone: BIND answers SERVFAIL (it cannot sign the update with
    # no keys), Knot adds it. minidns does neither: see MINIDNS_OWN.
    "add-dnskey": "minidns",
}

# Cases where minidns does what neither BIND nor Knot does, by design (notes/update-design.md):
# case id -> the rcodes, the zone left as it was.
MINIDNS_OWN: dict[str, tuple[str, ...]] = {
    # DNSSEC types are made by minidns's signer and key management, never by UPDATE (issue 20
    # item 2: "updates to DNSSEC types are refused").
    "add-dnskey": ("REFUSED",),
}


def zone_of(c: Case, client: str = "nsupdate") -> str:
    return f"{'k-' if client == 'knsupdate' else ''}{c.id}.upd.test."


def key_for(c: Case) -> TsigKey | None:
    return {"good": KEY, "none": None, "unknown": TsigKey("other-key.", KEY.algorithm, KEY.secret),
            "badsecret": TsigKey(KEY.name, KEY.algorithm, OTHER_SECRET)}[c.key]


def messages_for(c: Case, client: str = "nsupdate") -> list[tuple[str, ...]]:
    z = zone_of(c, client)
    return [tuple(cmd.replace("{z}", z) for cmd in m) for m in c.messages]


@dataclass(frozen=True)
class Outcome:
    rcodes: tuple[str, ...]
    records: frozenset[str]
    serial: str

    def show(self, initial: frozenset[str]) -> str:
        return (f"rcodes {list(self.rcodes)}, serial {self.serial}, "
                f"added {sorted(self.records - initial)}, removed {sorted(initial - self.records)}")


def run_case(c: Case, client: str, port: int) -> Outcome:
    """`c` sent by `client` to the server on 127.0.0.1:`port`, and the case's zone read back."""
    zone = zone_of(c, client)
    messages = messages_for(c, client)
    before = soa_serial(("127.0.0.1", port), zone)
    rcodes = run_client(client, port, c.zone or zone, messages, key_for(c))
    records, serial = zone_state(("127.0.0.1", port), zone)
    return Outcome(rcodes, records, serial_move(before, serial, c.serials))


def origins() -> list[str]:
    """Every zone the servers serve: one per case for nsupdate, one per knsupdate case, and one
    left as loaded (the reference)."""
    return ([zone_of(c) for c in CASES] + [zone_of(c, "knsupdate") for c in CASES if c.knsupdate]
            + ["untouched.upd.test."])


@pytest.fixture(scope="module")
def peer_outcomes(tmp_path_factory):
    """{(server, client, case id): Outcome} for BIND and Knot, and the untouched zone's records."""
    with update_primaries(tmp_path_factory.mktemp("update-peers"), origins(), KEY) as peers:
        initial, _ = zone_state(("127.0.0.1", peers["bind"].port), "untouched.upd.test.")
        out = {}
        for kind, server in peers.items():
            for c in CASES:
                for client in ("nsupdate", "knsupdate") if c.knsupdate else ("nsupdate",):
                    out[kind, client, c.id] = run_case(c, client, server.port)
        yield out, initial


def test_bind_and_knot_differ_only_where_noted(peer_outcomes):
    outcomes, initial = peer_outcomes
    differ = {c.id for c in CASES if outcomes["bind", "nsupdate", c.id] != outcomes["knot", "nsupdate", c.id]}
    report = "\n".join(f"{c.id}:\n  bind {outcomes['bind', 'nsupdate', c.id].show(initial)}\n"
                       f"  knot {outcomes['knot', 'nsupdate', c.id].show(initial)}" for c in CASES)
    assert differ == set(DIFFERENCES), report


def test_knsupdate_gets_what_nsupdate_gets(peer_outcomes):
    outcomes, initial = peer_outcomes
    bad = [f"{kind} {c.id}:\n  nsupdate  {outcomes[kind, 'nsupdate', c.id].show(initial)}\n"
           f"  knsupdate {outcomes[kind, 'knsupdate', c.id].show(initial)}"
           for kind in ("bind", "knot") for c in CASES if c.knsupdate
           if outcomes[kind, "nsupdate", c.id] != outcomes[kind, "knsupdate", c.id]]
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------------------------------------
# minidns: the same cases, and secondaries of minidns after them

# Every update signed with KEY may change anything in any zone (RFC 2136 §3.3 leaves the policy
# to the server; BIND's `grant KEY zonesub ANY` and Knot's update ACL above say the same).
GRANTS = '[[update_grants]]\nkey = "xfr-key."\nmatch = "zone"\n'


@pytest.fixture(scope="module")
def minidns_outcomes(tmp_path_factory, new_database):
    """A real `minidns serve` on an embedded PostgreSQL database holding every zone of origins()
    (imported from the same zone file), BIND and Knot secondaries of it holding every nsupdate
    case's zone; then every case run against minidns. Yields (setup, {(client, case id): Outcome})."""
    with new_database() as url:
        setup = Setup(tmp_path_factory.mktemp("update-minidns"), url)
        with setup.stack:
            db = setup.open_db()
            for origin in origins():
                path = zone_file(setup.tmp / "zones", origin)
                db(lambda store, path=path, origin=origin: import_zone(store, str(path), origin, source="interop"))
            sec_ports = {kind: free_port() for kind in SECONDARIES}
            m = setup.serve(free_port(), [(p, None) for p in sec_ports.values()], extra=GRANTS)
            for kind, port in sec_ports.items():
                setup.secondary(kind, kind, port, secondary_zones())
            for zone in secondary_zones():  # each secondary holds every zone before the updates
                setup.wait_all(zone, soa_serial(m.addr, zone))
            out = {}
            for c in CASES:
                for client in clients(c):
                    out[client, c.id] = run_case(c, client, m.port)
            yield setup, out


SECONDARIES = ("bind", "knot")


def secondary_zones() -> list[str]:
    return [zone_of(c) for c in CASES]


def clients(c: Case) -> tuple[str, ...]:
    return ("nsupdate", "knsupdate") if c.knsupdate else ("nsupdate",)


def expected(c: Case, client: str, peer_outcomes) -> Outcome:
    """What minidns must give for `c` sent by `client`: the outcome of the server it follows
    (DIFFERENCES; BIND where both agree), or its own (MINIDNS_OWN: the zone left as loaded)."""
    outcomes, initial = peer_outcomes
    if c.id in MINIDNS_OWN:
        return Outcome(MINIDNS_OWN[c.id], initial, "same")
    return outcomes[DIFFERENCES.get(c.id, "bind"), client, c.id]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_minidns_does_what_the_peers_do(c, peer_outcomes, minidns_outcomes):
    _, got = minidns_outcomes
    initial = peer_outcomes[1]
    for client in clients(c):
        want = expected(c, client, peer_outcomes)
        assert got[client, c.id] == want, (f"{client}, {c.id}:\n  want    {want.show(initial)}\n"
                                           f"  minidns {got[client, c.id].show(initial)}")


def test_secondaries_of_minidns_converge_after_the_updates(minidns_outcomes):
    """BIND and Knot secondaries, NOTIFYed by minidns after every update, serve each zone at
    minidns's serial with minidns's records (Setup.wait_all compares full AXFRs)."""
    setup, _ = minidns_outcomes
    for zone in secondary_zones():
        setup.wait_all(zone, soa_serial(setup.minidns.addr, zone))
