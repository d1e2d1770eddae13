"""The DNSSEC master key and the zones' signing keys as the database keeps them.

Private keys are stored sealed with AES-256-GCM under a 32-octet master key that the database never
holds (dnssec/keys.seal, the zone id and key id bound in as associated data, so a sealed key copied
to another row does not open). The master key comes from, in order: $MINIDNS_MASTER_KEY (base64),
the file named by the setting `dnssec_master_key_file` (base64), or — for the embedded database
only — `master.key` in its data directory, made (mode 0600) the first time a zone is signed. A
check value sealed under it (table dnssec_master) tells a wrong master key at once.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from pathlib import Path

from ..dnssec.keys import MASTER_KEY_OCTETS, BadKey, SigningKey, load_private, seal, unseal

ENV = "MINIDNS_MASTER_KEY"
KEY_FILE = "master.key"  # in the embedded database's data directory
_CHECK, _CHECK_AAD = b"minidns DNSSEC master key check", b"dnssec_master"


class MasterKeyError(BadKey):
    """No usable master key, or not the one the database's keys were sealed under."""



def find_master_key(key_file: str | None, data_dir: str | None, *, create: bool = False, environ=os.environ) -> bytes | None:
    """The master key from $MINIDNS_MASTER_KEY, else `key_file`, else `data_dir`/master.key (pass
    `data_dir` only for the embedded database). None when there is none; with `create`, a missing
    master.key is made: 32 random octets, base64, mode 0600. Raises MasterKeyError for a key that
    is there but cannot be used. The key itself is never put in a message."""
    if environ.get(ENV):
        return _decode(environ[ENV], f"${ENV}")
    if key_file:
        return _read(Path(key_file).expanduser())
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser() / KEY_FILE
    if path.exists() or not create:
        return _read(path) if path.exists() else None
    key = os.urandom(MASTER_KEY_OCTETS)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by another process just now
        return _read(path)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")
    return key



def _read(path: Path) -> bytes:
    try:
        text = path.read_text()
    except OSError as e:
        raise MasterKeyError(f"master key file {path}: {e.strerror or e}") from None
    return _decode(text, f"master key file {path}")



def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{where} is not base64") from None
    if len(key) != MASTER_KEY_OCTETS:
        raise MasterKeyError(f"{where} holds {len(key)} octets, not {MASTER_KEY_OCTETS}")
    return key



async def check_master(conn, master: bytes | None, *, create: bool = False) -> None:
    """Raise MasterKeyError unless `master` opens the database's check value; with `create`, a
    database without one gets one sealed under `master`."""
    if master is None:
        raise MasterKeyError(f"no DNSSEC master key (set ${ENV} or dnssec_master_key_file)")
    sealed = await conn.fetchval("SELECT check_sealed FROM dnssec_master")
    if sealed is None and create:
        await conn.execute("INSERT INTO dnssec_master (check_sealed) VALUES ($1) ON CONFLICT DO NOTHING",
                           seal(master, _CHECK, _CHECK_AAD))  # fmt: skip
        sealed = await conn.fetchval("SELECT check_sealed FROM dnssec_master")
    if sealed is None:
        return
    try:
        ok = unseal(master, bytes(sealed), _CHECK_AAD) == _CHECK
    except BadKey:
        ok = False
    if not ok:
        raise MasterKeyError("wrong DNSSEC master key: it does not open the check value the database's keys were stored with")



def aad(zone_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
    return zone_id.bytes + key_id.bytes



async def load_zone_keys(conn, zone_id: uuid.UUID, master: bytes | None) -> list[SigningKey]:
    """The zone's active keys with their private halves, unsealed: what it is signed with. A
    key-signing key (KSK or CSK) that a rollover has published but not yet made active comes too,
    as a KSK: it co-signs the DNSKEY RRset only (services/rollover.py: the DNSKEY RRset signed by the
    old and the new key while the parent's DS changes). MasterKeyError when `master` is missing or
    does not open them, BadKey when a stored key does not match its public half."""
    rows = await conn.fetch(
        "SELECT id, role, algorithm, key_tag, public_key, private_sealed, state FROM dnssec_keys"
        " WHERE zone_id = $1 AND (state = 'active' OR (state = 'published' AND role IN ('csk', 'ksk')))"
        " ORDER BY created_at, role", zone_id,
    )  # fmt: skip
    if rows and master is None:
        raise MasterKeyError(f"no DNSSEC master key (set ${ENV} or dnssec_master_key_file)")
    keys = []
    for r in rows:
        try:
            der = unseal(master, bytes(r["private_sealed"]), aad(zone_id, r["id"]))
        except BadKey:
            raise MasterKeyError("wrong DNSSEC master key: it does not open the zone's private keys") from None
        key = load_private(r["role"] if r["state"] == "active" else "ksk", r["algorithm"], der)  # same flags, same tag
        if key.public != bytes(r["public_key"]) or key.key_tag != r["key_tag"]:
            raise BadKey(f"key {r['id']}: the private key does not match its stored public key")
        keys.append(key)
    return keys
