"""Shared by the interop conftest, the test modules and compare_more_peers.py: identity strings,
the resolver setups' addresses, Unbound and named configs, the minidns query-log parser and the
rdata text the comparisons use.

(A plain module beside the conftest, so test modules and scripts can import it by name.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dns.name
import dns.rdata

# Identity strings configured identically on every server, so CH TXT and NSID replies compare.
NSID = "interop-ns"
VERSION = "interop-version"
IDENTITY = "interop-identity"

# The resolver setups (see the conftest): the child's name server moves to CHILD_NS_ADDR in the
# referral setup's zone copies.
CHILD_NS_ADDR = "127.53.0.71"
GLUE_ADDR = "192.0.2.71"  # ns1.child.example.com in the zone files
# Source addresses, so the minidns query log tells the resolvers apart.
SOURCE_ADDR = {"unbound": "127.0.0.1", "unbound-tcp": "127.0.0.2", "named": "127.0.0.3",
               "unbound-ref": "127.0.0.4", "named-ref": "127.0.0.5"}
# Everything in IPv4 but 127/8, as CIDR blocks (Unbound's do-not-query-address has no "allow").
NOT_LOOPBACK = ["0.0.0.0/2", "64.0.0.0/3", "96.0.0.0/4", "112.0.0.0/5", "120.0.0.0/6",
                "124.0.0.0/7", "126.0.0.0/8", "128.0.0.0/1"]


_QLOG_LINE = re.compile(r"minidns\.query: (\S+) (udp|tcp) (b(['\"]).*?\4) type (\d+) ")


def canonical_rdata(rd: dns.rdata.Rdata) -> str:
    """Rdata text with every domain name in it lowercased (TXT and the like keep their case)."""
    changes = {slot: getattr(rd, slot).canonicalize()
               for slot in rd._get_all_slots() if isinstance(getattr(rd, slot, None), dns.name.Name)}
    return (rd.replace(**changes) if changes else rd).to_text()


def query_log(log_path: Path) -> list[tuple[str, str, str, int]]:
    """A minidns log written with --query-log as (client, transport, qname, qtype) rows, the qname
    in the letter case it arrived in. Lines of another shape are skipped."""
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = _QLOG_LINE.search(line)
        if not m:
            continue
        try:
            wire = ast.literal_eval(m.group(3))
            name = dns.name.from_wire(wire, 0)[0].to_text() if wire else "."
        except Exception:
            continue
        out.append((m.group(1), m.group(2), name, int(m.group(5))))
    return out


def write_conf(path: Path, text: str) -> Path:
    """`text` written to `path`, whose folder is created if need be; returns `path`."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def unbound_server(wd: Path, port: int, source: str, verbosity: int) -> list[str]:
    """The `server:` lines every test Unbound shares: 127.0.0.1:port, in the foreground, files in
    `wd`, asking only loopback addresses from `source`."""
    return [
        "server:",
        "  interface: 127.0.0.1",
        f"  port: {port}",
        "  do-ip4: yes",
        "  do-ip6: no",
        "  do-daemonize: no",
        '  chroot: ""',
        '  username: ""',
        f'  directory: "{wd}"',
        f'  pidfile: "{wd}/unbound.pid"',
        '  logfile: ""',
        "  use-syslog: no",
        "  log-time-ascii: yes",
        f"  verbosity: {verbosity}",
        "  num-threads: 1",
        "  so-reuseport: no",
        "  access-control: 127.0.0.0/8 allow",
        f"  outgoing-interface: {source}",
        "  do-not-query-localhost: no",
        *[f"  do-not-query-address: {block}" for block in NOT_LOOPBACK],
    ]


def write_unbound_conf(d: Path, name: str, port: int, stubs: dict[str, list[tuple[str, int]]],
                       source: str, tcp_upstream: bool = False) -> Path:
    """A recursive Unbound on 127.0.0.1:port: iterator only (no validation), 0x20 on, stub zones."""
    wd = d / name
    lines = [
        # "wrong 0x20-ID in reply qname" is logged from verbosity 2 on
        *unbound_server(wd, port, source, verbosity=2),
        "  use-caps-for-id: yes",
        '  module-config: "iterator"',
        f"  tcp-upstream: {'yes' if tcp_upstream else 'no'}",
        "  prefetch: no",
        # Unbound serves TEST-NET-1's reverse zone as an empty local zone by default: the stub wins
        # only with this.
        '  local-zone: "2.0.192.in-addr.arpa." nodefault',
        "remote-control:",
        "  control-enable: no",
    ]
    for zone, addrs in stubs.items():
        lines += ["stub-zone:", f'  name: "{zone}"', "  stub-prime: no"]
        lines += [f"  stub-addr: {h}@{p}" for h, p in addrs]
    return write_conf(wd / "unbound.conf", "\n".join(lines) + "\n")


def write_named_conf_file(d: Path, name: str, options: str, rest: str) -> Path:
    """d/name/named.conf for a BIND named running in d/name: the options block (its working
    files in d/name, then `options`, lines ending in ";\n"), no control channel, then `rest`."""
    wd = d / name
    text = (
        "options {\n"
        f'  directory "{wd}";\n'
        f'  pid-file "{wd}/named.pid";\n'
        f'  session-keyfile "{wd}/session.key";\n'
        f'  managed-keys-directory "{wd}";\n'
        + options
        + "};\n"
        "controls { };\n"
        + rest
    )
    return write_conf(wd / "named.conf", text)


def write_named_conf(d: Path, name: str, port: int, upstream_port: int, stubs: dict[str, list[str]],
                     source: str) -> Path:
    """A recursive BIND named on 127.0.0.1:port, no validation, static-stub zones.

    static-stub server addresses take no port: the `port` option (meant for testing) sets the port
    named sends its queries to, and listen-on sets the one it answers on."""
    options = (
        f"  port {upstream_port};\n"
        f"  listen-on port {port} {{ 127.0.0.1; }};\n"
        "  listen-on-v6 { none; };\n"
        f"  query-source address {source};\n"
        "  recursion yes;\n"
        "  allow-query { 127.0.0.0/8; };\n"
        "  allow-recursion { 127.0.0.0/8; };\n"
        "  dnssec-validation no;\n"
        "  notify no;\n"
    )
    rest = (
        "server 0.0.0.0/0 { bogus yes; };\n"
        "server 127.0.0.0/8 { bogus no; };\n"
    )
    for zone, addrs in stubs.items():
        rest += f'zone "{zone}" {{ type static-stub; server-addresses {{ {" ".join(a + ";" for a in addrs)} }}; }};\n'
    return write_named_conf_file(d, name, options, rest)
