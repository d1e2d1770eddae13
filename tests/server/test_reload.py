"""What a SIGHUP applies (server/reload.py): the settings that can change while serving, those
logged as needing a restart, and the random cookie secret that stays."""

import dataclasses

import pytest

from minidns.server.config import load_config
from minidns.server.reload import LIVE_SETTINGS, live_changes

BASE = load_config(None, {"cookie_secret": "00" * 16})


@pytest.mark.parametrize("change, live, later", [
    ({}, {}, []),
    ({"nsid": "ns-b"}, {"nsid": "ns-b"}, []),
    ({"log_level": "debug", "version": "x"}, {"log_level": "debug", "version": "x"}, []),
    ({"cache_entries": 5}, {}, ["cache_entries"]),
    ({"nsid": "ns-b", "edns_payload": 1400}, {"nsid": "ns-b"}, ["edns_payload"]),
    ({"allow_transfer": ("10.0.0.0/8",)}, {"allow_transfer": ("10.0.0.0/8",)}, []),
    ({"update_grants": ({"key": "k.", "match": "zone"},)}, {"update_grants": ({"key": "k.", "match": "zone"},)}, []),
])  # fmt: skip
def test_live_settings_apply_and_the_others_wait_for_a_restart(change, live, later):
    new = dataclasses.replace(BASE, **change)
    config, got_live, got_later, changed = live_changes(BASE, new)
    assert (got_live, got_later, sorted(changed)) == (live, later, sorted(change))
    for name in change:
        assert getattr(config, name) == (change[name] if name in LIVE_SETTINGS else getattr(BASE, name))


def test_the_cookie_secret_made_at_start_stays_when_none_is_configured():
    new = dataclasses.replace(BASE, cookie_secret=None)
    config, live, later, changed = live_changes(BASE, new)
    assert config.cookie_secret == BASE.cookie_secret and not changed
