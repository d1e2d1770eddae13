"""Checks tests/interop/secondaries.py against real servers only (no minidns): Knot or NSD as the
PRIMARY, serving a zone file, notifying BIND, Knot, NSD and PowerDNS secondaries started by the
harness. Each secondary must take the first copy, follow a change to the zone file (serial bumped,
records added, removed, a TTL changed) and end up with the primary's exact data; where the primary
keeps differences (Knot: zonefile-load difference + journal; NSD: create-ixfr + store-ixfr) the
second transfer must be an IXFR. One test restricts a zone to a TSIG key, one adds and removes a
zone at runtime, one feeds BIND/Knot/PowerDNS a catalog zone.

Everything runs on 127.0.0.1 in pytest's temporary directory, every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from secondaries import (KINDS, Secondary, TsigKey, _need, _user, _write, add_zone, free_port,
                         remove_zone, running_secondary, soa_serial, transfer_kinds, wait_serial,
                         zone_records)

ZONE = "xfr.test."
XFR_TIMEOUT = 20.0  # seconds for a secondary to reach a serial (PowerDNS is the slow one)


def zone_text(origin: str, serial: int, version: int) -> str:
    """A small zone; `version` 1 and 2 differ by an added, a removed and a re-TTL'd record."""
    lines = [
        f"$ORIGIN {origin}",
        "$TTL 300",
        f"@ IN SOA ns1 hostmaster {serial} 3600 600 86400 300",
        "@ IN NS ns1",
        "ns1 IN A 192.0.2.53",
        "www IN A 192.0.2.80",
        "@ IN MX 10 mail",
        "mail IN A 192.0.2.25",
        '@ IN TXT "v=spf1 -all"',
    ]
    if version == 1:
        lines += ["old IN A 192.0.2.1", "ttl 600 IN A 192.0.2.2"]
    else:
        lines += ["new IN AAAA 2001:db8::1", "ttl 900 IN A 192.0.2.2", 'many IN TXT "a" "b"']
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# primaries


@dataclass
class Primary:
    kind: str
    port: int
    dir: Path
    zones: dict[str, Path]
    conf: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def addr(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def log(self) -> str:
        try:
            return (self.dir / f"{self.kind}.out").read_text(errors="replace")[-6000:] + \
                ((self.dir / "nsd.log").read_text(errors="replace")[-6000:] if self.kind == "nsd" else "")
        except OSError:
            return ""

    def set_zone(self, zone: str, text: str) -> None:
        """Write `zone`'s file anew and make the primary load it (and notify)."""
        self.zones[zone].write_text(text)
        if self.kind == "knot":
            run(["knotc", "-c", str(self.conf), "-t", "15", "zone-reload", zone])
        else:
            run(["nsd-control", "-c", str(self.conf), "reload", zone])


def run(argv: list[str]) -> str:
    binary = _need(argv[0], "knot" if argv[0].startswith("knot") else "nsd")
    r = subprocess.run([binary, *argv[1:]], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{argv} exited {r.returncode}: {r.stdout}{r.stderr}"
    return r.stdout


def knot_primary_conf(d: Path, port: int, zones: dict[str, Path], notify: list[int],
                      key: TsigKey | None, keyed: set[str]) -> str:
    text = (
        "server:\n"
        f"  listen: 127.0.0.1@{port}\n"
        "  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"
        f'  rundir: "{d}"\n'
        f"  user: {_user()}\n"
        "log:\n  - target: stderr\n    any: info\n"
        f'database:\n  storage: "{d}"\n'
        f'control:\n  listen: "{d}/knot.sock"\n'
    )
    if key:
        text += f"key:\n  - id: {key.name}\n    algorithm: {key.algorithm}\n    secret: {key.secret}\n"
    text += "remote:\n"
    for p in notify:
        text += f"  - id: sec{p}\n    address: 127.0.0.1@{p}\n"
        if key:
            text += f"  - id: sec{p}-key\n    address: 127.0.0.1@{p}\n    key: {key.name}\n"
    text += "acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: transfer\n"
    if key:
        text += f"  - id: xfr-key\n    address: 127.0.0.1\n    action: transfer\n    key: {key.name}\n"
    text += (
        "template:\n  - id: default\n"
        f'    storage: "{d}"\n'
        "    zonefile-sync: -1\n"
        "    zonefile-load: difference\n"   # a reload diffs the file against the zone: IXFR
        "    journal-content: changes\n"
        "    semantic-checks: off\n"
        "zone:\n"
    )
    for z, path in zones.items():
        k = z in keyed
        remotes = ", ".join(f"sec{p}-key" if k else f"sec{p}" for p in notify)
        text += f'  - domain: "{z}"\n    file: "{path}"\n    acl: [{"xfr-key" if k else "xfr"}]\n'
        if notify:
            text += f"    notify: [{remotes}]\n"
    return text


def nsd_primary_conf(d: Path, port: int, zones: dict[str, Path], notify: list[int],
                     key: TsigKey | None, keyed: set[str]) -> str:
    text = (
        "server:\n"
        f"  ip-address: 127.0.0.1@{port}\n"
        "  server-count: 1\n"
        '  username: ""\n  chroot: ""\n  database: ""\n'
        f'  zonesdir: "{d}"\n  xfrdir: "{d}/xfr"\n  pidfile: "{d}/nsd.pid"\n'
        f'  xfrdfile: "{d}/xfrd.state"\n  zonelistfile: "{d}/zone.list"\n  logfile: "{d}/nsd.log"\n'
        "  verbosity: 2\n  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n"
        f'remote-control:\n  control-enable: yes\n  control-interface: "{d}/nsd.ctl"\n'
    )
    if key:
        text += f'key:\n  name: "{key.name}"\n  algorithm: {key.algorithm}\n  secret: "{key.secret}"\n'
    for z, path in zones.items():
        k = key.name if (key and z in keyed) else "NOKEY"
        text += (f'zone:\n  name: "{z}"\n  zonefile: "{path}"\n  provide-xfr: 127.0.0.1 {k}\n'
                 "  store-ixfr: yes\n  create-ixfr: yes\n")
        text += "".join(f"  notify: 127.0.0.1@{p} {k}\n" for p in notify)
    return text


@contextmanager
def primary(kind: str, d: Path, zones: dict[str, str], notify: list[int],
            key: TsigKey | None = None, keyed: set[str] = frozenset()):
    """A Knot or NSD primary on a free port serving `zones` (origin -> file text), notifying
    127.0.0.1 at each of the `notify` ports; zones in `keyed` are transferred only with `key`
    (and notified signed with it)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "xfr").mkdir(exist_ok=True)
    port = free_port()
    paths = {z: _write(d / f"{z.rstrip('.')}.zone", t) for z, t in zones.items()}
    if kind == "knot":
        binary = _need("knotd", "knot")
        conf = _write(d / "knot.conf", knot_primary_conf(d, port, paths, notify, key, keyed))
        argv = [binary, "-c", str(conf)]
    else:
        binary = _need("nsd", "nsd")
        conf = _write(d / "nsd.conf", nsd_primary_conf(d, port, paths, notify, key, keyed))
        argv = [binary, "-d", "-c", str(conf)]
    p = Primary(kind, port, d, paths, conf)
    with open(d / f"{kind}.out", "ab") as out:
        p.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True, cwd=d)
    try:
        for z in zones:
            if not wait_serial(p.addr, z, None, 10):
                pytest.fail(f"{kind} primary does not serve {z}:\n{p.log()}")
        yield p
    finally:
        if p.proc.poll() is None:
            os.killpg(p.proc.pid, signal.SIGTERM)
            try:
                p.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.proc.pid, signal.SIGKILL)
                p.proc.wait(10)


def wait_same(sec: Secondary, prim: Primary, zone: str, serial: int, key: TsigKey | None = None) -> None:
    t0 = time.monotonic()
    assert wait_serial(sec, zone, serial, XFR_TIMEOUT), \
        f"{sec.kind} does not reach serial {serial} of {zone} (has {soa_serial(sec, zone)}):\n{sec.log()}\n{prim.log()}"
    print(f"{sec.kind}: {zone} serial {serial} after {time.monotonic() - t0:.2f}s")
    assert zone_records(sec, zone) == zone_records(prim.addr, zone, key)


# ------------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize("primary_kind", ["knot", "nsd"])
@pytest.mark.parametrize("kind", KINDS)
def test_secondary_follows_primary_with_ixfr(tmp_path, kind, primary_kind):
    port = free_port()
    with primary(primary_kind, tmp_path / "primary", {ZONE: zone_text(ZONE, 1, 1)}, [port]) as prim, \
            running_secondary(kind, tmp_path / kind, prim.addr, [ZONE], port=port) as sec:
        wait_same(sec, prim, ZONE, 1)
        prim.set_zone(ZONE, zone_text(ZONE, 2, 2))
        wait_same(sec, prim, ZONE, 2)
        prim.set_zone(ZONE, zone_text(ZONE, 3, 1))
        wait_same(sec, prim, ZONE, 3)
        kinds = transfer_kinds(sec, ZONE)
        if primary_kind == "nsd" and kind in ("knot", "nsd"):
            # NSD 4.6's create-ixfr re-adds unchanged apex records (the MX and TXT here) in its
            # IXFR. Knot ("such record already exists") and NSD ("Failed to apply IXFR cleanly")
            # refuse it and fall back to AXFR; BIND and PowerDNS apply it.
            assert kinds == ["AXFR"] * 3, (kinds, sec.log())
            assert ("fallback to AXFR" if kind == "knot" else "Failed to apply IXFR cleanly") in sec.log(10**6)
        else:
            assert kinds == ["AXFR", "IXFR", "IXFR"], (kinds, sec.log())


@pytest.mark.parametrize("kind", KINDS)
def test_tsig_restricted_zone(tmp_path, kind):
    key = TsigKey.generate("harness-key.")
    port = free_port()
    with primary("knot", tmp_path / "primary", {ZONE: zone_text(ZONE, 7, 1)}, [port], key, {ZONE}) as prim, \
            running_secondary(kind, tmp_path / kind, prim.addr, [ZONE], key=key, port=port) as sec:
        with pytest.raises(Exception):  # the primary refuses an unsigned AXFR
            zone_records(prim.addr, ZONE)
        wait_same(sec, prim, ZONE, 7, key)
        prim.set_zone(ZONE, zone_text(ZONE, 8, 2))  # a signed NOTIFY, a signed IXFR
        wait_same(sec, prim, ZONE, 8, key)
        assert transfer_kinds(sec, ZONE) == ["AXFR", "IXFR"], sec.log()


@pytest.mark.parametrize("kind", KINDS)
def test_add_and_remove_zone_at_runtime(tmp_path, kind):
    other = "other.test."
    port = free_port()
    zones = {ZONE: zone_text(ZONE, 1, 1), other: zone_text(other, 5, 2)}
    with primary("knot", tmp_path / "primary", zones, [port]) as prim, \
            running_secondary(kind, tmp_path / kind, prim.addr, [ZONE], port=port) as sec:
        wait_same(sec, prim, ZONE, 1)
        assert soa_serial(sec, other) is None
        add_zone(sec, other)
        wait_same(sec, prim, other, 5)
        remove_zone(sec, other)
        deadline = time.monotonic() + 30
        while soa_serial(sec, other) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert soa_serial(sec, other) is None, sec.log()
        assert soa_serial(sec, ZONE) == 1


CATALOG = "catalog.invalid."


def catalog_text(serial: int, members: list[str]) -> str:
    lines = [f"$ORIGIN {CATALOG}", "$TTL 0", f"@ IN SOA invalid. invalid. {serial} 3600 600 86400 0",
             "@ IN NS invalid.", 'version IN TXT "2"']
    # member ids stay with their zone (RFC 9432 section 4.1: a changed PTR is a change of owner)
    lines += [f"{m.split('.')[0]}-id.zones IN PTR {m}" for m in members]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", KINDS)
def test_catalog_zone(tmp_path, kind):
    a, b = "a.test.", "b.test."
    port = free_port()
    zones = {CATALOG: catalog_text(1, [a]), a: zone_text(a, 1, 1), b: zone_text(b, 3, 2)}
    with primary("knot", tmp_path / "primary", zones, [port]) as prim:
        if kind == "nsd":
            with pytest.raises(NotImplementedError):
                running_secondary(kind, tmp_path / kind, prim.addr, [], catalog=CATALOG, port=port).__enter__()
            return
        with running_secondary(kind, tmp_path / kind, prim.addr, [], catalog=CATALOG, port=port) as sec:
            wait_same(sec, prim, a, 1)
            assert soa_serial(sec, b) is None
            prim.set_zone(CATALOG, catalog_text(2, [a, b]))
            wait_same(sec, prim, b, 3)
            prim.set_zone(CATALOG, catalog_text(3, [b]))
            deadline = time.monotonic() + XFR_TIMEOUT
            while soa_serial(sec, a) is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert soa_serial(sec, a) is None, f"{kind} still serves {a} after it left the catalog:\n{sec.log()}"
