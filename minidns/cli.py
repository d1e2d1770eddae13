"""The `minidns` command: `serve`, and the commands that read and change zones in the database."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from .server.config import ConfigError, load_config

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
allow-transfer`).

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


def _database_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument("--database-url", metavar="URL",
                   help="PostgreSQL to use (also $MINIDNS_DATABASE_URL); unset → the embedded one [database_url]")
    p.add_argument("--data-dir", metavar="DIR", help="data directory of the embedded PostgreSQL [data_dir]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minidns", description="An authoritative DNS server.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve DNS", description=SERVE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _database_flags(s)
    s.add_argument("--zone-file", action="append", dest="zone_files", metavar="[ORIGIN=]PATH",
                   help="zone file to serve read-only; repeat for more; the origin comes from the file's $ORIGIN or "
                        "SOA unless given [zone_files]")
    s.add_argument("--listen", action="append", metavar="HOST:PORT",
                   help="address to serve on, UDP and TCP; [V6]:PORT for IPv6; repeat for more "
                        "(default 127.0.0.1:5353) [listen]")
    s.add_argument("--no-db-upgrade", dest="db_upgrade", action="store_const", const=False,
                   help="do not apply schema migrations at start; refuse to start if they are missing [db_upgrade]")
    s.add_argument("--db-poll", dest="db_listen", action="store_const", const=False,
                   help="poll the change log instead of LISTEN (for a physical replica) [db_listen]")
    s.add_argument("--db-check-interval", type=float, metavar="SECONDS",
                   help="seconds between full serial checks against the database (default 30) [db_check_interval]")
    s.add_argument("--serial-policy", choices=["increment", "unixtime", "date"],
                   help="serial policy for new zones (default increment) [serial_policy]")
    s.add_argument("--pool-nameserver", dest="pool_nameservers", action="append", metavar="HOST[:PRIORITY]",
                   help="an NS record of the default pool, written at the apex of its zones; repeat for more "
                        "(default: as stored, first start: this host's name) [pool_nameservers]")
    s.add_argument("--change-log-keep", type=int, metavar="N", help="change-log rows kept per zone (default 1000) [change_log_keep]")
    s.add_argument("--change-log-max-age", type=int, metavar="SECONDS",
                   help="seconds a change-log row is kept (default 604800) [change_log_max_age]")
    s.add_argument("--edns-payload", type=int, metavar="OCTETS", help="our EDNS UDP payload size (default 1232) [edns_payload]")
    s.add_argument("--nsid", help="NSID returned to clients that ask (RFC 5001) [nsid]")
    s.add_argument("--version-string", dest="version", metavar="TEXT", help="answer for CH TXT version.bind [version]")
    s.add_argument("--identity", metavar="TEXT", help="answer for CH TXT id.server and hostname.bind [identity]")
    s.add_argument("--query-log", action="store_const", const=True, help="log every query [query_log]")
    s.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level (default info) [log_level]")
    s.add_argument("--log-format", choices=["text", "json"],
                   help="log lines as text, or JSON objects (time, level, logger, message, fields) (default text) [log_format]")
    s.add_argument("--query-log-sample", type=float, metavar="SHARE",
                   help="share of queries the query log writes, e.g. 0.01 for one in a hundred (default 1) [query_log_sample]")
    s.add_argument("--heartbeat-name", metavar="NAME",
                   help="write a TXT at NAME.<zone> with the serial and time of each commit, e.g. _heartbeat "
                        "(default: none) [heartbeat_name]")
    s.add_argument("--heartbeat-interval", type=float, metavar="SECONDS",
                   help="a zone unchanged this long gets a heartbeat change (default 60) [heartbeat_interval]")
    s.add_argument("--tcp-idle-timeout", type=float, metavar="SECONDS", help="close idle TCP connections after this (default 10) [tcp_idle_timeout]")
    s.add_argument("--tcp-max-connections", type=int, metavar="N", help="most TCP connections at once (default 1000) [tcp_max_connections]")
    s.add_argument("--workers", type=int, metavar="N",
                   help="DNS processes sharing the listen ports (SO_REUSEPORT), each with its own copy of the zones; "
                        "0: one per CPU when serving port 53, else 1 (default 0) [workers]")
    s.add_argument("--cache-entries", type=int, metavar="N", help="rendered replies kept for the fast path (default 200000) [cache_entries]")
    s.add_argument("--tcp-max-per-client", type=int, metavar="N",
                   help="most TCP connections at once from one client address (default 64) [tcp_max_per_client]")
    s.add_argument("--tcp-query-timeout", type=float, metavar="SECONDS",
                   help="close a TCP connection whose started message is not whole after this (default 5) [tcp_query_timeout]")
    s.add_argument("--xfr-max-concurrent", type=int, metavar="N",
                   help="zone transfers sent at once; more get SERVFAIL (default 10) [xfr_max_concurrent]")
    s.add_argument("--rrl-responses-per-second", type=int, metavar="N",
                   help="response rate limiting over UDP: replies a second to one client prefix for one question; "
                        "0 turns RRL off (the default) [rrl_responses_per_second]")
    s.add_argument("--rrl-errors-per-second", type=int, metavar="N",
                   help="error replies a second to one client prefix (default 0: as --rrl-responses-per-second) [rrl_errors_per_second]")
    s.add_argument("--rrl-nxdomains-per-second", type=int, metavar="N",
                   help="NXDOMAIN and NODATA replies a second to one client prefix for one zone (default 0: as "
                        "--rrl-responses-per-second) [rrl_nxdomains_per_second]")
    s.add_argument("--rrl-slip", type=int, metavar="N",
                   help="every Nth rate-limited reply is sent truncated, so real clients retry over TCP; the others "
                        "are dropped; 0 drops all (default 2) [rrl_slip]")
    s.add_argument("--rrl-window", type=int, metavar="SECONDS", help="seconds of rate history kept (default 15) [rrl_window]")
    s.add_argument("--rrl-ipv4-prefix", type=int, metavar="BITS", help="IPv4 client prefix length (default 24) [rrl_ipv4_prefix]")
    s.add_argument("--rrl-ipv6-prefix", type=int, metavar="BITS", help="IPv6 client prefix length (default 56) [rrl_ipv6_prefix]")
    s.add_argument("--rrl-exempt", action="append", metavar="PREFIX", help="client prefix never rate limited; repeat for more [rrl_exempt]")
    s.add_argument("--rrl-max-table", type=int, metavar="N",
                   help="rate accounts kept at most, least recently used dropped (default 100000) [rrl_max_table]")
    s.add_argument("--cookie-secret", metavar="HEX",
                   help="DNS cookie secret, 16 octets in hex; servers of one anycast set must share it (default: "
                        "random at each start) [cookie_secret]")
    s.add_argument("--api-listen", metavar="HOST:PORT", help="address of the HTTP API (default 127.0.0.1:9001) [api_listen]")
    s.add_argument("--api-max-requests", type=int, metavar="N",
                   help="API requests worked on at once; more are answered 503 with Retry-After (default 256) [api_max_requests]")
    s.add_argument("--no-api", dest="api", action="store_const", const=False, help="do not serve the HTTP API [api]")
    s.add_argument("--events-zone", metavar="ZONE",
                   help="zone of the records made from Nova and Neutron events (of projects without their own zone, see --events-zone-suffix); may use %%(project_id)s [events_zone]")
    s.add_argument("--events-zone-suffix", metavar="SUFFIX",
                   help="one zone per project, <project id>.SUFFIX, used when it exists [events_zone_suffix]")
    s.add_argument("--no-events-ptr", dest="events_ptr", action="store_const", const=False,
                   help="make no PTR records for event records [events_ptr]")
    s.add_argument("--events-create-ptr-zones", action="store_const", const=True,
                   help="create the reverse zone (/24, /64) for an event's PTR when none exists [events_create_ptr_zones]")
    s.add_argument("--cloudstack-common-zone", metavar="ZONE",
                   help="zone of CloudStack VMs whose account and domain have no network domain [cloudstack_common_zone]")
    s.add_argument("--events-region", metavar="REGION",
                   help="region under which Neutron's floating IPs are offered in /v2/reverse/floatingips; \"\" for none (default RegionOne) [events_region]")
    s.add_argument("--events-max-pending", type=int, metavar="N",
                   help="events queued or being applied at once; more are answered 503 with Retry-After (default 10000) [events_max_pending]")
    s.add_argument("--events-keep-days", type=float, metavar="DAYS",
                   help="keep events and tombstones of deleted resources this long; 0 for ever (default 30) [events_keep_days]")
    s.add_argument("--dnssec-master-key-file", metavar="FILE",
                   help="file holding the base64 DNSSEC master key that seals zones' private keys ($MINIDNS_MASTER_KEY "
                        "wins over it; default: master.key in --data-dir, for the embedded database) [dnssec_master_key_file]")
    s.add_argument("--dnssec-rollover-margin", type=int, metavar="SECONDS",
                   help="seconds added to each wait of a DNSSEC key rollover that the TTLs make (DNSKEY TTL, the "
                        "zone's largest TTL), for propagation to secondaries and safety; the server takes due "
                        "rollover steps every minute (default 3600) [dnssec_rollover_margin]")
    s.add_argument("--allow-transfer", action="append", metavar="PREFIX|key:NAME",
                   help="who may transfer zones; repeat for more (default 127.0.0.0/8 and ::1) [allow_transfer]")
    s.add_argument("--no-notify", dest="notify", action="store_const", const=False,
                   help="send no NOTIFY to secondaries [notify]")
    s.add_argument("--notify-retries", type=int, metavar="N", help="NOTIFY attempts per change and secondary (default 5) [notify_retries]")
    s.add_argument("--notify-timeout", type=float, metavar="SECONDS",
                   help="seconds before the first NOTIFY retry, doubled each time (default 1) [notify_timeout]")
    s.add_argument("--notify-rate", type=int, metavar="N", help="NOTIFY messages per second at most (default 1000) [notify_rate]")
    s.add_argument("--propagation-timeout", type=float, metavar="SECONDS",
                   help="seconds before a zone its secondaries have not taken goes to ERROR (default 60) [propagation_timeout]")
    s.add_argument("--propagation-share", type=float, metavar="SHARE",
                   help="share of a zone's secondaries that must have a change for ACTIVE (default 1.0) [propagation_share]")
    s.add_argument("--renotify-interval", type=float, metavar="SECONDS",
                   help="seconds until a secondary still behind is NOTIFYed again, doubling; 0: never (default 10) "
                        "[renotify_interval]")

    c = sub.add_parser("check", help="check the configuration and database; print what serve would do",
                       description="Load the configuration as serve does (the same flags), reach its database, "
                                   "test its addresses, and say what serve would do. Exit 0 when serve would start.")  # fmt: skip
    for action in s._actions[1:]:  # serve's flags, after its -h
        c._add_action(action)

    d = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    _database_flags(d.add_parser("upgrade", help="apply the schema migrations the database lacks", description=DB_HELP))

    z = sub.add_parser("zone", help="zones in the database").add_subparsers(dest="action", required=True)
    p = z.add_parser("import", help="create a zone from a zone file (all of it or nothing)", description=DB_HELP)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--origin", metavar="NAME", help="the zone's name (default: the file's $ORIGIN or first owner)")
    p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    _database_flags(p)
    p = z.add_parser("export", help="print a zone as zone-file text", description=DB_HELP)
    p.add_argument("name", metavar="NAME")
    _database_flags(p)
    _database_flags(z.add_parser("list", help="list zones with their serials", description=DB_HELP))
    p = z.add_parser("delete", help="delete a zone and all its records", description=DB_HELP)
    p.add_argument("name", metavar="NAME")
    _database_flags(p)

    p = z.add_parser("status", help="a zone's propagation: its status and each secondary's serial", description=DB_HELP)
    p.add_argument("name", metavar="NAME")
    _database_flags(p)
    p = z.add_parser("allow-transfer", help="set who may transfer a zone (prefixes, key:NAME); none given → the default",
                     description=DB_HELP)
    p.add_argument("name", metavar="NAME")
    p.add_argument("entries", metavar="ENTRY", nargs="*", help="address prefix (192.0.2.0/24, ::1) or key:KEYNAME")
    p.add_argument("--nobody", action="store_true", help="allow no one (an empty list, not the default)")
    _database_flags(p)
    sec = z.add_parser("secondary", help="a zone's own secondaries (NOTIFYed, allowed to transfer)").add_subparsers(
        dest="secondary_action", required=True)
    for action, text in (("add", "add or update a secondary"), ("delete", "remove a secondary"), ("list", "list them")):
        p = sec.add_parser(action, help=text, description=DB_HELP)
        p.add_argument("name", metavar="ZONE")
        if action != "list":
            p.add_argument("address", metavar="ADDRESS")
            p.add_argument("--port", type=int, default=53, help="its DNS port (default 53)")
        if action == "add":
            p.add_argument("--key", metavar="KEYNAME", help="TSIG key (stored with `minidns tsig add`) to sign NOTIFY with")
        _database_flags(p)

    c = sub.add_parser("catalog", help="catalog zones (RFC 9432)").add_subparsers(dest="action", required=True)
    p = c.add_parser("create", help="create a catalog zone listing the zones (present and future) that match",
                     description=DB_HELP)
    p.add_argument("name", metavar="NAME", help="the catalog zone's name, e.g. catalog.invalid.")
    p.add_argument("--member", action="append", dest="members", metavar="PATTERN",
                   help="zones it lists, as name patterns (*.example.org.); repeat for more (default: every zone)")
    p.add_argument("--email", default="hostmaster@invalid", help="SOA RNAME mailbox (default hostmaster@invalid)")
    p.add_argument("--pool", metavar="POOL", help="list only the zones of this pool (name or id)")
    _database_flags(p)

    po = sub.add_parser("pool", help="pools: the NS records and secondaries of their zones").add_subparsers(
        dest="action", required=True)
    _database_flags(po.add_parser("list", help="list pools with their NS records, targets and zone counts", description=DB_HELP))
    p = po.add_parser("create", help="create a pool", description=DB_HELP)
    p.add_argument("pool", metavar="NAME")
    p.add_argument("ns", metavar="HOST[:PRIORITY]", nargs="+", help="its NS records, absolute names (ns1.example.net.)")
    p.add_argument("--description")
    _database_flags(p)
    p = po.add_parser("set-ns", help="set a pool's NS records; every zone of the pool follows (new serial, NOTIFY)",
                      description=DB_HELP)
    p.add_argument("pool", metavar="POOL", help="pool name or id (default: the default pool)")
    p.add_argument("ns", metavar="HOST[:PRIORITY]", nargs="+", help="absolute names; priority 1 first (the SOA MNAME)")
    _database_flags(p)
    p = po.add_parser("move-zone", help="move a zone to the pool (its pool-made NS and SOA MNAME follow)",
                      description=DB_HELP)
    p.add_argument("pool", metavar="POOL")
    p.add_argument("zone", metavar="ZONE")
    _database_flags(p)
    p = po.add_parser("delete", help="delete a pool that has no zones", description=DB_HELP)
    p.add_argument("pool", metavar="POOL")
    _database_flags(p)
    for action, text in (("add", "add or update a target (a secondary of every zone of the pool)"),
                         ("delete", "remove a target")):  # fmt: skip
        p = po.add_parser(f"target-{action}", help=text, description=DB_HELP)
        p.add_argument("pool", metavar="POOL")
        p.add_argument("address", metavar="ADDRESS")
        p.add_argument("--port", type=int, default=53, help="its DNS port (default 53)")
        if action == "add":
            p.add_argument("--key", metavar="KEYNAME", help="TSIG key (stored with `minidns tsig add`) to sign NOTIFY with")
        _database_flags(p)

    tk = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    p = tk.add_parser("create", help="make a token (printed once; only its hash is stored)", description=DB_HELP)
    p.add_argument("--project", required=True, help="the project (tenant) it acts for")
    p.add_argument("--role", required=True, choices=["admin", "member", "reader", "ingest"])
    p.add_argument("--description")
    _database_flags(p)
    _database_flags(tk.add_parser("list", help="list tokens (never the tokens themselves)", description=DB_HELP))
    p = tk.add_parser("delete", help="revoke a token by its id", description=DB_HELP)
    p.add_argument("token_id", metavar="ID")
    _database_flags(p)

    t = sub.add_parser("tsig", help="TSIG keys in the database").add_subparsers(dest="action", required=True)
    p = t.add_parser("add", help="store a key (a random secret unless given); prints the secret once", description=DB_HELP)
    p.add_argument("keyname", metavar="NAME")
    p.add_argument("--algorithm", default="hmac-sha256", help="hmac-sha256 (default), hmac-sha384, hmac-sha512, hmac-sha1, hmac-md5")
    p.add_argument("--secret", metavar="BASE64", help="the secret (default: 32 random octets)")
    _database_flags(p)
    _database_flags(t.add_parser("list", help="list keys (names and algorithms, never secrets)", description=DB_HELP))
    p = t.add_parser("delete", help="delete a key no secondary uses", description=DB_HELP)
    p.add_argument("keyname", metavar="NAME")
    _database_flags(p)

    k = sub.add_parser("dnssec", help="DNSSEC signing of zones (keys sealed under the master key)").add_subparsers(
        dest="action", required=True)
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
    p.add_argument("--dnssec-master-key-file", metavar="FILE", help="the master key file (as for serve) [dnssec_master_key_file]")
    _database_flags(p)
    opt = k.add_parser("nsec3", help="a signed zone's NSEC3 opt-out on or off (the chain is made anew)", description=DB_HELP)
    opt.add_argument("zone", metavar="ZONE")
    onoff = opt.add_mutually_exclusive_group(required=True)
    onoff.add_argument("--opt-out", dest="optout", action="store_true", help="delegations without a DS left out")
    onoff.add_argument("--no-opt-out", dest="optout", action="store_false", help="every delegation in the chain")
    opt.add_argument("--dnssec-master-key-file", metavar="FILE", help="the master key file (as for serve) [dnssec_master_key_file]")
    _database_flags(opt)
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
        p.add_argument("--dnssec-master-key-file", metavar="FILE", help="the master key file (as for serve) [dnssec_master_key_file]")
        p.add_argument("--dnssec-rollover-margin", type=int, metavar="SECONDS",
                       help="seconds added to each TTL-made wait (as for serve) [dnssec_rollover_margin]")
        _database_flags(p)
    for action, text in (("disable", "stop signing a zone: delete its keys, DNSKEY, CDS and CDNSKEY (remove the DS first)"),
                         ("status", "a zone's keys (role, algorithm, tag, state, dates) and rollovers in progress"),
                         ("ds", "DS (SHA-256) and DNSKEY records to give the parent")):
        p = k.add_parser(action, help=text, description=DB_HELP)
        p.add_argument("zone", metavar="ZONE")
        _database_flags(p)

    p = sub.add_parser("backup", help="write the database and the DNSSEC master key to one file",
                       description=BACKUP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="the backup file to write (replaced only once it is whole; mode 0600)")
    p.add_argument("--dnssec-master-key-file", metavar="FILE", help="the master key file (as for serve) [dnssec_master_key_file]")
    _database_flags(p)
    p = sub.add_parser("restore", help="load a backup into an empty database, with its DNSSEC master key",
                       description=RESTORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="a file written by `minidns backup`")
    p.add_argument("--force", action="store_true",
                   help="replace what the target database holds (in the restore's own transaction), and a different "
                        "master key file (kept beside as master.key.replaced-<time>)")
    p.add_argument("--dnssec-master-key-file", metavar="FILE",
                   help="where to write the backup's master key (and where serve reads it); default: master.key in "
                        "--data-dir, for the embedded database [dnssec_master_key_file]")
    _database_flags(p)

    p = sub.add_parser("reconcile", help="remove event-made records of resources that no longer exist",
                       description="Given the ids of the resources of SOURCE that exist now, remove the records events "
                                   "made for every other one (as POST /v1/reconcile does), and print what was removed. "
                                   + DB_HELP)  # fmt: skip
    p.add_argument("source", metavar="SOURCE", help="nova, neutron or cloudstack")
    p.add_argument("ids", metavar="ID", nargs="*", help="ids of the resources that exist")
    p.add_argument("--ids-file", metavar="FILE", help="more ids, one a line ('-': standard input)")
    p.add_argument("--resource-type", metavar="TYPE", help="default: instance (nova), floatingip (neutron), vm (cloudstack)")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed; change nothing")
    _database_flags(p)

    r = sub.add_parser("record", help="quick record edits").add_subparsers(dest="action", required=True)
    for action, text in (("add", "add a record (the TTL applies to its whole RRset)"),
                         ("delete", "delete a record (its TTL is not compared)")):
        p = r.add_parser(action, help=text, description=DB_HELP)
        p.add_argument("zone", metavar="ZONE")
        p.add_argument("name", metavar="NAME", help="owner, absolute or relative to the zone; @ for the apex")
        p.add_argument("type", metavar="TYPE")
        p.add_argument("ttl", metavar="TTL", type=int)
        p.add_argument("data", metavar="DATA", nargs="+", help="record data in zone-file form")
        _database_flags(p)
    return parser


def _config(args, keys: tuple[str, ...]):
    overrides = {k: v for k, v in vars(args).items() if k in keys}
    if overrides.get("database_url") is None and os.environ.get("MINIDNS_DATABASE_URL"):
        overrides["database_url"] = os.environ["MINIDNS_DATABASE_URL"]
    return load_config(args.config, overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .server.config import FIELDS

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
