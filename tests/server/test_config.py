"""minidns/server/config.py: a setting that cannot be used is refused at load with a message naming it;
checks run in a fixed order, so of two bad settings the earlier one is reported; TOML and flags."""

import os
import re
import socket

import pytest

from minidns.server.config import Config, ConfigError, load_config, parse_listen

KEY = {"name": "k.", "secret": "c2VjcmV0c2VjcmV0c2VjcmV0"}
GRANT = {"key": "ddns-key.", "zone": "example.com.", "match": "wildcard", "pattern": "*.dyn.example.com.", "types": ["A", "TXT"]}
# (settings, the start of the error message)
REFUSED = [
    ({"listen": ()}, "listen: at least one address is needed"),
    ({"listen": ("192.0.2.1:99999",)}, "listen address '192.0.2.1:99999': bad port '99999'"),
    ({"listen": ("host:53",)}, "listen address 'host:53': 'host' is not an IPv4 or IPv6 address"),
    ({"listen": ("[::1]x",)}, "listen address '[::1]x': expected [V6]:PORT"),
    ({"edns_payload": 511}, "edns_payload must be between 512 and 65535"),
    ({"cache_entries": 1}, "tcp_idle_timeout, tcp_max_connections and cache_entries must be positive"),
    ({"workers": 257}, "workers must be 0 (one per CPU on port 53, else 1) to 256"),
    ({"tcp_max_per_client": 0}, "tcp_max_per_client, tcp_query_timeout, xfr_max_concurrent, events_max_pending and"),
    ({"rrl_slip": -1}, "rrl_*_per_second and rrl_slip must be 0 or more, rrl_window and rrl_max_table positive"),
    ({"rrl_ipv6_prefix": 8}, "rrl_ipv4_prefix must be 8 to 32 and rrl_ipv6_prefix 16 to 128"),
    ({"rrl_exempt": ("10.0.0.0/33",)}, "rrl_exempt: "),
    ({"cookie_secret": "00" * 8}, "cookie_secret must be 16 octets in hex (32 hex digits)"),
    ({"log_level": "trace"}, "log_level must be debug, info, warning or error"),
    ({"log_format": "xml"}, "log_format must be text or json"),
    ({"query_log_sample": 0}, "query_log_sample must be above 0 and at most 1"),
    ({"heartbeat_interval": 0.5}, "heartbeat_interval must be 1 second or more"),
    ({"heartbeat_name": "a..b"}, "heartbeat_name: "),
    ({"pool_nameservers": ("ns1",)}, "pool_nameservers: NS hostname 'ns1' must be absolute (end in a dot)"),
    ({"serial_policy": "random"}, "serial_policy must be increment, unixtime or date"),
    ({"change_log_keep": 0}, "db_check_interval, change_log_keep and change_log_max_age must be positive"),
    ({"nsid": "x" * 256}, "nsid is longer than 255 octets"),
    ({"renotify_interval": -1}, "renotify_interval must be 0 (never) or positive"),
    ({"notify_rate": 0}, "notify_retries, notify_timeout, notify_rate and propagation_timeout must be positive"),
    ({"api_listen": "localhost:9001"}, "listen address 'localhost:9001': 'localhost' is not an IPv4 or IPv6 address"),
    ({"api_tokens": ({"token": "x" * 16},)}, "api_tokens entries are tables with token, project and role"),
    ({"api_tokens": ({"token": "x" * 16, "project": "p", "role": "root"},)},
     "api_tokens: role 'root' is not admin, member, reader or ingest"),
    ({"api_tokens": ({"token": "short", "project": "p", "role": "admin"},)},
     "api_tokens: a token must be at least 16 characters"),
    ({"events_templates": {"nova": "%(nope)s"}}, "events_templates.nova: unknown field 'nope'"),
    ({"events_zone_suffix": "a..b."}, "events_zone_suffix: bad zone name 'a..b.'"),
    ({"cloudstack_common_zone": "a..b."}, "cloudstack_common_zone: bad zone name 'a..b.'"),
    ({"events_zone": "a..b."}, "events_zone: bad zone name 'a..b.'"),
    ({"events_region": "bad region"}, "events_region must be 1 to 100 letters, digits, '.', '-', '_' (or empty)"),
    ({"events_keep_days": -1}, "events_keep_days must be 0 (keep for ever) or more"),
    ({"dnssec_rollover_margin": -1}, "dnssec_rollover_margin must be 0 seconds or more"),
    ({"propagation_share": 1.5}, "propagation_share must be above 0 and at most 1"),
    ({"tsig_keys": ({"name": "k."},)}, "tsig_keys entries are tables with name, algorithm and secret"),
    ({"tsig_keys": (dict(KEY, algorithm="hmac-nope"),)}, "tsig_keys: TSIG algorithm 'hmac-nope' is not one of"),
    ({"allow_transfer": ("192.0.2.0/33",)}, "allow_transfer: "),
    ({"zone_allow_transfer": {"example.": ["nope"]}}, "allow_transfer: "),
    ({"secondaries": ({"port": 53},)}, "secondaries entries are tables with address, and optionally port, key, zones"),
    ({"secondaries": ({"address": "ns1"},)}, "secondaries: 'ns1' is not an IP address"),
    ({"secondaries": ({"address": "192.0.2.1", "port": 0},)}, "secondaries: bad port 0"),
    ({"secondaries": ({"address": "192.0.2.1", "key": "k."},)}, "secondaries: key 'k.' is not among tsig_keys"),
    ({"update_grants": ({"key": "k.", "match": "regex"},)}, "update_grants entry 1: match 'regex' is not one of name,"),
    ({"update_grants": (GRANT, {"key": "k.", "zone": "example.com.", "match": "name", "pattern": "a.example.org."})},
     "update_grants entry 2: pattern a.example.org. is outside the zone example.com."),
    ({"update_grants": ({"key": "k.", "match": "zone", "types": ["DNSKEY"]},)},
     "update_grants entry 1: types: DNSKEY is a DNSSEC type"),
    ({"update_grants": ("k.",)}, "update_grants entry 1: a grant is a table"),
    # Two bad settings: the one checked first is reported.
    ({"edns_payload": 100, "log_format": "xml"}, "edns_payload must be between 512 and 65535"),
    ({"secondaries": ({"address": "x"},), "nsid": "x" * 300}, "nsid is longer than 255 octets"),
    ({"propagation_share": 0, "events_keep_days": -1}, "events_keep_days must be 0 (keep for ever) or more"),
    ({"tsig_keys": ({"name": "k."},), "dnssec_rollover_margin": -1}, "dnssec_rollover_margin must be 0 seconds or more"),
]
ACCEPTED = [
    {},
    {"listen": ("[::1]:53", "127.0.0.1:5300", "::1"), "workers": 256, "rrl_exempt": ("10.0.0.0/8",)},
    {"cookie_secret": "00" * 16, "log_level": "DEBUG", "query_log_sample": 0.01, "heartbeat_name": "_hb"},
    {"events_zone": "%(project_id)s.cloud.example.", "events_region": "", "propagation_share": 1},
    {"tsig_keys": (KEY,), "secondaries": ({"address": "192.0.2.1", "port": 5300, "key": "K", "zones": ["*"]},)},
    {"api_tokens": ({"token": "t" * 16, "project": "p", "role": "ingest"},), "zone_allow_transfer": {"a.": ["key:k."]}},
    {"update_grants": (GRANT, {"key": "ddns-key.", "match": "selfsub", "action": "deny", "managed": True})},
]


@pytest.mark.parametrize("settings, message", REFUSED)
def test_a_setting_that_cannot_be_used_is_refused_by_name(settings, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        Config(**settings)


@pytest.mark.parametrize("settings", ACCEPTED)
def test_usable_settings_load(settings):
    config = Config(**settings)
    assert all(getattr(config, k) == v for k, v in settings.items())


# (TOML text, flags, the start of the error message ({path}: the file's), or None and the settings loaded)
FILES = [
    ("edns_payload = 1400\n", {"edns_payload": None}, None, {"edns_payload": 1400}),
    ("edns_payload = 1400\n", {"edns_payload": 4096}, None, {"edns_payload": 4096}),
    ('listen = "[::1]:5300"\n', {}, None, {"listen": ("[::1]:5300",)}),
    ("edns_payload = 1400\nbogus = 1\nother = 2\n", {}, "{path}: unknown setting(s): bogus, other", None),
    ('edns_payload = "big"\n', {}, "edns_payload must be a number", None),
    ("edns_payload = 1.5\n", {}, "edns_payload must be a whole number", None),
    ("query_log = 1\n", {}, "query_log must be true or false", None),
    ("nsid = 5\n", {}, "nsid must be a string", None),
    ("listen = [5300]\n", {}, "listen must be a list of strings", None),
    ('tsig_keys = "k"\n', {}, "tsig_keys must be a list of tables", None),
    ('update_grants = "k"\n', {}, "update_grants must be a list of tables", None),
    ('[[update_grants]]\nkey = "k."\nmatch = "zone"\ntypes = ["A", "NOPE"]\n', {}, "update_grants entry 1: types: unknown type 'NOPE'", None),
    ('events_templates = { nova = 1 }\n', {}, 'events_templates must be a table of handler = "template"', None),
    ('zone_allow_transfer = { "a." = "x" }\n', {}, "zone_allow_transfer must be a table of zone = [entries]", None),
    ("edns_payload = \n", {}, "{path}: ", None),
]


@pytest.mark.parametrize("text, flags, message, loaded", FILES)
def test_a_toml_file_with_flags_over_it(tmp_path, text, flags, message, loaded):
    path = tmp_path / "minidns.toml"
    path.write_text(text)
    if message is None:
        config = load_config(str(path), flags)
        assert {k: getattr(config, k) for k in loaded} == loaded
    else:
        with pytest.raises(ConfigError, match="^" + re.escape(message.format(path=path))):
            load_config(str(path), flags)


def test_a_missing_file_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}/none.toml: No such file or directory")):
        load_config(str(tmp_path / "none.toml"), {})


@pytest.mark.parametrize("spec, parsed", [
    ("127.0.0.1:53", (socket.AF_INET, "127.0.0.1", 53)),
    ("192.0.2.1", (socket.AF_INET, "192.0.2.1", 5353)),
    ("[::1]:5300", (socket.AF_INET6, "::1", 5300)),
    ("[2001:db8::1]", (socket.AF_INET6, "2001:db8::1", 5353)),
    ("::1", (socket.AF_INET6, "::1", 5353)),
])  # fmt: skip
def test_listen_addresses(spec, parsed):
    assert parse_listen(spec) == parsed


def test_workers_default_to_one_off_port_53():
    assert Config(listen=("127.0.0.1:5353",)).worker_count == 1
    assert Config(listen=("127.0.0.1:5353",), workers=3).worker_count == 3
    assert Config(listen=("127.0.0.1:53",)).worker_count == len(os.sched_getaffinity(0))


def test_update_grants_load_from_toml_in_order(tmp_path):
    """The configuration example of the UPDATE grants: array-of-tables, read in order as Grant values."""
    path = tmp_path / "minidns.toml"
    path.write_text("""
[[update_grants]]
key = "ddns-key."
zone = "example.com."
match = "subdomain"
pattern = "dyn.example.com."
types = ["A", "AAAA", "TXT"]

[[update_grants]]
key = "ddns-key."
match = "name"
pattern = "ns1.example.com."
action = "deny"
""")
    grants = load_config(str(path), {}).grants()
    assert [(g.match, g.pattern.to_text(), g.allow, g.zone and g.zone.to_text()) for g in grants] == [
        ("subdomain", "dyn.example.com.", True, "example.com."), ("name", "ns1.example.com.", False, None)]
    assert grants[0].types == frozenset({1, 28, 16}) and not grants[1].types
