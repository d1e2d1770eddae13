"""One-off comparison: minidns against BIND (authoritative, type primary) and PowerDNS (bind
backend), next to NSD and Knot, on the differential suite's queries. Not a test (pytest does not
collect this file); nothing here fails on a difference. Run from the repository root:

    python tests/interop/compare_more_peers.py [--details FILE] [--only PEER ...]

It starts all five servers on free loopback ports with the three test zones, sends every case of
test_differential.py (well-formed UDP/TCP queries and the raw malformed packets) to each, compares
each reply with minidns's the way the suite does (rcode, opcode, QR/AA/TC/RD, question, OPT,
sections as sets; malformed packets: reply or not, and the rcode) and prints:

1. per category of query where minidns differs from BIND and/or PowerDNS: how many cases, one
   example, and for every field that differs what each of the five servers returned;
2. the categories where minidns differs from BIND, PowerDNS, NSD and Knot all at once;
3. the categories where minidns matches NSD or Knot but BIND and/or PowerDNS differ;
4. the fields where minidns sides with one of NSD/Knot while BIND, PowerDNS and the other agree.

Configuration notes (not minidns behaviour): BIND and PowerDNS each have one server-id for both
NSID and CH TXT id.server, set here to the NSID string, so their id.server differs from NSD/Knot's
identity by configuration. BIND runs with its defaults otherwise (minimal-responses
no-auth-recursive, edns-udp-size 1232) plus allow-transfer none; PowerDNS with dname-processing
on, any-to-tcp off and AXFR disabled (see write_pdns_conf).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.opcode  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import pytest  # noqa: E402

import conftest as cf  # noqa: E402  (helpers only: free ports, zone copies, starting/stopping minidns, NSD, Knot)
import test_differential as td  # noqa: E402  (the cases, asking the servers and the comparison)
from interop_common import IDENTITY, NSID, VERSION, write_conf, write_named_conf_file  # noqa: E402

PEERS = ("bind", "pdns", "nsd", "knot")
ALL = ("minidns",) + PEERS


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def write_bind_auth_conf(d: Path, port: int, zones: dict[str, Path]) -> Path:
    options = (
        f"  listen-on port {port} {{ 127.0.0.1; }};\n"
        "  listen-on-v6 { none; };\n"
        "  recursion no;\n"
        "  allow-query { any; };\n"
        "  allow-transfer { none; };\n"
        "  dnssec-validation no;\n"
        "  notify no;\n"
        f'  version "{VERSION}";\n'
        f'  hostname "{IDENTITY}";\n'
        f'  server-id "{NSID}";\n'
    )
    zone_lines = "".join(f'zone "{origin}" {{ type primary; file "{path}"; }};\n' for origin, path in zones.items())
    return write_named_conf_file(d, "bind", options, zone_lines)


def write_pdns_conf(d: Path, port: int, zones: dict[str, Path]) -> Path:
    wd = d / "pdns"
    named = "".join(f'zone "{origin}" {{ type master; file "{path}"; }};\n' for origin, path in zones.items())
    write_conf(wd / "named.conf", named)
    return write_conf(wd / "pdns.conf", "\n".join([
        "launch=bind",
        f"bind-config={wd}/named.conf",
        "local-address=127.0.0.1",
        f"local-port={port}",
        f"socket-dir={wd}",
        "daemon=no",
        "guardian=no",
        "disable-syslog=yes",
        "loglevel=4",
        "receiver-threads=1",
        "distributor-threads=1",
        f"server-id={NSID}",
        f"version-string={VERSION}",
        "webserver=no",
        "api=no",
        # Not PowerDNS's defaults, to keep configuration differences out of the comparison:
        "dname-processing=yes",  # default no: DNAMEs served as plain records, no CNAME synthesis
        "any-to-tcp=no",         # default yes: every ANY over UDP answered TC
        "disable-axfr=yes",      # default: AXFR allowed from 127.0.0.0/8 (the others refuse it)
    ]) + "\n")


def start_all(d: Path) -> dict:
    """All five servers started (the same way as the suite's fixtures for minidns, NSD and Knot),
    then each one answering SOA for every zone; on any failure, every one started is stopped."""
    zones = cf._copy_zones(d)
    ports: set[int] = set()
    servers = {}
    try:
        servers["minidns"] = cf._start_minidns("minidns", d, list(zones.values()),
                                               [("127.0.0.1", cf._free_port(ports))])
        servers["nsd"] = cf._start_nsd(d, cf._free_port(ports), zones)
        servers["knot"] = cf._start_knot(d, cf._free_port(ports), zones)

        port = cf._free_port(ports)
        conf = write_bind_auth_conf(d, port, zones)
        servers["bind"] = cf._start("bind", [cf._find_binary("named") or "named", "-g", "-4", "-n", "1",
                                             "-c", str(conf)], d, port)

        port = cf._free_port(ports)
        conf = write_pdns_conf(d, port, zones)
        servers["pdns"] = cf._start("pdns", [cf._find_binary("pdns_server") or "pdns_server",
                                             f"--config-dir={conf.parent}"], d, port)
        for srv in servers.values():
            cf._wait_ready(srv)
    except BaseException:
        for srv in servers.values():
            cf._stop(srv)
        raise
    return servers


# --------------------------------------------------------------------------------------------
# Asking
# --------------------------------------------------------------------------------------------


def collect(servers: dict, only: set[str] | None) -> list[tuple]:
    """(case, server -> view of its reply) for every case, asked as the suite asks them."""
    cases = [c for c in td.CASES if only is None or any(o in c.id for o in only)]
    # five servers' sockets in the raw batch (the suite has three): twice the suite's select rounds
    raw_udp = td.raw_udp_exchange(servers, [c for c in cases if c.malformed and c.transport == "udp"], rounds=2000)
    return [(case, td.case_views(case, servers, lambda: raw_udp, ALL)) for case in cases]


# --------------------------------------------------------------------------------------------
# Categories
# --------------------------------------------------------------------------------------------

VARIANT_GROUP = {
    "noedns": "no EDNS", "norec-noedns": "no EDNS", "edns512": "EDNS", "edns1232": "EDNS", "edns4096": "EDNS",
    "norec": "EDNS", "cd": "EDNS", "edns100": "EDNS payload<512", "do": "EDNS DO", "edns1": "EDNS version 1",
    "edns1-do": "EDNS version 1", "nsid": "EDNS NSID", "do-nsid": "EDNS NSID", "cookie": "EDNS cookie",
    "unknownopt": "EDNS unknown option",
}
SPECIAL_TYPES = {"AXFR", "IXFR", "MAILA", "MAILB", "OPT", "TSIG", "TKEY", "TYPE0", "ANY", "NULL", "RRSIG",
                 "NSEC", "NSEC3", "DNSKEY", "NSEC3PARAM", "CDS", "TYPE128"}


def variant_of(case) -> str:
    v = case.id
    v = re.sub(r"-\d+$", "", v)
    v = re.sub(r"-again$", "", v)
    for name in sorted(td.VARIANTS, key=len, reverse=True):
        if v.endswith("-" + name):
            return name
    return v.rsplit("-", 1)[-1]


def shape(v: dict) -> str:
    """What minidns's reply is, coarsely (used to group cases)."""
    if "reply" in v:
        return v["reply"] if "rcode" not in v else f"reply {v['rcode']}"
    rcode, flags = v["rcode"], v["flags"].split()
    types = lambda sec: {rr.split()[3] for rr in v[sec]}  # noqa: E731
    if rcode not in ("NOERROR", "NXDOMAIN"):
        return rcode
    if "TC" in flags:
        return "truncated"
    ans = types("answer")
    if "DNAME" in ans:
        return f"{rcode} with DNAME"
    if "CNAME" in ans:
        return f"{rcode} with CNAME"
    if ans:
        return "positive"
    if "AA" not in flags and "NS" in types("authority"):
        return "referral"
    return "NXDOMAIN" if rcode == "NXDOMAIN" else "NODATA"


def query_kind(case, fields: set[str]) -> str:
    """The query, described only as finely as the differing fields need."""
    if case.malformed:
        return "malformed " + case.id.split("-raw-", 1)[1] + f" ({case.transport})"
    m = dns.message.from_wire(case.wire)
    q = m.question[0]
    parts = []
    if m.opcode() != dns.opcode.QUERY:
        parts.append("opcode " + dns.opcode.to_text(m.opcode()))
    if q.rdclass != dns.rdataclass.IN:
        parts.append("class " + dns.rdataclass.to_text(q.rdclass))
    t = dns.rdatatype.to_text(q.rdtype)
    if t in SPECIAL_TYPES:
        parts.append("qtype " + t)
    variant = variant_of(case)
    if "opt" in fields or variant.startswith("edns1") or variant == "edns100":
        parts.append(VARIANT_GROUP.get(variant, variant))
    if variant.startswith("norec"):
        parts.append("RD clear")
    if "flags" in fields or "TC" in case.id:
        parts.append(case.transport)
    return " ".join(parts) or "ordinary"


def differing(a: dict, b: dict) -> tuple[str, ...]:
    return tuple(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


def short(value, limit=170) -> str:
    text = td._short(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def categorize(results: list[tuple]) -> dict[tuple, list]:
    """(minidns's reply shape, query kind, fields ≠ BIND, fields ≠ PowerDNS) -> [(case, views)],
    for the cases where BIND or PowerDNS differs from minidns."""
    cats: dict[tuple, list] = defaultdict(list)
    for case, views in results:
        m = views["minidns"]
        db, dp = differing(m, views["bind"]), differing(m, views["pdns"])
        if db or dp:
            cats[(shape(m), query_kind(case, set(db) | set(dp)), db, dp)].append((case, views))
    return dict(sorted(cats.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def report(results: list[tuple], details: Path | None) -> None:
    cats = categorize(results)
    index = {key: n for n, key in enumerate(cats, 1)}
    print(f"{len(results)} cases; BIND and/or PowerDNS differ from minidns in "
          f"{sum(len(v) for v in cats.values())} of them, grouped in {len(cats)} categories.\n")
    print("1. Categories where minidns differs from BIND and/or PowerDNS")
    print("   [n] minidns's reply | the query | fields != BIND | fields != PowerDNS  (cases, example)\n")
    for key, items in cats.items():
        shp, kind, db, dp = key
        case, views = items[0]
        print(f"[{index[key]}] {shp} | {kind} | !=BIND: {','.join(db) or '-'} | !=PowerDNS: {','.join(dp) or '-'}"
              f"   ({len(items)} cases, e.g. {case.id})")
        for fld in sorted(set(db) | set(dp)):
            for srv in ALL:
                print(f"      {fld:10s} {srv:8s} {short(views[srv].get(fld, '-'))}")
        print()

    def listing(title: str, pred) -> None:
        rows = []
        for key, items in cats.items():
            hits = [c.id for c, v in items if pred(v)]
            if hits:
                rows.append(f"   [{index[key]}] {key[0]} | {key[1]} | !=BIND: {','.join(key[2]) or '-'} | "
                            f"!=PowerDNS: {','.join(key[3]) or '-'}: {len(hits)} of {len(items)} cases, "
                            f"e.g. {', '.join(hits[:2])}")
        print(title)
        print("\n".join(rows) if rows else "   (none)")
        print()

    everyone = [(c, v) for c, v in results if all(v[p] != v["minidns"] for p in PEERS)]
    print("2. minidns differs from BIND, PowerDNS, NSD and Knot all at once (likely bugs):")
    if not everyone:
        print("   (none)")
    for case, views in everyone:
        print(f"   {case.id}  [category {index.get(next((k for k, it in cats.items() if any(c is case for c, _ in it)), None), '?')}]")
    print()
    listing("3. minidns matches NSD or Knot; BIND and/or PowerDNS differ (by category):",
            lambda v: v["nsd"] == v["minidns"] or v["knot"] == v["minidns"])
    # 4. field by field: minidns has NSD's value and Knot, BIND and PowerDNS share another (or the
    # same with the roles of NSD and Knot swapped): minidns sides with a minority of one.
    minority: dict[tuple, list] = defaultdict(list)
    for case, views in results:
        m = views["minidns"]
        for fld in sorted(set().union(*(v.keys() for v in views.values()))):
            for ally, other in (("nsd", "knot"), ("knot", "nsd")):
                vals = [views[p].get(fld) for p in (other, "bind", "pdns")]
                if views[ally].get(fld) == m.get(fld) and all(x == vals[0] for x in vals) and vals[0] != m.get(fld):
                    minority[(shape(m), query_kind(case, {fld}), fld, ally)].append((case, views))
    print("4. Fields where minidns agrees with one of NSD/Knot and the other three (Knot or NSD, BIND,")
    print("   PowerDNS) all agree on something else:")
    if not minority:
        print("   (none)")
    for (shp, kind, fld, ally), items in sorted(minority.items(), key=lambda kv: -len(kv[1])):
        case, views = items[0]
        other = "knot" if ally == "nsd" else "nsd"
        print(f"   - {shp} | {kind} | {fld}: minidns and {ally} {short(views['minidns'].get(fld, '-'), 90)}; "
              f"{other}, bind, pdns {short(views[other].get(fld, '-'), 90)}  ({len(items)} cases, e.g. {case.id})")
    print()

    if details:
        with open(details, "w") as f:
            for case, views in results:
                if any(views[p] != views["minidns"] for p in PEERS):
                    f.write(f"== {case.id}  (query {case.wire.hex()})\n{td.describe(views)}\n\n")
        print(f"every case where a peer differs, in full: {details}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--details", type=Path, help="write every case where a peer differs, in full, here")
    ap.add_argument("--only", nargs="*", help="only cases whose id contains one of these strings")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    args = ap.parse_args()
    for binary in ("nsd", "knotd", "named", "pdns_server"):
        if cf._find_binary(binary) is None:
            print(f"`{binary}` is not installed (Debian: nsd, knot, bind9, pdns-server + pdns-backend-bind)",
                  file=sys.stderr)
            return 2
    d = Path(tempfile.mkdtemp(prefix="minidns-peers-"))
    t0 = time.monotonic()
    servers = {}
    try:
        servers = start_all(d)
        results = collect({n: servers[n] for n in ALL}, set(args.only) if args.only else None)
    except (Exception, pytest.fail.Exception) as e:  # pytest.fail from the conftest helpers lands here
        print(f"could not run: {e}", file=sys.stderr)
        for srv in servers.values():
            print(f"--- {srv.name} log:\n{srv.log()}", file=sys.stderr)
        return 1
    finally:
        for srv in servers.values():
            cf._stop(srv)
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    report(results, args.details)
    print(f"({time.monotonic() - t0:.1f}s{'; files in ' + str(d) if args.keep else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
