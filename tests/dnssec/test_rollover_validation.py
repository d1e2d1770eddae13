"""Key rollovers as a validating resolver sees them: Unbound in front of `minidns serve` keeps
answering with AD (never SERVFAIL) through a ZSK rollover and a KSK rollover of a KSK/ZSK zone,
walked in real time with short TTLs, and across changes to the zone in the middle of each.

All real processes on loopback, as in test_validation.py (whose helpers this reuses):
- test.: signed (CSK), the parent, holding example.test.'s delegation and DS; the resolver's
  trust anchor is test.'s DS, so the chain into example.test. goes through the DS the parent
  serves, and follows it when it changes (as real deployments do). A second Unbound, the negative
  control, is anchored on example.test.'s first DS directly: once the old KSK has gone it must
  fail, which proves the KSK really changed under the first one.
- example.test.: the rolling zone, `dnssec enable --ksk-zsk`, $TTL 4 (the DNSKEY TTL and the
  largest), SOA minimum 2, with a CNAME chain, a wildcard, an empty non-terminal, a secure
  delegation (secure.example.test., signed, its DS in example.test.) and an insecure one
  (insecure.example.test., unsigned).
- `minidns serve --dnssec-rollover-margin 1`, the commands with the same margin, so each step is
  due a few seconds after the one before.

The walk: before; `dnssec rollover --zsk`, then `dnssec advance` as soon as each step is due
(ZSK pre-publication: published → active, the zone re-signed → the old ZSK removed), a record
added while the old ZSK is retired; `dnssec rollover --ksk`, the new DS (from `dnssec ds`) added
to test. with `record add` as the operator would, the record deleted again, `dnssec ds-seen` once
the parent's DS TTL has passed (the old KSK goes), then the old DS removed from test. At every
point, and continuously between the steps (so the resolver's caches hold the state just before
each step, as a resolver's would), one round of queries through Unbound: a positive answer, the
apex DNSKEY, a CNAME chain, a wildcard answer (a new name each round, so it is fetched and
validated against whatever DNSKEY RRset is cached), a missing name (new each round), NODATA, an
ENT, the secure delegation (its DS and an answer under it), the insecure one (the proof of no DS
secure; the child's answer without AD). Every failure is collected with its phase, Unbound's
reply, minidns's own answer and Unbound's log (val-log-level 2) since the round began, and the
test fails with all of them at the end.

What minidns serves is checked directly at each step too (which keys are in the DNSKEY RRset and
which sign), so the walk is known to have happened as described. A second test is the negative
control for the timing: the ZSK activated right after its publication (its due time moved to now in
the database) must make fresh answers bogus for the same resolver ("signatures from unknown keys"),
so the walk's clean result is the pre-publication wait's doing and not the resolver's leniency.

Unbound is stubbed to minidns for test. too (write_unbound_conf stubs the root, which minidns does
not serve; Unbound would ask it ". NS" and give up on test.'s DNSKEY).

Skipped only when Unbound is not installed (scripts/test.sh installs it).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import itertools
import os
import re
import sys
import time
from dataclasses import dataclass, field

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

import test_validation as tv
from minidns.store import db
from test_validation import (UNBOUND, Proc, _database, answer_set, ask, free_port, minidns, minidns_env, records_of,
                             start, wait_for, write_unbound_conf)

pytestmark = pytest.mark.skipif(UNBOUND is None, reason="unbound is not installed (Debian package unbound)")

TOP, ZONE, SECURE, INSECURE = "test.", "example.test.", "secure.example.test.", "insecure.example.test."
# write_unbound_conf stubs test_validation's zones (and the root) to minidns: the same names here.
assert (tv.PARENT, tv.SECURE, tv.INSECURE) == (ZONE, SECURE, INSECURE)

TTL = 4  # example.test.'s TTLs: every RRset, the SOA (so the DNSKEY RRset too)
NEG = 2  # its SOA minimum: denials are cached this long
DS_TTL = 2  # the TTL of example.test.'s DS in test.
MARGIN = 1  # dnssec_rollover_margin, seconds
SETTLE = TTL + 1  # long enough for every cached RRset of example.test. to have expired
BUDGET = 90  # seconds for the whole walk, setup included

ZONES = {
    TOP: f"""$ORIGIN test.
$TTL {DS_TTL}
@            SOA   ns1 hostmaster 2026120101 3600 600 86400 {DS_TTL}
@            NS    ns1
ns1          A     192.0.2.53
example      NS    ns1.example
ns1.example  A     192.0.2.53
""",
    ZONE: f"""$ORIGIN example.test.
$TTL {TTL}
@            SOA   ns1 hostmaster 2026120101 3600 600 86400 {NEG}
@            NS    ns1
ns1          A     192.0.2.53
www          A     192.0.2.80
www          A     192.0.2.81
chain1       CNAME chain2
chain2       CNAME chain3
chain3       CNAME www
*.wild       A     192.0.2.99
a.b.ent      TXT   "below two empty non-terminals"
secure       NS    ns1.secure
ns1.secure   A     192.0.2.71
insecure     NS    ns1.insecure
ns1.insecure A     192.0.2.72
""",
    SECURE: f"""$ORIGIN secure.example.test.
$TTL {TTL}
@            SOA   ns1 hostmaster 7 3600 600 86400 {NEG}
@            NS    ns1
ns1          A     192.0.2.71
www          A     192.0.2.171
""",
    INSECURE: f"""$ORIGIN insecure.example.test.
$TTL {TTL}
@            SOA   ns1 hostmaster 9 3600 600 86400 {NEG}
@            NS    ns1
ns1          A     192.0.2.72
www          A     192.0.2.172
""",
}

WWW = {"www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"}
NEW = "new.example.test. A 192.0.2.123"  # the record added in the middle of the ZSK rollover

# Unbound's caches follow the short TTLs; bogus answers are kept only briefly, so that one broken
# moment shows as that moment and does not hide what follows.
UNBOUND_EXTRA = ["cache-max-ttl: 5", "cache-max-negative-ttl: 5", "val-bogus-ttl: 2"]


def resolver_conf(d, name: str, port: int, auth_port: int, anchor: str):
    path = write_unbound_conf(d, name, port, auth_port, anchor)
    text = path.read_text().replace("server:\n", "server:\n" + "".join(f"  {x}\n" for x in UNBOUND_EXTRA), 1)
    # test. is served by minidns too (the root is not: without this stub Unbound asks it for ". NS").
    text += f'stub-zone:\n  name: "{TOP}"\n  stub-prime: no\n  stub-addr: 127.0.0.1@{auth_port}\n'
    path.write_text(text)
    check = tv.shutil.which("unbound-checkconf") or "/usr/sbin/unbound-checkconf"
    if os.path.exists(check):
        r = tv.subprocess.run([check, str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"unbound-checkconf {path}:\n{r.stdout}{r.stderr}")
    return path


# --------------------------------------------------------------------------------------------
# What minidns serves (asked directly, RD clear, DO set)
# --------------------------------------------------------------------------------------------


def direct(port: int, qname: str, qtype: str) -> dns.message.Message:
    r = ask(port, qname, qtype, rd=False)
    if r is None:
        pytest.fail(f"minidns gave no answer to {qname} {qtype}")
    return r


def dnskeys(port: int) -> dict[int, int]:
    """example.test.'s DNSKEY RRset as served: {key tag: flags}."""
    r = direct(port, ZONE, "DNSKEY")
    return {dns.dnssec.key_id(k): k.flags for rrset in r.answer if rrset.rdtype == dns.rdatatype.DNSKEY for k in rrset}


def signers(port: int, qname: str, qtype: str) -> set[int]:
    """Key tags of the RRSIGs over the answer's `qtype` RRset at `qname`."""
    r = direct(port, qname, qtype)
    covered = dns.rdatatype.from_text(qtype)
    return {sig.key_tag for rrset in r.answer if rrset.rdtype == dns.rdatatype.RRSIG
            and rrset.name == dns.name.from_text(qname) for sig in rrset if sig.type_covered == covered}


def parent_ds(port: int) -> set[str]:
    """example.test.'s DS RRset as test. serves it, as data text."""
    r = direct(port, ZONE, "DS")
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.DS for rd in rrset}


# --------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------


@dataclass
class Failure:
    phase: str
    what: str  # the check
    problem: str  # the query and what was wrong
    detail: str  # the replies and Unbound's log


@dataclass
class Walk:
    auth: Proc
    resolver: Proc  # anchored on test.'s DS
    control: Proc  # anchored on example.test.'s first DS
    env: dict
    url: str
    started: float = field(default_factory=time.monotonic)
    phase: str = "before"
    new_record: str = "absent"  # "absent" (not asked), "present", "deleted" (denied once `grace` passed)
    grace: float = 0.0
    control_expect: str = "secure"  # "secure", "any", "bogus"
    rounds: int = 0
    failures: list[Failure] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    names: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- commands -------------------------------------------------------------------------------
    def cli(self, *args) -> str:
        t = time.monotonic()
        out = minidns(self.env, self.url, *args)
        self.note(f"`minidns {' '.join(map(str, args))}` ({time.monotonic() - t:.1f}s): {out.strip()}")
        return out

    def roll(self, *args) -> str:
        """A rollover command (rollover, advance, ds-seen) with the test's margin."""
        return self.cli("dnssec", *args, "--dnssec-rollover-margin", MARGIN)

    def note(self, text: str) -> None:
        self.timeline.append(f"{time.monotonic() - self.started:6.1f}s [{self.phase}] {text}")

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.note("phase begins")

    def served(self, what: str, pred, timeout: float = 10.0) -> None:
        """Wait until minidns serves what `pred` (no arguments) says; fail with its log if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                self.note(f"minidns serves: {what}")
                return
            time.sleep(0.05)
        status = minidns(self.env, self.url, "dnssec", "status", ZONE)
        pytest.fail(f"[{self.phase}] minidns does not serve {what} within {timeout:.0f}s; DNSKEY {dnskeys(self.auth.port)};"
                    f" `dnssec status`:\n{status}\nminidns log:\n{self.auth.log()}\n" + "\n".join(self.timeline))

    # -- validation rounds ---------------------------------------------------------------------
    def checks(self):
        """This round's queries: (what, qname, qtype, expected answer set, secure?). A new name each
        round for the wildcard and the missing name, so that they are fetched and validated now."""
        n = next(self.names)
        yield "positive answer", "www.example.test.", "A", WWW, True
        yield "apex DNSKEY", ZONE, "DNSKEY", None, True
        yield "CNAME chain", "chain1.example.test.", "A", {
            "chain1.example.test. CNAME chain2.example.test.", "chain2.example.test. CNAME chain3.example.test.",
            "chain3.example.test. CNAME www.example.test.", *WWW}, True
        yield "wildcard answer", f"w{n}.wild.example.test.", "A", {f"w{n}.wild.example.test. A 192.0.2.99"}, True
        yield "missing name", f"nx{n}.example.test.", "A", set(), True
        yield "NODATA", "www.example.test.", "MX", set(), True
        yield "ENT", "b.ent.example.test.", "A", set(), True
        yield "secure delegation: DS", SECURE, "DS", None, True
        yield "secure delegation: answer below it", "www.secure.example.test.", "A", {
            "www.secure.example.test. A 192.0.2.171"}, True
        yield "insecure delegation: no DS, proven", INSECURE, "DS", set(), True
        yield "insecure delegation: answer below it", "www.insecure.example.test.", "A", {
            "www.insecure.example.test. A 192.0.2.172"}, False
        if self.new_record == "present":
            yield "record added mid-ZSK-rollover", "new.example.test.", "A", {NEW}, True
        elif self.new_record == "deleted":
            # Until its TTL has passed, a cache may still hold it; either way it must validate.
            yield "record deleted mid-KSK-rollover", "new.example.test.", "A", (
                set() if time.monotonic() > self.grace else "either"), True

    def round(self) -> None:
        self.rounds += 1
        mark = _log_size(self.resolver)
        for what, qname, qtype, want, is_secure in self.checks():
            r = ask(self.resolver.port, qname, qtype)
            problem = self.judge(r, want, is_secure)
            if problem:
                self.fail(what, qname, qtype, problem, r, self.resolver, mark)
        if self.control_expect != "any":
            cmark = _log_size(self.control)
            r = ask(self.control.port, "www.example.test.", "A")
            if self.control_expect == "secure":
                problem = self.judge(r, WWW, True)
            else:
                problem = None if r is not None and r.rcode() == dns.rcode.SERVFAIL else "not SERVFAIL"
            if problem:
                self.fail(f"control (anchored on example.test.'s first DS) should be {self.control_expect}",
                          "www.example.test.", "A", problem, r, self.control, cmark)

    def judge(self, r, want, is_secure: bool) -> str | None:
        if r is None:
            return "no reply"
        rcode = dns.rcode.to_text(r.rcode())
        ad = bool(r.flags & dns.flags.AD)
        got = answer_set(r)
        if rcode == "SERVFAIL":
            return "SERVFAIL"
        if is_secure and not ad:
            return f"rcode {rcode}, AD clear"
        if not is_secure and ad:
            return f"rcode {rcode}, AD set on an insecure answer"
        # Unbound 1.17 takes a compact NXDOMAIN (NSEC … NXNAME) for a NODATA: either rcode.
        if rcode not in (("NOERROR", "NXDOMAIN") if want in (set(), "either") else ("NOERROR",)):
            return f"rcode {rcode}"
        if want == "either":
            return None if got in (set(), {NEW}) else f"answer {sorted(got)}"
        if want is None:
            return None if got else "empty answer"
        return None if got == want else f"answer {sorted(got)}, want {sorted(want)}"

    def fail(self, what, qname, qtype, problem, reply, resolver: Proc, mark: int) -> None:
        direct_reply = ask(self.auth.port, qname, qtype, rd=False)
        log = _log_since(resolver, mark)
        if not any(f.phase == self.phase and f.what == what for f in self.failures):
            self.note(f"FAILED {what}: {qname} {qtype}: {problem} (first of this kind in this phase)")
        self.failures.append(Failure(self.phase, what, f"{qname} {qtype}: {problem}",
                                     f"--- {resolver.name} said:\n{reply}\n--- minidns said (RD clear, DO set):\n"
                                     f"{direct_reply}\n--- {resolver.name} log since the round began:\n{log}"))

    def report(self) -> str:
        """The failures: counted by phase and check, then in full the first one of each phase (up
        to four), then the timeline."""
        counts: dict[tuple[str, str], list[Failure]] = {}
        for f in self.failures:
            counts.setdefault((f.phase, f.what), []).append(f)
        summary = "\n".join(f"[{phase}] {what}: {len(fs)} time(s), first: {fs[0].problem}"
                            for (phase, what), fs in counts.items())
        firsts, seen = [], set()
        for f in self.failures:
            if f.phase not in seen and len(firsts) < 4:
                seen.add(f.phase)
                firsts.append(f"### [{f.phase}] {f.what}: {f.problem}\n{f.detail}")
        return (f"{len(self.failures)} validation failure(s) in {self.rounds} rounds:\n{summary}\n\n"
                + "\n\n".join(firsts) + "\n\n--- timeline:\n" + "\n".join(self.timeline))

    def rounds_until(self, until: float, at_least: int = 1) -> None:
        """Rounds of queries, about three a second, until the monotonic time `until` (and at least
        `at_least` of them)."""
        done = 0
        while done < at_least or time.monotonic() < until:
            self.round()
            done += 1
            time.sleep(0.3)

    def due(self, out: str) -> float:
        """When the next step is due, from a rollover command's output, else (the server's
        scheduler took the step) from `dnssec status`."""
        at = due_of(out)
        if at is None:
            status = self.cli("dnssec", "status", ZONE)
            at = due_of(status)
            assert at is not None, f"no due time in:\n{out}\nnor in `dnssec status`:\n{status}"
        return at

    def after(self, phase: str, what: str, pred) -> None:
        """Once minidns serves the step's result (`pred`): the phase it begins, and a round of
        queries at once, while the resolver's caches still hold what was served before it."""
        self.served(what, pred)
        self.enter(phase)
        self.round()

    def step_when_due(self, due: float, phase: str, what: str, pred) -> str:
        """Keep the resolver busy until the step is due (the printed time is whole seconds: one
        more), then `dnssec advance`, then `after`. The server's own scheduler may have taken the
        step instead: `pred` (what minidns serves after it) shows that."""
        self.rounds_until(time.monotonic() + max(0.0, due + 1.0 - time.time()))
        for _ in range(10):
            out = self.roll("advance")
            if "no rollover step is due" not in out or pred():
                break
            self.rounds_until(time.monotonic() + 0.5)
        self.after(phase, what, pred)
        return out


def _log_size(p: Proc) -> int:
    try:
        return p.log_path.stat().st_size
    except OSError:
        return 0


def _log_since(p: Proc, mark: int) -> str:
    try:
        with open(p.log_path, "rb") as f:
            f.seek(mark)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return text[-4000:] if text.strip() else "(nothing logged)"


def due_of(text: str) -> float | None:
    """The epoch time of "due <ISO time> (...)" in a rollover command's or `dnssec status`'s output."""
    m = re.search(r"due (\S+) \(", text)
    return datetime.datetime.fromisoformat(m.group(1)).timestamp() if m else None


@pytest.fixture(scope="module")
def walk(pg_server, tmp_path_factory):
    d = tmp_path_factory.mktemp("dnssec-rollover-validation")
    url, drop = _database(pg_server.url)
    env = minidns_env(base64.b64encode(os.urandom(32)).decode())
    started: list[Proc] = []
    t0 = time.monotonic()
    try:
        for origin, text in ZONES.items():
            path = d / f"{origin}zone"
            path.write_text(text)
            minidns(env, url, "zone", "import", path)
        minidns(env, url, "dnssec", "enable", SECURE)
        for _owner, data in records_of(minidns(env, url, "dnssec", "ds", SECURE), "DS"):
            minidns(env, url, "record", "add", ZONE, "secure", "DS", TTL, *data.split())
        minidns(env, url, "dnssec", "enable", ZONE, "--ksk-zsk")
        zone_ds = records_of(minidns(env, url, "dnssec", "ds", ZONE), "DS")
        assert len(zone_ds) == 1, zone_ds
        minidns(env, url, "record", "add", TOP, "example", "DS", DS_TTL, *zone_ds[0][1].split())
        minidns(env, url, "dnssec", "enable", TOP)
        top_ds = records_of(minidns(env, url, "dnssec", "ds", TOP), "DS")
        assert top_ds, "`minidns dnssec ds test.` printed no DS"

        port = free_port()
        auth = start("minidns", [sys.executable, "-m", "minidns", "serve", "--database-url", url,
                                 "--listen", f"127.0.0.1:{port}", "--no-api", "--no-notify",
                                 "--dnssec-rollover-margin", str(MARGIN)], port, d, env)
        started.append(auth)

        def signed() -> bool:
            r = ask(port, ZONE, "DNSKEY", rd=False)
            t = ask(port, TOP, "DNSKEY", rd=False)
            return all(x is not None and any(s.rdtype == dns.rdatatype.RRSIG for s in x.answer) for x in (r, t))

        wait_for(auth, signed, f"does not answer signed DNSKEYs for {TOP} and {ZONE} on 127.0.0.1:{port}")

        procs = {}
        for kind, (owner, ds) in (("top", top_ds[0]), ("control", zone_ds[0])):
            rport = free_port()
            conf = resolver_conf(d, f"unbound-{kind}", rport, port, f"{owner} DS {ds}")
            procs[kind] = start(f"unbound-{kind}", [UNBOUND, "-d", "-c", str(conf)], rport, d)
            started.append(procs[kind])
        for r in procs.values():
            wait_for(r, lambda r=r: ask(r.port, f"ns1.{TOP}") is not None, "does not answer")
        w = Walk(auth, procs["top"], procs["control"], env, url, started=t0)
        w.note("setup done")
        yield w
    finally:
        for p in reversed(started):
            p.stop()
        drop()


def test_validation_through_zsk_and_ksk_rollovers(walk):
    w, port = walk, walk.auth.port
    (ksk0,) = [t for t, f in dnskeys(port).items() if f == 257]
    (zsk0,) = [t for t, f in dnskeys(port).items() if f == 256]
    first_ds = parent_ds(port)
    assert len(first_ds) == 1 and signers(port, "www.example.test.", "A") == {zsk0}
    www_signers = lambda: signers(port, "www.example.test.", "A")  # noqa: E731

    w.enter("before any rollover")
    w.rounds_until(time.monotonic() + 1.0)

    # -- ZSK: pre-publication ---------------------------------------------------------------------
    due = w.due(w.roll("rollover", ZONE, "--zsk"))
    w.after("ZSK 1/3: new ZSK published, not signing", "a new ZSK in the DNSKEY RRset", lambda: len(dnskeys(port)) == 3)
    (zsk1,) = set(dnskeys(port)) - {ksk0, zsk0}
    assert dnskeys(port) == {ksk0: 257, zsk0: 256, zsk1: 256} and www_signers() == {zsk0}

    out = w.step_when_due(due, "ZSK 2/3: new ZSK active (zone re-signed), old retired",
                          f"answers signed by the new ZSK {zsk1}", lambda: www_signers() == {zsk1})
    assert dnskeys(port) == {ksk0: 257, zsk0: 256, zsk1: 256}, "the retired ZSK stays published"
    due = w.due(out)
    w.rounds_until(time.monotonic() + 1.0)
    w.cli("record", "add", ZONE, "new", "A", TTL, "192.0.2.123")
    w.after("ZSK 2/3 + a record added", "new.example.test. A",
            lambda: answer_set(direct(port, "new.example.test.", "A")) == {NEW})
    w.new_record = "present"
    assert signers(port, "new.example.test.", "A") == {zsk1}

    w.step_when_due(due, "ZSK 3/3: old ZSK removed, the rollover done", f"the DNSKEY RRset without the old ZSK {zsk0}",
                    lambda: set(dnskeys(port)) == {ksk0, zsk1})
    w.rounds_until(time.monotonic() + SETTLE)  # caches turn over: everything fetched anew
    assert www_signers() == {zsk1}

    # -- KSK: double-RRset; the parent's DS changed by the operator ------------------------------
    due = w.due(w.roll("rollover", ZONE, "--ksk"))
    w.after("KSK 1/4: new KSK published, co-signing the DNSKEY RRset", "a new KSK in the DNSKEY RRset",
            lambda: len(dnskeys(port)) == 3)
    (ksk1,) = set(dnskeys(port)) - {ksk0, zsk1}
    assert dnskeys(port) == {ksk0: 257, ksk1: 257, zsk1: 256} and signers(port, ZONE, "DNSKEY") == {ksk0, ksk1}
    assert {rd.split()[0] for rd in _cds(port)} == {str(ksk0), str(ksk1)}, "CDS names both KSKs"
    w.rounds_until(time.monotonic() + 1.0)

    both = records_of(w.cli("dnssec", "ds", ZONE), "DS")
    assert len(both) == 2, both
    (new_ds,) = [data for _owner, data in both if data not in first_ds]
    w.cli("record", "add", TOP, "example", "DS", DS_TTL, *new_ds.split())
    w.after("KSK 2/4: the parent serves both DS", "both DS of example.test. in test.", lambda: len(parent_ds(port)) == 2)
    ds_served = time.monotonic()
    w.rounds_until(time.monotonic() + 0.5)
    w.cli("record", "delete", ZONE, "new", "A", TTL, "192.0.2.123")
    # From the delete on, a cache may hold the record until its TTL has passed, or not: the round
    # `after` runs at once already expects either (a slow machine may see the TTL pass first).
    w.new_record, w.grace = "deleted", time.monotonic() + TTL + 1
    w.after("KSK 2/4 + the record deleted", "no new.example.test. A",
            lambda: not answer_set(direct(port, "new.example.test.", "A")))
    # ds-seen once the parent's new DS has been served for its TTL (+ margin); by then the DNSKEY
    # TTL + margin since the rollover began has passed too (else ds-seen leaves the step to `advance`).
    w.rounds_until(max(ds_served + DS_TTL + MARGIN, time.monotonic() + max(0.0, due + 1.0 - time.time())))

    w.control_expect = "any"  # from the old KSK's removal, once its cached DNSKEY RRset expires, it fails
    out = w.roll("ds-seen", ZONE)
    phase = "KSK 3/4: new KSK active, old KSK removed; the parent still serves both DS"
    gone = (f"the DNSKEY RRset without the old KSK {ksk0}", lambda: set(dnskeys(port)) == {ksk1, zsk1})
    if "the rollover is done" in out:
        w.after(phase, *gone)
    else:  # noted, but not due yet after all: `advance` takes it
        w.step_when_due(w.due(out), phase, *gone)
    assert signers(port, ZONE, "DNSKEY") == {ksk1}
    assert {rd.split()[0] for rd in _cds(port)} == {str(ksk1)}, "CDS names the new KSK alone"
    w.rounds_until(time.monotonic() + SETTLE)

    (old_ds,) = first_ds
    w.cli("record", "delete", TOP, "example", "DS", DS_TTL, *old_ds.split())
    w.control_expect = "bogus"  # anchored on a DS whose key is gone: the negative control
    w.after("KSK 4/4: the parent serves the new DS alone", "the new DS alone in test.", lambda: parent_ds(port) == {new_ds})
    w.rounds_until(time.monotonic() + SETTLE)

    elapsed = time.monotonic() - w.started
    w.note(f"done: {w.rounds} rounds, {len(w.failures)} failure(s)")
    print("\n".join(w.timeline))
    if w.failures:
        pytest.fail(w.report(), pytrace=False)
    assert elapsed < BUDGET, f"the walk took {elapsed:.0f}s (budget {BUDGET}s)"


def _cds(port: int) -> set[str]:
    r = direct(port, ZONE, "CDS")
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == dns.rdatatype.CDS for rd in rrset}


def just_fetched_dnskeys(w: Walk) -> None:
    """Wait until a resolver has just fetched example.test.'s DNSKEY RRset (its TTL whole, asking
    once the cached copy expired), so that the two commands of the control (under 2 s) fall inside
    that copy's life. Without it the copy expired between them one run in three or four, and the
    resolver fetched the new key before it signed: no bogus answer to see."""
    deadline = time.monotonic() + 4 * SETTLE
    while time.monotonic() < deadline:
        for proc in (w.resolver, w.control):
            r = ask(proc.port, ZONE, "DNSKEY")
            ttls = [rrset.ttl for rrset in (r.answer if r else []) if rrset.rdtype == dns.rdatatype.DNSKEY]
            if ttls and ttls[0] >= TTL:
                w.note(f"resolver on port {proc.port} has just fetched the DNSKEY RRset (TTL {ttls[0]})")
                return
        time.sleep(0.05)
    pytest.fail(f"no resolver fetched example.test.'s DNSKEY RRset anew within {4 * SETTLE}s")


def test_a_zsk_activated_without_pre_publication_is_caught(walk):
    """The negative control for the walk's timing: the same ZSK rollover with its wait cut short
    (the due time moved to now in the database, so `advance` takes step 2 right after step 1) makes
    fresh answers bogus ("signatures from unknown keys") for a resolver that cached the DNSKEY
    RRset without the new key — what the pre-publication wait in the walk prevents."""
    w, port = walk, walk.auth.port
    assert "no rollover in progress" in minidns(w.env, w.url, "dnssec", "status", ZONE), "a rollover is still running"
    w.failures, w.new_record, w.control_expect = [], "absent", "any"
    w.enter("control: before")
    w.rounds_until(time.monotonic() + SETTLE)  # the resolver holds the current DNSKEY RRset
    assert not w.failures, w.report()
    before = set(dnskeys(port))
    just_fetched_dnskeys(w)
    w.roll("rollover", ZONE, "--zsk")
    w.after("control: new ZSK published", "a new ZSK in the DNSKEY RRset", lambda: len(dnskeys(port)) == len(before) + 1)
    (zsk,) = set(dnskeys(port)) - before

    async def now_due():
        conn = await db.connect(w.url)
        await conn.execute("UPDATE dnssec_rollovers SET due_at = now() WHERE kind = 'zsk'")
        await conn.close()

    asyncio.run(now_due())
    w.roll("advance")
    w.after("control: the new ZSK signing at once", f"answers signed by the new ZSK {zsk}",
            lambda: signers(port, "www.example.test.", "A") == {zsk})
    w.rounds_until(time.monotonic() + 1.0)
    print("\n".join(w.timeline))
    bogus = [f for f in w.failures if f.phase.endswith("at once") and "SERVFAIL" in f.problem]
    assert bogus and any("signatures from unknown keys" in f.detail for f in bogus), \
        "a ZSK that signs before the cached DNSKEY RRsets hold it went unnoticed:\n" + (w.report() if w.failures else "")
