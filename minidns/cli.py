"""The `minidns` command."""

from __future__ import annotations

import argparse
import logging
import sys

from .server.config import ConfigError, load_config

SERVE_HELP = """\
Serve authoritative DNS over UDP and TCP from zone files.

Every flag can also be set in the TOML file given with --config, under the key named in brackets;
a flag given on the command line wins over the file. With no zone file, a small example zone
(example.com.) shipped with minidns is served.

SIGHUP re-reads the zone files and swaps each changed zone in atomically (a file that no longer
parses leaves its zone serving as it was); SIGTERM or SIGINT stop the server.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minidns", description="An authoritative DNS server.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve DNS", description=SERVE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--config", metavar="FILE", help="TOML configuration file")
    s.add_argument("--zone-file", action="append", dest="zone_files", metavar="[ORIGIN=]PATH",
                   help="zone file to serve; repeat for more; the origin comes from the file's $ORIGIN or "
                        "SOA unless given [zone_files]")
    s.add_argument("--listen", action="append", metavar="HOST:PORT",
                   help="address to serve on, UDP and TCP; [V6]:PORT for IPv6; repeat for more "
                        "(default 127.0.0.1:5353) [listen]")
    s.add_argument("--edns-payload", type=int, metavar="OCTETS", help="our EDNS UDP payload size (default 1232) [edns_payload]")
    s.add_argument("--nsid", help="NSID returned to clients that ask (RFC 5001) [nsid]")
    s.add_argument("--version-string", dest="version", metavar="TEXT", help="answer for CH TXT version.bind [version]")
    s.add_argument("--identity", metavar="TEXT", help="answer for CH TXT id.server and hostname.bind [identity]")
    s.add_argument("--query-log", action="store_const", const=True, help="log every query [query_log]")
    s.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level (default info) [log_level]")
    s.add_argument("--tcp-idle-timeout", type=float, metavar="SECONDS", help="close idle TCP connections after this (default 10) [tcp_idle_timeout]")
    s.add_argument("--tcp-max-connections", type=int, metavar="N", help="most TCP connections at once (default 1000) [tcp_max_connections]")
    s.add_argument("--cache-entries", type=int, metavar="N", help="rendered replies kept for the fast path (default 200000) [cache_entries]")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
        try:
            config = load_config(args.config, overrides)
        except ConfigError as e:
            print(f"minidns: configuration error: {e}", file=sys.stderr)
            return 2
        logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from .server.app import serve

        try:
            serve(config)
        except OSError as e:
            logging.getLogger("minidns").error("cannot serve: %s", e)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
