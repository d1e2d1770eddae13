"""The write stages a Store is composed with (store/change.Stages): signing of signed zones'
changes (store/signing.py) with the zone keys unsealed from their rows (store/dnssec.py), and the
heartbeat record (store/heartbeat.py). Composing them here, above the writer, keeps the writer
free of any import of them."""

from __future__ import annotations

from . import signing
from .change import SigningStage, Stages
from .keys import load_zone_keys
from .heartbeat import heartbeat_edit


def write_stages() -> Stages:
    """The stages every process's store runs: signing and the heartbeat."""
    signer = SigningStage(zone_keys=load_zone_keys, update=signing.update, sign_whole=signing.sign_whole,
                          sign_soa=signing.sign_soa)  # fmt: skip
    return Stages(signing=signer, heartbeat=heartbeat_edit)
