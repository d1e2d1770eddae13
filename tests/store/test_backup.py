"""`minidns backup` and `minidns restore` (minidns/store/backup.py) as an operator runs them: real
embedded PostgreSQL data directories, real servers. A data dir with plain and signed zones, TSIG
keys and API tokens is backed up, restored into a new data dir, and served: every zone transfers
identical, the restored master key signs a new write, the token and key work. A non-empty target,
a damaged or cut file, and a wrong master key are refused with nothing changed."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import tarfile
import urllib.request
from pathlib import Path

import dns.dnssec
import dns.name
import dns.query
import dns.rdatatype
import dns.zone

from minidns.store import db

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE = ROOT / "contrib/zones/example.org.zone"


def env_with(**kw) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MINIDNS_MASTER_KEY", "MINIDNS_DATABASE_URL")}
    env.update(kw)
    return env


def ok(p) -> str:
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def axfr(port: int, zone: str) -> set[str]:
    z = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", zone, port=port, lifetime=10, relativize=False), relativize=False, check_origin=False)
    return {f"{name} {rds.ttl} {rd.to_text()} {dns.rdatatype.to_text(rds.rdtype)}" for name, rds in z.iterate_rdatasets()
            for rd in rds}


def make_source(cli, data: Path) -> dict:
    """A data dir holding: example.com (the seed, then a record), example.org (the shipped sample,
    signed with a KSK and a ZSK), signed.test (a CSK), a TSIG key and an API token."""
    env = env_with()
    ok(cli("zone", "import", SAMPLE, "--data-dir", data, env=env))  # also creates example.com
    ok(cli("record", "add", "example.com", "backup", "A", "300", "192.0.2.7", "--data-dir", data, env=env))
    ok(cli("dnssec", "enable", "example.org", "--ksk-zsk", "--data-dir", data, env=env))
    signed = data / "signed.zone"
    signed.write_text("$ORIGIN signed.test.\n$TTL 300\n@ SOA ns1 h 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.53\n"
                      "www A 192.0.2.80\n")
    ok(cli("zone", "import", signed, "--data-dir", data, env=env))
    ok(cli("dnssec", "enable", "signed.test", "--data-dir", data, env=env))
    tsig = ok(cli("tsig", "add", "xfr-key.", "--data-dir", data, env=env)).split()
    token = ok(cli("token", "create", "--project", "demo", "--role", "admin", "--data-dir", data, env=env)).strip()
    return {"tsig": tsig, "token": token}


def test_backup_then_restore_into_a_new_data_dir_serves_the_same(cli, serve, tmp_path):
    src, dst, file = tmp_path / "src", tmp_path / "dst", tmp_path / "minidns.backup"
    made = make_source(cli, src)
    a = serve("--data-dir", str(src), "--no-api", env=env_with())  # backed up while it serves
    out = ok(cli("backup", file, "--data-dir", src, env=env_with()))
    assert "3 zone(s)" in out and "2 signed" in out and "with the DNSSEC master key" in out, out
    assert file.stat().st_mode & 0o777 == 0o600  # it holds the master key
    with tarfile.open(file) as tar:
        assert sorted(tar.getnames()) == ["database.dump", "manifest.json", "master.key"]
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert tar.extractfile("master.key").read() == (src / "master.key").read_bytes()
    assert manifest["zones"] == 3 and manifest["schema_migration"] == db.migrations()[-1][1]

    out = ok(cli("restore", file, "--data-dir", dst, env=env_with()))
    assert "restored 3 zone(s)" in out and f"DNSSEC master key: {dst / 'master.key'}" in out, out
    assert (dst / "master.key").read_bytes() == (src / "master.key").read_bytes()
    assert (dst / "master.key").stat().st_mode & 0o777 == 0o600

    b = serve("--data-dir", str(dst), env=env_with())
    assert re.search(r"serving 3 zone", b.log), b.log
    for zone in ("example.com.", "example.org.", "signed.test."):
        assert axfr(a.port, zone) == axfr(b.port, zone), zone
    a.stop()

    # The restored master key opens the restored private keys: a write to a signed zone is signed.
    ok(cli("record", "add", "signed.test", "after", "A", "300", "192.0.2.99", "--data-dir", dst, env=env_with()))
    z = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", "signed.test.", port=b.port, lifetime=10, relativize=False), relativize=False)
    name = dns.name.from_text("after.signed.test.")
    rrset = z.find_rrset(name, "A")
    sigs = z.find_rrset(name, "RRSIG", "A")
    dns.dnssec.validate(rrset, sigs, {z.origin: z.find_rrset(z.origin, "DNSKEY")})  # raises when it does not validate

    # The TSIG key and the API token came along.
    assert "xfr-key.\thmac-sha256" in ok(cli("tsig", "list", "--data-dir", dst, env=env_with()))
    api = re.search(r"API listening on (http://\S+/)", b.log).group(1)
    req = urllib.request.Request(api + "v2/zones", headers={"X-Auth-Token": made["token"], "X-Auth-All-Projects": "true"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and {z["name"] for z in json.load(r)["zones"]} >= {"example.org.", "signed.test."}


def test_restore_refuses_a_target_that_holds_data_unless_forced(cli, tmp_path):
    src, dst, file = tmp_path / "src", tmp_path / "dst", tmp_path / "b.tar"
    ok(cli("zone", "list", "--data-dir", src, env=env_with()))  # a new data dir: the example zone alone
    ok(cli("record", "add", "example.com", "only-in-backup", "A", "300", "192.0.2.8", "--data-dir", src, env=env_with()))
    ok(cli("backup", file, "--data-dir", src, env=env_with()))
    ok(cli("zone", "import", SAMPLE, "--data-dir", dst, env=env_with()))  # the target: example.com and example.org
    p = cli("restore", file, "--data-dir", dst, env=env_with())
    assert p.returncode == 1 and "already holds minidns data (2 zone(s))" in p.stderr and "--force" in p.stderr, p.stderr
    assert "example.org." in ok(cli("zone", "list", "--data-dir", dst, env=env_with()))  # untouched
    ok(cli("restore", file, "--data-dir", dst, "--force", env=env_with()))
    zones = ok(cli("zone", "list", "--data-dir", dst, env=env_with()))
    assert "example.com." in zones and "example.org." not in zones, zones
    exported = ok(cli("zone", "export", "example.com", "--data-dir", dst, env=env_with()))
    assert "only-in-backup" in exported


def test_damaged_and_cut_files_are_refused_before_anything_is_touched(cli, tmp_path):
    src, file = tmp_path / "src", tmp_path / "b.tar"
    ok(cli("zone", "list", "--data-dir", src, env=env_with()))
    ok(cli("backup", file, "--data-dir", src, env=env_with()))
    data = file.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    p = cli("restore", cut, "--data-dir", tmp_path / "t1", env=env_with())
    assert p.returncode == 1 and "not a readable minidns backup (damaged or cut short?)" in p.stderr, p.stderr
    assert not (tmp_path / "t1").exists()
    # One octet changed inside the dump: the tar reads, the SHA-256 does not match.
    with tarfile.open(file) as tar:
        offset = tar.getmember("database.dump").offset_data
    damaged = bytearray(data)
    damaged[offset + 100] ^= 0xFF
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(damaged))
    p = cli("restore", bad, "--data-dir", tmp_path / "t2", env=env_with())
    assert p.returncode == 1 and "database.dump is damaged" in p.stderr, p.stderr
    assert not (tmp_path / "t2").exists()
    p = cli("restore", src / "pg" / "PG_VERSION", "--data-dir", tmp_path / "t3", env=env_with())
    assert p.returncode == 1 and "not a readable minidns backup" in p.stderr, p.stderr


def test_no_backup_without_the_master_key_of_signed_zones(cli, tmp_path):
    src = tmp_path / "src"
    ok(cli("dnssec", "enable", "example.com", "--data-dir", src, env=env_with()))
    wrong = base64.b64encode(bytes(32)).decode()
    p = cli("backup", tmp_path / "b.tar", "--data-dir", src, env=env_with(MINIDNS_MASTER_KEY=wrong))
    assert p.returncode == 1 and "wrong DNSSEC master key" in p.stderr and "could never sign again" in p.stderr, p.stderr
    (src / "master.key").rename(tmp_path / "elsewhere.key")
    p = cli("backup", tmp_path / "b.tar", "--data-dir", src, env=env_with())
    assert p.returncode == 1 and "no DNSSEC master key" in p.stderr, p.stderr
    assert not (tmp_path / "b.tar").exists() and not list(tmp_path.glob(".b.tar.*"))
    # Given where the key is, the backup is made; restoring it needs a place for the key.
    ok(cli("backup", tmp_path / "b.tar", "--data-dir", src, "--dnssec-master-key-file", tmp_path / "elsewhere.key",
           env=env_with()))  # fmt: skip
    other = base64.b64encode(bytes(range(32))).decode()
    p = cli("restore", tmp_path / "b.tar", "--data-dir", tmp_path / "dst", env=env_with(MINIDNS_MASTER_KEY=other))
    assert p.returncode == 1 and "$MINIDNS_MASTER_KEY holds another master key" in p.stderr, p.stderr
    assert not (tmp_path / "dst").exists()


def test_an_external_database_restores_into_an_empty_one(cli, database_url, pg_server, tmp_path):
    """--database-url on both sides: the schema-only target the fixture makes is not empty, a new
    database is."""
    ok(cli("zone", "import", SAMPLE, "--database-url", database_url, env=env_with()))
    file = tmp_path / "b.tar"
    out = ok(cli("backup", file, "--database-url", database_url, env=env_with()))
    assert "1 zone(s)" in out and "no DNSSEC master key" in out, out
    p = cli("restore", file, "--database-url", database_url, env=env_with())
    assert p.returncode == 1 and "already holds minidns data (1 zone(s))" in p.stderr, p.stderr
    target = database_url.replace("/t", "/r", 1)

    async def create(sql):
        conn = await db.connect(pg_server.url)
        await conn.execute(sql)
        await conn.close()

    name = re.search(r"/(r\d+)\?", target).group(1)
    asyncio.run(create(f"CREATE DATABASE {name}"))
    try:
        out = ok(cli("restore", file, "--database-url", target, env=env_with()))
        assert "restored 1 zone(s)" in out, out
        assert ok(cli("zone", "export", "example.org", "--database-url", target, env=env_with())) == \
            ok(cli("zone", "export", "example.org", "--database-url", database_url, env=env_with()))
    finally:
        asyncio.run(create(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
