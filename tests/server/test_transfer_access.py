"""Who may transfer which zone (server/transfer_access.py): the configured default list and
secondaries, per-zone lists from the configuration and the database, TSIG keys from both (a
configured key winning), and a SIGHUP's new keys and lists."""

import dataclasses
from types import SimpleNamespace

import dns.name
import pytest

from minidns.server.config import load_config
from minidns.server.transfer_access import TransferAccess
from minidns.server.transfers import Transfers
from minidns.xfr.grants import grant_from

K1 = "c2VjcmV0LW9uZQ=="
K2 = "c2VjcmV0LXR3bw=="
KEY1, KEY2, KEY3 = (dns.name.from_text(k) for k in ("k1.", "k2.", "k3."))
A, B = (dns.name.from_text(z).to_wire() for z in ("a.test.", "b.test."))


def _access(**overrides) -> TransferAccess:
    settings = {"tsig_keys": [{"name": "k1", "secret": K1}], "allow_transfer": ["192.0.2.0/24"],
                "secondaries": [{"address": "198.51.100.1", "zones": ["a.test"]}, {"address": "198.51.100.2", "key": "k1"}],
                "zone_allow_transfer": {"b.test": ["203.0.113.9"]}}  # fmt: skip
    access = TransferAccess(load_config(None, settings | overrides))
    access.transfers = Transfers(None, keyring=access.keyring, acl=access.default_acl())
    access.transfers.zone_acls = access.zone_acls({}, {})
    return access


def _settings(keys=(), acls=None, secondaries=None, update_grants=()):
    return SimpleNamespace(keys=list(keys), acls=acls or {}, secondaries=secondaries or {}, update_grants=tuple(update_grants))


@pytest.mark.parametrize("address, key, allowed", [
    ("192.0.2.77", None, True),  # allow_transfer
    ("198.51.100.2", None, False),  # a secondary with a key is known by its key, not its address
    ("203.0.113.1", KEY1, True),
    ("198.51.100.1", None, True),  # a configured secondary, whichever zones it serves
    ("203.0.113.9", None, False),
])  # fmt: skip
def test_the_default_list_is_allow_transfer_plus_the_secondaries_of_every_zone(address, key, allowed):
    assert _access().default_acl().allows(address, key) is allowed


@pytest.mark.parametrize("origin, address, key, allowed", [
    (B, "203.0.113.9", None, True),  # b.test's own list
    (B, "192.0.2.77", None, False),  # … instead of the default
    (B, "203.0.113.1", KEY1, True),  # a secondary serving every zone
    (B, "198.51.100.1", None, False),
])  # fmt: skip
def test_a_zone_list_replaces_the_default_and_keeps_the_zone_secondaries(origin, address, key, allowed):
    assert _access().transfers.zone_acls[origin].allows(address, key) is allowed


def test_the_database_adds_keys_lists_and_secondaries():
    access = _access()
    access.apply_settings(_settings(keys=[("k1", "hmac-sha256", K2), ("k2", "hmac-sha256", K2)],
                                    acls={"b.test.": ["198.18.0.0/15"]},
                                    secondaries={"a.test.": [("198.51.100.7", 5300, "k2")]}))  # fmt: skip
    assert access.keyring[KEY1].secret == access.config_keyring[KEY1].secret  # the configured k1 wins
    assert access.transfers.keyring is access.keyring and KEY2 in access.keyring
    assert [(s.label, s.key.name) for s in access.zone_secondaries("a.test.")] == [("198.51.100.7#5300", KEY2)]
    assert access.zone_secondaries("b.test.") == []
    acls = access.transfers.zone_acls
    assert acls[B].allows("198.18.1.1", None) and not acls[B].allows("203.0.113.9", None)  # the database's list wins
    assert acls[A].allows("192.0.2.77", None) and acls[A].allows("203.0.113.1", KEY2)  # default + its secondary's key


def test_a_stored_key_that_cannot_be_used_is_left_out():
    access = _access()
    access.apply_settings(_settings(keys=[("k3", "hmac-sha3", K2)]))
    assert KEY3 not in access.keyring and KEY1 in access.keyring


def test_sighup_takes_new_keys_and_lists_and_keeps_the_database_settings():
    access = _access()
    access.apply_settings(_settings(keys=[("k2", "hmac-sha256", K2)], acls={"a.test.": ["198.18.0.0/15"]}))
    new_keys = ({"name": "k1", "secret": K2}, {"name": "k3", "secret": K1})
    access.reconfigure(dataclasses.replace(access.config, tsig_keys=new_keys, allow_transfer=("10.0.0.0/8",)))
    assert set(access.keyring) == {KEY1, KEY2, KEY3} and access.transfers.keyring is access.keyring
    assert access.keyring[KEY1].secret == access.keyring[KEY2].secret  # k1's new secret
    assert access.transfers.acl.allows("10.1.2.3", None) and not access.transfers.acl.allows("192.0.2.77", None)
    assert access.transfers.zone_acls[A].allows("198.18.1.1", None)


CONFIGURED = {"key": "k1.", "zone": "a.test.", "match": "name", "pattern": "ns1.a.test.", "action": "deny"}
STORED = {"key": "k1.", "match": "zone"}


def test_update_grants_are_the_configured_then_the_stored_ones():
    """Configured grants are read first (a configured deny wins over a stored grant); a SIGHUP takes
    the new configured ones and keeps the stored ones."""
    assert Transfers(None).update_grants == ()  # the attribute exists before anything sets it
    access = _access(update_grants=[CONFIGURED])
    assert access.config_grants == (grant_from(CONFIGURED),)
    assert TransferAccess(access.config, Transfers(None)).transfers.update_grants == (grant_from(CONFIGURED),)
    access.transfers.update_grants = access.config_grants  # as server/app.py does before the database is read
    access.apply_settings(_settings(update_grants=[grant_from(STORED)]))
    assert access.transfers.update_grants == (grant_from(CONFIGURED), grant_from(STORED))
    access.reconfigure(dataclasses.replace(access.config, update_grants=()))
    assert access.transfers.update_grants == (grant_from(STORED),)
    plain = _access(update_grants=[STORED])
    plain.reconfigure(dataclasses.replace(plain.config, update_grants=(CONFIGURED, STORED)))  # no database read yet
    assert plain.transfers.update_grants == (grant_from(CONFIGURED), grant_from(STORED))
