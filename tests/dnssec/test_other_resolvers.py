"""Validating resolvers other than Unbound and BIND in front of a signed minidns: PowerDNS Recursor
(Debian pdns-recursor, `pdns_recursor`) and Knot Resolver (Debian knot-resolver, `kresd`).

The signed zones and the server are those of tests/dnssec/test_validation.py (its module-scoped
`setup` fixture). Each resolver is started twice on loopback ports, its only trust anchor for
example.test. being the parent's DS that `minidns dnssec ds` printed ("good") or that DS with its
digest changed ("wrong", the negative control: everything under it must be SERVFAIL, so the AD bits
of "good" are the validator's own).

- PowerDNS Recursor: `dnssec=validate`, `addTA()` in a Lua config, `forward-zones` (RD clear: the
  target is authoritative) for example.test. and both children, `dont-query=` emptied so 127.0.0.1
  may be asked, `query-local-address=127.0.0.1` and no root hints so nothing leaves loopback.
- Knot Resolver: `trust_anchors.add()` with the DS, the root anchor removed, `policy.FORWARD` of
  the example.test. suffix to minidns. Not `policy.STUB`: Knot Resolver documents that STUB does not
  DNSSEC-validate, FORWARD does. Outgoing queries bound to 127.0.0.1, cache in the test's tmp dir.

For every resolver: AD and no SERVFAIL on a positive answer, a CNAME chain, a wildcard answer, a
missing name (RFC 9824 compact denial: NOERROR or NXDOMAIN accepted, AD required), NODATA, an empty
non-terminal and the signed child; the unsigned child's answer without AD and without SERVFAIL.

Skipped only when a resolver's binary (or Unbound, which the shared fixture starts) is missing;
scripts/test.sh installs them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from test_validation import (  # noqa: F401  (setup: the module's signed zones and server)
    INSECURE,
    PARENT,
    SECURE,
    UNBOUND,
    Proc,
    Setup,
    _wrong,
    answer_set,
    ask,
    free_port,
    setup,
    start,
    wait_for,
)


def _binary(name: str) -> str | None:
    return shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)


PDNS_RECURSOR = _binary("pdns_recursor")
KRESD = _binary("kresd")
BINARIES = {"pdns-recursor": PDNS_RECURSOR, "kresd": KRESD}
RESOLVERS = list(BINARIES)

pytestmark = pytest.mark.skipif(UNBOUND is None, reason="the shared fixture starts unbound (Debian package unbound)")


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------


def pdns_recursor(d: Path, name: str, port: int, auth_port: int, owner: str, ds: str) -> Proc:
    wd = d / name
    wd.mkdir(exist_ok=True)
    lua = wd / "recursor.lua"
    # Only the test's anchor: the built-in root anchor would have nothing to validate against here.
    lua.write_text(f'clearTA()\naddTA("{owner}", "{ds}")\n')
    target = f"127.0.0.1:{auth_port}"
    conf = wd / "recursor.conf"
    conf.write_text("\n".join([
        "local-address=127.0.0.1",
        f"local-port={port}",
        "allow-from=127.0.0.0/8",
        "daemon=no",
        "write-pid=no",
        f"socket-dir={wd}",
        "threads=1",
        "dnssec=validate",
        "dnssec-log-bogus=yes",
        f"lua-config-file={lua}",
        # The targets are authoritative (RD clear); each child is forwarded too, so that the
        # referrals to their (unreachable, documentation-range) NS addresses are never followed.
        f"forward-zones={PARENT}={target},{SECURE}={target},{INSECURE}={target}",
        "dont-query=",  # the default list holds 127.0.0.0/8
        "query-local-address=127.0.0.1",  # nothing can leave loopback
        "hint-file=no",  # no root priming: there is no root here
        "disable-syslog=yes",
        "log-timestamp=yes",
        "loglevel=9",
        "quiet=no",
        "trace=fail",  # the full trace of every query that failed goes to the log
        "structured-logging=no",
    ]) + "\n")  # fmt: skip
    return start(name, [PDNS_RECURSOR, f"--config-dir={wd}"], port, d)


def kresd(d: Path, name: str, port: int, auth_port: int, owner: str, ds: str) -> Proc:
    wd = d / name
    (wd / "cache").mkdir(parents=True, exist_ok=True)
    conf = wd / "kresd.conf"
    conf.write_text("\n".join([
        f"net.listen('127.0.0.1', {port}, {{ kind = 'dns' }})",
        "net.ipv6 = false",
        "net.outgoing_v4('127.0.0.1')",  # nothing can leave loopback
        f"cache.open(10 * MB, 'lmdb://{wd / 'cache'}')",
        "log_level('debug')",
        # Only the test's anchor; none of the modules that ask the root on their own.
        "pcall(trust_anchors.remove, '.')",
        *[f"pcall(modules.unload, '{m}')" for m in ("priming", "detect_time_skew", "detect_time_jump",
                                                    "ta_signal_query", "ta_sentinel", "ta_update")],
        f"trust_anchors.add('{owner} DS {ds}')",
        # FORWARD, not STUB: STUB does not validate. The suffix covers both children.
        f"policy.add(policy.suffix(policy.FORWARD('127.0.0.1@{auth_port}'), {{todname('{PARENT}')}}))",
        "policy.add(policy.all(policy.REFUSE))",  # anything else: not ours
    ]) + "\n")  # fmt: skip
    return start(name, [KRESD, "-n", "-c", str(conf), str(wd)], port, d)


STARTERS = {"pdns-recursor": pdns_recursor, "kresd": kresd}


@dataclass
class Resolver:
    kind: str
    good: Proc
    wrong: Proc


@pytest.fixture(scope="module", params=RESOLVERS)
def resolver(request, setup: Setup, tmp_path_factory):  # noqa: F811
    kind = request.param
    if BINARIES[kind] is None:
        pytest.skip(f"{kind} is not installed (Debian package {kind}; scripts/test.sh installs it)")
    d = tmp_path_factory.mktemp(kind)
    owner, ds = setup.parent_ds[0]
    started: list[Proc] = []
    try:
        for which, anchor in (("good", ds), ("wrong", _wrong(ds))):
            started.append(STARTERS[kind](d, f"{kind}-{which}", free_port(), setup.auth.port, owner, anchor))
        for p in started:
            wait_for(p, lambda p=p: ask(p.port, f"ns1.{PARENT}") is not None, "does not answer")
        yield Resolver(kind, *started)
    finally:
        for p in reversed(started):
            p.stop()


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def query(proc: Proc, qname: str, qtype: str) -> dns.message.Message:
    r = ask(proc.port, qname, qtype)
    if r is None:
        pytest.fail(f"no reply from {proc.name} for {qname} {qtype}; its log:\n{proc.log()}")
    return r


def explain(setup: Setup, proc: Proc, reply, qname: str, qtype: str) -> str:  # noqa: F811
    direct = ask(setup.auth.port, qname, qtype, rd=False)
    return (f"\n--- {proc.name} said:\n{reply}\n--- minidns said (RD clear, DO set):\n"
            f"{direct if direct is not None else 'NO REPLY'}\n--- {proc.name} log (tail):\n{proc.log()}")


WWW = {"www.example.test. A 192.0.2.80", "www.example.test. A 192.0.2.81"}

SECURE_CASES = [
    ("www.example.test.", "A", ("NOERROR",), WWW),
    ("chain1.example.test.", "A", ("NOERROR",), {"chain1.example.test. CNAME chain2.example.test.",
                                                 "chain2.example.test. CNAME chain3.example.test.",
                                                 "chain3.example.test. CNAME www.example.test.", *WWW}),
    ("x.wild.example.test.", "A", ("NOERROR",), {"x.wild.example.test. A 192.0.2.99"}),
    ("nothere.example.test.", "A", ("NOERROR", "NXDOMAIN"), set()),
    ("www.example.test.", "TXT", ("NOERROR",), set()),
    ("ent.example.test.", "A", ("NOERROR",), set()),
    ("www.secure.example.test.", "A", ("NOERROR",), {"www.secure.example.test. A 192.0.2.171"}),
]  # fmt: skip
CASE_IDS = ["positive", "cname-chain", "wildcard", "missing-name", "nodata", "ent", "signed-child"]


@pytest.mark.parametrize("qname, qtype, rcodes, want", SECURE_CASES, ids=CASE_IDS)
def test_answers_are_secure(setup, resolver, qname, qtype, rcodes, want):  # noqa: F811
    r = query(resolver.good, qname, qtype)
    rcode = dns.rcode.to_text(r.rcode())
    ad = bool(r.flags & dns.flags.AD)
    if rcode not in rcodes or not ad or answer_set(r) != want:
        pytest.fail(f"{resolver.kind}: {qname} {qtype}: rcode {rcode} (want {'/'.join(rcodes)}), AD "
                    f"{'set' if ad else 'CLEAR'}, answer {sorted(answer_set(r))} (want {sorted(want)})"
                    + explain(setup, resolver.good, r, qname, qtype), pytrace=False)


def test_unsigned_child_is_answered_insecure(setup, resolver):  # noqa: F811
    qname, want = "www.insecure.example.test.", {"www.insecure.example.test. A 192.0.2.172"}
    r = query(resolver.good, qname, "A")
    rcode = dns.rcode.to_text(r.rcode())
    ad = bool(r.flags & dns.flags.AD)
    if rcode != "NOERROR" or ad or answer_set(r) != want:
        pytest.fail(f"{resolver.kind}: {qname} A: rcode {rcode}, AD {'set' if ad else 'clear'}, answer "
                    f"{sorted(answer_set(r))} (want NOERROR, AD clear, {sorted(want)})"
                    + explain(setup, resolver.good, r, qname, "A"), pytrace=False)


def test_wrong_trust_anchor_gives_servfail(setup, resolver):  # noqa: F811
    for qname, qtype in (("www.example.test.", "A"), ("nothere.example.test.", "A"), ("www.secure.example.test.", "A")):
        r = query(resolver.wrong, qname, qtype)
        assert r.rcode() == dns.rcode.SERVFAIL and not r.flags & dns.flags.AD, \
            f"{resolver.kind}: {qname} {qtype} with a wrong trust anchor:\n{r}"
