"""RFC 2136 UPDATE on real peers: BIND 9 and Knot DNS started as PRIMARIES of zones loaded from
one zone file, accepting updates signed with one TSIG key; the real clients nsupdate
(bind9-dnsutils) and knsupdate (knot-dnsutils) run on a case's messages; an outcome made of the
rcodes the client reports and the zone read back by AXFR, normalised so that two servers compare.

Usage (a plain module beside the conftest, like secondaries.py):

    with update_primaries(tmp_path, origins, KEY) as peers:      # {"bind": Server, "knot": Server}
        rcodes = run_client("nsupdate", peers["bind"].port, "z.test.", messages, KEY)
        records, serial = zone_state(("127.0.0.1", peers["bind"].port), "z.test.")

BIND: `type primary`, `update-policy { grant KEY zonesub ANY; }` (signed updates only; the
journal beside the zone file in the test directory). Knot: an ACL rule with `action: update` and
the key (nothing else may update), the journal and timer databases in the test directory, the
zone file never written back (zonefile-sync: -1). Both allow AXFR from 127.0.0.1 unsigned (for
zone_state) and send no NOTIFY. A missing binary FAILS the test naming its Debian package
(conftest._need_binary), as everywhere in this suite.

What the clients print (BIND 9.18.49's nsupdate, Knot 3.2.6's knsupdate), which run_client reads:
- nsupdate -d writes every reply to stderr after "Reply from update query:", header
  "status: RCODE" and, when signed, the TSIG pseudo-section with its error field; it goes on
  after a failed message and exits 2 if any failed.
- knsupdate -d writes the reply to stdout; its "status:" shows the TSIG error (BADKEY, BADSIG)
  in place of the header's rcode (NOTAUTH, as nsupdate shows for the same reply), and it STOPS at
  the first message that fails. run_client therefore runs knsupdate once per message.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dns.name
import dns.query
import dns.rdatatype

import conftest as interop  # tests/interop/conftest.py: _need_binary, _checkconf, _start, _serving, _wait_ready
from interop_common import write_conf
from secondaries import TsigKey, free_port, serial_ge

if not interop.__file__.endswith("interop/conftest.py"):  # another directory's conftest imported as `conftest`
    raise ImportError(f"update_peers needs tests/interop/conftest.py, got {interop.__file__}")

# The zone every case starts from: SOA, two apex NS, A/AAAA/TXT/MX, a CNAME, a delegation with glue,
# an empty non-terminal (deep).
ZONE_TEXT = """\
$TTL 3600
@        SOA   ns1 hostmaster 2026010101 7200 900 1209600 300
@        NS    ns1
@        NS    ns2
@        MX    10 mail
@        TXT   "v=spf1 -all"
@        A     192.0.2.1
ns1      A     192.0.2.53
ns2      A     192.0.2.54
ns2      AAAA  2001:db8::54
mail     A     192.0.2.25
www      A     192.0.2.80
www      A     192.0.2.81
www      AAAA  2001:db8::80
www      TXT   "web server"
ftp      CNAME www
sub      NS    ns.sub
ns.sub   A     192.0.2.99
host.deep A    192.0.2.30
"""

CLIENTS = {"nsupdate": "bind9-dnsutils", "knsupdate": "knot-dnsutils"}
NEEDED = "the UPDATE differential test runs the real clients against BIND, Knot and minidns"
CLIENT_TIMEOUT = 5  # seconds nsupdate/knsupdate wait for a reply (-t)
TSIG_ERRORS = ("BADSIG", "BADKEY", "BADTIME", "BADTRUNC")
KNOT_RCODE_NAMES = {"NOTIMPL": "NOTIMP"}  # knsupdate's spelling -> nsupdate's (and dnspython's)


# ------------------------------------------------------------------------------------------------
# the primaries


def zone_file(d: Path, origin: str) -> Path:
    """ZONE_TEXT written as `origin`'s zone file in `d`."""
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{origin.rstrip('.')}.zone"
    path.write_text(f"$ORIGIN {origin}\n" + ZONE_TEXT)
    return path


def _bind_conf(d: Path, port: int, origins: list[str], key: TsigKey) -> str:
    text = (
        "options {\n"
        f'  directory "{d}";\n'
        f'  pid-file "{d}/named.pid";\n'
        f'  session-keyfile "{d}/session.key";\n'
        f'  managed-keys-directory "{d}";\n'
        f"  listen-on port {port} {{ 127.0.0.1; }};\n"
        "  listen-on-v6 { none; };\n"
        "  recursion no;\n"
        "  dnssec-validation no;\n"
        "  notify no;\n"
        "  allow-transfer { 127.0.0.1; };\n"
        "};\n"
        f'key "{key.name}" {{ algorithm {key.algorithm}; secret "{key.secret}"; }};\n'
        "logging {\n"
        f'  channel main {{ file "{d}/named.log"; severity info; print-time yes; print-category yes; }};\n'
        "  category default { main; };\n"
        "  category lame-servers { null; };\n"
        "};\n"
    )
    for origin in origins:
        text += (f'zone "{origin}" {{ type primary; file "{zone_file(d / "zones", origin)}"; '
                 f"update-policy {{ grant {key.name} zonesub ANY; }}; }};\n")
    return text


def _knot_conf(d: Path, port: int, origins: list[str], key: TsigKey) -> str:
    (d / "db").mkdir(parents=True, exist_ok=True)  # the journal and timers: Knot makes no missing folder
    text = (
        "server:\n"
        f"  listen: 127.0.0.1@{port}\n"
        "  udp-workers: 1\n"
        "  tcp-workers: 1\n"
        "  background-workers: 1\n"
        f'  rundir: "{d}"\n'
        "log:\n"
        "  - target: stderr\n"
        "    any: info\n"
        "database:\n"
        f'  storage: "{d}/db"\n'
        f"key:\n  - id: {key.name}\n    algorithm: {key.algorithm}\n    secret: {key.secret}\n"
        "acl:\n"
        f"  - id: update\n    key: {key.name}\n    action: update\n"
        "  - id: axfr\n    address: 127.0.0.1\n    action: transfer\n"
        "template:\n"
        "  - id: default\n"
        f'    storage: "{d}/zones"\n'
        '    file: "%s.zone"\n'
        "    acl: [update, axfr]\n"
        "    zonefile-sync: -1\n"
        "    journal-content: changes\n"
        "zone:\n"
    )
    for origin in origins:
        zone_file(d / "zones", origin)
        text += f'  - domain: "{origin}"\n'
    return text


def _start_bind(d: Path, origins: list[str], key: TsigKey) -> interop.Server:
    binary = interop._need_binary("named", "bind9", "BIND", NEEDED)
    port = free_port()
    conf = write_conf(d / "named.conf", _bind_conf(d, port, origins, key))
    interop._checkconf("named-checkconf", conf)
    server = interop._start("bind", [binary, "-f", "-4", "-n", "1", "-c", str(conf)], d, port)
    server.log_path = d / "named.log"
    return server


def _start_knot(d: Path, origins: list[str], key: TsigKey) -> interop.Server:
    binary = interop._need_binary("knotd", "knot", "Knot DNS", NEEDED)
    port = free_port()
    conf = write_conf(d / "knot.conf", _knot_conf(d, port, origins, key))
    return interop._start("knot", [binary, "-c", str(conf)], d, port)


@contextmanager
def update_primaries(d: Path, origins: list[str], key: TsigKey):
    """{"bind": Server, "knot": Server}: both serving every one of `origins` (each from
    ZONE_TEXT) and accepting UPDATE signed with `key`; stopped on the way out."""
    with ExitStack() as stack:
        out = {}
        for kind, start in (("bind", _start_bind), ("knot", _start_knot)):
            server = start(d / kind, origins, key)
            out[kind] = stack.enter_context(interop._serving(server, lambda s: interop._wait_ready(s, origins)))
        yield out


# ------------------------------------------------------------------------------------------------
# the clients


def _client(name: str) -> str:
    return interop._need_binary(name, CLIENTS[name], name, NEEDED)


def _script(port: int, zone: str, commands: tuple[str, ...]) -> str:
    return f"server 127.0.0.1 {port}\nzone {zone}\n" + "".join(c + "\n" for c in commands) + "send\n"


def _key_args(key: TsigKey | None) -> list[str]:
    return ["-y", f"{key.algorithm}:{key.name}:{key.secret}"] if key else []


_NSUPDATE_REPLY = re.compile(r"Reply from update query:\n;; ->>HEADER<<- opcode: UPDATE, status: (\w+),"
                             r"(?P<rest>.*?)(?=\nSending update|\nReply from|\Z)", re.DOTALL)
_TSIG_ERROR = re.compile(r"\tTSIG\t\S+ \d+ \d+ \d+ (?:\S+ )?\d+ (\w+) \d+")
_KNSUPDATE_STATUS = re.compile(r";; ->>HEADER<<- opcode: UPDATE; status: (\w+);")


def _with_tsig_error(rcode: str, block: str) -> str:
    """`rcode`, or "RCODE/TSIGERROR" when the reply's TSIG record carries an error (RFC 8945 §5.2)."""
    m = _TSIG_ERROR.search(block)
    return f"{rcode}/{m.group(1)}" if m and m.group(1) != "NOERROR" else rcode


def run_nsupdate(port: int, zone: str, messages, key: TsigKey | None) -> tuple[str, ...]:
    """One nsupdate process sending every message (a tuple of nsupdate commands; `server`, `zone`
    and `send` are added) over UDP to 127.0.0.1:`port`, signed with `key` (None: unsigned); the
    rcode of each reply ("NOTAUTH/BADKEY" when TSIG failed, "no reply" when there was none)."""
    script = "".join(_script(port, zone, m) for m in messages)
    p = subprocess.run([_client("nsupdate"), "-d", "-t", str(CLIENT_TIMEOUT), *_key_args(key)], input=script,
                       capture_output=True, text=True, timeout=CLIENT_TIMEOUT * len(messages) + 10, check=False)
    got = tuple(_with_tsig_error(m.group(1), m.group("rest")) for m in _NSUPDATE_REPLY.finditer(p.stderr))
    if p.returncode not in (0, 2):
        raise AssertionError(f"nsupdate exited {p.returncode}:\n{script}\n{p.stdout}{p.stderr}")
    return got + ("no reply",) * (len(messages) - len(got))


def run_knsupdate(port: int, zone: str, messages, key: TsigKey | None) -> tuple[str, ...]:
    """As run_nsupdate with knsupdate, over TCP (-v), one process per message (knsupdate stops
    at the first failed one). It prints a failed message's reply by itself and a successful
    one's when asked (`answer`); it shows a TSIG error in place of the rcode, the header's rcode
    being NOTAUTH then (RFC 8945 §5.2; nsupdate shows both), which is what is returned."""
    out = []
    for m in messages:
        script = _script(port, zone, m) + "answer\n"
        p = subprocess.run([_client("knsupdate"), "-v", "-t", str(CLIENT_TIMEOUT), *_key_args(key)],
                           input=script, capture_output=True, text=True, timeout=CLIENT_TIMEOUT + 10, check=False)
        found = _KNSUPDATE_STATUS.search(p.stdout)
        if found is None:
            out.append("no reply")
            continue
        status = found.group(1)
        if (p.returncode == 0) != (status == "NOERROR"):
            raise AssertionError(f"knsupdate exited {p.returncode} on a {status} reply:\n{script}\n{p.stdout}{p.stderr}")
        status = KNOT_RCODE_NAMES.get(status, status)
        out.append(f"NOTAUTH/{status}" if status in TSIG_ERRORS else _with_tsig_error(status, p.stdout))
    return tuple(out)


RUNNERS = {"nsupdate": run_nsupdate, "knsupdate": run_knsupdate}


def run_client(client: str, port: int, zone: str, messages, key: TsigKey | None) -> tuple[str, ...]:
    return RUNNERS[client](port, zone, messages, key)


# ------------------------------------------------------------------------------------------------
# the zone read back


def zone_state(addr: tuple[str, int], zone: str, timeout: float = 10.0) -> tuple[frozenset[str], str]:
    """`zone` as served at `addr` (AXFR over TCP, unsigned) as (records, serial): records are
    "owner ttl TYPE rdata" texts with every name relative to the zone ("@" the apex) and
    lowercased, the SOA's serial written as SERIAL (servers bump it differently; it is returned
    beside the records)."""
    origin = dns.name.from_text(zone)
    records, serial = set(), None
    for msg in dns.query.xfr(addr[0], origin, port=addr[1], timeout=timeout, lifetime=timeout, relativize=False):
        for rrset in msg.answer:
            owner = rrset.name.canonicalize().relativize(origin).to_text()
            for rd in rrset:
                text = _relative_rdata(rd, origin)
                if rd.rdtype == dns.rdatatype.SOA:
                    serial = rd.serial
                    mname, rname, _, *timers = text.split()
                    text = " ".join([mname, rname, "SERIAL", *timers])
                records.add(f"{owner} {rrset.ttl} {dns.rdatatype.to_text(rd.rdtype)} {text}")
    return frozenset(records), serial


def _relative_rdata(rd, origin: dns.name.Name) -> str:
    changes = {slot: getattr(rd, slot).canonicalize()
               for slot in rd._get_all_slots() if isinstance(getattr(rd, slot, None), dns.name.Name)}
    return (rd.replace(**changes) if changes else rd).to_text(origin=origin, relativize=True)


def serial_move(before: int | None, after: int | None, pinned: tuple[int, ...] = ()) -> str:
    """How a zone's serial moved from `before` to `after`: "=N" when `after` is one of `pinned`
    (a case that sets the serial), else "same", "up" or "down" (RFC 1982)."""
    if after is None or before is None:
        return "no SOA"
    if after in pinned:
        return f"={after}"
    if after == before:
        return "same"
    return "up" if serial_ge(after, before) else "down"
