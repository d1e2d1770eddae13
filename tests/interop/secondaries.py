"""Real secondaries for transfer tests: BIND 9, Knot, NSD and PowerDNS, each started on a free
127.0.0.1 port as a SECONDARY of a given primary (address, port) for a given list of zones.

Usage (a plain module beside the conftest; pytest puts tests/interop on sys.path):

    from secondaries import TsigKey, running_secondary, wait_serial, zone_records, transfer_kinds

    with running_secondary("knot", tmp_path / "knot", ("127.0.0.1", primary_port), ["xfr.test."]) as sec:
        assert wait_serial(sec, "xfr.test.", 2, timeout=10)
        assert zone_records(sec, "xfr.test.") == zone_records(("127.0.0.1", primary_port), "xfr.test.")
        assert transfer_kinds(sec, "xfr.test.") == ["AXFR", "IXFR"]

Every server:
- runs in the foreground, in its own session (stopped with its whole process group), with every
  file it writes inside its directory `d`; as root it does not drop privileges (no user to
  create), as another user it runs as that user;
- listens on 127.0.0.1 only (UDP and TCP) and talks to nothing but the primary: secondaries send
  no NOTIFY of their own, no security polls, no recursion;
- transfers each zone from the primary (with the TSIG key when one is given), asking for IXFR
  once it holds a copy (BIND `request-ixfr yes`, Knot and NSD by default, PowerDNS with the zone
  metadata IXFR=1);
- accepts NOTIFY from 127.0.0.1 and from the primary's address, unsigned or signed with the key;
- allows AXFR from 127.0.0.1 without a key (zone_records uses it);
- logs its transfers at a level where transfer_kinds can tell AXFR from IXFR.

A missing binary makes the calling test FAIL (pytest.fail) naming the Debian package, like
conftest.py does: these servers are what is being tested against, a silent skip would hide that.
Debian packages: bind9 (+ bind9-utils for rndc), knot, nsd, pdns-server + pdns-backend-sqlite3.

API: TsigKey(name, algorithm, secret); start_secondary(kind, d, primary, zones, key=None,
catalog=None, port=None, source=None) -> Secondary(kind, port, dir, proc, log_path, ...) with .log();
running_secondary(...) (context manager); stop_secondary(sec); restart_secondary(sec) (same
directory, port and data); add_zone(sec, zone);
remove_zone(sec, zone); rectify(sec, zone) (PowerDNS answers what an IXFR added only after it);
soa_serial(sec_or_addr, zone); wait_serial(sec_or_addr, zone, serial,
timeout) (RFC 1982); zone_records(sec_or_addr, zone, key=None, source=None) (full AXFR, normalised);
transfer_kinds(sec, zone=None) / transfer_log(sec, since=0) (what the secondary's log says it received);
free_port().

FINDINGS
========

Versions found (Debian 12): BIND 9.18.49, Knot 3.2.6, NSD 4.6.1, PowerDNS Authoritative 4.7.3
(gsqlite3 backend; the bind backend is a separate package, pdns-backend-bind, not used).

What each server does (found by experiment on loopback; primaries serving a zone from a file:
BIND `type primary` + ixfr-from-differences, Knot zonefile-load difference + journal, NSD
create-ixfr + store-ixfr, PowerDNS gsqlite3 loaded with `pdnsutil load-zone`, kind primary;
transfers allowed to 127.0.0.1 only):

1. Inbound NOTIFY (opcode NOTIFY, QUESTION zone SOA, AA set, no EDNS).
   For a zone the server is PRIMARY for (served from its file):
     BIND  NOERROR, AA, question echoed, empty answer (it ignores it: not a secondary zone)
     Knot  NOTAUTH, no AA, question echoed (no notify ACL matches)
     NSD   REFUSED, AA, NO question section (QDCOUNT 0; dnspython's dns.query.udp raised
           BadResponse on NSD's NXDOMAIN one below: read such replies raw)
     pdns  REFUSED, AA, question echoed (logs "Received NOTIFY ... but we are primary")
   For a zone it does not serve at all:
     BIND  NOTAUTH, no AA, question echoed
     Knot  NOTAUTH, no AA, question echoed
     NSD   NXDOMAIN, AA, no question section
     pdns  REFUSED, AA, question echoed
   For a zone it is SECONDARY for, from an allowed address (the harness's setup):
     BIND, NSD, pdns NOERROR + AA, question echoed; Knot NOERROR, no AA, question echoed.
   No server puts anything in the answer, nor an OPT record when the NOTIFY had none.

2. IXFR (authority SOA with the client's serial).
   Over UDP, client serial older than the zone's (a diff 1 -> 2 is held):
     BIND  NOERROR, one SOA (current serial) in the answer, no AA (= "ask over TCP")
     Knot  NOERROR, one SOA (current serial), no AA
     NSD   NOERROR + AA, the whole IXFR (incremental, or AXFR-style when it holds no diff
           from that serial) in the one datagram when it fits
     pdns  REFUSED (+AA): no IXFR over UDP at all
   Over UDP with the current serial: BIND, Knot, NSD one SOA (NSD with AA); pdns REFUSED.
   Over TCP with the current serial: all four send one message with only the SOA; AA set by
   BIND, NSD, pdns, not by Knot. With a newer serial than the zone's (3 > 2): the same.
   Over TCP with an older serial: BIND, Knot, NSD answer incremental when they hold the
   diff (one message here), AXFR-style otherwise (serial 0). PowerDNS never serves IXFR: it
   answers AXFR-style in 3 messages (SOA alone, the records, SOA alone).
   Knot never sets AA on its AXFR/IXFR replies; BIND, NSD and pdns do.
   NSD 4.6.1 bug seen: its create-ixfr diff re-adds unchanged apex records (here the apex
   MX and TXT). Knot ("such record already exists", then "fallback to AXFR") and NSD
   ("Failed to apply IXFR cleanly ... starting AXFR") refuse that IXFR and take an AXFR;
   BIND and PowerDNS apply it silently (the resulting data is still right).

3. AXFR (and IXFR) over TCP from a client that is not allowed (127.0.0.2):
     BIND  REFUSED, EDE 18 (Prohibited), no AA
     NSD   REFUSED, EDE 18 (Prohibited), no AA
     Knot  NOTAUTH, no EDE, no AA
     pdns  NOTAUTH, AA, no EDE
   (EDE only when the query had EDNS.) AXFR of a zone the server does not have: NOTAUTH from
   all four. AXFR over UDP: Knot and NSD NOTIMP, BIND FORMERR, pdns NOERROR + AA with the SOA
   in the authority section.

4. From NOTIFY (sent by the primary right after it loaded the change) to the secondary
   serving the new serial, on loopback, small zone:
     Knot  ~0.05 s
     BIND  0.05-0.16 s (catalog zones: members follow the catalog after min-update-interval,
           set to 1 s here; the default is 5 s)
     NSD   ~0.05 s for a first change, then ~1 s (xfrd-reload-timeout: at most one reload a
           second, default kept); ~2 s when an IXFR is refused and followed by an AXFR
     pdns  0.65-1.0 s (the communicator checks queued NOTIFYs about once a second)

IXFR as secondary: BIND `request-ixfr yes` (also the default); Knot and NSD by default;
PowerDNS only for zones with the metadata IXFR=1, which start_secondary/add_zone set. PowerDNS
4.7.3 cannot IXFR a catalog *consumer* zone ("can't determine backend, not configured as
slave"), so the harness does not set IXFR=1 there, and the member zones PowerDNS creates from
a catalog have no IXFR metadata either: they are always transferred by AXFR. PowerDNS 4.7.3
(gsqlite3-dnssec=yes) does not ANSWER the records an IXFR added (NOERROR, no data; the SOA and
its AXFR-out do have them) until the zone is rectified: its IXFR-in leaves their auth field 0
(PowerDNS issue 12756); rectify(sec, zone) does that. An IXFR answered
AXFR-style counts as AXFR in transfer_kinds for all four (checked against a PowerDNS primary).

How transfer_kinds knows (per kind; wait_serial also waits for the transfer to be logged):
  BIND  xfer-in category at debug 3 (named -d 3, channel severity dynamic, own file
        xfer-in.log): "got incremental response" / "got nonincremental response", counted at
        "Transfer status: success".
  Knot  log at info: "[z.] IXFR, incoming, remote ..., finished" then "refresh ... zone updated";
        an IXFR that fails to apply is followed by an AXFR, which is what counts.
  pdns  loglevel 6: "AXFR-in zone: 'z', ..., zone committed", "IXFR-in zone: 'z', ..., got N
        deltas, zone committed" (N = 0, seen after a needless retrieve, is not a transfer).
  NSD   4.6 does NOT log the transfer type (only in --enable-debug builds). The harness reads
        "zone z. received update to serial B" from the log (A: the serial of the line before
        for z; a refused IXFR logs an error, not this line) and asks NSD itself, whose secondary
        zones have store-ixfr: it keeps received IXFRs and drops them all when it takes an
        AXFR, so an incremental reply to IXFR(A) covering A -> B means A -> B was an IXFR.
        Limits: an IXFR taken before a later AXFR reads as AXFR; only the last 20 are kept.

Catalog zones (RFC 9432, version 2): BIND 9.18 (catalog-zones, allow-new-zones) and Knot 3.2
(catalog-role: interpret + catalog-template) and PowerDNS 4.7 (zone kind consumer) add and
delete member zones by themselves, with the catalog's primary (and key) for the members. NSD
reads catalogs only from 4.9.0: start_secondary(..., catalog=...) raises NotImplementedError.
Member ids must stay with their zone: re-pointing an id's PTR at another zone is a change of
owner, and BIND then drops the zone that id pointed at before.

Runtime zone changes: BIND rndc addzone/delzone (a control channel with its own key on a free
port, allow-new-zones yes); Knot: the config file is rewritten and `knotc reload`ed (conf-begin
and friends need a config database); NSD nsd-control addzone/delzone over a Unix socket (no
TLS keys needed); PowerDNS pdnsutil create-secondary-zone / delete-zone against the SQLite
database, then pdns_control retrieve. PowerDNS runs with every cache off
(cache-ttl, query-cache-ttl, negquery-cache-ttl, zone-cache-refresh-interval = 0): with the
zone cache on it REFUSES a zone added by pdnsutil until the next refresh (300 s).
"""

from __future__ import annotations

import base64
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import pytest

from interop_common import canonical_rdata

KINDS = ("bind", "knot", "nsd", "pdns")
# kind -> (daemon binary, Debian package)
BINARIES = {"bind": ("named", "bind9"), "knot": ("knotd", "knot"), "nsd": ("nsd", "nsd"),
            "pdns": ("pdns_server", "pdns-server")}
CONTROL = {"bind": ("rndc", "bind9-utils"), "knot": ("knotc", "knot"), "nsd": ("nsd-control", "nsd"),
           "pdns": ("pdns_control", "pdns-server")}
PDNS_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")

START_TIMEOUT = 15.0  # seconds for a server to answer on its port
STOP_TIMEOUT = 10.0
CONTROL_TIMEOUT = 20.0
LOG_GRACE = 2.0  # seconds wait_serial allows a server to log a transfer it already serves


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key: `name` (a domain name), `algorithm` as BIND/Knot/NSD/PowerDNS spell it
    (hmac-sha256, hmac-sha512, hmac-md5, ...), `secret` in base64."""
    name: str
    algorithm: str
    secret: str

    @staticmethod
    def generate(name: str = "xfr-key.", algorithm: str = "hmac-sha256") -> "TsigKey":
        return TsigKey(name, algorithm, base64.b64encode(secrets.token_bytes(32)).decode())

    def keyring(self) -> dict:
        """For dnspython: `keyring=key.keyring(), keyname=key.name`."""
        return {dns.name.from_text(self.name): dns.tsig.Key(self.name, self.secret, self.algorithm)}


@dataclass
class Secondary:
    """A started secondary: `kind` (bind/knot/nsd/pdns) on 127.0.0.1:`port`, working in `dir`,
    its process `proc` (a session leader) and the log transfer_kinds reads, `log_path`."""
    kind: str
    port: int
    dir: Path
    proc: subprocess.Popen = field(repr=False)
    log_path: Path
    host: str = "127.0.0.1"
    primary: tuple[str, int] = ("127.0.0.1", 53)
    zones: list[str] = field(default_factory=list)
    key: TsigKey | None = field(default=None, repr=False)
    catalog: str | None = None
    conf: Path | None = None
    control_port: int | None = None  # rndc's (BIND)
    argv: list[str] = field(default_factory=list, repr=False)  # the command it runs (restart_secondary)
    source: str = "127.0.0.1"  # the address its SOA queries and transfers come from

    def log(self, tail: int = 6000) -> str:
        """The last `tail` characters of the server's log (and of its stdout/stderr if separate)."""
        out = ""
        for p in dict.fromkeys([self.log_path, self.dir / f"{self.kind}.out"]):
            try:
                out += f"--- {p}\n" + p.read_text(errors="replace")[-tail:]
            except OSError:
                pass
        return out


# ------------------------------------------------------------------------------------------
# helpers


def _find(name: str) -> str | None:
    path = shutil.which(name)
    if path:
        return path
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def _need(name: str, package: str) -> str:
    binary = _find(name)
    if binary is None:
        pytest.fail(f"`{name}` is not installed: the transfer tests run it as a secondary "
                    f"(Debian: apt-get install {package})")
    return binary


def free_port(taken: set[int] | None = None) -> int:
    """A 127.0.0.1 port free for both UDP and TCP right now (bounded number of tries)."""
    taken = _taken if taken is None else taken
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            if port in taken:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        taken.add(port)
        return port
    raise RuntimeError("no free loopback port for UDP+TCP after 50 tries")


_taken: set[int] = set()


def _abs(zone: str) -> str:
    return dns.name.from_text(zone).to_text()


def _fname(zone: str) -> str:
    """A file name for `zone`."""
    z = _abs(zone).rstrip(".").lower()
    return (z or "root").replace("/", "_")


def _user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _run(argv: list[str], what: str, timeout: float = CONTROL_TIMEOUT, input: str | None = None) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if r.returncode != 0:
        raise RuntimeError(f"{what}: {' '.join(argv)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r.stdout


# ------------------------------------------------------------------------------------------
# BIND 9


def _bind_zone(sec: Secondary, zone: str) -> str:
    """The zone statement body of a secondary zone (used in named.conf and rndc addzone)."""
    return (f'{{ type secondary; primaries {{ {_bind_primary(sec)} }}; '
            f'file "{sec.dir}/zones/{_fname(zone)}.db"; }}')


def _bind_primary(sec: Secondary) -> str:
    host, port = sec.primary
    return f"{host} port {port}" + (f' key "{sec.key.name}"' if sec.key else "") + ";"


def _bind_conf(sec: Secondary, rndc_secret: str) -> str:
    d = sec.dir
    notifiers = " ".join(dict.fromkeys(["127.0.0.1;", f"{sec.primary[0]};"]))
    catalog = ""
    if sec.catalog:
        # Member zones get the catalog's default primaries; their zone files go to catzones/.
        catalog = (f'  catalog-zones {{ zone "{_abs(sec.catalog)}" default-primaries {{ {_bind_primary(sec)} }} '
                   f'in-memory no zone-directory "{d}/catzones" min-update-interval 1; }};\n')
    text = (
        "options {\n"
        f'  directory "{d}";\n'
        f'  pid-file "{d}/named.pid";\n'
        f'  session-keyfile "{d}/session.key";\n'
        f'  managed-keys-directory "{d}";\n'
        f"  listen-on port {sec.port} {{ 127.0.0.1; }};\n"
        "  listen-on-v6 { none; };\n"
        f"  query-source address {sec.source};\n"
        f"  transfer-source {sec.source};\n"
        "  notify-source 127.0.0.1;\n"
        "  recursion no;\n"
        "  dnssec-validation no;\n"
        "  notify no;\n"
        "  request-ixfr yes;\n"
        f"  allow-notify {{ {notifiers} }};\n"
        "  allow-transfer { 127.0.0.1; };\n"
        "  allow-query { any; };\n"
        "  allow-new-zones yes;\n"
        "  min-refresh-time 1; max-refresh-time 60; min-retry-time 1; max-retry-time 5;\n"
        + catalog +
        "};\n"
        f'key "rndc-key" {{ algorithm hmac-sha256; secret "{rndc_secret}"; }};\n'
        f'controls {{ inet 127.0.0.1 port {sec.control_port} allow {{ 127.0.0.1; }} keys {{ "rndc-key"; }}; }};\n'
        "logging {\n"
        f'  channel main {{ file "{sec.log_path}"; severity info; print-time yes; print-category yes; '
        "print-severity yes; };\n"
        # xfer-in at debug 3 (named -d 3) tells IXFR from AXFR ("got incremental response").
        f'  channel xfer {{ file "{d}/xfer-in.log"; severity dynamic; print-time yes; print-severity yes; }};\n'
        "  category default { main; };\n"
        "  category xfer-in { xfer; };\n"
        "  category notify { main; };\n"
        "  category lame-servers { null; };\n"
        "};\n"
    )
    if sec.key:
        text += f'key "{sec.key.name}" {{ algorithm {sec.key.algorithm}; secret "{sec.key.secret}"; }};\n'
    zones = list(sec.zones) + ([sec.catalog] if sec.catalog else [])
    for z in zones:
        text += f'zone "{_abs(z)}" {_bind_zone(sec, z)};\n'
    return text


def _start_bind(sec: Secondary) -> list[str]:
    binary = _need("named", "bind9")
    sec.control_port = free_port()
    (sec.dir / "zones").mkdir(parents=True, exist_ok=True)
    (sec.dir / "catzones").mkdir(parents=True, exist_ok=True)
    rndc_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    sec.log_path = sec.dir / "named.log"
    sec.conf = _write(sec.dir / "named.conf", _bind_conf(sec, rndc_secret))
    _write(sec.dir / "rndc.conf",
           f'key "rndc-key" {{ algorithm hmac-sha256; secret "{rndc_secret}"; }};\n'
           f'options {{ default-key "rndc-key"; default-server 127.0.0.1; default-port {sec.control_port}; }};\n')
    checker = _find("named-checkconf")
    if checker:
        r = subprocess.run([checker, str(sec.conf)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            pytest.fail(f"named-checkconf rejects the generated config:\n{r.stdout}{r.stderr}")
    # -f: foreground, logging as configured (-g would send everything to stderr, ignoring it).
    return [binary, "-f", "-d", "3", "-4", "-n", "1", "-c", str(sec.conf)]


def _rndc(sec: Secondary, *args: str) -> str:
    return _run([_need("rndc", "bind9-utils"), "-c", str(sec.dir / "rndc.conf"), *args], "rndc")


# ------------------------------------------------------------------------------------------
# Knot DNS


def _knot_conf(sec: Secondary) -> str:
    d = sec.dir
    host, port = sec.primary
    keyref = f"    key: {sec.key.name}\n" if sec.key else ""
    text = (
        "server:\n"
        f"  listen: 127.0.0.1@{sec.port}\n"
        "  udp-workers: 1\n"
        "  tcp-workers: 1\n"
        "  background-workers: 1\n"
        f'  rundir: "{d}"\n'
        f"  user: {_user()}\n"
        "log:\n"
        "  - target: stderr\n"
        "    any: info\n"
        "database:\n"
        f'  storage: "{d}"\n'
        "control:\n"
        f'  listen: "{d}/knot.sock"\n'
    )
    if sec.key:
        text += f"key:\n  - id: {sec.key.name}\n    algorithm: {sec.key.algorithm}\n    secret: {sec.key.secret}\n"
    text += f"remote:\n  - id: primary\n    address: {host}@{port}\n    via: {sec.source}\n" + keyref
    text += "acl:\n"
    for i, addr in enumerate(dict.fromkeys(["127.0.0.1", host])):
        text += f"  - id: notify{i}\n    address: {addr}\n    action: notify\n"
        if sec.key:  # a signed NOTIFY matches only a rule naming its key
            text += f"  - id: notify{i}-key\n    address: {addr}\n    action: notify\n    key: {sec.key.name}\n"
    text += "  - id: axfr-local\n    address: 127.0.0.1\n    action: transfer\n"
    acls = ", ".join(re.findall(r"- id: (\S+)", text.split("acl:\n", 1)[1]))
    text += (
        "template:\n"
        "  - id: default\n"
        f'    storage: "{d}/zones"\n'
        '    file: "%s.zone"\n'
        "    master: primary\n"
        f"    acl: [{acls}]\n"
        "    zonefile-sync: -1\n"       # the copy lives in the journal; no zone file writes
        "    zonefile-load: none\n"     # ... and is loaded from there after a restart (with the
        "    journal-content: all\n"    # default, a missing zone file means a new AXFR)
        "    semantic-checks: off\n"
    )
    if sec.catalog:
        text += "  - id: member\n" + text.split("  - id: default\n", 1)[1]
    text += "zone:\n"
    for z in sec.zones:
        text += f'  - domain: "{_abs(z)}"\n'
    if sec.catalog:
        text += f'  - domain: "{_abs(sec.catalog)}"\n    catalog-role: interpret\n    catalog-template: member\n'
    return text


def _start_knot(sec: Secondary) -> list[str]:
    binary = _need("knotd", "knot")
    (sec.dir / "zones").mkdir(parents=True, exist_ok=True)
    sec.log_path = sec.dir / "knot.out"
    sec.conf = _write(sec.dir / "knot.conf", _knot_conf(sec))
    return [binary, "-c", str(sec.conf)]


def _knotc(sec: Secondary, *args: str) -> str:
    return _run([_need("knotc", "knot"), "-c", str(sec.conf), "-t", "15", *args], "knotc")


# ------------------------------------------------------------------------------------------
# NSD


def _nsd_conf(sec: Secondary) -> str:
    d = sec.dir
    host, port = sec.primary
    keyname = sec.key.name if sec.key else "NOKEY"
    text = (
        "server:\n"
        f"  ip-address: 127.0.0.1@{sec.port}\n"
        "  server-count: 1\n"
        '  username: ""\n'
        '  chroot: ""\n'
        '  database: ""\n'
        f'  zonesdir: "{d}/zones"\n'
        f'  xfrdir: "{d}/xfr"\n'
        f'  pidfile: "{d}/nsd.pid"\n'
        f'  xfrdfile: "{d}/xfrd.state"\n'
        f'  zonelistfile: "{d}/zone.list"\n'
        f'  logfile: "{d}/nsd.log"\n'
        "  verbosity: 3\n"
        "  rrl-ratelimit: 0\n"
        "  rrl-whitelist-ratelimit: 0\n"
        "remote-control:\n"
        "  control-enable: yes\n"
        f'  control-interface: "{d}/nsd.ctl"\n'  # a Unix socket: no TLS keys needed
    )
    if sec.key:
        text += f'key:\n  name: "{sec.key.name}"\n  algorithm: {sec.key.algorithm}\n  secret: "{sec.key.secret}"\n'
    text += (
        "pattern:\n"
        "  name: secondary\n"
        '  zonefile: "%s.zone"\n'
        f"  request-xfr: {host}@{port} {keyname}\n"
        f"  outgoing-interface: {sec.source}\n"
        "  allow-axfr-fallback: yes\n"
        "  provide-xfr: 127.0.0.1 NOKEY\n"
        "  store-ixfr: yes\n"          # keeps received IXFRs: how transfer_kinds tells them apart
        "  ixfr-number: 20\n"
    )
    for addr in dict.fromkeys(["127.0.0.1", host]):
        text += f"  allow-notify: {addr} NOKEY\n"
        if sec.key:
            text += f"  allow-notify: {addr} {sec.key.name}\n"
    for z in sec.zones:
        text += f'zone:\n  name: "{_abs(z)}"\n  include-pattern: secondary\n'
    return text


def _start_nsd(sec: Secondary) -> list[str]:
    binary = _need("nsd", "nsd")
    for sub in ("zones", "xfr"):
        (sec.dir / sub).mkdir(parents=True, exist_ok=True)
    sec.log_path = sec.dir / "nsd.log"
    sec.conf = _write(sec.dir / "nsd.conf", _nsd_conf(sec))
    checker = _find("nsd-checkconf")
    if checker:
        r = subprocess.run([checker, str(sec.conf)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            pytest.fail(f"nsd-checkconf rejects the generated config:\n{r.stdout}{r.stderr}")
    return [binary, "-d", "-c", str(sec.conf)]


def _nsd_control(sec: Secondary, *args: str) -> str:
    return _run([_need("nsd-control", "nsd"), "-c", str(sec.conf), *args], "nsd-control")


# ------------------------------------------------------------------------------------------
# PowerDNS (gsqlite3 backend)


def _pdns_conf(sec: Secondary) -> str:
    d = sec.dir
    return "\n".join([
        "launch=gsqlite3",
        f"gsqlite3-database={d}/pdns.sqlite3",
        "gsqlite3-dnssec=yes",
        "local-address=127.0.0.1",
        f"local-port={sec.port}",
        f"query-local-address={sec.source}",
        "secondary=yes",
        "primary=no",
        "daemon=no",
        "guardian=no",
        "disable-syslog=yes",
        "log-timestamp=yes",
        "loglevel=6",
        f"socket-dir={d}",
        "write-pid=no",
        "setuid=",
        "setgid=",
        "security-poll-suffix=",   # no version poll over DNS
        "allow-axfr-ips=127.0.0.0/8",
        f"allow-notify-from=127.0.0.0/8,{sec.primary[0]}",
        "xfr-cycle-interval=1",    # new zones / catalog members picked up within ~1 s
        # One transfer at a time: with the default 2, two zones transferred at once write the
        # SQLite database together and one fails with "database is locked" (then waits for the
        # next NOTIFY or refresh).
        "retrieval-threads=1",
        "distributor-threads=1",
        "receiver-threads=1",
        "webserver=no",
        "api=no",
        # no caches: a serial or a zone added with pdnsutil is seen at once
        "cache-ttl=0",
        "negquery-cache-ttl=0",
        "query-cache-ttl=0",
        "zone-cache-refresh-interval=0",
        "",
    ])


def _pdnsutil(sec: Secondary, *args: str) -> str:
    return _run([_need("pdnsutil", "pdns-server"), f"--config-dir={sec.dir}", *args], "pdnsutil")


def _pdns_control(sec: Secondary, *args: str) -> str:
    return _run([_need("pdns_control", "pdns-server"), f"--config-dir={sec.dir}", *args], "pdns_control")


def _pdns_add(sec: Secondary, zone: str, kind: str = "secondary") -> None:
    host, port = sec.primary
    _pdnsutil(sec, "create-secondary-zone", _abs(zone), f"{host}:{port}")
    if kind != "secondary":
        _pdnsutil(sec, "set-kind", _abs(zone), kind)
    if kind == "secondary":  # PowerDNS 4.7 cannot IXFR a consumer zone ("can't determine backend")
        _pdnsutil(sec, "set-meta", _abs(zone), "IXFR", "1")
    if sec.key:
        _pdnsutil(sec, "activate-tsig-key", _abs(zone), sec.key.name, kind)


def _start_pdns(sec: Secondary) -> list[str]:
    binary = _need("pdns_server", "pdns-server")
    if not PDNS_SCHEMA.exists():
        pytest.fail(f"{PDNS_SCHEMA} is missing: PowerDNS secondaries keep their zones in SQLite "
                    "(Debian: apt-get install pdns-backend-sqlite3)")
    sec.log_path = sec.dir / "pdns.out"
    sec.conf = _write(sec.dir / "pdns.conf", _pdns_conf(sec))
    db = sec.dir / "pdns.sqlite3"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as c:
        c.executescript(PDNS_SCHEMA.read_text())
    c.close()
    if sec.key:
        _pdnsutil(sec, "import-tsig-key", sec.key.name, sec.key.algorithm, sec.key.secret)
    for z in sec.zones:
        _pdns_add(sec, z)
    if sec.catalog:
        _pdns_add(sec, sec.catalog, "consumer")
    return [binary, f"--config-dir={sec.dir}"]


# ------------------------------------------------------------------------------------------
# the API

_STARTERS = {"bind": _start_bind, "knot": _start_knot, "nsd": _start_nsd, "pdns": _start_pdns}


def start_secondary(kind: str, d: Path, primary: tuple[str, int], zones: list[str],
                    key: TsigKey | None = None, catalog: str | None = None,
                    port: int | None = None, source: str | None = None) -> Secondary:
    """Start a `kind` ("bind", "knot", "nsd", "pdns") secondary in directory `d` (created) on a
    free 127.0.0.1 port, transferring `zones` from `primary` = (address, port), with `key` for
    transfers when given. `catalog`: an RFC 9432 catalog zone, also transferred from `primary`,
    whose member zones the server adds by itself (BIND, Knot, PowerDNS; NSD 4.6 raises
    NotImplementedError). `port`: listen there instead of on a free port picked here (so a
    primary's notify list can be written before the secondary starts). `source`: the loopback
    address (127.0.0.1 unless given, e.g. 127.0.0.3) its SOA queries and transfers come from, so
    a primary's log tells its secondaries apart. Returns once the server answers queries on its port; the zones are
    transferred in the background (see wait_serial). The test fails if it does not start."""
    if kind not in _STARTERS:
        raise ValueError(f"unknown secondary kind {kind!r}; one of {KINDS}")
    if catalog and kind == "nsd":
        raise NotImplementedError("NSD consumes catalog zones from 4.9.0 on; Debian 12 ships 4.6")
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    sec = Secondary(kind, port or free_port(), d, None, d / f"{kind}.out", primary=(primary[0], int(primary[1])),
                    zones=[_abs(z) for z in zones], key=key, catalog=_abs(catalog) if catalog else None,
                    source=source or "127.0.0.1")
    sec.argv = _STARTERS[kind](sec)
    _launch(sec)
    return sec


def restart_secondary(sec: Secondary) -> Secondary:
    """Start a stopped secondary again with the same directory, port, config and data (the zones
    it holds, its journal / SQLite database / zone files), as after a reboot: unlike
    start_secondary, nothing is written or wiped first. Stops it first if it still runs."""
    stop_secondary(sec)
    _launch(sec)
    return sec


def _launch(sec: Secondary) -> None:
    kind, d = sec.kind, sec.dir
    with open(d / f"{kind}.out", "ab") as out:
        sec.proc = subprocess.Popen(sec.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=d)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if sec.proc.poll() is not None:
            pytest.fail(f"{kind} secondary exited with {sec.proc.returncode} while starting:\n{sec.log()}")
        if _answers(sec):
            break
        if time.monotonic() > deadline:
            stop_secondary(sec)
            pytest.fail(f"{kind} secondary does not answer on 127.0.0.1:{sec.port} "
                        f"within {START_TIMEOUT:.0f}s:\n{sec.log()}")
        time.sleep(0.1)


def _answers(sec: Secondary) -> bool:
    try:
        dns.query.udp(dns.message.make_query(".", "SOA"), sec.host, port=sec.port, timeout=0.3)
        return True
    except Exception:
        return False


def stop_secondary(sec: Secondary) -> None:
    """SIGTERM to the server's process group, SIGKILL after STOP_TIMEOUT seconds. NSD is first
    told to write its zone files (`nsd-control write`; it does not on SIGTERM), so that, like the
    other three, it keeps its copies for restart_secondary."""
    p = sec.proc
    if p is None or p.poll() is not None:
        return
    if sec.kind == "nsd":
        try:
            _nsd_control(sec, "write")
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            pass  # best effort: it then transfers the zones again after a restart
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(STOP_TIMEOUT)


@contextmanager
def running_secondary(kind: str, d: Path, primary: tuple[str, int], zones: list[str],
                      key: TsigKey | None = None, catalog: str | None = None, port: int | None = None,
                      source: str | None = None):
    """start_secondary(...) as a context manager: stopped on the way out, whatever happens."""
    sec = start_secondary(kind, d, primary, zones, key, catalog, port, source)
    try:
        yield sec
    finally:
        stop_secondary(sec)


def add_zone(sec: Secondary, zone: str) -> None:
    """Add secondary `zone` (same primary and key) to the running server, which transfers it.
    BIND: rndc addzone; Knot: config file rewritten + knotc reload; NSD: nsd-control addzone;
    PowerDNS: pdnsutil create-secondary-zone + pdns_control retrieve."""
    zone = _abs(zone)
    if zone in sec.zones:
        return
    sec.zones.append(zone)
    if sec.kind == "bind":
        _rndc(sec, "addzone", zone, _bind_zone(sec, zone) + ";")
    elif sec.kind == "knot":
        _write(sec.conf, _knot_conf(sec))
        _knotc(sec, "reload")
    elif sec.kind == "nsd":
        _nsd_control(sec, "addzone", zone, "secondary")
    elif sec.kind == "pdns":
        _pdns_add(sec, zone)
        _pdns_control(sec, "retrieve", zone)


def remove_zone(sec: Secondary, zone: str) -> None:
    """Stop serving `zone` on the running server (the counterpart of add_zone)."""
    zone = _abs(zone)
    if zone in sec.zones:
        sec.zones.remove(zone)
    if sec.kind == "bind":
        _rndc(sec, "delzone", zone)
    elif sec.kind == "knot":
        _write(sec.conf, _knot_conf(sec))
        _knotc(sec, "reload")
    elif sec.kind == "nsd":
        _nsd_control(sec, "delzone", zone)
    elif sec.kind == "pdns":
        _pdnsutil(sec, "delete-zone", zone)
        _pdns_control(sec, "purge", zone + "$")


def rectify(sec: Secondary, zone: str) -> None:
    """Make a PowerDNS secondary answer queries with all it holds for `zone`; nothing for the
    other kinds. PowerDNS 4.7 stores the records an IXFR adds with auth = 0 (its AXFR-in sets
    the field, its IXFR-in does not: PowerDNS issue 12756), and with gsqlite3-dnssec=yes (as
    here) it answers NOERROR without them — though its AXFR-out has them — until the zone is
    rectified: `pdnsutil rectify-zone`, then its caches purged."""
    if sec.kind == "pdns":
        _pdnsutil(sec, "rectify-zone", _abs(zone))
        _pdns_control(sec, "purge", _abs(zone) + "$")


def _addr(target) -> tuple[str, int]:
    return (target.host, target.port) if isinstance(target, Secondary) else (target[0], int(target[1]))


def soa_serial(target, zone: str, timeout: float = 1.0) -> int | None:
    """The SOA serial `target` (a Secondary or (address, port)) serves for `zone` over UDP: an
    authoritative NOERROR answer's, else None (not loaded yet, expired, refused, no answer)."""
    host, port = _addr(target)
    try:
        r = dns.query.udp(dns.message.make_query(zone, "SOA"), host, port=port, timeout=timeout)
    except Exception:
        return None
    if r.rcode() != dns.rcode.NOERROR or not (r.flags & dns.flags.AA):
        return None
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == dns.name.from_text(zone):
            return rrset[0].serial
    return None


def serial_ge(a: int, b: int) -> bool:
    """a >= b in RFC 1982 serial number arithmetic (32 bits)."""
    return a == b or 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


def wait_serial(target, zone: str, serial: int | None = None, timeout: float = 10.0) -> bool:
    """Whether `target` serves `zone` with a serial >= `serial` (RFC 1982) within `timeout`
    seconds; `serial=None`: any serial (the zone is loaded). For a Secondary and a `serial`, it
    then also waits (at most LOG_GRACE seconds more) for the server's log to show that
    transfer, which some servers write just after they start serving it, so that
    transfer_kinds called next sees it."""
    deadline = time.monotonic() + timeout
    while True:
        got = soa_serial(target, zone, timeout=0.5)
        if got is not None and (serial is None or serial_ge(got, serial)):
            break
        if isinstance(target, Secondary) and target.proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    if isinstance(target, Secondary) and serial is not None:
        z = _abs(zone).lower()
        grace = time.monotonic() + LOG_GRACE
        while time.monotonic() < grace and not any(
                zz.lower() == z and serial_ge(s, serial) for zz, _, s in _transfers(target)):
            time.sleep(0.05)
    return True


def zone_records(target, zone: str, key: TsigKey | None = None, timeout: float = 10.0,
                 source: str | None = None) -> set[str]:
    """`zone` as `target` (a Secondary or (address, port)) serves it, by a full AXFR over TCP
    (signed with `key` when given; sent from address `source` when given, e.g. 127.0.0.2 so a
    primary's log tells it from its secondaries' transfers), as a set of "name ttl class type
    rdata" texts: absolute names lowercased, rdata in dnspython's text form with every name in it
    lowercased. Two servers holding the same data give equal sets. Raises if the transfer is
    refused or fails."""
    host, port = _addr(target)
    kw = {"keyring": key.keyring(), "keyname": key.name} if key else {}
    if source:
        kw["source"] = source
    out: set[str] = set()
    origin = dns.name.from_text(zone)
    for msg in dns.query.xfr(host, origin, port=port, timeout=timeout, lifetime=timeout, relativize=False, **kw):
        for rrset in msg.answer:
            for rd in rrset:
                out.add(f"{rrset.name.canonicalize().to_text()} {rrset.ttl} "
                        f"{dns.rdataclass.to_text(rrset.rdclass)} {dns.rdatatype.to_text(rrset.rdtype)} "
                        f"{canonical_rdata(rd)}")
    return out


# The parsers below return (zone, kind, new serial) per completed inbound transfer, oldest first;
# kind is None where the log does not say (NSD).


def _knot_transfers(text: str) -> list[tuple[str, str | None, int]]:
    # "[z.] IXFR, incoming, remote ..., finished, ..." then "[z.] refresh, remote ..., zone
    # updated, ..., serial 1 -> 2"; an IXFR that fails to apply is followed by "fallback to
    # AXFR" and an AXFR, and an AXFR-style IXFR is logged as "receiving AXFR-style IXFR" and an
    # AXFR: the last finished incoming transfer before "zone updated" is the one that counts.
    last: dict[str, str] = {}
    out = []
    for m in re.finditer(r"\[(?P<zone>[^\]]+)\] (?:(?P<kind>AXFR|IXFR), incoming, remote \S+ finished"
                         r"|refresh, remote \S+ zone updated, .*?serial \S+ -> (?P<serial>\d+))", text):
        z = m.group("zone")
        if m.group("kind"):
            last[z] = m.group("kind")
        elif z in last:
            out.append((z, last.pop(z), int(m.group("serial"))))
    return out


def _bind_transfers(text: str) -> list[tuple[str, str | None, int]]:
    # xfer-in at debug 3: "transfer of 'z/IN' from ...: got incremental response" (or
    # "nonincremental"), "zone z/IN: transferred serial N", "...: Transfer status: success".
    kind: dict[str, str] = {}
    serial: dict[str, int] = {}
    out = []
    for m in re.finditer(r"transfer of '(?P<zone>[^/']+)/IN' from \S+ (?:got (?P<inc>non)?incremental response"
                         r"|Transfer status: (?P<status>\w+))|zone (?P<zone2>[^/ ]+)/IN: transferred serial (?P<serial>\d+)",
                         text):
        if m.group("zone2"):
            serial[m.group("zone2")] = int(m.group("serial"))
            continue
        z = m.group("zone")
        if m.group("status") is None:
            kind[z] = "AXFR" if m.group("inc") else "IXFR"
        elif m.group("status") == "success" and z in kind and z in serial:
            out.append((z, kind.pop(z), serial.pop(z)))
    return out


def _pdns_transfers(text: str) -> list[tuple[str, str | None, int]]:
    # "AXFR-in zone: 'z', primary: '...', zone committed with serial N";
    # "IXFR-in zone: 'z', primary: '...', got N deltas, zone committed with serial N" (0 deltas:
    # nothing was transferred, not counted).
    out = []
    for m in re.finditer(r"(?P<kind>AXFR|IXFR)-in zone: '(?P<zone>[^']+)', primary: '[^']*', "
                         r"(?:got (?P<n>\d+) deltas?, )?zone committed with serial (?P<serial>\d+)", text):
        if m.group("kind") == "IXFR" and m.group("n") == "0":
            continue
        out.append((m.group("zone"), m.group("kind"), int(m.group("serial"))))
    return out


def _nsd_transfers(text: str) -> list[tuple[str, str | None, int]]:
    # "info: zone z. received update to serial N at ... from ..." is logged by the process that
    # applied the transfer, before it serves it (a refused IXFR logs an error instead and is
    # followed by the AXFR's line). NSD 4.6 does not log AXFR or IXFR: see _nsd_kind.
    return [(m.group("zone"), None, int(m.group("serial")))
            for m in re.finditer(r"info: zone (?P<zone>\S+) received update to serial (?P<serial>\d+) at ", text)]


def _nsd_kind(sec: Secondary, zone: str, old: int | None, new: int) -> str:
    # NSD 4.6 logs AXFR/IXFR only in --enable-debug builds. The first copy is an AXFR. For the
    # others the harness asks NSD itself: its secondary zones have store-ixfr, so NSD keeps every
    # IXFR it received (and drops them all when it takes an AXFR): an incremental answer to
    # IXFR(old) that starts with old -> ... and reaches `new` means old -> new came by IXFR.
    # Limits: an IXFR taken before a later AXFR reads as AXFR; only the last 20 are kept.
    if old is None:
        return "AXFR"
    q = dns.message.make_query(zone, "IXFR")
    q.authority.append(dns.rrset.from_text(zone, 0, "IN", "SOA", f". . {old} 0 0 0 0"))
    try:
        r = dns.query.tcp(q, sec.host, port=sec.port, timeout=2, one_rr_per_rrset=True)
    except Exception:
        return "AXFR"
    rrs = [(rrset.rdtype, rr) for rrset in r.answer for rr in rrset]
    # incremental: SOA(newest), SOA(old), deletions..., SOA(next), additions..., SOA(next)...
    if len(rrs) < 2 or rrs[1][0] != dns.rdatatype.SOA or rrs[1][1].serial != old:
        return "AXFR"
    return "IXFR" if any(t == dns.rdatatype.SOA and rr.serial == new for t, rr in rrs) else "AXFR"


def _transfers(sec: Secondary) -> list[tuple[str, str | None, int]]:
    path = sec.dir / "xfer-in.log" if sec.kind == "bind" else sec.log_path
    text = path.read_text(errors="replace") if path.exists() else ""
    parse = {"knot": _knot_transfers, "bind": _bind_transfers, "pdns": _pdns_transfers, "nsd": _nsd_transfers}
    return [(_abs(z), k, serial) for z, k, serial in parse[sec.kind](text)]


def transfer_log(sec: Secondary, since: int = 0) -> list[tuple[str, str]]:
    """(zone, "AXFR" | "IXFR") for every inbound transfer the server completed, oldest first,
    from its log (NSD: see _nsd_kind). Zone names are absolute. `since`: leave out the first
    `since` transfers (for NSD, not asked about again: a caller reading the log every so often
    stays within the 20 IXFRs NSD keeps)."""
    rows = _transfers(sec)
    if sec.kind == "nsd":
        prev: dict[str, int] = {}
        out = []
        for i, (z, _, serial) in enumerate(rows):
            out.append((z, _nsd_kind(sec, z, prev.get(z), serial) if i >= since else None))
            prev[z] = serial
        return out[since:]
    return [(z, k) for z, k, _ in rows][since:]


def transfer_kinds(sec: Secondary, zone: str | None = None) -> list[str]:
    """The transfer types ("AXFR" / "IXFR") the secondary used, oldest first, for `zone` (or for
    every zone), read from its own log: what was actually received (an IXFR request answered
    with a full zone counts as AXFR where the server logs it so)."""
    want = _abs(zone).lower() if zone else None
    return [k for z, k in transfer_log(sec) if want is None or z.lower() == want]
