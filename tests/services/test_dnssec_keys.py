"""DNSSEC keys in the store against a real PostgreSQL: enabling writes the keys sealed and the apex
DNSKEY/CDS/CDNSKEY as one change, key tags and DS agree with dnspython, the master key is found
where it should be and a wrong one is told, disabling removes everything, users cannot write the
key RRsets, the follower hands signed zones over with their keys, and the `minidns dnssec` command
and `minidns serve` do the same end to end."""

import asyncio
import base64
import contextlib
import logging
import os
import stat
import time
import uuid

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import pytest

from minidns.dnssec.keys import private_der
from minidns.dnssec.signer import ZoneKeys
from minidns.services import dnssec
from minidns.store.keys import MasterKeyError, check_master, load_zone_keys
from minidns.store.follow import Follower
from minidns.store.records import Invalid
from minidns.store.stages import write_stages
from minidns.store.writer import Conflict, Edit, RRsetEdits, Store
from minidns.zones.changes import unpack_rrs

ZONE = "signed.test."
ORIGIN = dns.name.from_text(ZONE)
APEX = ORIGIN.to_wire()
DNSKEY, CDS, CDNSKEY, DS, SOA = 48, 59, 60, 43, 6
MASTER = bytes(range(32))
OTHER = bytes(range(1, 33))
B64 = base64.b64encode(MASTER).decode()


@pytest.fixture
async def store(pool):
    s = Store(pool, master=MASTER, stages=write_stages())  # writes to a signed zone sign what they change
    await s.create_zone(ZONE, email="hostmaster@signed.test", edits=[
        Edit("add", "@", "NS", None, ("ns1",)), Edit("add", "ns1", "A", None, ("192.0.2.53",)),
        Edit("add", "www", "A", 300, ("192.0.2.1",)),
    ])  # fmt: skip
    return s


def rdataset(rtype: int, texts) -> set:
    return {dns.rdata.from_text(dns.rdataclass.IN, rtype, t) for t in texts}


async def apex_rrset(pool, rtype: int):
    return await pool.fetchrow("SELECT * FROM rrsets WHERE owner = $1 AND type = $2", APEX, rtype)


# -- enable ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ecdsap256sha256", "ed25519", "rsasha256"])
async def test_enable_csk_writes_key_rrsets_in_one_change(store, pool, algorithm):
    before = await store.changes(ZONE)
    change = await dnssec.enable(store, ZONE, MASTER, algorithm)
    assert change.serial_to != change.serial_from and change.added > 3  # the key RRsets, and the zone signed

    keys = await pool.fetch("SELECT * FROM dnssec_keys")
    assert len(keys) == 1 and keys[0]["role"] == "csk" and keys[0]["state"] == "active" and keys[0]["activated_at"]
    key = keys[0]
    assert key["algorithm"] == {"ecdsap256sha256": 13, "ed25519": 15, "rsasha256": 8}[algorithm]

    dnskey = await apex_rrset(pool, DNSKEY)
    (k,) = rdataset(DNSKEY, dnskey["records"])
    assert k.flags == 257 and k.protocol == 3 and k.key == bytes(key["public_key"])
    assert dns.dnssec.key_id(k) == key["key_tag"]  # RFC 4034 Appendix B, as dnspython computes it
    cds = rdataset(CDS, (await apex_rrset(pool, CDS))["records"])
    made = dns.dnssec.make_ds(ORIGIN, k, "SHA256")
    assert {(r.key_tag, r.algorithm, r.digest_type, r.digest) for r in cds} == {(made.key_tag, made.algorithm, 2, made.digest)}
    assert rdataset(CDNSKEY, (await apex_rrset(pool, CDNSKEY))["records"]) == {
        dns.rdata.from_text(dns.rdataclass.IN, CDNSKEY, k.to_text())}
    assert dnskey["ttl"] == (await store.zone(ZONE))["ttl"]

    # One change-log row, source dnssec, carrying the three RRsets after the SOA, and the zone's
    # signatures and NSEC3 chain (store/signing.py).
    after = await store.changes(ZONE)
    assert len(after) == len(before) + 1 and after[-1]["source"] == "dnssec"
    added = unpack_rrs(after[-1]["added"])
    assert added[0][1] == SOA and sorted(t for o, t, _, _ in added[1:] if t not in (46, 50, 51)) == [DNSKEY, CDS, CDNSKEY]
    assert all(o == APEX for o, t, _, _ in added if t not in (46, 50)) and unpack_rrs(after[-1]["removed"])[0][1] == SOA
    assert {t for _, t, _, _ in added} >= {46, 50, 51}
    assert (await store.zone(ZONE))["dnssec"] is True


async def test_private_key_is_stored_sealed(store, pool):
    await dnssec.enable(store, ZONE, MASTER)
    (key,) = await load_zone_keys(pool, (await store.zone(ZONE))["id"], MASTER)
    der = private_der(key)
    scalar = key.private.private_numbers().private_value.to_bytes(32, "big")  # the P-256 private key itself
    assert scalar in der
    row = await pool.fetchrow("SELECT * FROM dnssec_keys")
    for value in row.values():
        if isinstance(value, (bytes, bytearray)):
            assert der not in value and scalar not in value
    assert len(row["private_sealed"]) == 12 + len(der) + 16  # nonce, ciphertext, tag
    # Bound to its row: the sealed key moved to another key id does not open.
    await pool.execute("UPDATE dnssec_keys SET id = $1", uuid.uuid4())
    with pytest.raises(MasterKeyError):
        await load_zone_keys(pool, row["zone_id"], MASTER)


async def test_ksk_zsk_split(store, pool):
    await dnssec.enable(store, ZONE, MASTER, "ecdsap256sha256", split=True)
    rows = {r["role"]: r for r in await pool.fetch("SELECT * FROM dnssec_keys")}
    assert set(rows) == {"ksk", "zsk"} and rows["ksk"]["key_tag"] != rows["zsk"]["key_tag"]
    keys = rdataset(DNSKEY, (await apex_rrset(pool, DNSKEY))["records"])
    assert sorted(k.flags for k in keys) == [256, 257]
    assert {dns.dnssec.key_id(k) for k in keys} == {rows["ksk"]["key_tag"], rows["zsk"]["key_tag"]}
    # CDS and CDNSKEY name the KSK alone (RFC 7344 §4).
    (cds,) = rdataset(CDS, (await apex_rrset(pool, CDS))["records"])
    (cdnskey,) = rdataset(CDNSKEY, (await apex_rrset(pool, CDNSKEY))["records"])
    assert cds.key_tag == rows["ksk"]["key_tag"] and cdnskey.flags == 257
    loaded = await load_zone_keys(pool, rows["ksk"]["zone_id"], MASTER)
    assert sorted(k.role for k in loaded) == ["ksk", "zsk"]
    assert {k.key_tag for k in loaded} == {rows["ksk"]["key_tag"], rows["zsk"]["key_tag"]}


async def test_enable_refusals_leave_nothing_behind(store, pool):
    with pytest.raises(Invalid):
        await dnssec.enable(store, ZONE, MASTER, "dsa")
    with pytest.raises(MasterKeyError, match="no DNSSEC master key"):
        await dnssec.enable(store, ZONE, None)
    assert await pool.fetchval("SELECT count(*) FROM dnssec_keys") == 0
    await dnssec.enable(store, ZONE, MASTER)
    with pytest.raises(Conflict):
        await dnssec.enable(store, ZONE, MASTER)
    await store.create_zone("other.test.", email="h@other.test")
    serial = (await store.zone("other.test."))["serial"]
    with pytest.raises(MasterKeyError, match="wrong DNSSEC master key"):
        await dnssec.enable(store, "other.test.", OTHER)  # another master key than the database's
    assert (await store.zone("other.test."))["serial"] == serial
    assert await pool.fetchval("SELECT count(*) FROM dnssec_keys") == 1


async def test_wrong_master_key_is_told(store, pool):
    await dnssec.enable(store, ZONE, MASTER)
    zone_id = (await store.zone(ZONE))["id"]
    await check_master(pool, MASTER)
    with pytest.raises(MasterKeyError, match="wrong DNSSEC master key"):
        await check_master(pool, OTHER)
    with pytest.raises(MasterKeyError, match="wrong DNSSEC master key"):
        await load_zone_keys(pool, zone_id, OTHER)
    with pytest.raises(MasterKeyError, match="no DNSSEC master key"):
        await load_zone_keys(pool, zone_id, None)


# -- disable, status, ds ---------------------------------------------------------------------------


async def test_disable_removes_keys_and_rrsets_in_one_change(store, pool):
    await dnssec.enable(store, ZONE, MASTER, split=True)
    n = len(await store.changes(ZONE))
    change = await dnssec.disable(store, ZONE)
    assert change.removed == 4 and change.added == 0  # 2 DNSKEY, 1 CDS, 1 CDNSKEY
    assert await pool.fetchval("SELECT count(*) FROM dnssec_keys") == 0
    assert await pool.fetchval("SELECT count(*) FROM rrsets WHERE type = ANY($1::int[])", [DNSKEY, CDS, CDNSKEY]) == 0
    changes = await store.changes(ZONE)
    assert len(changes) == n + 1 and changes[-1]["source"] == "dnssec"
    assert {t for _, t, _, _ in unpack_rrs(changes[-1]["removed"])} == {SOA, DNSKEY, CDS, CDNSKEY}
    assert (await store.zone(ZONE))["dnssec"] is False
    with pytest.raises(Invalid, match="not signed"):
        await dnssec.disable(store, ZONE)
    await dnssec.enable(store, ZONE, MASTER)  # and it may be signed again
    assert await pool.fetchval("SELECT count(*) FROM dnssec_keys") == 1


async def test_status_and_ds(store, pool):
    await dnssec.enable(store, ZONE, MASTER, "ed25519", split=True)
    z, keys = await dnssec.status(store, ZONE)
    assert z["dnssec"] and [k["role"] for k in keys] == ["ksk", "zsk"]
    assert all(k["algorithm"] == "ed25519" and k["state"] == "active" and k["created_at"] for k in keys)
    assert not any("private" in field for k in keys for field in k)
    lines = await dnssec.ds(store, ZONE)
    assert len(lines) == 2  # the KSK's DS and DNSKEY
    assert lines[0].startswith(f"{ZONE} IN DS ") and lines[1].startswith(f"{ZONE} IN DNSKEY ")
    ds = dns.rdata.from_text(dns.rdataclass.IN, DS, lines[0].split(" IN DS ")[1])
    key = dns.rdata.from_text(dns.rdataclass.IN, DNSKEY, lines[1].split(" IN DNSKEY ")[1])
    assert ds == dns.dnssec.make_ds(ORIGIN, key, "SHA256")
    assert ds.key_tag == next(k["key_tag"] for k in keys if k["role"] == "ksk") and key.flags == 257
    await dnssec.disable(store, ZONE)
    with pytest.raises(Invalid):
        await dnssec.ds(store, ZONE)


# -- users cannot write the key RRsets -------------------------------------------------------------


@pytest.mark.parametrize("rtype, data", [
    ("DNSKEY", "257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="),
    ("CDS", "12345 13 2 " + "ab" * 32),
    ("CDNSKEY", "0 3 0 AA=="),
])  # fmt: skip
async def test_users_cannot_write_key_rrsets(store, pool, rtype, data):
    for name in ("@", "www"):
        with pytest.raises(Invalid, match="made by minidns"):
            await store.change(ZONE, [Edit("add", name, rtype, 300, (data,))], source="api")
    await dnssec.enable(store, ZONE, MASTER)
    with pytest.raises(Invalid, match="made by minidns"):
        await store.change(ZONE, [Edit("delete", "@", rtype)], source="api")
    with pytest.raises(Invalid, match="made by minidns"):
        await store.change(ZONE, [Edit("replace", "@", rtype, 300, (data,))], source="api")


def test_the_key_records_path_is_only_for_the_apex():
    edits = RRsetEdits(ORIGIN, 300, key_records=True)
    with pytest.raises(Invalid):
        edits.apply(Edit("add", "www", "DNSKEY", 300, ("256 3 13 AA==",)))
    with pytest.raises(Invalid):
        edits.apply(Edit("add", "@", "RRSIG", 300, ("A 13 2 300 20300101000000 20200101000000 1 signed.test. AA==",)))
    edits.apply(Edit("add", "@", "DNSKEY", 300, ("256 3 13 AA==",)))


# -- the follower ----------------------------------------------------------------------------------


class Sink:
    def __init__(self):
        self.zones = {}

    def load_zones(self, snapshots):
        self.zones = {s.origin: s for s in snapshots}

    def put_zone(self, snapshot):
        self.zones[snapshot.origin] = snapshot

    def drop_zone(self, snapshot):
        self.zones.pop(snapshot.origin, None)


@contextlib.asynccontextmanager
async def following(url, master):
    sink = Sink()
    f = Follower(url, sink, master_key=master)
    await f.start()
    task = asyncio.create_task(f.run())
    try:
        yield sink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await f.stop()


async def until(cond, what, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_follower_hands_over_keys(store, database_url):
    await store.create_zone("plain.test.", email="h@plain.test")
    await dnssec.enable(store, ZONE, MASTER, split=True)
    tags = {r["key_tag"] for r in await store.pool.fetch("SELECT key_tag FROM dnssec_keys")}
    async with following(database_url, MASTER) as sink:
        snap = sink.zones[APEX]
        assert isinstance(snap.keys, ZoneKeys) and snap.keys.origin == APEX
        assert {k.key_tag for k in snap.keys.keys} == tags
        assert [k.role for k in snap.keys.key_signers] == ["ksk"] and [k.role for k in snap.keys.zone_signers] == ["zsk"]
        assert sink.zones[dns.name.from_text("plain.test.").to_wire()].keys is None

        # A change not touching the keys: a new snapshot carrying the very same ZoneKeys.
        keys = snap.keys
        await store.change(ZONE, [Edit("add", "new", "A", 60, ("192.0.2.9",))], source="test")
        await until(lambda: sink.zones[APEX] is not snap, "the change")
        assert sink.zones[APEX].keys is keys

        # Disabled: unsigned from that change on; enabled again: new keys.
        await dnssec.disable(store, ZONE)
        await until(lambda: sink.zones[APEX].keys is None, "unsigned")
        await dnssec.enable(store, ZONE, MASTER)
        await until(lambda: sink.zones[APEX].keys is not None, "signed again")
        (csk,) = sink.zones[APEX].keys.keys
        assert csk.role == "csk" and csk.key_tag not in tags

        # Enabled while being followed, another zone is picked up too.
        await dnssec.enable(store, "plain.test.", MASTER, "ed25519")
        plain = dns.name.from_text("plain.test.").to_wire()
        await until(lambda: sink.zones[plain].keys is not None, "plain.test. signed")
        assert sink.zones[plain].keys.keys[0].algorithm == 15


async def test_whole_reload_keeps_the_same_zone_keys(store, database_url):
    await dnssec.enable(store, ZONE, MASTER)
    sink = Sink()
    f = Follower(database_url, sink, master_key=MASTER)
    await f.start()
    try:
        keys = sink.zones[APEX].keys
        zone_id = (await store.zone(ZONE))["id"]
        await f._load(zone_id)
        assert sink.zones[APEX].keys is keys
    finally:
        await f.stop()


@pytest.mark.parametrize("master", [OTHER, None], ids=["wrong", "missing"])
async def test_wrong_or_missing_master_key_serves_the_zone_unsigned(store, database_url, caplog, master):
    await dnssec.enable(store, ZONE, MASTER)
    caplog.set_level(logging.INFO, "minidns.store")
    async with following(database_url, master) as sink:
        assert sink.zones[APEX].keys is None  # loaded, answered, not signed
        assert "zone(s) served signed" not in caplog.text
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    reason = "wrong DNSSEC master key" if master else "no DNSSEC master key"
    assert any(m.startswith(reason) and m.endswith("signed zones are not served signed") for m in errors), errors
    assert any(m.startswith(f"zone {ZONE} not served signed: {reason}") for m in errors), errors


async def test_keys_not_in_the_dnskey_rrset_are_not_used(store, database_url, caplog):
    await dnssec.enable(store, ZONE, MASTER)
    # The rows out of step with the keys (as only a hand edit could make them): not signed.
    await store.pool.execute("DELETE FROM rrsets WHERE type = $1", DNSKEY)
    caplog.set_level(logging.ERROR, "minidns.store")
    async with following(database_url, MASTER) as sink:
        assert sink.zones[APEX].keys is None
    assert "does not hold active keys" in caplog.text


# -- the command and the server --------------------------------------------------------------------


def test_dnssec_commands(cli, database_url):
    env = {**os.environ, "MINIDNS_MASTER_KEY": B64}
    p = cli("zone", "import", os.path.join(os.path.dirname(__file__), "..", "zones", "example.com.zone"),
            "--database-url", database_url)  # fmt: skip
    assert p.returncode == 0, p.stderr

    p = cli("dnssec", "status", "example.com", "--database-url", database_url)
    assert p.returncode == 0 and p.stdout.startswith("example.com. unsigned, 0 key(s)"), p.stderr
    p = cli("dnssec", "enable", "example.com", "--database-url", database_url)  # no master key anywhere
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "no DNSSEC master key" in p.stderr

    p = cli("dnssec", "enable", "example.com", "--ksk-zsk", "--algorithm", "ed25519", "--database-url", database_url, env=env)
    assert p.returncode == 0, p.stderr
    assert "example.com. signed (ed25519, KSK and ZSK): serial" in p.stdout
    assert " IN DS " in p.stdout and " IN DNSKEY 257 3 15 " in p.stdout
    p = cli("dnssec", "enable", "example.com", "--database-url", database_url, env=env)
    assert p.returncode == 1 and p.stderr == "minidns: zone example.com. is signed already\n"

    p = cli("dnssec", "status", "example.com", "--database-url", database_url)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "example.com. signed, 2 key(s)"
    assert lines[1].split("\t")[:2] == ["  ksk", "ed25519"] and lines[2].split("\t")[:2] == ["  zsk", "ed25519"]
    assert B64 not in p.stdout

    p = cli("dnssec", "ds", "example.com", "--database-url", database_url)
    assert p.returncode == 0, p.stderr
    ds_line, key_line = p.stdout.splitlines()
    key = dns.rdata.from_text(dns.rdataclass.IN, DNSKEY, key_line.split(" IN DNSKEY ")[1])
    ds = dns.rdata.from_text(dns.rdataclass.IN, DS, ds_line.split(" IN DS ")[1])
    assert ds == dns.dnssec.make_ds("example.com.", key, "SHA256")

    p = cli("dnssec", "disable", "example.com", "--database-url", database_url)
    assert p.returncode == 0 and "example.com. no longer signed" in p.stdout, p.stderr
    p = cli("dnssec", "ds", "example.com", "--database-url", database_url)
    assert p.returncode == 1 and p.stderr == "minidns: zone example.com. is not signed\n"
    p = cli("dnssec", "enable", "nope.example", "--database-url", database_url, env=env)
    assert p.returncode == 1 and p.stderr.count("\n") == 1


def ask(port: int, name: str, rtype: str, want_dnssec=False) -> dns.message.Message:
    q = dns.message.make_query(name, rtype, want_dnssec=want_dnssec)
    q.flags &= ~dns.flags.RD
    return dns.query.tcp(q, "127.0.0.1", port=port, timeout=3)


def wait_dnskeys(port: int, n: int, timeout=5.0) -> dns.message.Message:
    deadline = time.monotonic() + timeout
    while True:
        r = ask(port, "example.com", "DNSKEY")
        if sum(len(rr) for rr in r.answer if rr.rdtype == DNSKEY) == n:
            return r
        assert time.monotonic() < deadline, r.to_text()
        time.sleep(0.05)


def test_serve_picks_up_keys(serve, cli, database_url):
    env = {**os.environ, "MINIDNS_MASTER_KEY": B64}
    p = cli("zone", "import", os.path.join(os.path.dirname(__file__), "..", "zones", "example.com.zone"),
            "--database-url", database_url)  # fmt: skip
    assert p.returncode == 0, p.stderr
    s = serve("--database-url", database_url, env=env)
    wait_dnskeys(s.port, 0)
    p = cli("dnssec", "enable", "example.com", "--database-url", database_url, env=env)
    assert p.returncode == 0, p.stderr
    r = wait_dnskeys(s.port, 1)  # the stored rows answer `dig DNSKEY`
    (rrset,) = [rr for rr in r.answer if rr.rdtype == DNSKEY]
    assert rrset[0].flags == 257
    s.wait_for(r"zone example\.com\.: served signed with csk \d+")
    # With DO=1 the DNSKEY RRset comes signed by that key.
    r = ask(s.port, "example.com", "DNSKEY", want_dnssec=True)
    dns.dnssec.validate(r.find_rrset(r.answer, dns.name.from_text("example.com."), 1, DNSKEY),
                        r.find_rrset(r.answer, dns.name.from_text("example.com."), 1, 46, DNSKEY),
                        {dns.name.from_text("example.com."): rrset})  # fmt: skip
    s.stop()

    # Restarted: loaded signed; with another master key: loaded, answered, not signed, told.
    s = serve("--database-url", database_url, env=env)
    s.wait_for(r"1 zone\(s\) served signed")
    s.stop()
    wrong = {**os.environ, "MINIDNS_MASTER_KEY": base64.b64encode(OTHER).decode()}
    s = serve("--database-url", database_url, env=wrong)
    s.wait_for(r"ERROR minidns.store: wrong DNSSEC master key: .*; signed zones are not served signed")
    s.wait_for(r"zone example\.com\. not served signed: wrong DNSSEC master key")
    assert "served signed" not in s.log.replace("not served signed", "")
    r = ask(s.port, "example.com", "DNSKEY", want_dnssec=True)
    assert r.rcode() == 0 and not any(rr.rdtype == 46 for rr in r.answer)
    assert B64 not in s.log and base64.b64encode(OTHER).decode() not in s.log


def test_embedded_default_makes_master_key_file(cli, serve, tmp_path):
    """No database URL, no key configured: `dnssec enable` makes master.key (0600) in the data
    directory, and `serve` on that directory finds it."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("MINIDNS_MASTER_KEY", "MINIDNS_DATABASE_URL")}
    p = cli("dnssec", "enable", "example.com", "--data-dir", data, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    key = data / "master.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(base64.b64decode(key.read_text())) == 32
    assert key.read_text().strip() not in p.stdout + p.stderr
    s = serve("--data-dir", str(data), "--no-api", env=env)
    s.wait_for(r"1 zone\(s\) served signed")
    wait_dnskeys(s.port, 1)
