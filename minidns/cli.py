"""The `minidns` command: `serve`, and the commands that read and change zones in the database."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from .cli_bus import BUS_FLAGS
from .server.config import FIELDS, ConfigError, load_config
from .xfr.grants import MATCHES

SERVE_HELP = """\
Serve authoritative DNS over UDP and TCP.

Zones come from PostgreSQL: the one at --database-url (or $MINIDNS_DATABASE_URL), else a private
embedded PostgreSQL kept in --data-dir, created on first use with an example zone (example.com.)
in it. Changes committed to the database are served within milliseconds. Zone files given with
--zone-file are served read-only beside them; zone files alone use no database at all.

Every flag can also be set in the TOML file given with --config, under the key named in brackets;
a flag given on the command line wins over the file.

Transfers (AXFR, IXFR) go to the addresses and TSIG keys of --allow-transfer and to the
secondaries; after each change the secondaries get NOTIFY and are watched until they have it.
Settings that are tables live only in the file: TSIG keys [tsig_keys], per-zone access lists
[zone_allow_transfer], secondaries [secondaries], API tokens [api_tokens] and the event ingest's name
templates [events_templates] (handlers nova, neutron, neutron_unknown, cloudstack; fields such as
%(hostname)s, %(zone)s, %(octet0)s..%(octet3)s, %(ip_dashed)s, %(project)s, %(project_id)s); keys, secondaries
and access lists can also be stored per zone in the database (`minidns tsig`, `minidns zone secondary`, `minidns zone
allow-transfer`). Dynamic UPDATE grants [[update_grants]] are read before those of `minidns update grant`.

SIGHUP re-reads the zone files and swaps each changed zone in atomically (a file that no longer
parses leaves its zone serving as it was); SIGTERM or SIGINT stop the server.
"""

DB_HELP = "like serve: --database-url / $MINIDNS_DATABASE_URL, else the embedded PostgreSQL in --data-dir"


BACKUP_HELP = """\
Write the database (the embedded one in --data-dir, or the one at --database-url) and the DNSSEC
master key to FILE: one tar file holding a pg_dump of one consistent snapshot, the master key and a
manifest (minidns version, schema, counts, SHA-256 of each part). It can be made while minidns
serves. FILE holds the master key: keep it as secret as the key itself.

The zones' DNSSEC private keys are stored in the database sealed under the master key, which the
database never holds ($MINIDNS_MASTER_KEY, --dnssec-master-key-file, or master.key in the data
directory). Losing the master key loses every DNSSEC private key: the signed zones must then be
signed anew with new keys and new DS records at their parents. So a database with DNSSEC keys is
not backed up without the master key that opens them.
"""

RESTORE_HELP = """\
Load FILE, written by `minidns backup`, into the database (the embedded one in --data-dir, created
when absent, or the one at --database-url), and write its DNSSEC master key where serve will read
it (--dnssec-master-key-file, else master.key in --data-dir; with $MINIDNS_MASTER_KEY set, it must
be the backup's key). The whole file is read and checked first; the target must hold nothing
unless --force is given; the load is one transaction, so a failed restore changes nothing. Schema
migrations newer than the backup are applied after it. Stop `minidns serve` on the target first.
"""


def flag(*names: str, **options) -> tuple[tuple[str, ...], dict]:
    """One command-line flag, as the arguments of `add_argument`."""
    return names, options


# The flags of `serve` (and `check`), in --help order; each names its TOML key in brackets.
SERVE_FLAGS = (
    flag("--zone-file", action="append", dest="zone_files", metavar="[ORIGIN=]PATH",
         help="zone file to serve read-only; repeat for more; the origin comes from the file's $ORIGIN or "
              "SOA unless given [zone_files]"),
    flag("--listen", action="append", metavar="HOST:PORT",
         help="address to serve on, UDP and TCP; [V6]:PORT for IPv6; repeat for more "
              "(default 127.0.0.1:5353) [listen]"),
    flag("--no-db-upgrade", dest="db_upgrade", action="store_const", const=False,
         help="do not apply schema migrations at start; refuse to start if they are missing [db_upgrade]"),
    flag("--db-poll", dest="db_listen", action="store_const", const=False,
         help="poll the change log instead of LISTEN (for a physical replica) [db_listen]"),
    flag("--db-check-interval", type=float, metavar="SECONDS",
         help="seconds between full serial checks against the database (default 30) [db_check_interval]"),
    flag("--serial-policy", choices=["increment", "unixtime", "date"],
         help="serial policy for new zones (default increment) [serial_policy]"),
    flag("--pool-nameserver", dest="pool_nameservers", action="append", metavar="HOST[:PRIORITY]",
         help="an NS record of the default pool, written at the apex of its zones; repeat for more "
              "(default: as stored, first start: this host's name) [pool_nameservers]"),
    flag("--change-log-keep", type=int, metavar="N", help="change-log rows kept per zone (default 1000) [change_log_keep]"),
    flag("--change-log-max-age", type=int, metavar="SECONDS",
         help="seconds a change-log row is kept (default 604800) [change_log_max_age]"),
    flag("--edns-payload", type=int, metavar="OCTETS", help="our EDNS UDP payload size (default 1232) [edns_payload]"),
    flag("--nsid", help="NSID returned to clients that ask (RFC 5001) [nsid]"),
    flag("--version-string", dest="version", metavar="TEXT", help="answer for CH TXT version.bind [version]"),
    flag("--identity", metavar="TEXT", help="answer for CH TXT id.server and hostname.bind [identity]"),
    flag("--query-log", action="store_const", const=True, help="log every query [query_log]"),
    flag("--log-level", choices=["debug", "info", "warning", "error"], help="log level (default info) [log_level]"),
    flag("--log-format", choices=["text", "json"],
         help="log lines as text, or JSON objects (time, level, logger, message, fields) (default text) [log_format]"),
    flag("--query-log-sample", type=float, metavar="SHARE",
         help="share of queries the query log writes, e.g. 0.01 for one in a hundred (default 1) [query_log_sample]"),
    flag("--heartbeat-name", metavar="NAME",
         help="write a TXT at NAME.<zone> with the serial and time of each commit, e.g. _heartbeat "
              "(default: none) [heartbeat_name]"),
    flag("--heartbeat-interval", type=float, metavar="SECONDS",
         help="a zone unchanged this long gets a heartbeat change (default 60) [heartbeat_interval]"),
    flag("--tcp-idle-timeout", type=float, metavar="SECONDS", help="close idle TCP connections after this (default 10) [tcp_idle_timeout]"),
    flag("--tcp-max-connections", type=int, metavar="N", help="most TCP connections at once (default 1000) [tcp_max_connections]"),
    flag("--workers", type=int, metavar="N",
         help="DNS processes sharing the listen ports (SO_REUSEPORT), each with its own copy of the zones; "
              "0: one per CPU when serving port 53, else 1 (default 0) [workers]"),
    flag("--cache-entries", type=int, metavar="N", help="rendered replies kept for the fast path (default 200000) [cache_entries]"),
    flag("--tcp-max-per-client", type=int, metavar="N",
         help="most TCP connections at once from one client address (default 64) [tcp_max_per_client]"),
    flag("--tcp-query-timeout", type=float, metavar="SECONDS",
         help="close a TCP connection whose started message is not whole after this (default 5) [tcp_query_timeout]"),
    flag("--xfr-max-concurrent", type=int, metavar="N",
         help="zone transfers sent at once; more get SERVFAIL (default 10) [xfr_max_concurrent]"),
    flag("--rrl-responses-per-second", type=int, metavar="N",
         help="response rate limiting over UDP: replies a second to one client prefix for one question; "
              "0 turns RRL off (the default) [rrl_responses_per_second]"),
    flag("--rrl-errors-per-second", type=int, metavar="N",
         help="error replies a second to one client prefix (default 0: as --rrl-responses-per-second) [rrl_errors_per_second]"),
    flag("--rrl-nxdomains-per-second", type=int, metavar="N",
         help="NXDOMAIN and NODATA replies a second to one client prefix for one zone (default 0: as "
              "--rrl-responses-per-second) [rrl_nxdomains_per_second]"),
    flag("--rrl-slip", type=int, metavar="N",
         help="every Nth rate-limited reply is sent truncated, so real clients retry over TCP; the others "
              "are dropped; 0 drops all (default 2) [rrl_slip]"),
    flag("--rrl-window", type=int, metavar="SECONDS", help="seconds of rate history kept (default 15) [rrl_window]"),
    flag("--rrl-ipv4-prefix", type=int, metavar="BITS", help="IPv4 client prefix length (default 24) [rrl_ipv4_prefix]"),
    flag("--rrl-ipv6-prefix", type=int, metavar="BITS", help="IPv6 client prefix length (default 56) [rrl_ipv6_prefix]"),
    flag("--rrl-exempt", action="append", metavar="PREFIX", help="client prefix never rate limited; repeat for more [rrl_exempt]"),
    flag("--rrl-max-table", type=int, metavar="N",
         help="rate accounts kept at most, least recently used dropped (default 100000) [rrl_max_table]"),
    flag("--cookie-secret", metavar="HEX",
         help="DNS cookie secret, 16 octets in hex; servers of one anycast set must share it (default: "
              "random at each start) [cookie_secret]"),
    flag("--api-listen", metavar="HOST:PORT", help="address of the HTTP API (default 127.0.0.1:9001) [api_listen]"),
    flag("--api-max-requests", type=int, metavar="N",
         help="API requests worked on at once; more are answered 503 with Retry-After (default 256) [api_max_requests]"),
    flag("--no-api", dest="api", action="store_const", const=False, help="do not serve the HTTP API [api]"),
    flag("--events-zone", metavar="ZONE",
         help="zone of the records made from Nova and Neutron events (of projects without their own zone, see --events-zone-suffix); may use %%(project_id)s [events_zone]"),
    flag("--events-zone-suffix", metavar="SUFFIX",
         help="one zone per project, <project id>.SUFFIX, used when it exists [events_zone_suffix]"),
    flag("--no-events-ptr", dest="events_ptr", action="store_const", const=False,
         help="make no PTR records for event records [events_ptr]"),
    flag("--events-create-ptr-zones", action="store_const", const=True,
         help="create the reverse zone (/24, /64) for an event's PTR when none exists [events_create_ptr_zones]"),
    flag("--cloudstack-common-zone", metavar="ZONE",
         help="zone of CloudStack VMs whose account and domain have no network domain [cloudstack_common_zone]"),
    flag("--events-region", metavar="REGION",
         help="region under which Neutron's floating IPs are offered in /v2/reverse/floatingips; \"\" for none (default RegionOne) [events_region]"),
    flag("--events-max-pending", type=int, metavar="N",
         help="events queued or being applied at once; more are answered 503 with Retry-After (default 10000) [events_max_pending]"),
    flag("--events-keep-days", type=float, metavar="DAYS",
         help="keep events and tombstones of deleted resources this long; 0 for ever (default 30) [events_keep_days]"),
    flag("--dnssec-master-key-file", metavar="FILE",
         help="file holding the base64 DNSSEC master key that seals zones' private keys ($MINIDNS_MASTER_KEY "
              "wins over it; default: master.key in --data-dir, for the embedded database) [dnssec_master_key_file]"),
    flag("--dnssec-rollover-margin", type=int, metavar="SECONDS",
         help="seconds added to each wait of a DNSSEC key rollover that the TTLs make (DNSKEY TTL, the "
              "zone's largest TTL), for propagation to secondaries and safety; the server takes due "
              "rollover steps every minute (default 3600) [dnssec_rollover_margin]"),
    flag("--allow-transfer", action="append", metavar="PREFIX|key:NAME",
         help="who may transfer zones; repeat for more (default 127.0.0.0/8 and ::1) [allow_transfer]"),
    flag("--no-notify", dest="notify", action="store_const", const=False,
         help="send no NOTIFY to secondaries [notify]"),
    flag("--notify-retries", type=int, metavar="N", help="NOTIFY attempts per change and secondary (default 5) [notify_retries]"),
    flag("--notify-timeout", type=float, metavar="SECONDS",
         help="seconds before the first NOTIFY retry, doubled each time (default 1) [notify_timeout]"),
    flag("--notify-rate", type=int, metavar="N", help="NOTIFY messages per second at most (default 1000) [notify_rate]"),
    flag("--propagation-timeout", type=float, metavar="SECONDS",
         help="seconds before a zone its secondaries have not taken goes to ERROR (default 60) [propagation_timeout]"),
    flag("--propagation-share", type=float, metavar="SHARE",
         help="share of a zone's secondaries that must have a change for ACTIVE (default 1.0) [propagation_share]"),
    flag("--renotify-interval", type=float, metavar="SECONDS",
         help="seconds until a secondary still behind is NOTIFYed again, doubling; 0: never (default 10) "
              "[renotify_interval]"),
    flag("--no-update-tsig", dest="update_require_tsig", action="store_const", const=False,
         help="take unsigned dynamic UPDATEs from the --update-acl addresses (default: TSIG required) [update_require_tsig]"),
    flag("--update-acl", action="append", metavar="PREFIX",
         help="addresses dynamic UPDATE is taken from; repeat for more (default: any, signed) [update_acl]"),
    flag("--update-max-records", type=int, metavar="N",
         help="records in one UPDATE's prerequisite and update sections at most; more is REFUSED (default 5000) "
              "[update_max_records]"),
    flag("--update-max-queued", type=int, metavar="N",
         help="UPDATEs waiting for one zone at most; more get SERVFAIL (default 1000) [update_max_queued]"),
    *BUS_FLAGS,
)
MASTER_KEY_FLAG = flag("--dnssec-master-key-file", metavar="FILE", help="the master key file (as for serve) [dnssec_master_key_file]")
SECONDARY_KEY_FLAG = flag("--key", metavar="KEYNAME", help="TSIG key (stored with `minidns tsig add`) to sign NOTIFY with")


def _database_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument("--database-url", metavar="URL",
                   help="PostgreSQL to use (also $MINIDNS_DATABASE_URL); unset → the embedded one [database_url]")
    p.add_argument("--data-dir", metavar="DIR", help="data directory of the embedded PostgreSQL [data_dir]")


def _add(p: argparse.ArgumentParser, *flags: tuple[tuple[str, ...], dict]) -> argparse.ArgumentParser:
    for names, options in flags:
        p.add_argument(*names, **options)
    return p


def _group(sub, name: str, help: str, dest: str = "action"):
    """A command with actions of its own (`minidns zone import`): the subparsers of those actions."""
    return sub.add_parser(name, help=help).add_subparsers(dest=dest, required=True)


def _command(sub, name: str, help: str, *flags, description: str = DB_HELP) -> argparse.ArgumentParser:
    """A command (or action) on the database: its flags, then the database flags."""
    p = _add(sub.add_parser(name, help=help, description=description), *flags)
    _database_flags(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minidns", description="An authoritative DNS server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = _serve_parser(sub)
    _check_parser(sub, serve)
    _command(_group(sub, "db", "database schema"), "upgrade", "apply the schema migrations the database lacks")
    _zone_parser(sub)
    _catalog_parser(sub)
    _pool_parser(sub)
    _token_parser(sub)
    _tsig_parser(sub)
    _update_parser(sub)
    _dnssec_parser(sub)
    _backup_parsers(sub)
    _reconcile_parser(sub)
    _command(_group(sub, "events", "the sink's sources"), "status",
             "each message-bus source of every serve process: connected or why not, messages, last error, lag")
    _record_parser(sub)
    return parser


def _serve_parser(sub) -> argparse.ArgumentParser:
    s = sub.add_parser("serve", help="serve DNS", description=SERVE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _database_flags(s)
    return _add(s, *SERVE_FLAGS)


def _check_parser(sub, serve: argparse.ArgumentParser) -> None:
    c = sub.add_parser("check", help="check the configuration and database; print what serve would do",
                       description="Load the configuration as serve does (the same flags), reach its database, "
                                   "test its addresses, and say what serve would do. Exit 0 when serve would start.")  # fmt: skip
    for action in serve._actions[1:]:  # serve's flags, after its -h
        c._add_action(action)


def _zone_parser(sub) -> None:
    z = _group(sub, "zone", "zones in the database")
    _command(z, "import", "create a zone from a zone file (all of it or nothing)", flag("file", metavar="FILE"),
             flag("--origin", metavar="NAME", help="the zone's name (default: the file's $ORIGIN or first owner)"),
             flag("--progress", action="store_true", help="show progress even when stderr is not a terminal"))  # fmt: skip
    name = flag("name", metavar="NAME")
    _command(z, "export", "print a zone as zone-file text", name)
    _command(z, "list", "list zones with their serials")
    _command(z, "delete", "delete a zone and all its records", name)
    _command(z, "status", "a zone's propagation: its status and each secondary's serial", name)
    _command(z, "history", "a zone's latest changes: serials, when, what made them (update:KEY for a dynamic UPDATE)",
             name, flag("--limit", type=int, default=20, help="how many, newest first (default 20)"))  # fmt: skip
    _command(z, "allow-transfer", "set who may transfer a zone (prefixes, key:NAME); none given → the default", name,
             flag("entries", metavar="ENTRY", nargs="*", help="address prefix (192.0.2.0/24, ::1) or key:KEYNAME"),
             flag("--nobody", action="store_true", help="allow no one (an empty list, not the default)"))  # fmt: skip
    sec = _group(z, "secondary", "a zone's own secondaries (NOTIFYed, allowed to transfer)", dest="secondary_action")
    for action, text in (("add", "add or update a secondary"), ("delete", "remove a secondary"), ("list", "list them")):
        flags = [flag("name", metavar="ZONE")]
        if action != "list":
            flags += [flag("address", metavar="ADDRESS"), flag("--port", type=int, default=53, help="its DNS port (default 53)")]
        if action == "add":
            flags.append(SECONDARY_KEY_FLAG)
        _command(sec, action, text, *flags)


def _catalog_parser(sub) -> None:
    _command(_group(sub, "catalog", "catalog zones (RFC 9432)"), "create",
             "create a catalog zone listing the zones (present and future) that match",
             flag("name", metavar="NAME", help="the catalog zone's name, e.g. catalog.invalid."),
             flag("--member", action="append", dest="members", metavar="PATTERN",
                  help="zones it lists, as name patterns (*.example.org.); repeat for more (default: every zone)"),
             flag("--email", default="hostmaster@invalid", help="SOA RNAME mailbox (default hostmaster@invalid)"),
             flag("--pool", metavar="POOL", help="list only the zones of this pool (name or id)"))  # fmt: skip


def _pool_parser(sub) -> None:
    po = _group(sub, "pool", "pools: the NS records and secondaries of their zones")
    pool = flag("pool", metavar="POOL")
    _command(po, "list", "list pools with their NS records, targets and zone counts")
    _command(po, "create", "create a pool", flag("pool", metavar="NAME"),
             flag("ns", metavar="HOST[:PRIORITY]", nargs="+", help="its NS records, absolute names (ns1.example.net.)"),
             flag("--description"))  # fmt: skip
    _command(po, "set-ns", "set a pool's NS records; every zone of the pool follows (new serial, NOTIFY)",
             flag("pool", metavar="POOL", help="pool name or id (default: the default pool)"),
             flag("ns", metavar="HOST[:PRIORITY]", nargs="+", help="absolute names; priority 1 first (the SOA MNAME)"))  # fmt: skip
    _command(po, "move-zone", "move a zone to the pool (its pool-made NS and SOA MNAME follow)", pool,
             flag("zone", metavar="ZONE"))
    _command(po, "delete", "delete a pool that has no zones", pool)
    for action, text in (("add", "add or update a target (a secondary of every zone of the pool)"),
                         ("delete", "remove a target")):  # fmt: skip
        flags = [pool, flag("address", metavar="ADDRESS"), flag("--port", type=int, default=53, help="its DNS port (default 53)")]
        _command(po, f"target-{action}", text, *flags, *([SECONDARY_KEY_FLAG] if action == "add" else []))


def _token_parser(sub) -> None:
    tk = _group(sub, "token", "API tokens")
    _command(tk, "create", "make a token (printed once; only its hash is stored)",
             flag("--project", required=True, help="the project (tenant) it acts for"),
             flag("--role", required=True, choices=["admin", "member", "reader", "ingest"]), flag("--description"))  # fmt: skip
    _command(tk, "list", "list tokens (never the tokens themselves)")
    _command(tk, "delete", "revoke a token by its id", flag("token_id", metavar="ID"))


def _tsig_parser(sub) -> None:
    t = _group(sub, "tsig", "TSIG keys in the database")
    _command(t, "add", "store a key (a random secret unless given); prints the secret once", flag("keyname", metavar="NAME"),
             flag("--algorithm", default="hmac-sha256", help="hmac-sha256 (default), hmac-sha384, hmac-sha512, hmac-sha1, hmac-md5"),
             flag("--secret", metavar="BASE64", help="the secret (default: 32 random octets)"))  # fmt: skip
    _command(t, "list", "list keys (names and algorithms, never secrets)")
    _command(t, "delete", "delete a key no secondary uses", flag("keyname", metavar="NAME"))


def _update_parser(sub) -> None:
    g = _group(_group(sub, "update", "dynamic UPDATE (RFC 2136)"), "grant", "who may UPDATE what: the grants in the "
               "database, read after the configuration's [[update_grants]]; the first that matches decides",
               dest="grant_action")  # fmt: skip
    _command(g, "add", "add a grant (at the end, or at --position)",
             flag("--key", required=True, metavar="KEYNAME", help="the TSIG key it is for"),
             flag("--zone", metavar="ZONE", help="the zone it applies in (default: every zone)"),
             flag("--match", required=True, choices=MATCHES,
                  help="the owners: name (the pattern), subdomain (the pattern and below), wildcard (*.P: below P), "
                       "self (the key's name), selfsub (the key's name and below), zone (any)"),
             flag("--pattern", metavar="NAME", help="the name for name, subdomain and wildcard"),
             flag("--types", metavar="TYPES", help="the types it covers, e.g. A,AAAA,TXT (default: every type)"),
             flag("--deny", action="store_true", help="refuse what it matches (default: allow)"),
             flag("--managed", action="store_true", help="also the records the event sink made"),
             flag("--position", type=int, metavar="N", help="insert as the Nth grant (1: read first)"),
             flag("--description"))  # fmt: skip
    _command(g, "list", "list the grants in the order they are read",
             flag("--key", metavar="KEYNAME", help="only this key's"),
             flag("--zone", metavar="ZONE", help="only those that apply in this zone (its own and every zone's)"))  # fmt: skip
    _command(g, "delete", "delete a grant (the ones after it move up)", flag("grant_id", metavar="ID"))


def _dnssec_parser(sub) -> None:
    k = _group(sub, "dnssec", "DNSSEC signing of zones (keys sealed under the master key)")
    _dnssec_enable_parser(k)
    _dnssec_nsec3_parser(k)
    _dnssec_rollover_parsers(k)
    for action, text in (("disable", "stop signing a zone: delete its keys, DNSKEY, CDS and CDNSKEY (remove the DS first)"),
                         ("status", "a zone's keys (role, algorithm, tag, state, dates) and rollovers in progress"),
                         ("ds", "DS (SHA-256) and DNSKEY records to give the parent")):
        _command(k, action, text, flag("zone", metavar="ZONE"))


def _dnssec_enable_parser(k) -> None:
    p = k.add_parser("enable", help="sign a zone: make its keys, publish DNSKEY, CDS and CDNSKEY", description=DB_HELP)
    p.add_argument("zone", metavar="ZONE")
    p.add_argument("--algorithm", default="ecdsap256sha256", choices=["ecdsap256sha256", "ed25519", "rsasha256"],
                   help="signing algorithm (default ecdsap256sha256)")
    roles = p.add_mutually_exclusive_group()
    roles.add_argument("--csk", dest="split", action="store_false", help="one combined signing key (the default)")
    roles.add_argument("--ksk-zsk", dest="split", action="store_true", help="a key-signing and a zone-signing key")
    p.set_defaults(split=False)
    p.add_argument("--nsec3-opt-out", action="store_true",
                   help="NSEC3 opt-out (RFC 5155 §6): delegations without a DS get no NSEC3 record")
    _add(p, MASTER_KEY_FLAG)
    _database_flags(p)


def _dnssec_nsec3_parser(k) -> None:
    opt = k.add_parser("nsec3", help="a signed zone's NSEC3 opt-out on or off (the chain is made anew)", description=DB_HELP)
    opt.add_argument("zone", metavar="ZONE")
    onoff = opt.add_mutually_exclusive_group(required=True)
    onoff.add_argument("--opt-out", dest="optout", action="store_true", help="delegations without a DS left out")
    onoff.add_argument("--no-opt-out", dest="optout", action="store_false", help="every delegation in the chain")
    _add(opt, MASTER_KEY_FLAG)
    _database_flags(opt)


def _dnssec_rollover_parsers(k) -> None:
    roll = k.add_parser("rollover", help="roll a zone's ZSK (pre-publication, automatic) or its KSK/CSK (double-RRset "
                        "with CDS/CDNSKEY; finished after `dnssec ds-seen`)", description=DB_HELP)
    roll.add_argument("zone", metavar="ZONE")
    which = roll.add_mutually_exclusive_group(required=True)
    which.add_argument("--zsk", dest="key", action="store_const", const="zsk", help="the zone-signing key")
    which.add_argument("--ksk", dest="key", action="store_const", const="ksk",
                       help="the key-signing key, or in a zone signed with one combined key, the CSK")
    seen = k.add_parser("ds-seen", help="the parent serves the new key's DS and its TTL has passed: let a KSK/CSK "
                        "rollover finish", description=DB_HELP)
    seen.add_argument("zone", metavar="ZONE")
    adv = k.add_parser("advance", help="take every key rollover step now due, for all zones (for cron; "
                       "`serve` does it every minute)", description=DB_HELP)
    for p in (roll, seen, adv):
        _add(p, MASTER_KEY_FLAG, flag("--dnssec-rollover-margin", type=int, metavar="SECONDS",
                                      help="seconds added to each TTL-made wait (as for serve) [dnssec_rollover_margin]"))
        _database_flags(p)


def _backup_parsers(sub) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("backup", help="write the database and the DNSSEC master key to one file",
                       description=BACKUP_HELP, formatter_class=raw)
    _add(p, flag("file", metavar="FILE", help="the backup file to write (replaced only once it is whole; mode 0600)"),
         MASTER_KEY_FLAG)
    _database_flags(p)
    p = sub.add_parser("restore", help="load a backup into an empty database, with its DNSSEC master key",
                       description=RESTORE_HELP, formatter_class=raw)
    p.add_argument("file", metavar="FILE", help="a file written by `minidns backup`")
    p.add_argument("--force", action="store_true",
                   help="replace what the target database holds (in the restore's own transaction), and a different "
                        "master key file (kept beside as master.key.replaced-<time>)")
    p.add_argument("--dnssec-master-key-file", metavar="FILE",
                   help="where to write the backup's master key (and where serve reads it); default: master.key in "
                        "--data-dir, for the embedded database [dnssec_master_key_file]")
    _database_flags(p)


def _reconcile_parser(sub) -> None:
    _command(sub, "reconcile", "remove event-made records of resources that no longer exist",
             flag("source", metavar="SOURCE", help="nova, neutron or cloudstack"),
             flag("ids", metavar="ID", nargs="*", help="ids of the resources that exist"),
             flag("--ids-file", metavar="FILE", help="more ids, one a line ('-': standard input)"),
             flag("--resource-type", metavar="TYPE", help="default: instance (nova), floatingip (neutron), vm (cloudstack)"),
             flag("--dry-run", action="store_true", help="say what would be removed; change nothing"),
             description="Given the ids of the resources of SOURCE that exist now, remove the records events "
                         "made for every other one (as POST /v1/reconcile does), and print what was removed. "
                         + DB_HELP)  # fmt: skip


def _record_parser(sub) -> None:
    r = _group(sub, "record", "quick record edits")
    for action, text in (("add", "add a record (the TTL applies to its whole RRset)"),
                         ("delete", "delete a record (its TTL is not compared)")):
        _command(r, action, text, flag("zone", metavar="ZONE"),
                 flag("name", metavar="NAME", help="owner, absolute or relative to the zone; @ for the apex"),
                 flag("type", metavar="TYPE"), flag("ttl", metavar="TTL", type=int),
                 flag("data", metavar="DATA", nargs="+", help="record data in zone-file form"))  # fmt: skip


def _config(args, keys: tuple[str, ...]):
    overrides = {k: v for k, v in vars(args).items() if k in keys}
    if overrides.get("database_url") is None and os.environ.get("MINIDNS_DATABASE_URL"):
        overrides["database_url"] = os.environ["MINIDNS_DATABASE_URL"]
    return load_config(args.config, overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = _config(args, tuple(FIELDS))
    except ConfigError as e:
        print(f"minidns: configuration error: {e}", file=sys.stderr)
        return 2
    from .server.logs import setup_logging

    setup_logging(config.log_level, config.log_format)
    if args.command == "serve":
        from .server.app import serve
        from .store.db import DatabaseError

        services = []
        if config.api:
            from .admin.app import ApiService

            services.append(ApiService(config))
        from .server.buses import BusService, wanted

        if wanted(config):
            services.insert(0, BusService(config))  # stopped first: its batch in hand committed while the API still serves
        try:
            serve(config, services, reload_config=lambda: _config(args, tuple(FIELDS)))
        except (OSError, DatabaseError) as e:
            logging.getLogger("minidns").error("cannot serve: %s", e)
            return 1
        return 0
    if args.command != "serve" and config.log_level == "info":
        logging.getLogger().setLevel(logging.WARNING)  # commands print their results, not logs
    if args.command == "check":
        from .check import run_check

        return asyncio.run(run_check(config, args.config))
    from .commands import run_command

    return asyncio.run(run_command(args, config))


if __name__ == "__main__":
    sys.exit(main())
