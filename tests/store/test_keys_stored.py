"""store/keys.py against a real PostgreSQL: where the DNSSEC master key comes from and what is
wrong with a bad one, the check value that tells a wrong master key, and the zone keys unsealed
from their rows (active ones, and a published key-signing key as a KSK)."""

import base64
import stat
import uuid

import pytest

from minidns.dnssec import keys as K
from minidns.store.keys import MasterKeyError, aad, check_master, find_master_key, load_zone_keys
from minidns.store.writer import Store

MASTER = bytes(range(32))
OTHER = bytes(range(1, 33))
B64 = base64.b64encode(MASTER).decode()


# -- the master key --------------------------------------------------------------------------------


def test_master_key_sources(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(base64.b64encode(OTHER).decode() + "\n")
    data = tmp_path / "data"
    assert find_master_key(None, None, environ={}) is None  # an external database with no key given
    assert find_master_key(None, str(data), environ={}) is None  # not made until needed
    assert not data.exists()
    made = find_master_key(None, str(data), create=True, environ={})
    path = data / "master.key"
    assert len(made) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == made
    assert find_master_key(None, str(data), create=True, environ={}) == made  # made once
    assert find_master_key(str(key_file), str(data), environ={}) == OTHER  # the configured file wins
    assert find_master_key(str(key_file), str(data), environ={"MINIDNS_MASTER_KEY": B64}) == MASTER  # the environment wins

    with pytest.raises(MasterKeyError, match="not base64") as e:
        find_master_key(None, None, environ={"MINIDNS_MASTER_KEY": "not base64!"})
    assert "not base64!" not in str(e.value)
    with pytest.raises(MasterKeyError, match="16 octets, not 32"):
        find_master_key(None, None, environ={"MINIDNS_MASTER_KEY": base64.b64encode(bytes(16)).decode()})
    with pytest.raises(MasterKeyError, match="missing"):
        find_master_key(str(tmp_path / "missing"), None, environ={})


@pytest.mark.parametrize("text, error", [
    ("", "holds 0 octets, not 32"),
    ("  " + B64 + "\n\n", None),  # surrounding white space is not part of the key
    (B64[:-4], "holds 30 octets, not 32"),
    (base64.b64encode(bytes(33)).decode(), "holds 33 octets, not 32"),
    (B64.replace("A", "*", 1), "is not base64"),
    (base64.urlsafe_b64encode(bytes([0xFB] * 32)).decode(), "is not base64"),  # the URL-safe alphabet is not base64
])  # fmt: skip
def test_a_master_key_file_must_hold_32_octets_in_base64(tmp_path, text, error):
    path = tmp_path / "key"
    path.write_text(text)
    if error is None:
        assert find_master_key(str(path), None, environ={}) == MASTER
        return
    with pytest.raises(MasterKeyError, match=error) as e:
        find_master_key(str(path), None, environ={})
    assert str(e.value).startswith(f"master key file {path}")
    if text.strip():
        assert text.strip() not in str(e.value)  # the key is never put in a message


def test_a_master_key_file_that_cannot_be_read_is_told(tmp_path):
    with pytest.raises(MasterKeyError, match="Is a directory"):
        find_master_key(str(tmp_path), None, environ={})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "master.key").write_text("short")
    with pytest.raises(MasterKeyError, match=r"master key file .*master.key is not base64"):
        find_master_key(None, str(tmp_path / "data"), environ={})  # an existing master.key is read, not replaced


# -- the check value -------------------------------------------------------------------------------


async def test_the_check_value_is_made_once_and_tells_a_wrong_master_key(pool):
    await check_master(pool, OTHER)  # no check value yet and none asked for: nothing to tell
    assert await pool.fetchval("SELECT count(*) FROM dnssec_master") == 0
    await check_master(pool, MASTER, create=True)
    sealed = await pool.fetchval("SELECT check_sealed FROM dnssec_master")
    assert sealed is not None and MASTER not in bytes(sealed)
    await check_master(pool, MASTER, create=True)  # made once
    assert await pool.fetchval("SELECT check_sealed FROM dnssec_master") == sealed
    await check_master(pool, MASTER)
    with pytest.raises(MasterKeyError, match="wrong DNSSEC master key"):
        await check_master(pool, OTHER)
    with pytest.raises(MasterKeyError, match="wrong DNSSEC master key"):
        await check_master(pool, OTHER, create=True)
    with pytest.raises(MasterKeyError, match="no DNSSEC master key"):
        await check_master(pool, None)


# -- the zone keys ---------------------------------------------------------------------------------


async def add_zone(pool, name="keys.test.") -> uuid.UUID:
    store = Store(pool)
    await store.create_zone(name, email=f"h@{name}")
    return (await store.zone(name))["id"]


async def add_key(pool, zone_id, key: K.SigningKey, state="active", master=MASTER, created="2026-01-01") -> uuid.UUID:
    key_id = uuid.uuid4()
    sealed = K.seal(master, K.private_der(key), aad(zone_id, key_id))
    await pool.execute(
        "INSERT INTO dnssec_keys (id, zone_id, role, algorithm, key_tag, public_key, private_sealed, state, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::timestamptz)",
        key_id, zone_id, key.role, key.algorithm, key.key_tag, key.public, sealed, state, created)  # fmt: skip
    return key_id


async def test_zone_keys_are_the_active_ones_and_a_published_key_signing_key(pool):
    zone_id = await add_zone(pool)
    assert await load_zone_keys(pool, zone_id, None) == []  # an unsigned zone needs no master key
    ksk, zsk = K.generate(K.ED25519, "ksk"), K.generate(K.ED25519, "zsk")
    new_csk, new_zsk, old = K.generate(K.ED25519, "csk"), K.generate(K.ED25519, "zsk"), K.generate(K.ED25519, "zsk")
    await add_key(pool, zone_id, ksk)
    await add_key(pool, zone_id, zsk)
    await add_key(pool, zone_id, new_csk, "published", created="2026-02-01")  # a CSK rollover under way
    await add_key(pool, zone_id, new_zsk, "published", created="2026-02-01")  # pre-published: not used yet
    await add_key(pool, zone_id, old, "retired", created="2025-01-01")
    keys = await load_zone_keys(pool, zone_id, MASTER)
    assert [(k.role, k.key_tag) for k in keys] == [("ksk", ksk.key_tag), ("zsk", zsk.key_tag), ("ksk", new_csk.key_tag)]
    assert keys[2].flags == new_csk.flags == 257 and keys[2].public == new_csk.public  # same DNSKEY, same tag
    assert keys[1].sign(b"x") == zsk.sign(b"x")  # Ed25519 signs deterministically: the same private key


async def test_zone_keys_need_the_master_key_they_were_sealed_under_and_their_own_row(pool):
    zone_id, other_zone = await add_zone(pool), await add_zone(pool, "other.test.")
    key_id = await add_key(pool, zone_id, K.generate(K.ECDSAP256SHA256, "csk"))
    with pytest.raises(MasterKeyError, match="no DNSSEC master key"):
        await load_zone_keys(pool, zone_id, None)
    with pytest.raises(MasterKeyError, match="wrong DNSSEC master key"):
        await load_zone_keys(pool, zone_id, OTHER)
    await pool.execute("UPDATE dnssec_keys SET zone_id = $1 WHERE id = $2", other_zone, key_id)  # moved to another zone
    with pytest.raises(MasterKeyError, match="wrong DNSSEC master key"):
        await load_zone_keys(pool, other_zone, MASTER)


async def test_a_stored_key_that_does_not_match_its_public_half_is_a_bad_key(pool):
    zone_id = await add_zone(pool)
    key_id = await add_key(pool, zone_id, K.generate(K.ED25519, "csk"))
    await pool.execute("UPDATE dnssec_keys SET public_key = $1 WHERE id = $2", K.generate(K.ED25519, "csk").public, key_id)
    with pytest.raises(K.BadKey, match=f"key {key_id}: the private key does not match its stored public key") as e:
        await load_zone_keys(pool, zone_id, MASTER)
    assert not isinstance(e.value, MasterKeyError)
