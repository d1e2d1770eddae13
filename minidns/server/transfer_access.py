"""Who may transfer which zone, and who is NOTIFYed: the TSIG keyring, the access lists and the
secondaries, from the configuration and from the database (store/access.py), a configured key of
a name winning over a stored one; and who may UPDATE what: the configured grants, then the stored
ones. Each change is pushed into the transfer handler."""

from __future__ import annotations

import logging

import dns.name

from ..xfr.notify import Secondary
from ..xfr.tsig import make_key
from .config import Config
from .transfers import Acl, Transfers

log = logging.getLogger("minidns")


def config_keyring(config: Config) -> dict:
    """The configured TSIG keys by name."""
    keys = (make_key(k["name"], k.get("algorithm", "hmac-sha256"), k["secret"]) for k in config.tsig_keys)
    return {key.name: key for key in keys}


def secondary_acl(entries, secondaries) -> Acl:
    """An access list, plus the secondaries: each by its key when it has one, else by address."""
    acl = Acl.parse(entries)
    for sec in secondaries:
        if sec.key is not None:
            acl.keys.add(sec.key.name)
        else:
            acl.networks += Acl.parse([sec.address]).networks
    return acl


def _origin(zone: str) -> bytes:
    return dns.name.from_text(zone).to_wire().lower()


class TransferAccess:
    """The keyring, access lists and secondaries a server uses; `transfers` is kept in step."""

    def __init__(self, config: Config, transfers: Transfers | None = None):
        self.config = config
        self.config_keyring = config_keyring(config)
        self.keyring = dict(self.config_keyring)
        self.config_secondaries = [
            Secondary(s["address"], int(s.get("port", 53)), self._key(s.get("key")), tuple(s.get("zones", ["*"])))
            for s in config.secondaries
        ]
        self.db_secondaries: dict[str, list[Secondary]] = {}
        self.db_settings = None  # the transfer settings last read from the database
        self.config_grants = config.grants()  # the UPDATE grants of the configuration, read before the database's
        self.transfers = transfers
        if transfers is not None:
            transfers.update_grants = self.config_grants

    def _key(self, name: str | None):
        if name is None:
            return None
        key = self.keyring.get(dns.name.from_text(name))
        if key is None:
            raise ValueError(f"secondary key {name!r} is not among tsig_keys")
        return key

    def default_acl(self) -> Acl:
        """The access list of zones without one of their own."""
        return secondary_acl(self.config.allow_transfer, self.config_secondaries)

    def zone_acls(self, db_acls: dict, db_secondaries: dict) -> dict:
        """Per-zone access lists: the zone's own list (database over configuration) or the default,
        plus the zone's secondaries."""
        lists = {_origin(z): (z, e) for z, e in self.config.zone_allow_transfer.items()}
        lists.update({_origin(z): (z, e) for z, e in db_acls.items()})
        for z in db_secondaries:
            lists.setdefault(_origin(z), (z, list(self.config.allow_transfer)))
        out = {}
        for origin, (z, entries) in lists.items():
            name = dns.name.from_text(z).to_text().lower()
            secs = [s for s in self.config_secondaries if s.serves(name)] + list(db_secondaries.get(name, ()))
            out[origin] = secondary_acl(entries, secs)
        return out

    def zone_secondaries(self, name: str) -> list[Secondary]:
        """The secondaries the database names for zone `name` (the notifier adds the configured)."""
        return self.db_secondaries.get(name, [])

    def apply_settings(self, settings) -> None:
        """Transfer settings from the database (store/transfer_settings.py): keys, access lists,
        secondaries, UPDATE grants (after the configured ones: the first that matches decides)."""
        self.db_settings = settings
        keyring = dict(self.config_keyring)
        for name, algorithm, secret in settings.keys:
            try:
                key = make_key(name, algorithm, secret)
            except ValueError as e:
                log.error("TSIG key %s from the database not used: %s", name, e)
                continue
            keyring.setdefault(key.name, key)  # a configured key of the same name wins
        self.keyring = keyring
        self.transfers.keyring = keyring
        db_secondaries: dict[str, list[Secondary]] = {}
        for zone, entries in settings.secondaries.items():
            for address, port, key_name in entries:
                key = keyring.get(dns.name.from_text(key_name)) if key_name else None
                db_secondaries.setdefault(zone, []).append(Secondary(address, port, key))
        self.db_secondaries = db_secondaries
        self.transfers.zone_acls = self.zone_acls(settings.acls, db_secondaries)
        self.transfers.update_grants = self.config_grants + tuple(settings.update_grants)

    def reconfigure(self, config: Config) -> None:
        """Keys, access lists and UPDATE grants changed by a SIGHUP; the secondaries stay as configured at start."""
        self.config = config
        self.config_keyring = config_keyring(config)
        self.config_grants = config.grants()
        self.keyring = dict(self.config_keyring)
        self.transfers.keyring = self.keyring
        self.transfers.acl = self.default_acl()
        if self.db_settings is not None:
            self.apply_settings(self.db_settings)
        else:
            self.transfers.zone_acls = self.zone_acls({}, {})
            self.transfers.update_grants = self.config_grants
