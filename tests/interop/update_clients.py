"""Real RFC 2136 clients and the servers they write to, for tests/interop/test_update_clients.py.

Primaries (each on a free 127.0.0.1 port, serving ZONE and REVERSE, accepting UPDATE signed with
a TSIG key, transfers by that key):
- start_minidns(d, url, key, grants): `minidns serve --config` (this checkout's) on the database
  `url`, the zones created through the store, the key in `tsig_keys`, `grants` as
  `[[update_grants]]`, and `allow_transfer = ["key:NAME"]` (octodns reads the zone back by AXFR).
- start_bind(d, key): BIND 9 `type primary` with `allow-update { key NAME; }` (the reference the
  harness was first written against; a truncated key is configured as hmac-sha256-128).
Both zones have the apex NS minidns gives a test zone (ns1.pool.test., out of zone), so the
clients meet the same data on both.

Clients:
- Kea DHCP-DDNS (D2): start_kea(d, dns_addr, key, digest_bits) runs `kea-dhcp-ddns` with ZONE and
  REVERSE as its forward and reverse DDNS domains; send_ncr() sends a NameChangeRequest the way
  kea-dhcp4 does (ncr-protocol UDP, ncr-format JSON: the JSON text after a 2-octet length,
  Kea's NameChangeRequest::toFormat); Kea.wait_done() waits for its outcome line.
- pebble + lego: start_pebble(d, dns_port) runs pebble (ACME test CA) with its own TLS
  certificate and `-dnsserver` pointing at the primary; run_lego() gets a certificate with lego's
  rfc2136 DNS-01 provider.
- octodns: octodns_sync(d, server, key, zone, records) writes a YamlProvider zone and runs
  `octodns-sync` with octodns_bind.Rfc2136Provider as the target.

A missing binary makes the test FAIL naming its Debian or PyPI package (scripts/test.sh installs
them all). Every process runs in its own session, writes only inside `d`, and is stopped with its
process group; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml
from secondaries import TsigKey, free_port

ROOT = Path(__file__).resolve().parents[2]
ZONE = "ddns.test."
REVERSE = "2.0.192.in-addr.arpa."
APEX_NS = "ns1.pool.test."  # the default pool's NS in a test database (tests/conftest.py)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def need(name: str, package: str) -> str:
    """The path of `name`, or the test FAILS naming the package that has it."""
    path = shutil.which(name)
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        if path is None and os.access(os.path.join(d, name), os.X_OK):
            path = os.path.join(d, name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: the UPDATE client tests run it ({package}; scripts/test.sh installs it)")
    return path


@dataclass
class Proc:
    """A started program: its process (a session leader) and the file its output goes to."""
    name: str
    proc: subprocess.Popen = field(repr=False)
    log_path: Path

    def log(self, tail: int = 8000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def lines(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        return [line for line in self.log(10**7).splitlines() if rx.search(line)]

    def wait_for(self, pattern: str, timeout: float, count: int = 1) -> list[str]:
        """The first `count` log lines matching `pattern`; fails if they do not come in time."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.lines(pattern)
            if len(found) >= count:
                return found[:count]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{self.name} logged {len(found)} of {count} lines matching {pattern!r} "
                            f"within {timeout}s (exit {self.proc.poll()}); log:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(STOP_TIMEOUT)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)


def start(name: str, argv: list[str], d: Path, env: dict | None = None) -> Proc:
    """Run `argv` in `d` in a session of its own, stdout and stderr to d/<name>.log."""
    d.mkdir(parents=True, exist_ok=True)
    log_path = d / f"{name}.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=d, env=env, start_new_session=True)
    return Proc(name, proc, log_path)


@dataclass
class Primary:
    """A server the clients write to: `kind` (minidns or bind) on 127.0.0.1:`port`."""
    kind: str
    port: int
    proc: Proc
    database_url: str | None = None  # minidns's

    def change_sources(self, zone: str) -> list[str]:
        """What made each change of `zone` in minidns's change log, oldest first (its creation
        excluded): `update:<key name>` for an UPDATE signed with that key."""
        from minidns.store import db

        async def read():
            conn = await db.connect(self.database_url)
            try:
                return await conn.fetch("SELECT c.source FROM zone_changes c JOIN zones z ON z.id = c.zone_id"
                                        " WHERE z.name = $1 AND c.serial_from IS NOT NULL ORDER BY c.seq", zone)
            finally:
                await conn.close()

        return [r["source"] for r in asyncio.run(read())]

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def log(self) -> str:
        return self.proc.log()


def query(server: Primary | tuple[str, int], name: str, rtype: str) -> dns.message.Message:
    host, port = server.addr if isinstance(server, Primary) else server
    return dns.query.udp(dns.message.make_query(name, rtype), host, port=port, timeout=2)


def answers(server, name: str, rtype: str) -> set[str]:
    """The rdata texts of `name` `rtype` as the server answers (empty for NXDOMAIN or no data)."""
    r = query(server, name, rtype)
    want = dns.rdatatype.from_text(rtype)
    return {rd.to_text() for rrset in r.answer if rrset.rdtype == want for rd in rrset}


def wait_answers(server, name: str, rtype: str, want: set[str], timeout: float = 10.0) -> set[str]:
    """Poll until the server answers exactly `want` for name/rtype; returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = answers(server, name, rtype)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def wait_soa(server: Primary, zones: list[str], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    pending = list(zones)
    while pending:
        if server.proc.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{server.kind} does not answer SOA for {pending}; log:\n{server.log()}")
        with contextlib.suppress(dns.exception.DNSException, OSError):  # not listening yet
            pending = [z for z in pending if not answers(server, z, "SOA")]
        if pending:
            time.sleep(0.1)


# ------------------------------------------------------------------------------------------------
# the primaries


def minidns_config(url: str, port: int, key: TsigKey, grants: list[dict]) -> str:
    """minidns's TOML: the database, 127.0.0.1:port, the key, transfers by the key only, the grants."""
    text = (f'database_url = "{url}"\n'
            f'listen = ["127.0.0.1:{port}"]\n'
            f'tsig_keys = [{{ name = "{key.name}", algorithm = "{key.algorithm}", secret = "{key.secret}" }}]\n'
            f'allow_transfer = ["key:{key.name}"]\n'
            "api = false\n"  # not needed here (and its default port is fixed)
            "db_check_interval = 5.0\n")
    for g in grants:
        text += "[[update_grants]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in g.items())
    return text


def create_zones(url: str, zones: list[str]) -> None:
    """The zones, empty but for what a new zone gets (SOA, the pool's NS), made through the store."""
    from minidns.store import db
    from minidns.store.stages import write_stages
    from minidns.store.writer import Store, StoreSettings

    async def run():
        pool = await db.create_pool(url)
        try:
            store = Store(pool, StoreSettings(), stages=write_stages())
            for z in zones:
                await store.create_zone(z, email=f"hostmaster@{ZONE}", ttl=300, source="test")
        finally:
            await asyncio.wait_for(pool.close(), 5)

    asyncio.run(run())


def start_minidns(d: Path, url: str, key: TsigKey, grants: list[dict]) -> Primary:
    create_zones(url, [ZONE, REVERSE])
    port = free_port()
    conf = d / "minidns.toml"
    d.mkdir(parents=True, exist_ok=True)
    conf.write_text(minidns_config(url, port, key, grants))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    p = start("minidns", [sys.executable, "-m", "minidns", "serve", "--config", str(conf)], d, env)
    p.wait_for(r"serving \d+ zone", START_TIMEOUT)
    server = Primary("minidns", port, p, url)
    wait_soa(server, [ZONE, REVERSE])
    return server


def bind_zone_text(zone: str) -> str:
    return (f"$TTL 300\n@ IN SOA {APEX_NS} hostmaster.{ZONE} 1 3600 600 1209600 300\n"
            f"@ IN NS {APEX_NS}\n")


def start_bind(d: Path, key: TsigKey, digest_bits: int | None = None) -> Primary:
    """BIND as the primary of ZONE and REVERSE, accepting updates signed with `key` (its MAC
    truncated to `digest_bits` when given: BIND names that algorithm hmac-sha256-128 and refuses
    a shorter MAC from a key configured without it, BADTRUNC)."""
    named = need("named", "Debian bind9")
    d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    algorithm = key.algorithm + (f"-{digest_bits}" if digest_bits else "")
    text = (
        "options {\n"
        f'  directory "{d}"; pid-file "{d}/named.pid"; session-keyfile "{d}/session.key";\n'
        f'  managed-keys-directory "{d}";\n'
        f"  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n"
        "  recursion no; dnssec-validation no; notify no;\n"
        f'  allow-transfer {{ key "{key.name}"; }};\n'
        "};\n"
        "controls { };\n"  # no rndc channel (it would take 127.0.0.1#953)
        f'key "{key.name}" {{ algorithm {algorithm}; secret "{key.secret}"; }};\n')
    for z in (ZONE, REVERSE):
        f = d / f"{z.rstrip('.')}.db"
        f.write_text(bind_zone_text(z))
        text += f'zone "{z}" {{ type primary; file "{f}"; allow-update {{ key "{key.name}"; }}; }};\n'
    conf = d / "named.conf"
    conf.write_text(text)
    # -g: in the foreground, everything (updates too) logged to stderr, i.e. the log file
    p = start("named", [named, "-g", "-4", "-n", "1", "-c", str(conf)], d)
    server = Primary("bind", port, p)
    wait_soa(server, [ZONE, REVERSE])
    return server


# ------------------------------------------------------------------------------------------------
# Kea DHCP-DDNS


def dhcid(client_id: bytes, fqdn: str) -> bytes:
    """The DHCID RDATA kea-dhcp4 computes for a client that sent a client identifier (RFC 4701
    §3.3, §3.5): identifier type 0x0001, digest type 1, SHA-256 of the client id and the FQDN in
    canonical wire form."""
    wire = dns.name.from_text(fqdn).canonicalize().to_wire()
    return b"\x00\x01\x01" + hashlib.sha256(client_id + wire).digest()


def kea_config(ncr_port: int, dns_addr: tuple[str, int], key: TsigKey, digest_bits: int | None) -> dict:
    """D2's configuration: NCRs on 127.0.0.1:ncr_port (UDP, JSON), ZONE forward and REVERSE
    reverse, both at `dns_addr` with `key` (its MAC truncated to `digest_bits` when given)."""
    tsig = {"name": key.name, "algorithm": key.algorithm.upper(), "secret": key.secret}
    if digest_bits:
        tsig["digest-bits"] = digest_bits
    servers = [{"ip-address": dns_addr[0], "port": dns_addr[1]}]
    return {"DhcpDdns": {
        "ip-address": "127.0.0.1", "port": ncr_port, "dns-server-timeout": 2000,
        "ncr-protocol": "UDP", "ncr-format": "JSON",
        "tsig-keys": [tsig],
        "forward-ddns": {"ddns-domains": [{"name": ZONE, "key-name": key.name, "dns-servers": servers}]},
        "reverse-ddns": {"ddns-domains": [{"name": REVERSE, "key-name": key.name, "dns-servers": servers}]},
        "loggers": [{"name": "kea-dhcp-ddns", "output_options": [{"output": "stdout", "flush": True}],
                     "severity": "DEBUG", "debuglevel": 50}],
    }}


@dataclass
class Kea:
    """A running kea-dhcp-ddns listening for NCRs on 127.0.0.1:`ncr_port`."""
    ncr_port: int
    proc: Proc

    def outcomes(self) -> list[str]:
        return self.proc.lines(r"DHCP_DDNS_(ADD|REMOVE)_(SUCCEEDED|FAILED)")

    def wait_done(self, count: int, timeout: float = 20.0) -> str:
        """The `count`-th outcome line (DHCP_DDNS_ADD_SUCCEEDED, ..._REMOVE_FAILED, ...)."""
        return self.proc.wait_for(r"DHCP_DDNS_(ADD|REMOVE)_(SUCCEEDED|FAILED)", timeout, count)[-1]


def start_kea(d: Path, dns_addr: tuple[str, int], key: TsigKey, digest_bits: int | None = None) -> Kea:
    binary = need("kea-dhcp-ddns", "Debian kea-dhcp-ddns-server")
    d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = d / "kea-dhcp-ddns.json"
    conf.write_text(json.dumps(kea_config(port, dns_addr, key, digest_bits), indent=1))
    # Kea's PID file goes to KEA_PIDFILE_DIR (default /run/kea); its lock file to KEA_LOCKFILE_DIR.
    env = dict(os.environ, KEA_PIDFILE_DIR=str(d), KEA_LOCKFILE_DIR=str(d))
    check = subprocess.run([binary, "-t", str(conf)], check=False, capture_output=True, text=True, timeout=30, env=env)
    if check.returncode != 0:
        pytest.fail(f"kea-dhcp-ddns rejects the generated config:\n{check.stdout}{check.stderr}")
    p = start("kea-dhcp-ddns", [binary, "-c", str(conf)], d, env)
    p.wait_for(r"DHCP_DDNS_QUEUE_MGR_STARTED", START_TIMEOUT)
    return Kea(port, p)


def ncr(change: str, fqdn: str, ip: str, client_id: bytes, lease: int = 3600,
        conflict_resolution: bool = True) -> bytes:
    """A NameChangeRequest as kea-dhcp4 sends it to D2 (ncr-format JSON over UDP): a 2-octet
    length, then the JSON text with the members NameChangeRequest::toJSON writes, in its order."""
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=lease)
    body = {
        "change-type": {"add": 0, "remove": 1}[change],
        "forward-change": True,
        "reverse-change": True,
        "fqdn": fqdn,
        "ip-address": ip,
        "dhcid": dhcid(client_id, fqdn).hex().upper(),
        "lease-expires-on": expires.strftime("%Y%m%d%H%M%S"),
        "lease-length": lease,
        "use-conflict-resolution": conflict_resolution,
    }
    text = json.dumps(body, separators=(",", ":")).encode()
    return struct.pack("!H", len(text)) + text


def send_ncr(kea: Kea, message: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(message, ("127.0.0.1", kea.ncr_port))


# ------------------------------------------------------------------------------------------------
# pebble (the ACME test CA) and lego


def tls_pair(d: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and localhost (pebble's HTTPS listener;
    Debian's pebble ships none), valid for a day: (certificate, key) PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble test listener")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(k, hashes.SHA256()))
    crt, key = d / "pebble.crt", d / "pebble.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return crt, key


@dataclass
class Pebble:
    directory: str  # the ACME directory URL
    ca_file: Path  # the certificate of pebble's HTTPS listener
    proc: Proc


def start_pebble(d: Path, dns_addr: tuple[str, int]) -> Pebble:
    """pebble on 127.0.0.1, resolving the DNS-01 challenges' TXT records at `dns_addr` only."""
    binary = need("pebble", "Debian pebble")
    d.mkdir(parents=True, exist_ok=True)
    crt, key = tls_pair(d)
    port = free_port()
    conf = {"pebble": {
        "listenAddress": f"127.0.0.1:{port}", "managementListenAddress": f"127.0.0.1:{free_port()}",
        "certificate": str(crt), "privateKey": str(key),
        # the validation ports of http-01 and tls-alpn-01 (not used here: lego offers only dns-01)
        "httpPort": free_port(), "tlsPort": free_port(),
        "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }}
    (d / "pebble.json").write_text(json.dumps(conf))
    # NOSLEEP: no random 0-15 s wait before validating; NONCEREJECT=0: no nonce rejected on purpose
    # (pebble rejects 5% of good nonces by default, to test clients' retries).
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
    p = start("pebble", [binary, "-config", str(d / "pebble.json"), "-dnsserver", f"{dns_addr[0]}:{dns_addr[1]}"],
              d, env)
    p.wait_for(r"Listening on: 127\.0\.0\.1:", START_TIMEOUT)
    return Pebble(f"https://127.0.0.1:{port}/dir", crt, p)


def run_lego(d: Path, pebble: Pebble, dns_addr: tuple[str, int], key: TsigKey, domain: str,
             timeout: float = 120.0) -> subprocess.CompletedProcess:
    """`lego run` for `domain` with the rfc2136 DNS provider writing to `dns_addr` and resolving
    there too. --dns.disable-cp: lego would otherwise ask the zone's NS (ns1.pool.test., port 53)."""
    binary = need("lego", "Debian lego")
    addr = f"{dns_addr[0]}:{dns_addr[1]}"
    env = dict(os.environ,
               RFC2136_NAMESERVER=addr, RFC2136_TSIG_KEY=key.name, RFC2136_TSIG_SECRET=key.secret,
               RFC2136_TSIG_ALGORITHM=key.algorithm + ".", RFC2136_TTL="60",
               RFC2136_PROPAGATION_TIMEOUT="30", RFC2136_POLLING_INTERVAL="1", RFC2136_DNS_TIMEOUT="5",
               LEGO_CA_CERTIFICATES=str(pebble.ca_file))
    argv = [binary, "--accept-tos", "--email", f"acme@{ZONE.rstrip('.')}", "--server", pebble.directory,
            "--dns", "rfc2136", "--dns.resolvers", addr, "--dns.disable-cp", "--key-type", "ec256",
            "--domains", domain, "--path", str(d / "lego"), "run"]
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=d)


# ------------------------------------------------------------------------------------------------
# octodns


def octodns_sync(d: Path, addr: tuple[str, int], key: TsigKey, zone: str, records: dict,
                 timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Write `records` (octodns's YAML zone form) as `zone` and run `octodns-sync --doit` from a
    YamlProvider to octodns_bind.Rfc2136Provider at `addr` with `key`."""
    binary = need("octodns-sync", "PyPI octodns, octodns-bind")
    (d / "zones").mkdir(parents=True, exist_ok=True)
    config = {
        "providers": {
            "yaml": {"class": "octodns.provider.yaml.YamlProvider", "directory": str(d / "zones")},
            "dns": {"class": "octodns_bind.Rfc2136Provider", "host": addr[0], "port": addr[1], "timeout": 10,
                    "key_name": key.name, "key_secret": key.secret, "key_algorithm": key.algorithm},
        },
        "zones": {zone: {"sources": ["yaml"], "targets": ["dns"]}},
    }
    (d / "octodns.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    # octodns's YAML loader wants each mapping's keys in order
    (d / "zones" / f"{zone}yaml").write_text(yaml.safe_dump(records, sort_keys=True))
    return subprocess.run([binary, "--config-file", str(d / "octodns.yaml"), "--doit"],
                          check=False, capture_output=True, text=True, timeout=timeout, cwd=d)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
