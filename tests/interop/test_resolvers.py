"""Real resolvers and DNS tools in front of minidns, all on loopback.

1. Unbound (UDP upstream, DNS 0x20 on), Unbound with `tcp-upstream: yes`, and BIND named each
   resolve 69 names through a minidns serving the three test zones (stub zones / static-stub zones
   pointing at it). Each final answer (rcode, RA, the answer section as a set of
   owner/type/rdata, the SOA owner of a negative answer) must be what the zone files say.
2. Unbound and named follow a real referral: a parent minidns serving only example.com delegates
   child.example.com to a child minidns on 127.53.0.71 (the zone copies move ns1.child there from
   192.0.2.71). See the conftest for why this needs its own pair of minidns processes.
3. minidns's query log shows what the resolvers sent: Unbound's 0x20 mixed-case names (and Unbound
   logged no "wrong 0x20-ID"), the big TXT retried over TCP after TC, TCP only from the
   tcp-upstream Unbound.
4. kdig, dig and delv as clients straight at minidns: +tcp, +nsid, +bufsize=512 (TC and the retry
   over TCP), +dnssec, CH TXT, referral; the output must parse and the rcodes be right.

Unbound and named are required: if either is missing, the tests that need it FAIL (Debian
packages: unbound, bind9; dig/delv come from bind9-dnsutils and kdig from knot-dnsutils).
"""

from __future__ import annotations

import os
import re
import time
import shutil
import subprocess
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from interop_common import CHILD_NS_ADDR, NSID, SOURCE_ADDR, VERSION, canonical_rdata, query_log

QUERY_TIMEOUT = 4.0  # per attempt; two attempts
TOOL_TIMEOUT = 15.0

# --------------------------------------------------------------------------------------------
# What the zones say
# --------------------------------------------------------------------------------------------

SOA_EXAMPLE = "example.com. SOA ns1.example.com. hostmaster.example.com. 2026112201 7200 3600 1209600 300"
SOA_CHILD = "child.example.com. SOA ns1.child.example.com. hostmaster.child.example.com. 7 3600 600 86400 60"
SOA_REVERSE = "2.0.192.in-addr.arpa. SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 3600"
WWW_A = ["www.example.com. A 192.0.2.80", "www.example.com. A 192.0.2.81"]
BIG_TXT = [f'big.example.com. TXT "record number {i:02d} padded to make the answer long enough to truncate"'
           for i in range(30)]
MID_TXT = [f'mid.example.com. TXT "mid-size RRset record {i} padded to roughly eighty octets of text data"'
           for i in range(8)]
MXMANY = [f"mxmany.example.com. MX {10 * i} mx{i:02d}.mxmany.example.com." for i in range(1, 11)]
LONG_TARGET = ".".join(["x" * 60] * 4) + ".test."
LONG_QNAME = "a" * 50 + ".long.example.com."


@dataclass(frozen=True)
class Expect:
    qname: str
    qtype: str
    rcode: str = "NOERROR"
    answer: tuple = ()           # "owner TYPE rdata" strings; ignored for SERVFAIL
    soa: str | None = None       # owner of the SOA a negative answer must carry in authority
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.qname.rstrip('.')}-{self.qtype}"


def E(qname, qtype, *answer, rcode="NOERROR", soa=None, note=""):
    return Expect(qname, qtype, rcode, tuple(answer), soa, note)


CASES = [
    # plain data
    E("www.example.com.", "A", *WWW_A),
    E("www.example.com.", "AAAA", "www.example.com. AAAA 2001:db8::80"),
    E("example.com.", "A", "example.com. A 192.0.2.1"),
    E("example.com.", "AAAA", "example.com. AAAA 2001:db8::1"),
    E("example.com.", "MX", "example.com. MX 10 mail.example.com.", "example.com. MX 20 mail2.example.net."),
    E("example.com.", "TXT", 'example.com. TXT "v=spf1 -all"'),
    E("example.com.", "NS", "example.com. NS ns1.example.com.", "example.com. NS ns2.example.net."),
    E("example.com.", "SOA", SOA_EXAMPLE),
    E("example.com.", "CAA", 'example.com. CAA 0 issue "ca.example.net"'),
    E("mail.example.com.", "AAAA", "mail.example.com. AAAA 2001:db8::25"),
    E("ns1.example.com.", "A", "ns1.example.com. A 192.0.2.53"),
    E("multi.example.com.", "A", *[f"multi.example.com. A 192.0.2.{i}" for i in (1, 2, 3)]),
    E("_sip._tcp.example.com.", "SRV", "_sip._tcp.example.com. SRV 10 60 5060 sipserver.example.com."),
    E("sipserver.example.com.", "A", "sipserver.example.com. A 192.0.2.60"),
    E("ptr.example.com.", "PTR", "ptr.example.com. PTR www.example.com."),
    E("hinfo.example.com.", "HINFO", 'hinfo.example.com. HINFO "PC" "Linux"'),
    E("www.ent.deep.example.com.", "TXT", 'www.ent.deep.example.com. TXT "below two empty non-terminals"'),
    E("ttl0.example.com.", "A", "ttl0.example.com. A 192.0.2.5", note="TTL 0"),
    E("deleg.example.com.", "DS", "deleg.example.com. DS 12345 13 2 "
      "8F9A7EC3E2C1A63AEB7BA2B2C67A7E1E5E07C1A2B9F1E0D4C3B2A19081726354", note="DS at the parent side of a cut"),
    E("mid.example.com.", "TXT", *MID_TXT),
    E("mxmany.example.com.", "MX", *MXMANY),
    # the big TXT never fits the resolver's 1232-octet UDP queries: TC, then TCP
    E("big.example.com.", "TXT", *BIG_TXT),
    # reverse zone
    E("80.2.0.192.in-addr.arpa.", "PTR", "80.2.0.192.in-addr.arpa. PTR www.example.com."),
    E("1.2.0.192.in-addr.arpa.", "PTR", "1.2.0.192.in-addr.arpa. PTR example.com."),
    E("99.2.0.192.in-addr.arpa.", "PTR", rcode="NXDOMAIN", soa="2.0.192.in-addr.arpa."),
    E("2.0.192.in-addr.arpa.", "SOA", SOA_REVERSE),
    # negative answers
    E("nope.example.com.", "A", rcode="NXDOMAIN", soa="example.com."),
    E("www.example.com.", "MX", soa="example.com.", note="NODATA"),
    E("deep.example.com.", "A", soa="example.com.", note="empty non-terminal"),
    E("x.ent.deep.example.com.", "TXT", rcode="NXDOMAIN", soa="example.com."),
    # CNAMEs
    E("alias.example.com.", "A", "alias.example.com. CNAME www.example.com.", *WWW_A),
    E("chain1.example.com.", "AAAA", "chain1.example.com. CNAME chain2.example.com.",
      "chain2.example.com. CNAME alias.example.com.", "alias.example.com. CNAME www.example.com.",
      "www.example.com. AAAA 2001:db8::80"),
    E("caps.example.com.", "A", "caps.example.com. CNAME www.example.com.", *WWW_A, note="CNAME target in capitals"),
    E("dangling.example.com.", "A", "dangling.example.com. CNAME nothere.example.com.", rcode="NXDOMAIN",
      soa="example.com."),
    E("alias.example.com.", "MX", "alias.example.com. CNAME www.example.com.", soa="example.com."),
    E("loop1.example.com.", "A", rcode="SERVFAIL", note="CNAME loop: resolvers give up"),
    # wildcards
    E("x.wild.example.com.", "A", "x.wild.example.com. A 192.0.2.99"),
    E("a.b.wild.example.com.", "TXT", 'a.b.wild.example.com. TXT "wildcard"'),
    E("x.wild.example.com.", "MX", soa="example.com.", note="NODATA at a wildcard"),
    E("sub.wild.example.com.", "A", "sub.wild.example.com. A 192.0.2.98"),
    E("x.sub.wild.example.com.", "A", rcode="NXDOMAIN", soa="example.com."),
    E("x.wild2.example.com.", "A", "x.wild2.example.com. A 192.0.2.96"),
    E("x.b.wild2.example.com.", "A", rcode="NXDOMAIN", soa="example.com.", note="empty non-terminal blocks *"),
    E("b.wild2.example.com.", "A", soa="example.com."),
    E("x.star.example.com.", "MX", "x.star.example.com. MX 10 mail.example.com."),
    E("x.cwild.example.com.", "A", "x.cwild.example.com. CNAME www.example.com.", *WWW_A),
    E("x.dwild.example.com.", "A", "x.dwild.example.com. CNAME nothere.example.com.", rcode="NXDOMAIN",
      soa="example.com."),
    # DNAME
    E("www.dname2.example.com.", "A", "dname2.example.com. DNAME target.example.com.",
      "www.dname2.example.com. CNAME www.target.example.com.", "www.target.example.com. A 192.0.2.111"),
    E("x.dname2.example.com.", "A", "dname2.example.com. DNAME target.example.com.",
      "x.dname2.example.com. CNAME x.target.example.com.", rcode="NXDOMAIN", soa="example.com."),
    E("todname.example.com.", "A", "todname.example.com. CNAME www.dname2.example.com.",
      "dname2.example.com. DNAME target.example.com.",
      "www.dname2.example.com. CNAME www.target.example.com.", "www.target.example.com. A 192.0.2.111"),
    E("dname2.example.com.", "DNAME", "dname2.example.com. DNAME target.example.com."),
    E(LONG_QNAME, "A", f"long.example.com. DNAME {LONG_TARGET}", rcode="YXDOMAIN",
      note="DNAME substitution longer than 255 octets"),
    # the child zone (served by the same minidns; stub zone for it too)
    E("www.child.example.com.", "A", "www.child.example.com. A 192.0.2.72"),
    E("child.example.com.", "NS", "child.example.com. NS ns1.child.example.com."),
    E("child.example.com.", "SOA", SOA_CHILD),
    E("ns1.child.example.com.", "A", "ns1.child.example.com. A 192.0.2.71"),
    E("nope.child.example.com.", "A", rcode="NXDOMAIN", soa="child.example.com."),
    E("child.example.com.", "DS", soa="example.com.", note="DS is asked of the parent"),
    # letter case: matching is case-insensitive, the answer is the zone's
    E("WWW.EXAMPLE.COM.", "A", *WWW_A),
    E("wWw.ExAmPlE.cOm.", "AAAA", "www.example.com. AAAA 2001:db8::80"),
    E("MIXED.CASE.EXAMPLE.COM.", "A", "mixed.case.example.com. A 192.0.2.82"),
    E("mixed.case.example.com.", "A", "mixed.case.example.com. A 192.0.2.82"),
    E("ALIAS.Example.COM.", "A", "alias.example.com. CNAME www.example.com.", *WWW_A),
    E("X.CWild.Example.Com.", "A", "x.cwild.example.com. CNAME www.example.com.", *WWW_A),
    E("BIG.EXAMPLE.COM.", "TXT", *BIG_TXT),
    E("WWW.CHILD.EXAMPLE.COM.", "A", "www.child.example.com. A 192.0.2.72"),
    E("80.2.0.192.IN-ADDR.ARPA.", "PTR", "80.2.0.192.in-addr.arpa. PTR www.example.com."),
    E("NOPE.EXAMPLE.COM.", "A", rcode="NXDOMAIN", soa="example.com."),
    # outside every zone: the root is stubbed to minidns, which refuses it; nothing leaves loopback
    E("www.example.org.", "A", rcode="SERVFAIL", note="outside the zones"),
]

# Setup 2: the child is reached only through the parent's referral (glue moved to CHILD_NS_ADDR).
REFERRAL_CASES = [
    E("www.child.example.com.", "A", "www.child.example.com. A 192.0.2.72"),
    E("WWW.Child.Example.COM.", "AAAA", soa="child.example.com."),
    E("child.example.com.", "NS", "child.example.com. NS ns1.child.example.com."),
    E("child.example.com.", "SOA", SOA_CHILD),
    E("ns1.child.example.com.", "A", f"ns1.child.example.com. A {CHILD_NS_ADDR}"),
    E("nope.child.example.com.", "A", rcode="NXDOMAIN", soa="child.example.com."),
    E("child.example.com.", "DS", soa="example.com.", note="DS is asked of the parent"),
    E("www.example.com.", "A", *WWW_A),
]

RESOLVERS = ("unbound", "unbound-tcp", "named")
REF_RESOLVERS = ("unbound-ref", "named-ref")
FIXTURE = {"unbound": "unbound", "unbound-tcp": "unbound_tcp", "named": "named",
           "unbound-ref": "unbound_ref", "named-ref": "named_ref"}

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def rr_text(owner: str, rdtype: str, rdata: str) -> str:
    rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), rdata, origin=dns.name.root, relativize=False)
    return f"{dns.name.from_text(owner).to_text().lower()} {rdtype.upper()} {canonical_rdata(rd)}"


def expected_set(lines) -> frozenset:
    out = set()
    for line in lines:
        owner, rdtype, rdata = line.split(None, 2)
        out.add(rr_text(owner, rdtype, rdata))
    return frozenset(out)


def section_set(section) -> frozenset:
    return frozenset(f"{rrset.name.to_text().lower()} {dns.rdatatype.to_text(rrset.rdtype)} {canonical_rdata(rd)}"
                     for rrset in section for rd in rrset)


def ask(host: str, port: int, qname: str, qtype: str, recursion: bool = True) -> dns.message.Message | None:
    """One query (EDNS 4096; over TCP again if the reply is truncated), two attempts on timeout."""
    q = dns.message.make_query(qname, qtype, use_edns=0, payload=4096)
    if not recursion:
        q.flags &= ~dns.flags.RD
    for _ in range(2):
        try:
            reply, _tcp = dns.query.udp_with_fallback(q, host, port=port, timeout=QUERY_TIMEOUT)
            return reply
        except (dns.exception.Timeout, ConnectionError, OSError):
            continue
    return None


def _show(m: dns.message.Message | None) -> str:
    return "NO REPLY" if m is None else m.to_text()


def check_resolution(resolver, direct_to, case: Expect) -> None:
    """Ask `resolver` (RD) for the case; on a mismatch fail with its reply and minidns's own."""
    reply = ask(resolver.host, resolver.port, case.qname, case.qtype)
    problems = []
    if reply is None:
        problems.append("no reply from the resolver")
    else:
        rcode = dns.rcode.to_text(reply.rcode())
        if rcode != case.rcode:
            problems.append(f"rcode {rcode}, want {case.rcode}")
        if not reply.flags & dns.flags.RA:
            problems.append("RA clear")
        asked = dns.name.from_text(case.qname)
        if [q.name.to_text() for q in reply.question] != [asked.to_text()]:
            problems.append(f"question {[q.to_text() for q in reply.question]}, asked {asked}")
        if case.rcode != "SERVFAIL":
            got, want = section_set(reply.answer), expected_set(case.answer)
            if got != want:
                problems.append("answer differs:\n    missing " + "\n    missing ".join(sorted(want - got) or ["-"])
                                + "\n    extra   " + "\n    extra   ".join(sorted(got - want) or ["-"]))
        if case.soa is not None:
            soas = [r.name.to_text().lower() for r in reply.authority if r.rdtype == dns.rdatatype.SOA]
            if soas != [case.soa]:
                problems.append(f"SOA owners in authority {soas}, want [{case.soa!r}]")
    if problems:
        direct = ask(direct_to.host, direct_to.port, case.qname, case.qtype, recursion=False)
        pytest.fail(f"{resolver.name} resolving {case.qname} {case.qtype} through minidns "
                    f"({direct_to.name} {direct_to.host}:{direct_to.port}): " + "; ".join(problems)
                    + f"\n--- {resolver.name} said:\n{_show(reply)}\n--- minidns said when asked directly (RD clear):\n"
                    + _show(direct), pytrace=False)


# --------------------------------------------------------------------------------------------
# 1. Resolution through the stub zones
# --------------------------------------------------------------------------------------------


def test_case_list():
    assert len(CASES) >= 30 and len({(c.qname, c.qtype) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("resolver", RESOLVERS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolves_through_minidns(resolver, case, request, stub_auth):
    check_resolution(request.getfixturevalue(FIXTURE[resolver]), stub_auth, case)


# --------------------------------------------------------------------------------------------
# 2. Following the referral to the child
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolver", REF_RESOLVERS)
@pytest.mark.parametrize("case", REFERRAL_CASES, ids=[c.id for c in REFERRAL_CASES])
def test_follows_referral(resolver, case, request, split_auth):
    direct = split_auth.child if case.qname.lower().endswith("child.example.com.") and case.qtype != "DS" \
        else split_auth.parent
    check_resolution(request.getfixturevalue(FIXTURE[resolver]), direct, case)


@pytest.mark.parametrize("resolver", REF_RESOLVERS)
def test_referral_reached_the_child(resolver, request, split_auth):
    """The parent was asked about the child (and referred), then the child server was asked."""
    server = request.getfixturevalue(FIXTURE[resolver])
    r = ask(server.host, server.port, "www.child.example.com.", "A")
    assert r is not None and r.rcode() == dns.rcode.NOERROR
    src = SOURCE_ADDR[resolver]
    deadline = time.monotonic() + 3  # a server writes its query-log line just after its reply
    while True:
        parent_rows = query_log(split_auth.parent.log_path)
        child_rows = query_log(split_auth.child.log_path)
        to_parent = [n for a, _p, n, _t in parent_rows if a == src and n.lower().endswith("child.example.com.")]
        to_child = [n for a, _p, n, _t in child_rows if a == src]
        if (to_parent and to_child) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert parent_rows and child_rows, ("the minidns query log has no query lines: has its format changed? "
                                        f"parent log:\n{split_auth.parent.log()}")
    assert to_parent, f"{resolver} never asked the parent about child.example.com (rows: {parent_rows[-20:]})"
    assert to_child, f"{resolver} never asked the child server at {CHILD_NS_ADDR} (rows: {child_rows[-20:]})"


# --------------------------------------------------------------------------------------------
# 3. What the resolvers sent minidns
# --------------------------------------------------------------------------------------------


def _rows_from(stub_auth, resolver):
    rows = query_log(stub_auth.log_path)
    assert rows, f"the minidns query log has no query lines: has its format changed? log:\n{stub_auth.log()}"
    return [r for r in rows if r[0] == SOURCE_ADDR[resolver]]


def test_unbound_0x20_is_echoed(unbound, stub_auth):
    """Unbound randomizes the letter case of every name it sends (use-caps-for-id) and checks the
    reply's question against it; it logs "wrong 0x20-ID in reply qname" (verbosity 2) on a mismatch."""
    names = [f"zeroxtwenty{i}.wild.example.com." for i in range(5)]  # wildcard answers, not cached yet
    for name in names:
        r = ask(unbound.host, unbound.port, name, "A")
        assert r is not None and r.rcode() == dns.rcode.NOERROR and r.answer, f"{name}: {_show(r)}"
    sent = [n for _a, _p, n, _t in _rows_from(stub_auth, "unbound")
            if n.lower() in {x.lower() for x in names}]
    assert sent, "Unbound's queries for the probe names are not in the minidns query log"
    assert any(n != n.lower() for n in sent), f"Unbound sent no mixed-case name: is 0x20 on? {sent}"
    log = unbound.log()
    assert "wrong 0x20-ID" not in log and "Capsforid" not in log, f"Unbound saw a 0x20 mismatch:\n{log}"


@pytest.mark.parametrize("resolver", ["unbound", "named"])
def test_big_txt_retried_over_tcp(resolver, request, stub_auth):
    server = request.getfixturevalue(FIXTURE[resolver])
    r = ask(server.host, server.port, "big.example.com.", "TXT")
    assert r is not None and len(section_set(r.answer)) == 30, _show(r)
    rows = [(p, n.lower(), t) for _a, p, n, t in _rows_from(stub_auth, resolver)]
    assert ("udp", "big.example.com.", 16) in rows, f"{resolver} never asked big TXT over UDP: {rows[-20:]}"
    assert ("tcp", "big.example.com.", 16) in rows, f"{resolver} did not retry big TXT over TCP: {rows[-20:]}"


def test_tcp_upstream_uses_only_tcp(unbound_tcp, stub_auth):
    r = ask(unbound_tcp.host, unbound_tcp.port, "tcponly.wild.example.com.", "A")
    assert r is not None and r.rcode() == dns.rcode.NOERROR and r.answer, _show(r)
    transports = {p for _a, p, _n, _t in _rows_from(stub_auth, "unbound-tcp")}
    assert transports == {"tcp"}, f"unbound with tcp-upstream sent over {transports}"


def test_resolvers_and_minidns_still_up(request, stub_auth):
    for name in RESOLVERS:
        srv = request.getfixturevalue(FIXTURE[name])
        assert srv.proc.poll() is None, f"{name} exited with {srv.proc.returncode}; log:\n{srv.log()}"
    assert stub_auth.proc.poll() is None, f"minidns exited; log:\n{stub_auth.log()}"
    assert "Traceback" not in stub_auth.log(), f"minidns logged a traceback:\n{stub_auth.log()}"


# --------------------------------------------------------------------------------------------
# 4. kdig, dig and delv straight at minidns
# --------------------------------------------------------------------------------------------


@dataclass
class ToolOutput:
    text: str
    status: str | None = None
    flags: set = field(default_factory=set)
    edns_flags: set | None = None
    nsid: str | None = None
    question: list = field(default_factory=list)     # "qname CLASS TYPE", case kept
    sections: dict = field(default_factory=dict)     # ANSWER/AUTHORITY/ADDITIONAL -> set of rr_text
    records: set = field(default_factory=set)        # every RR line (delv prints no sections)


def _parse_rr(line: str) -> str:
    owner, _ttl, rdclass, rdtype, rdata = line.split(None, 4)
    rd = dns.rdata.from_text(dns.rdataclass.from_text(rdclass), dns.rdatatype.from_text(rdtype), rdata,
                             origin=dns.name.root, relativize=False)
    return f"{owner.lower()} {rdtype} {canonical_rdata(rd)}"


def parse_tool_output(text: str) -> ToolOutput:
    """dig and kdig presentation output (one message), or delv's list of records."""
    out = ToolOutput(text)
    if m := re.search(r"status: ([A-Z]+)", text):
        out.status = m.group(1)
    if m := re.search(r"(?im)^;; flags: ([a-z ]*);", text):
        out.flags = set(m.group(1).split())
    if m := re.search(r"(?m)^; EDNS: version: \d+, flags:([a-z ]*);", text) or \
            re.search(r"(?m)^;; Version: \d+; flags:([a-z ]*);", text):
        out.edns_flags = set(m.group(1).split())
    if m := re.search(r'NSID: .*"([^"]*)"', text):
        out.nsid = m.group(1)
    section = None
    for line in text.splitlines():
        if m := re.match(r";; (QUESTION|ANSWER|AUTHORITY|ADDITIONAL) SECTION:", line):
            section = m.group(1)
            out.sections.setdefault(section, set())
            continue
        if not line.strip():
            section = None
            continue
        if section == "QUESTION":
            owner, rdclass, rdtype = line.lstrip("; ").split()
            out.question.append(f"{owner} {rdclass} {rdtype}")
        elif not line.startswith(";"):
            rr = _parse_rr(line)
            out.records.add(rr)
            if section:
                out.sections[section].add(rr)
    return out


def run_tool(tool: str, server, args: list[str]) -> tuple[ToolOutput, str]:
    binary = shutil.which(tool) or next((p for p in (f"/usr/bin/{tool}", f"/usr/sbin/{tool}")
                                         if os.access(p, os.X_OK)), None)
    if binary is None:
        package = {"kdig": "knot-dnsutils", "dig": "bind9-dnsutils", "delv": "bind9-dnsutils"}[tool]
        pytest.fail(f"`{tool}` is not installed (Debian: apt-get install {package})")
    if tool == "kdig":
        base = [binary, f"@{server.host}", "-p", str(server.port), "+time=2", "+retry=1"]
    elif tool == "dig":
        base = [binary, f"@{server.host}", "-p", str(server.port), "+time=2", "+tries=2"]
    else:
        base = [binary, f"@{server.host}", "-p", str(server.port), "-i"]  # -i: no validation (unsigned zones)
    p = subprocess.run(base + args, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    try:
        parsed = parse_tool_output(p.stdout)
    except Exception as e:
        pytest.fail(f"{tool} {' '.join(args)}: output does not parse ({type(e).__name__}: {e}):\n{p.stdout}{p.stderr}")
    return parsed, p.stderr


def _www(owner="www.example.com."):
    return {rr_text(owner, "A", "192.0.2.80"), rr_text(owner, "A", "192.0.2.81")}


BIG = expected_set(BIG_TXT)


def _check_kdig_nsid(o, err):
    assert o.status == "NOERROR" and "aa" in o.flags and "tc" not in o.flags
    assert o.sections["ANSWER"] == _www() and o.nsid == NSID and "(UDP)" in o.text


def _check_tcp_big(o, err):
    assert o.status == "NOERROR" and "tc" not in o.flags and o.sections["ANSWER"] == BIG and "(TCP)" in o.text


def _check_tc(o, err):
    assert o.status == "NOERROR" and {"aa", "tc"} <= o.flags and not o.sections.get("ANSWER")
    assert o.edns_flags is not None


def _check_kdig_retry(o, err):
    assert "truncated reply" in err and "(TCP)" in o.text and o.sections["ANSWER"] == BIG


def _check_dig_retry(o, err):
    assert "Truncated, retrying in TCP mode" in o.text and "(TCP)" in o.text and o.sections["ANSWER"] == BIG


def _check_nx_do(o, err):
    assert o.status == "NXDOMAIN" and "do" in o.edns_flags and "aa" in o.flags
    assert o.sections["AUTHORITY"] == expected_set([SOA_EXAMPLE])
    assert not any(" RRSIG " in r or " NSEC" in r for r in o.records)  # the zones are unsigned


def _check_cwild(o, err):
    assert o.status == "NOERROR" and o.nsid == NSID and "(TCP)" in o.text
    assert o.sections["ANSWER"] == {rr_text("x.cwild.example.com.", "CNAME", "www.example.com.")} | _www()


def _check_dig_case(o, err):
    assert o.status == "NOERROR" and o.question == ["WwW.ExAmPlE.CoM. IN A"]
    assert "do" in o.edns_flags and o.nsid == NSID and o.sections["ANSWER"] == _www()


def _check_ptr(o, err):
    assert o.status == "NOERROR" and o.sections["ANSWER"] == expected_set(
        ["80.2.0.192.in-addr.arpa. PTR www.example.com."]) and "(TCP)" in o.text


def _check_refused(o, err):
    assert o.status == "REFUSED" and "aa" not in o.flags and not o.sections.get("ANSWER")


def _check_version(o, err):
    assert o.status == "NOERROR" and o.sections["ANSWER"] == {f'version.bind. TXT "{VERSION}"'}


def _check_srv_norec(o, err):
    assert o.status == "NOERROR" and "rd" not in o.flags and "aa" in o.flags
    assert o.sections["ANSWER"] == expected_set(["_sip._tcp.example.com. SRV 10 60 5060 sipserver.example.com."])


def _check_referral(o, err):
    assert o.status == "NOERROR" and "aa" not in o.flags and not o.sections.get("ANSWER")
    assert o.sections["AUTHORITY"] == expected_set(["deleg.example.com. NS ns1.deleg.example.com.",
                                                    "deleg.example.com. NS ns.example.net."])
    assert rr_text("ns1.deleg.example.com.", "A", "192.0.2.70") in o.sections["ADDITIONAL"]


def _check_child(o, err):
    assert o.status == "NOERROR" and "aa" in o.flags
    assert o.sections["ANSWER"] == {rr_text("www.child.example.com.", "A", "192.0.2.72")}


def _check_delv_www(o, err):
    assert o.records == _www() and "resolution failed" not in o.text + err


def _check_delv_big(o, err):
    assert o.records == BIG and "resolution failed" not in o.text + err


def _check_delv_nx(o, err):
    assert "ncache nxdomain" in o.text + err and not o.records


def _check_delv_nodata(o, err):
    assert "ncache nxrrset" in o.text + err and not o.records


def _check_delv_cname(o, err):
    assert o.records == {rr_text("alias.example.com.", "CNAME", "www.example.com.")} | _www()


TOOL_CASES = {
    "kdig-nsid": ("kdig", ["+nsid", "www.example.com", "A"], _check_kdig_nsid),
    "kdig-tcp-big": ("kdig", ["+tcp", "big.example.com", "TXT"], _check_tcp_big),
    "kdig-bufsize512-ignore-big": ("kdig", ["+bufsize=512", "+ignore", "big.example.com", "TXT"], _check_tc),
    "kdig-bufsize512-big-retry": ("kdig", ["+bufsize=512", "big.example.com", "TXT"], _check_kdig_retry),
    "kdig-dnssec-nxdomain": ("kdig", ["+dnssec", "nope.example.com", "A"], _check_nx_do),
    "kdig-tcp-nsid-wildcard-cname": ("kdig", ["+tcp", "+nsid", "x.cwild.example.com", "A"], _check_cwild),
    "kdig-child": ("kdig", ["www.child.example.com", "A"], _check_child),
    "kdig-referral": ("kdig", ["+norec", "www.deleg.example.com", "A"], _check_referral),
    "dig-dnssec-nsid-case": ("dig", ["+dnssec", "+nsid", "WwW.ExAmPlE.CoM", "A"], _check_dig_case),
    "dig-bufsize512-big-retry": ("dig", ["+bufsize=512", "big.example.com", "TXT"], _check_dig_retry),
    "dig-bufsize512-ignore-big": ("dig", ["+bufsize=512", "+ignore", "big.example.com", "TXT"], _check_tc),
    "dig-tcp-big": ("dig", ["+tcp", "big.example.com", "TXT"], _check_tcp_big),
    "dig-tcp-ptr": ("dig", ["+tcp", "-x", "192.0.2.80"], _check_ptr),
    "dig-dnssec-nxdomain": ("dig", ["+dnssec", "nope.example.com", "A"], _check_nx_do),
    "dig-refused": ("dig", ["www.example.org", "A"], _check_refused),
    "dig-version-bind": ("dig", ["version.bind", "TXT", "CH"], _check_version),
    "dig-norec-srv": ("dig", ["+norec", "_sip._tcp.example.com", "SRV"], _check_srv_norec),
    "delv-www": ("delv", ["www.example.com", "A"], _check_delv_www),
    "delv-tcp-big": ("delv", ["+tcp", "big.example.com", "TXT"], _check_delv_big),
    "delv-cname": ("delv", ["alias.example.com", "A"], _check_delv_cname),
    "delv-nxdomain": ("delv", ["nope.example.com", "A"], _check_delv_nx),
    "delv-nodata": ("delv", ["www.example.com", "MX"], _check_delv_nodata),
}


@pytest.mark.parametrize("case_id", list(TOOL_CASES))
def test_tools_against_minidns(case_id, minidns):
    tool, args, check = TOOL_CASES[case_id]
    out, err = run_tool(tool, minidns, args)
    try:
        check(out, err)
    except AssertionError as e:
        pytest.fail(f"{tool} {' '.join(args)} against minidns: {e or 'check failed'}\n--- stdout:\n{out.text}"
                    f"--- stderr:\n{err}", pytrace=False)
