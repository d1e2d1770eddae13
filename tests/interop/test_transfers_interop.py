"""minidns as the PRIMARY of real secondaries: BIND 9, Knot, NSD and PowerDNS (Debian packages,
started by tests/interop/secondaries.py), a real `minidns serve` process on a real embedded
PostgreSQL database (the `database_url` fixture), everything on loopback.

minidns is configured with a TOML file listing the secondaries (127.0.0.1 and their ports, picked
before anything starts), so it NOTIFYs them after each change and watches their serials. Changes go
through the store's write path (minidns.store.writer.Store, as `minidns record ...` and the API
use it) or through the `minidns` command itself.

1. test_four_secondaries_follow_a_random_sequence_by_ixfr: all four at once; a seeded random
   sequence of a few hundred changes in batches (adds, deletes, replaced RRsets, TTL changes,
   names appearing and vanishing, SOA fields, a zone created and deleted); after each batch every
   secondary's data equals minidns's; after the first copy every transfer was an IXFR (the
   secondaries' own logs and minidns's).
2. test_tsig_only_zone: a zone only a TSIG key may transfer: the four secondaries holding the key
   follow it (signed NOTIFY, signed AXFR and IXFR); one without the key and one with a wrong
   secret are refused and hold nothing; a tampered MAC is NOTAUTH/BADSIG.
3. test_stopped_secondaries_catch_up: the four stopped during changes catch up when restarted
   (same directory, port and data); stopped for longer than the pruned change log reaches, they
   get the whole zone.
4. test_catalog_zone: BIND, Knot and PowerDNS consuming a catalog zone made by `minidns catalog
   create` add a new zone and drop a deleted one (NSD 4.6 reads no catalogs).
5. test_zone_status_follows_the_secondaries: PENDING after a change, ACTIVE once all four have
   it; with one stopped, PENDING, then ERROR after propagation_timeout, then ACTIVE once it is back.

Every wait is bounded (seconds); a secondary that does not get there fails the test with its log
and minidns's. Each secondary sends its SOA queries and transfers from a loopback address of its
own (SOURCES) and the test's own AXFRs come from 127.0.0.2, so minidns's log lines "AXFR of Z
serial N to ADDR" / "IXFR of Z a -> b to ADDR: n removed, m added" / "IXFR of Z from serial a to
ADDR: the whole zone (...)" say what each one was sent.

Seen here (Debian 12: BIND 9.18, Knot 3.2, NSD 4.6.1, PowerDNS 4.7.3), none of it minidns's doing:
- NSD 4.6 asks for AXFRs of its own accord under a burst of NOTIFYs: when one reload applies
  several IXFRs that arrived back to back, its xfrd logs "error: xfrd: zone Z: soa serial N update
  failed, restarting transfer (notified zone)" (N one below the serial the reload reached, which
  it logged just before as "zone Z serial A is updated to N+1") and then sends a plain AXFR query
  (minidns logs "AXFR of Z ...", not an IXFR answered whole). Test 1 allows NSD one AXFR per such
  line; NSD's data still ends equal. It also takes its first copy twice when `nsd-control addzone`
  and the NOTIFY for the new zone start one each.
- PowerDNS with its default retrieval-threads=2 transfers two zones at once and the second write
  to its SQLite database fails ("database is locked"); it then waits for the next NOTIFY or
  refresh. The harness runs it with one retrieval thread.
- Knot 3.2 with the default zonefile-load and no zone file bootstraps (AXFR) after a restart even
  with the whole zone in its journal; NSD writes no zone files on SIGTERM. The harness sets
  zonefile-load: none and runs `nsd-control write` before stopping NSD, so a restarted secondary
  has its copy and asks for an IXFR, as BIND and PowerDNS do.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from interop_common import canonical_rdata
from minidns.store import db
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Store, StoreSettings
from secondaries import (KINDS, Secondary, TsigKey, add_zone, free_port, remove_zone, restart_secondary,
                         serial_ge, soa_serial, start_secondary, stop_secondary, transfer_log, wait_serial,
                         zone_records)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "c2VjcmV0LWZvci10aGUtaW50ZXJvcC10cmFuc2Zlci10ZXN0cw=="
KEY = TsigKey("xfr-key.", "hmac-sha256", SECRET)
ME = "127.0.0.2"  # the test's own AXFRs come from here, so minidns's log tells them from the secondaries'
# ... whose SOA queries and transfers come from an address of their own (test 1)
SOURCES = {"bind": "127.0.0.11", "knot": "127.0.0.12", "nsd": "127.0.0.13", "pdns": "127.0.0.14"}
XFR_TIMEOUT = 20.0  # seconds for a secondary to reach a serial (PowerDNS and NSD take ~1 s a round)
START_TIMEOUT = 30.0


# ------------------------------------------------------------------------------------------------
# minidns: the server process, the database


class Minidns:
    """`minidns serve --config CONF` (this checkout's), logging to a file in its directory."""

    def __init__(self, d: Path, conf: Path, port: int):
        self.port = port
        self.addr = ("127.0.0.1", port)
        self.conf = conf
        self.log_path = d / "minidns.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "minidns", "serve", "--config", str(conf)],
                                         stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL,
                                         env=env, cwd=ROOT, start_new_session=True)
        self.wait_for(r"serving \d+ zone", START_TIMEOUT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def lines(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        return [line for line in self.log().splitlines() if rx.search(line)]

    def wait_for(self, pattern: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = self.lines(pattern)
            if found:
                return found[0]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"minidns logged no line matching {pattern!r} within {timeout}s "
                                     f"(exit {self.proc.poll()}); log:\n{self.log()[-8000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


class Db:
    """The store's write path (the one `minidns record ...` and the API use) over one pool and
    one event loop for the whole test."""

    def __init__(self, url: str, settings: StoreSettings = StoreSettings()):
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(db.create_pool(url))
        self.store = Store(self.pool, settings, stages=write_stages())

    def __call__(self, fn):
        return self.loop.run_until_complete(fn(self.store))

    def change(self, zone: str, edits, fields=None) -> int:
        return self(lambda s: s.change(zone, list(edits), source="interop", fields=fields)).serial_to

    def create(self, zone: str, edits, **kw) -> int:
        return self(lambda s: s.create_zone(zone, email=f"hostmaster@{zone}", edits=list(edits),
                                            source="interop", **kw)).serial_to

    def delete(self, zone: str) -> None:
        self(lambda s: s.delete_zone(zone, source="interop"))

    def zone(self, zone: str):
        return self(lambda s: s.zone(zone))

    def close(self) -> None:
        self.loop.run_until_complete(asyncio.wait_for(self.pool.close(), 5))
        self.loop.close()


def cli(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """One `minidns` command (this checkout's) run to its end."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    p = subprocess.run([sys.executable, "-m", "minidns", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT, env=env)
    return p


def config(url: str, port: int, secondaries: list[tuple[int, str | None]], extra: str = "") -> str:
    """The TOML: the database, the listen address, the key, and the secondaries to NOTIFY,
    (port, key name or None) each on 127.0.0.1."""
    secs = ",\n".join(f'  {{ address = "127.0.0.1", port = {p}' + (f', key = "{k}"' if k else "") + " }"
                      for p, k in secondaries)
    return (f'database_url = "{url}"\n'
            f'listen = ["127.0.0.1:{port}"]\n'
            f'tsig_keys = [{{ name = "{KEY.name}", algorithm = "{KEY.algorithm}", secret = "{KEY.secret}" }}]\n'
            f"secondaries = [\n{secs}\n]\n"
            "notify_timeout = 0.5\n"
            "db_check_interval = 5.0\n"
            + extra)


class Setup:
    """What a test started, stopped at teardown whatever happens: minidns, secondaries, the Db."""

    def __init__(self, tmp_path: Path, url: str):
        self.tmp = tmp_path
        self.url = url
        self.stack = ExitStack()
        self.minidns: Minidns | None = None
        self.secs: dict[str, Secondary] = {}
        self.db: Db | None = None

    def open_db(self, settings: StoreSettings = StoreSettings()) -> Db:
        self.db = Db(self.url, settings)
        self.stack.callback(self.db.close)
        return self.db

    def serve(self, port: int, secondaries, extra: str = "") -> Minidns:
        conf = self.tmp / "minidns.toml"
        conf.write_text(config(self.url, port, secondaries, extra))
        self.minidns = Minidns(self.tmp, conf, port)
        self.stack.callback(self.minidns.stop)
        return self.minidns

    def secondary(self, name: str, kind: str, port: int, zones, key=None, catalog=None, source=None) -> Secondary:
        sec = start_secondary(kind, self.tmp / name, self.minidns.addr, zones, key=key, catalog=catalog, port=port,
                              source=source)
        self.stack.callback(stop_secondary, sec)
        self.secs[name] = sec
        return sec

    def logs(self, *names: str) -> str:
        out = [f"--- minidns\n{self.minidns.log()[-6000:]}" if self.minidns else ""]
        out += [self.secs[n].log(3000) for n in (names or self.secs)]
        return "\n".join(out)

    def wait_all(self, zone: str, serial: int, names=None, timeout: float = XFR_TIMEOUT, key=None) -> set[str]:
        """minidns and every named secondary serve `zone` at `serial` (or newer), and each
        secondary's data equals minidns's; returns minidns's data."""
        assert wait_serial(self.minidns.addr, zone, serial, 10), f"minidns does not serve {zone} {serial}"
        want = zone_records(self.minidns.addr, zone, key=key, source=ME)
        for name in names or list(self.secs):
            sec = self.secs[name]
            ok = wait_serial(sec, zone, serial, timeout)
            assert ok, (f"{name} ({sec.kind}) does not reach {zone} serial {serial} within {timeout}s "
                        f"(has {soa_serial(sec, zone)}):\n{self.logs(name)}")
            got = transferred(sec, zone)
            assert got == want, (f"{name} ({sec.kind}) differs from minidns for {zone} at serial {serial}:\n"
                                 f"only at {name}: {sorted(got - want)[:20]}\n"
                                 f"only at minidns: {sorted(want - got)[:20]}")
        return want


def transferred(sec, zone: str, tries: int = 3) -> set[str]:
    """zone_records from a secondary that has just taken a change: one that resets the transfer
    connection while it loads the zone (seen under load) is asked again, up to `tries` times."""
    for attempt in range(tries):
        try:
            return zone_records(sec, zone)
        except (ConnectionError, EOFError):
            if attempt == tries - 1:
                raise
            time.sleep(0.5)


@pytest.fixture
def setup(tmp_path, database_url):
    s = Setup(tmp_path, database_url)
    with s.stack:
        yield s


def ports(n: int) -> list[int]:
    return [free_port() for _ in range(n)]


def zone_gone(target, zone: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while soa_serial(target, zone) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# ------------------------------------------------------------------------------------------------
# a model of a zone and a random sequence of changes to it


def _abs(name: str, origin: str) -> str:
    return origin if name == "@" else f"{name}.{origin}"


def _norm(rtype: str, text: str) -> str:
    return canonical_rdata(dns.rdata.from_text(dns.rdataclass.IN, rtype, text, relativize=False))


HOST_TYPES = ("A", "A", "A", "AAAA", "TXT", "MX", "SRV", "CAA")
APEX_TYPES = ("TXT", "MX", "A", "NS")
TTLS = (60, 120, 300, 600, 900, 3600, 7200, 86400)


class Model:
    """What a zone should hold (but its SOA): (owner, type) -> [ttl, {normalised rdata: text}];
    random_change() makes a change valid against it and applies it the way the write path does."""

    def __init__(self, origin: str, rng: random.Random, hosts: int):
        self.origin = origin
        self.rng = rng
        self.ttl = 3600  # the zone's default TTL (and the SOA's)
        self.rrsets: dict[tuple[str, str], list] = {}
        self.counter = 0
        self.pool = [f"h{i}" for i in range(hosts * 2)] + ["*.wild", "deep.er.name", "_sip._tcp"]
        self.aliases = [f"alias{i}" for i in range(12)]

    # -- values
    def value(self, rtype: str) -> str:
        self.counter += 1
        n, r = self.counter, self.rng
        if rtype == "A":
            return f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
        if rtype == "AAAA":
            return f"2001:db8:{r.randrange(65536):x}::{r.randrange(1, 65536):x}"
        if rtype == "TXT":
            return r.choice([f'"tok-{n}"', f'"v={n}" "two strings"', f'"with spaces {n} and \\"quotes\\""'])
        if rtype == "MX":
            return f"{r.randrange(0, 100)} mx{n}.example.net."
        if rtype == "SRV":
            return f"{r.randrange(10)} {r.randrange(100)} {r.randrange(1, 65535)} srv{n}.example.net."
        if rtype == "CAA":
            return f'0 issue "ca{n}.example.net"'
        if rtype == "NS":
            return f"ns{n}.example.net."
        if rtype == "CNAME":
            return r.choice([f"h{r.randrange(len(self.pool))}.{self.origin}", f"target{n}.example.org."])
        raise ValueError(rtype)

    # -- the model, applied as minidns/store/edits.py RRsetEdits.apply does
    def apply(self, e: Edit) -> None:
        key = (e.name, e.rtype)
        cur = self.rrsets.get(key)
        new = {_norm(e.rtype, t): t for t in e.records}
        if e.op in ("remove", "delete"):
            if e.op == "delete" or not new:
                del self.rrsets[key]
                return
            for k in new:
                del cur[1][k]
            if not cur[1]:
                del self.rrsets[key]
            return
        ttl = e.ttl if e.ttl is not None else (cur[0] if cur and e.op == "add" else self.ttl)
        if e.op == "replace":
            if not new:
                self.rrsets.pop(key, None)
                return
            self.rrsets[key] = [ttl, dict(new)]
            return
        if cur is None:
            cur = self.rrsets[key] = [ttl, {}]
        cur[0] = ttl
        cur[1].update(new)

    def records(self) -> set[str]:
        out = set()
        for (name, rtype), (ttl, recs) in self.rrsets.items():
            owner = dns.name.from_text(_abs(name, self.origin)).canonicalize().to_text()
            out |= {f"{owner} {ttl} IN {rtype} {k}" for k in recs}
        return out

    def owners(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, rtype in self.rrsets:
            out.setdefault(name, []).append(rtype)
        return out

    # -- random edits
    def edit(self) -> Edit | list[Edit] | dict:
        r = self.rng
        owners = self.owners()
        hosts = [o for o in owners if o in self.pool]
        sets = [k for k in self.rrsets if k[0] in self.pool or (k[0] == "@" and k[1] != "NS")]
        what = r.choices(["add", "remove", "delete", "replace", "ttl", "vanish", "appear", "alias", "apex",
                          "fields"], weights=[30, 15, 8, 10, 10, 5, 6, 8, 6, 2])[0]
        if what == "add" and hosts:
            owner = r.choice(hosts + ["@"])
            rtype = r.choice(APEX_TYPES[:3] if owner == "@" else HOST_TYPES)
            ttl = r.choice(TTLS) if r.random() < 0.3 else None
            return Edit("add", owner, rtype, ttl, tuple(self.value(rtype) for _ in range(r.choice((1, 1, 2)))))
        if what == "remove" and sets:
            owner, rtype = r.choice(sets)
            return Edit("remove", owner, rtype, None, (r.choice(list(self.rrsets[(owner, rtype)][1].values())),))
        if what == "delete" and sets:
            owner, rtype = r.choice(sets)
            return Edit("delete", owner, rtype)
        if what == "replace" and sets:
            owner, rtype = r.choice(sets)
            have = list(self.rrsets[(owner, rtype)][1].values())
            keep = r.sample(have, r.randrange(len(have) + 1))
            recs = tuple(keep + [self.value(rtype) for _ in range(r.choice((0, 1, 2)) if keep else r.choice((1, 2)))])
            return Edit("replace", owner, rtype, r.choice(TTLS + (None,)), recs)
        if what == "ttl" and sets:
            owner, rtype = r.choice(sets)
            ttl, recs = self.rrsets[(owner, rtype)]
            return Edit("replace", owner, rtype, r.choice([t for t in TTLS if t != ttl]), tuple(recs.values()))
        if what == "vanish" and hosts:
            owner = r.choice(hosts)
            return [Edit("delete", owner, rtype) for rtype in owners[owner]]
        if what == "appear":
            free = [o for o in self.pool if o not in owners]
            if free:
                owner = r.choice(free)
                types = r.sample(("A", "AAAA", "TXT", "MX", "SRV", "CAA"), r.choice((1, 2, 3)))
                return [Edit("add", owner, t, r.choice(TTLS + (None,)), (self.value(t),)) for t in types]
        if what == "alias":
            owner = r.choice(self.aliases)
            if (owner, "CNAME") in self.rrsets and r.random() < 0.4:
                return Edit("delete", owner, "CNAME")
            return Edit("replace", owner, "CNAME", r.choice(TTLS + (None,)), (self.value("CNAME"),))
        if what == "apex":
            ns = self.rrsets.get(("@", "NS"), [0, {}])[1]
            extra = [t for t in ns.values() if t != f"ns1.{self.origin}"]
            if extra and r.random() < 0.5:
                return Edit("remove", "@", "NS", None, (r.choice(extra),))
            return Edit("add", "@", "NS", None, (self.value("NS"),))
        if what == "fields":
            f = r.choice(["refresh", "minimum", "ttl", "retry"])
            return {f: r.choice([60, 300, 600, 1200, 3600, 7200])}
        owner = r.choice([o for o in self.pool if (o, "CNAME") not in self.rrsets])
        return Edit("add", owner, "A", None, (self.value("A"),))

    def random_change(self) -> tuple[list[Edit], dict | None]:
        """1-3 edits (or new SOA fields), applied to the model."""
        edits: list[Edit] = []
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            e = self.edit()
            if isinstance(e, dict):
                if not edits:
                    if "ttl" in e:
                        self.ttl = e["ttl"]
                    return [], e
                continue
            for one in (e if isinstance(e, list) else [e]):
                self.apply(one)
                edits.append(one)
        return edits, None

    def initial(self, hosts: int) -> list[Edit]:
        """A zone to start from: NS, glue, a delegation, hosts with several types, aliases."""
        edits = [Edit("add", "@", "NS", None, (f"ns1.{self.origin}",)),
                 Edit("add", "ns1", "A", None, ("192.0.2.53",)),
                 Edit("add", "@", "MX", None, (f"10 mail.{self.origin}",)),
                 Edit("add", "@", "TXT", None, ('"v=spf1 -all"',)),
                 Edit("add", "mail", "A", 300, ("192.0.2.25",)),
                 Edit("add", "deleg", "NS", 3600, (f"ns.deleg.{self.origin}", "ns.example.net.")),
                 Edit("add", "ns.deleg", "A", 3600, ("192.0.2.99",))]
        for i in range(hosts):
            edits.append(Edit("add", f"h{i}", "A", self.rng.choice(TTLS), (self.value("A"),)))
            if i % 3 == 0:
                edits.append(Edit("add", f"h{i}", "AAAA", None, (self.value("AAAA"),)))
            if i % 5 == 0:
                edits.append(Edit("add", f"h{i}", "TXT", None, (self.value("TXT"), self.value("TXT"))))
        for i in range(0, len(self.aliases), 2):
            edits.append(Edit("add", self.aliases[i], "CNAME", None, (self.value("CNAME"),)))
        for e in edits:
            self.apply(e)
        return edits


def soa_free(records: set[str]) -> set[str]:
    return {r for r in records if " IN SOA " not in r}


# ------------------------------------------------------------------------------------------------
# 1. the four secondaries follow a random sequence of changes by IXFR


ZONE = "ixfr.test."
TMP_ZONE = "tmp.test."
SEED = 20261201
BATCHES = 10
CHANGES = 300


def test_four_secondaries_follow_a_random_sequence_by_ixfr(setup):
    t_start = time.monotonic()
    rng = random.Random(SEED)
    d = setup.open_db()
    model = Model(ZONE, rng, hosts=150)
    d.create(ZONE, model.initial(150))
    sec_ports = ports(len(KINDS))
    m = setup.serve(free_port(), [(p, None) for p in sec_ports])
    for kind, port in zip(KINDS, sec_ports):
        setup.secondary(kind, kind, port, [ZONE], source=SOURCES[kind])
    serial = soa_serial(m.addr, ZONE)
    want = setup.wait_all(ZONE, serial)
    assert soa_free(want) == model.records()
    initial = {(name, ZONE): serial for name in KINDS}  # the serial of each first copy
    print(f"initial AXFR done in {time.monotonic() - t_start:.1f}s")

    tmp_model = None
    per_batch = CHANGES // BATCHES
    kinds: dict[tuple[str, str], list[str]] = {}  # (secondary, zone) -> transfer kinds, read batch by batch
    seen: dict[str, int] = {k: 0 for k in KINDS}

    def collect():
        # NSD keeps only its last 20 IXFRs (which is how the harness tells them from AXFRs),
        # so the kinds are read after each batch, for the transfers new since the last one.
        for name, sec in setup.secs.items():
            rows = transfer_log(sec, since=seen[name])
            for z, k in rows:
                kinds.setdefault((name, z), []).append(k)
            seen[name] += len(rows)

    collect()
    changes = 0
    for batch in range(BATCHES):
        t0 = time.monotonic()
        if batch == 2:  # a zone appears: created in minidns, added to each secondary
            tmp_model = Model(TMP_ZONE, rng, hosts=40)
            tmp_serial = d.create(TMP_ZONE, tmp_model.initial(40))
            initial.update({(name, TMP_ZONE): tmp_serial for name in KINDS})
            for sec in setup.secs.values():
                add_zone(sec, TMP_ZONE)
        for i in range(per_batch):
            if tmp_model is not None and rng.random() < 0.1:
                edits, fields = tmp_model.random_change()
                tmp_serial = d.change(TMP_ZONE, edits, fields)
            else:
                edits, fields = model.random_change()
                serial = d.change(ZONE, edits, fields)
            changes += 1
        want = setup.wait_all(ZONE, serial)
        assert soa_free(want) == model.records(), f"minidns's own data is not what was written (batch {batch})"
        if tmp_model is not None:
            tmp_want = setup.wait_all(TMP_ZONE, tmp_serial)
            assert soa_free(tmp_want) == tmp_model.records()
        collect()
        print(f"batch {batch}: serial {serial}, all four equal after {time.monotonic() - t0:.2f}s")
        if batch == 6:  # ... and goes away again
            d.delete(TMP_ZONE)
            assert zone_gone(m.addr, TMP_ZONE, 5), "minidns still serves the deleted zone"
            for sec in setup.secs.values():
                remove_zone(sec, TMP_ZONE)
            for name, sec in setup.secs.items():
                assert zone_gone(sec, TMP_ZONE, 10), f"{name} still serves {TMP_ZONE}:\n{sec.log()}"
            tmp_model = None
    assert changes == CHANGES

    # After the first copy, every transfer was an IXFR. minidns's log says what it sent each
    # secondary (each transfers from an address of its own; the test's AXFRs came from ME):
    # one AXFR, then only incremental IXFRs, never the whole zone in answer to an IXFR.
    nsd_log = setup.secs["nsd"].log(10**8)
    for z in (ZONE, TMP_ZONE):
        ez = re.escape(z)
        for name, source in SOURCES.items():
            es = re.escape(source)
            axfrs = m.lines(rf"AXFR of {ez} serial \d+ to {es}:")
            ixfrs = m.lines(rf"IXFR of {ez} \d+ -> \d+ to {es}: \d+ removed, \d+ added")
            whole = m.lines(rf"IXFR of {ez} from serial \d+ to {es}: the whole zone")
            # NSD 4.6 alone also sends AXFR queries of its own accord: when one reload applies
            # several IXFRs received back to back, its xfrd may log "zone Z: soa serial N update
            # failed, restarting transfer" and then asks for an AXFR (see the module docstring).
            restarts = len(re.findall(rf"zone {ez}: soa serial \d+ update failed, restarting transfer", nsd_log)) \
                if name == "nsd" else 0
            print(f"minidns -> {name}, {z}: {len(axfrs)} AXFR, {len(ixfrs)} IXFR, {len(whole)} whole-zone IXFR"
                  + (f" ({restarts} restarts logged by NSD)" if name == "nsd" else ""))
            # (and NSD may take its first copy twice: nsd-control addzone and the NOTIFY both start one)
            first = [a for a in axfrs if int(re.search(r"serial (\d+)", a).group(1)) == initial[(name, z)]]
            later = len(axfrs) - len(first)
            assert first and not whole and ixfrs, (name, z, axfrs, whole, setup.logs(name))
            if name == "nsd":
                assert len(first) <= 2 and later <= restarts, (z, axfrs, restarts)
            else:
                assert len(axfrs) == 1, (name, z, axfrs, setup.logs(name))
    # ... and as each secondary logged what it received (NSD: the harness's reading of its
    # stored IXFRs, where an IXFR followed by an AXFR before the next look reads as AXFR).
    for (name, z), ks in sorted(kinds.items()):
        print(f"{name} {z}: {len(ks)} transfers: {ks.count('AXFR')} AXFR, {ks.count('IXFR')} IXFR")
        assert ks[0] == "AXFR" and "IXFR" in ks, (name, z, ks, setup.logs(name))
        if name != "nsd":
            assert set(ks[1:]) == {"IXFR"}, (name, z, ks, setup.logs(name))
    assert {z for _, z in kinds} == {ZONE, TMP_ZONE}
    print(f"test took {time.monotonic() - t_start:.1f}s")


# ------------------------------------------------------------------------------------------------
# 2. a zone only a TSIG key may transfer


def _raw_tcp(wire: bytes, port: int) -> dns.message.Message:
    """Send one message over TCP and read the reply without checking its TSIG."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
            chunk = s.recv(65535)
            assert chunk, "connection closed"
            buf += chunk
    return dns.message.from_wire(buf[2:], keyring=False)


def test_tsig_only_zone(setup):
    zone = "tsig.test."
    d = setup.open_db()
    serial = d.create(zone, Model(zone, random.Random(7), 30).initial(30))
    keyed, nokey_port, badkey_port = ports(len(KINDS)), free_port(), free_port()
    m = setup.serve(free_port(), [(p, KEY.name) for p in keyed],
                    extra=f'zone_allow_transfer = {{ "{zone}" = ["key:{KEY.name}"] }}\n')
    for kind, port in zip(KINDS, keyed):
        setup.secondary(kind, kind, port, [zone], key=KEY)
    # Two that may not: no key at all (NSD, not listed in minidns's secondaries), and the key's
    # name with another secret (Knot); each from an address of its own, for minidns's log.
    setup.secondary("nokey", "nsd", nokey_port, [zone], source="127.0.0.21")
    wrong = TsigKey(KEY.name, KEY.algorithm, "d3Jvbmctc2VjcmV0LWZvci10aGUtc2FtZS1rZXktbmFtZQ==")
    setup.secondary("badkey", "knot", badkey_port, [zone], key=wrong, source="127.0.0.22")

    setup.wait_all(zone, serial, names=KINDS, key=KEY)  # signed AXFRs (and signed SOA polls)
    serial = d.change(zone, [Edit("add", "signed", "A", 60, ("192.0.2.1",)), Edit("delete", "h3", "A")])
    setup.wait_all(zone, serial, names=KINDS, key=KEY)  # signed NOTIFY, signed IXFR
    for kind in KINDS:
        ks = [k for z, k in transfer_log(setup.secs[kind]) if z == zone]
        assert ks[0] == "AXFR" and ks[-1] == "IXFR", (kind, ks, setup.logs(kind))
    ixfrs = m.lines(rf"IXFR of {re.escape(zone)} \d+ -> {serial} to 127\.0\.0\.1: 1 removed, 1 added")
    assert len(ixfrs) >= len(KINDS), ixfrs

    # The two others were refused and hold nothing.
    m.wait_for(rf"transfer of {re.escape(zone)} refused to 127\.0\.0\.21$")
    m.wait_for(r"TSIG from 127\.0\.0\.22: ")
    assert not m.lines(r"(AXFR|IXFR) of .* to 127\.0\.0\.2[12]")
    for name in ("nokey", "badkey"):
        assert soa_serial(setup.secs[name], zone) is None, (name, setup.logs(name))
        with pytest.raises(Exception):
            zone_records(setup.secs[name], zone)
    with pytest.raises(Exception):  # unsigned, from the test's own address: refused too
        zone_records(m.addr, zone, source=ME)

    # A signed AXFR request with one bit of its MAC flipped: NOTAUTH, TSIG error BADSIG.
    q = dns.message.make_query(zone, "AXFR")
    q.use_tsig(KEY.keyring(), KEY.name)
    wire = bytearray(q.to_wire())
    wire[-20] ^= 0x01  # in the MAC (followed by original id, error, other len: 6 octets; 32-octet MAC)
    r = _raw_tcp(bytes(wire), m.port)
    assert r.rcode() == dns.rcode.NOTAUTH and r.had_tsig and r.tsig_error == dns.rcode.BADSIG, r
    q2 = dns.message.make_query(zone, "AXFR")  # the same, intact, is answered
    q2.use_tsig(KEY.keyring(), KEY.name)
    assert _raw_tcp(q2.to_wire(), m.port).rcode() == dns.rcode.NOERROR


# ------------------------------------------------------------------------------------------------
# 3. stopped secondaries catch up; far behind a pruned log, they get the whole zone


def test_stopped_secondaries_catch_up(setup):
    zone = "restart.test."
    rng = random.Random(99)
    d = setup.open_db()
    model = Model(zone, rng, 60)
    serial = d.create(zone, model.initial(60))
    sec_ports = ports(len(KINDS))
    m = setup.serve(free_port(), [(p, None) for p in sec_ports], extra="change_log_keep = 3\n")
    for kind, port in zip(KINDS, sec_ports):
        setup.secondary(kind, kind, port, [zone], source=SOURCES[kind])
    setup.wait_all(zone, serial)

    # Stopped in the middle of changes (the store's default keeps the whole log here) ...
    serial = d.change(zone, *model.random_change())
    for sec in setup.secs.values():
        stop_secondary(sec)
    for _ in range(5):
        serial = d.change(zone, *model.random_change())
    # ... restarted with the same directory, port and data: they catch up by IXFR.
    before = {n: len(transfer_log(s)) for n, s in setup.secs.items() if n != "nsd"}
    for sec in setup.secs.values():
        restart_secondary(sec)
    want = setup.wait_all(zone, serial)
    assert soa_free(want) == model.records()
    for name, n in before.items():
        ks = [k for z, k in transfer_log(setup.secs[name])[n:] if z == zone]
        assert ks and ks[-1] == "IXFR", (name, ks, setup.logs(name))
    for name, source in SOURCES.items():
        assert not m.lines(rf"the whole zone.*|AXFR of {re.escape(zone)} serial {serial} to {re.escape(source)}:"), name

    # Stopped for longer than the log reaches: `minidns record add` with change_log_keep = 3
    # keeps the 3 newest changes, and 6 are made.
    behind = serial
    for sec in setup.secs.values():
        stop_secondary(sec)
    conf = ("--config", m.conf)
    for i in range(6):
        p = cli("record", "add", zone, f"pruned{i}", "A", 300, f"192.0.2.{i + 1}", *conf)
        assert p.returncode == 0, p.stderr
        model.apply(Edit("add", f"pruned{i}", "A", 300, (f"192.0.2.{i + 1}",)))
    serial = soa_serial(m.addr, zone)
    assert serial == behind + 6
    rows = d(lambda s: s.changes(zone))
    assert len(rows) == 3 and min(r["serial_from"] for r in rows) > behind, [dict(r) for r in rows]
    before = {n: len(transfer_log(s)) for n, s in setup.secs.items() if n != "nsd"}
    for sec in setup.secs.values():
        restart_secondary(sec)
    want = setup.wait_all(zone, serial)
    assert soa_free(want) == model.records()
    for name, source in SOURCES.items():
        m.wait_for(rf"IXFR of {re.escape(zone)} from serial {behind} to {re.escape(source)}: "
                   r"the whole zone \(no history that far back\)", 5)
    for name, n in before.items():
        ks = [k for z, k in transfer_log(setup.secs[name])[n:] if z == zone]
        assert ks and ks[-1] == "AXFR", (name, ks, setup.logs(name))


# ------------------------------------------------------------------------------------------------
# 4. catalog zones


CATALOG = "catalog.invalid."
CONSUMERS = ("bind", "knot", "pdns")  # NSD 4.6 reads no catalog zones


def test_catalog_zone(setup):
    d = setup.open_db()
    a, b = "a.test.", "b.test."
    d.create(a, Model(a, random.Random(1), 5).initial(5))
    sec_ports = ports(len(CONSUMERS))
    m = setup.serve(free_port(), [(p, None) for p in sec_ports])
    p = cli("catalog", "create", CATALOG, "--config", m.conf)
    assert p.returncode == 0 and f"created catalog zone {CATALOG}" in p.stdout, p.stderr
    assert wait_serial(m.addr, CATALOG, None, 5)
    ptrs = [r for r in zone_records(m.addr, CATALOG, source=ME) if " PTR " in r]
    assert len(ptrs) == 1 and ptrs[0].endswith(f" PTR {a}"), ptrs
    for kind, port in zip(CONSUMERS, sec_ports):
        setup.secondary(kind, kind, port, [], catalog=CATALOG)
    setup.wait_all(a, soa_serial(m.addr, a))  # the member, found through the catalog

    serial_b = d.create(b, Model(b, random.Random(2), 5).initial(5))  # joins the catalog
    setup.wait_all(b, serial_b)
    serial_b = d.change(b, [Edit("add", "later", "TXT", 60, ('"changed"',))])
    setup.wait_all(b, serial_b)

    d.delete(a)  # leaves the catalog
    assert zone_gone(m.addr, a, 5)
    for name, sec in setup.secs.items():
        assert zone_gone(sec, a, XFR_TIMEOUT), f"{name} still serves {a} after it left the catalog:\n{setup.logs(name)}"
        assert soa_serial(sec, b) == serial_b
    ptrs = [r for r in zone_records(m.addr, CATALOG, source=ME) if " PTR " in r]
    assert len(ptrs) == 1 and ptrs[0].endswith(f" PTR {b}"), ptrs


# ------------------------------------------------------------------------------------------------
# 5. zone status


def status(d: Db, zone: str) -> tuple[str, int]:
    z = d.zone(zone)
    return z["status"], z["serial"]


def wait_status(d: Db, zone: str, want: str, timeout: float) -> float:
    t0 = time.monotonic()
    while status(d, zone)[0] != want:
        assert time.monotonic() - t0 < timeout, f"{zone} is {status(d, zone)}, not {want}, after {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - t0


def test_zone_status_follows_the_secondaries(setup):
    zone = "status.test."
    d = setup.open_db()
    serial = d.create(zone, Model(zone, random.Random(5), 20).initial(20))
    sec_ports = ports(len(KINDS))
    m = setup.serve(free_port(), [(p, None) for p in sec_ports], extra="propagation_timeout = 4.0\n")
    for kind, port in zip(KINDS, sec_ports):
        setup.secondary(kind, kind, port, [zone], source=SOURCES[kind])
    setup.wait_all(zone, serial)
    wait_status(d, zone, "ACTIVE", 10)

    # A change: PENDING until all four have it (PowerDNS takes about a second), then ACTIVE.
    serial = d.change(zone, [Edit("add", "st", "A", 60, ("192.0.2.7",))])
    assert status(d, zone) == ("PENDING", serial)
    wait_status(d, zone, "ACTIVE", XFR_TIMEOUT)
    have = {n: soa_serial(s, zone) for n, s in setup.secs.items()}
    assert all(v is not None and serial_ge(v, serial) for v in have.values()), have
    p = cli("zone", "status", zone, "--config", m.conf)
    assert f"serial {serial} status ACTIVE action NONE" in p.stdout, p.stdout + p.stderr
    for port in sec_ports:
        assert f"127.0.0.1#{port}\tOK\tserial {serial}" in p.stdout, p.stdout

    # One stopped: PENDING while the others have it, ERROR after propagation_timeout ...
    stopped = setup.secs["bind"]
    stop_secondary(stopped)
    serial = d.change(zone, [Edit("add", "st2", "A", 60, ("192.0.2.8",))])
    for name in ("knot", "nsd", "pdns"):
        assert wait_serial(setup.secs[name], zone, serial, XFR_TIMEOUT), setup.logs(name)
    assert status(d, zone) == ("PENDING", serial)
    took = wait_status(d, zone, "ERROR", 10)
    print(f"ERROR {took:.1f}s after the others had it")
    p = cli("zone", "status", zone, "--config", m.conf)
    assert f"serial {serial} status ERROR" in p.stdout, p.stdout
    assert f"127.0.0.1#{stopped.port}\tERROR" in p.stdout, p.stdout
    m.wait_for(rf"zone {re.escape(zone)} serial {serial}: secondary 127\.0\.0\.1#{stopped.port} has not answered the SOA query after 4s")
    # ... and ACTIVE once it is back and has caught up (polling goes on after the timeout).
    restart_secondary(stopped)
    assert wait_serial(stopped, zone, serial, XFR_TIMEOUT), setup.logs("bind")
    wait_status(d, zone, "ACTIVE", 15)
