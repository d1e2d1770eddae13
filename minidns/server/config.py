"""The one configuration schema: a TOML file, overridden by command-line flags, validated at load."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import tomllib
from dataclasses import dataclass


class ConfigError(ValueError):
    """A setting that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of `minidns serve`. The TOML keys are these field names."""

    listen: tuple[str, ...] = ("127.0.0.1:5353",)  # HOST:PORT or [V6]:PORT, served on UDP and TCP
    zone_files: tuple[str, ...] = ()  # PATH or ORIGIN=PATH, served read-only; alone, no database is used
    database_url: str | None = None  # PostgreSQL URL; unset (and no MINIDNS_DATABASE_URL) → the embedded one
    data_dir: str | None = None  # where the embedded PostgreSQL keeps its data; unset → the user's data dir
    db_upgrade: bool = True  # apply schema migrations at start
    db_listen: bool = True  # LISTEN for changes; false polls instead (a physical replica)
    db_check_interval: float = 30.0  # seconds between full serial checks against the database
    serial_policy: str = "increment"  # for new zones: increment, unixtime or date
    pool_nameservers: tuple[str, ...] = ()  # the default pool's NS records, "ns1.example.net." or with ":PRIORITY"; unset: kept as stored
    change_log_keep: int = 1000  # change-log rows kept per zone (a zone may say otherwise)
    change_log_max_age: int = 7 * 86400  # seconds a change-log row is kept
    edns_payload: int = 1232  # our EDNS UDP payload size (RFC 6891 §6.2.5)
    nsid: str | None = None  # NSID (RFC 5001) returned to clients that ask
    version: str | None = None  # CH TXT version.bind answer; unset → REFUSED
    identity: str | None = None  # CH TXT id.server / hostname.bind answer; unset → REFUSED
    query_log: bool = False  # one log line per query on logger minidns.query
    log_level: str = "info"
    log_format: str = "text"  # "text" lines, or "json": one object a line (time, level, logger, message, fields)
    query_log_sample: float = 1.0  # share of queries the query log writes (0.01: one in a hundred)
    heartbeat_name: str | None = None  # TXT <name>.<zone> with each commit's serial and time; unset: none
    heartbeat_interval: float = 60.0  # seconds: a zone unchanged this long gets a heartbeat change
    tcp_idle_timeout: float = 10.0  # seconds a TCP connection may sit idle (RFC 7766 §6.2.3)
    tcp_max_connections: int = 1000
    cache_entries: int = 200_000  # rendered replies kept for the fast path
    # Abuse resistance: TCP limits, zone transfers at once, response rate limiting (UDP), DNS cookies
    tcp_max_per_client: int = 64  # TCP connections at once from one client address
    tcp_query_timeout: float = 5.0  # seconds a started TCP message may take to arrive whole
    xfr_max_concurrent: int = 10  # zone transfers (AXFR, IXFR over TCP) sent at once; more get SERVFAIL
    rrl_responses_per_second: int = 0  # replies a second to one client prefix, per question; 0: RRL off
    rrl_errors_per_second: int = 0  # error replies a second to one prefix; 0: as rrl_responses_per_second
    rrl_nxdomains_per_second: int = 0  # NXDOMAIN/NODATA replies a second per prefix and zone; 0: as responses
    rrl_slip: int = 2  # every Nth limited reply is sent truncated (TC), the rest dropped; 0: all dropped
    rrl_window: int = 15  # seconds of over-limit history kept (how long limiting lasts after a flood)
    rrl_ipv4_prefix: int = 24  # clients in one IPv4 prefix of this length share their allowance
    rrl_ipv6_prefix: int = 56  # ... and in one IPv6 prefix of this length
    rrl_exempt: tuple[str, ...] = ()  # prefixes never rate limited
    rrl_max_table: int = 100_000  # rate accounts kept at most (the least recently used dropped)
    cookie_secret: str | None = None  # hex, 16 octets: the DNS cookie secret (RFC 9018); unset: random at start
    workers: int = 0  # DNS processes sharing the ports (SO_REUSEPORT); 0: one per CPU on port 53, else 1
    # Transfers and NOTIFY (RFC 5936, 1995, 1996, 8945)
    tsig_keys: tuple = ()  # [{name, algorithm, secret}]: keys besides those stored in the database
    allow_transfer: tuple[str, ...] = ("127.0.0.0/8", "::1")  # prefixes and "key:NAME" allowed AXFR/IXFR
    zone_allow_transfer: dict = dataclasses.field(default_factory=dict)  # {zone: [entries]} replacing the above
    secondaries: tuple = ()  # [{address, port=53, key, zones=["*"]}]: NOTIFYed and allowed to transfer
    notify: bool = True  # NOTIFY secondaries after each change
    notify_retries: int = 5  # NOTIFY attempts per change and secondary (RFC 1996 §3.6)
    notify_timeout: float = 1.0  # seconds before the first retry; doubled each time
    notify_rate: int = 1000  # NOTIFY messages sent per second at most, over all secondaries
    propagation_timeout: float = 60.0  # seconds until a zone no secondary confirmed goes to ERROR
    propagation_share: float = 1.0  # share of a zone's secondaries that must have a change for ACTIVE
    # Dynamic UPDATE (RFC 2136; server/updates.py): who may update is decided by update_grants
    update_require_tsig: bool = True  # unsigned updates are REFUSED (false: allowed from update_acl)
    update_acl: tuple[str, ...] = ()  # prefixes UPDATE is taken from; empty: any (signed) sender
    update_max_records: int = 5000  # records in one update's prerequisite and update sections at most
    update_max_queued: int = 1000  # updates waiting for one zone at most; more get SERVFAIL
    renotify_interval: float = 10.0  # seconds until a secondary still behind is NOTIFYed again, doubling; 0: never
    # Dynamic UPDATE (RFC 2136): who may change what, read before the database's grants; first match wins
    update_grants: tuple = ()  # [{key, zone, match, pattern, types, action, managed}] (xfr/grants.py)
    # The HTTP API (Designate v2 compatible) and event ingest
    api: bool = True  # serve the API (it needs the database)
    api_listen: str = "127.0.0.1:9001"  # HOST:PORT of the API
    api_max_requests: int = 256  # API requests worked on at once; more get 503 with Retry-After
    api_tokens: tuple = ()  # [{token, project, role}] besides those made with `minidns token create`
    # Event ingest (POST /v1/events): where Nova, Neutron and CloudStack records go and how they are named
    events_zone: str | None = None  # zone of Nova/Neutron records; may use %(project_id)s / %(project)s
    events_zone_suffix: str | None = None  # one zone per project, <project id>.<suffix>, when it exists; else events_zone
    events_templates: dict = dataclasses.field(default_factory=dict)  # {nova, neutron, neutron_unknown, cloudstack} → name template
    events_ptr: bool = True  # PTR records in the matching reverse zone when it exists
    events_create_ptr_zones: bool = False  # create that reverse zone (/24, /64) when it does not exist
    cloudstack_common_zone: str | None = None  # CloudStack VMs whose account and domain have no network domain
    events_region: str = "RegionOne"  # region of Neutron's floating IPs in /v2/reverse/floatingips; "": not offered
    events_max_pending: int = 10_000  # events queued or being applied at once; more get 503 with Retry-After
    events_keep_days: float = 30  # events (their outcomes, for idempotence) and tombstones kept this long; 0: for ever
    # The sink on the clouds' message buses (minidns/bus): OpenStack notifications and CloudStack events
    openstack_transport_url: tuple[str, ...] = ()  # oslo.messaging transport URLs (rabbit://...); empty: off
    openstack_exchanges: tuple[str, ...] = ("nova", "neutron")  # oslo control exchanges
    openstack_topics: tuple[str, ...] = ("notifications",)  # [oslo_messaging_notifications] topics
    openstack_priorities: tuple[str, ...] = ("info",)
    openstack_amqp_durable_queues: bool = False  # as the services' [oslo_messaging_rabbit] amqp_durable_queues
    bus_pool: str = "minidns"  # names the durable queues: processes with the same pool share the stream
    bus_prefetch: int = 100  # the bound of a batch (AMQP: twice as many unacknowledged)
    bus_quorum_queues: bool = False  # declare minidns's queues as quorum queues (replicated over a RabbitMQ cluster)
    bus_dead_letter_exchange: str | None = None  # failed messages are recorded and acked; with this, dead-lettered there
    bus_required: bool = False  # /readyz answers 503 while a configured bus source is disconnected
    cloudstack_transport_url: tuple[str, ...] = ()  # CloudStack's RabbitMQ event bus; empty: off
    cloudstack_exchange: str = "cloudstack-events"
    cloudstack_api_url: str | None = None  # e.g. http://mgmt:8080/client/api: completes VM events
    cloudstack_api_key: str | None = None
    cloudstack_secret_key: str | None = None
    cloudstack_kafka_bootstrap: tuple[str, ...] = ()  # CloudStack's Kafka event bus (host:port); empty: off
    cloudstack_kafka_topic: str = "cloudstack"
    cloudstack_kafka_group: str = "minidns"
    # DNSSEC (services/dnssec.py): the file holding the base64 master key that seals zones' private keys;
    # $MINIDNS_MASTER_KEY wins over it; neither → master.key in data_dir (the embedded database only)
    dnssec_master_key_file: str | None = None
    # DNSSEC key rollovers (services/rollover.py, RFC 7583): seconds added to each wait the TTLs make,
    # for the propagation to secondaries and safety
    dnssec_rollover_margin: int = 3600

    def __post_init__(self):
        """Refuse a setting that cannot be used; the checks run in a fixed order, the first failing one is reported."""
        self._check_transports()
        self._check_abuse_settings()
        self._check_logging()
        self._check_store_settings()
        if self.nsid is not None and len(self.nsid.encode()) > 255:
            raise ConfigError("nsid is longer than 255 octets")
        self._check_notify()
        self._check_api()
        self._check_events()
        self._check_bus()
        if self.dnssec_rollover_margin < 0:
            raise ConfigError("dnssec_rollover_margin must be 0 seconds or more")
        if not 0 < self.propagation_share <= 1:
            raise ConfigError("propagation_share must be above 0 and at most 1")
        self._check_transfers()

    def _check_transports(self) -> None:
        if not self.listen:
            raise ConfigError("listen: at least one address is needed")
        for spec in self.listen:
            parse_listen(spec)
        if not 512 <= self.edns_payload <= 65535:
            raise ConfigError("edns_payload must be between 512 and 65535")
        if self.tcp_idle_timeout <= 0 or self.tcp_max_connections < 1 or self.cache_entries < 2:
            raise ConfigError("tcp_idle_timeout, tcp_max_connections and cache_entries must be positive")
        if self.workers < 0 or self.workers > 256:
            raise ConfigError("workers must be 0 (one per CPU on port 53, else 1) to 256")

    def _check_logging(self) -> None:
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("log_level must be debug, info, warning or error")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log_format must be text or json")
        if not 0 < self.query_log_sample <= 1:
            raise ConfigError("query_log_sample must be above 0 and at most 1")

    def _check_store_settings(self) -> None:
        if self.heartbeat_interval < 1:
            raise ConfigError("heartbeat_interval must be 1 second or more")
        if self.heartbeat_name is not None:
            from ..store.heartbeat import check_heartbeat_name

            try:
                check_heartbeat_name(self.heartbeat_name)
            except ValueError as e:
                raise ConfigError(f"heartbeat_name: {e}") from None
        if self.pool_nameservers:
            from ..services.pools import check_ns_records

            try:
                check_ns_records(self.pool_nameservers)
            except ValueError as e:
                raise ConfigError(f"pool_nameservers: {e}") from None
        if self.serial_policy not in ("increment", "unixtime", "date"):
            raise ConfigError("serial_policy must be increment, unixtime or date")
        if self.db_check_interval <= 0 or self.change_log_keep < 1 or self.change_log_max_age < 1:
            raise ConfigError("db_check_interval, change_log_keep and change_log_max_age must be positive")

    def _check_notify(self) -> None:
        if self.renotify_interval < 0:
            raise ConfigError("renotify_interval must be 0 (never) or positive")
        if self.notify_retries < 1 or self.notify_timeout <= 0 or self.notify_rate < 1 or self.propagation_timeout <= 0:
            raise ConfigError("notify_retries, notify_timeout, notify_rate and propagation_timeout must be positive")

    def _check_api(self) -> None:
        parse_listen(self.api_listen)
        for t in self.api_tokens:
            if not isinstance(t, dict) or set(t) != {"token", "project", "role"} or not all(isinstance(v, str) for v in t.values()):
                raise ConfigError("api_tokens entries are tables with token, project and role")
            if t["role"] not in ("admin", "member", "reader", "ingest"):
                raise ConfigError(f"api_tokens: role {t['role']!r} is not admin, member, reader or ingest")
            if len(t["token"]) < 16:
                raise ConfigError("api_tokens: a token must be at least 16 characters")

    def _check_events(self) -> None:
        from ..sink.naming import check_templates
        from ..store.records import Invalid, zone_name

        try:
            check_templates(self.events_templates)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        for key in ("events_zone_suffix", "cloudstack_common_zone"):
            if getattr(self, key) is not None:
                try:
                    zone_name(getattr(self, key))
                except Invalid as e:
                    raise ConfigError(f"{key}: {e}") from None
        if self.events_zone is not None and "%" not in self.events_zone:
            try:
                zone_name(self.events_zone)
            except Invalid as e:
                raise ConfigError(f"events_zone: {e}") from None
        from ..services.floatingips import REGION_RE

        if self.events_region and not REGION_RE.match(self.events_region):
            raise ConfigError("events_region must be 1 to 100 letters, digits, '.', '-', '_' (or empty)")
        if self.events_keep_days < 0:
            raise ConfigError("events_keep_days must be 0 (keep for ever) or more")

    def _check_bus(self) -> None:
        from ..bus.transport_url import InvalidTransportURL, brokers

        for key in ("openstack_transport_url", "cloudstack_transport_url"):
            try:
                brokers(list(getattr(self, key)))
            except InvalidTransportURL as e:
                raise ConfigError(f"{key}: {e}") from None
        if self.openstack_transport_url and not (self.openstack_exchanges and self.openstack_topics and self.openstack_priorities):
            raise ConfigError("openstack_exchanges, openstack_topics and openstack_priorities must not be empty")
        if not 1 <= self.bus_prefetch <= 65535 or not self.bus_pool:
            raise ConfigError("bus_prefetch must be 1 to 65535 and bus_pool not empty")
        uses_api = self.cloudstack_transport_url or self.cloudstack_kafka_bootstrap
        if uses_api and not (self.cloudstack_api_url and self.cloudstack_api_key and self.cloudstack_secret_key):
            raise ConfigError("CloudStack's event bus needs cloudstack_api_url, cloudstack_api_key and "
                              "cloudstack_secret_key (its events carry no VM name or address)")  # fmt: skip

    def _check_transfers(self) -> None:
        from .transfers import Acl
        from ..xfr.tsig import TsigKeyError, make_key

        for key in self.tsig_keys:
            if not isinstance(key, dict) or set(key) - {"name", "algorithm", "secret"} or "name" not in key or "secret" not in key:
                raise ConfigError("tsig_keys entries are tables with name, algorithm and secret")
            try:
                make_key(key["name"], key.get("algorithm", "hmac-sha256"), key["secret"])
            except TsigKeyError as e:
                raise ConfigError(f"tsig_keys: {e}") from None
        for entries in [self.allow_transfer, *self.zone_allow_transfer.values()]:
            try:
                Acl.parse(entries)
            except (ValueError, TypeError) as e:
                raise ConfigError(f"allow_transfer: {e}") from None
        for sec in self.secondaries:
            self._check_secondary(sec)
        self.grants()
        self._check_updates()

    def grants(self) -> tuple:
        """update_grants as Grant values (xfr/grants.py), in order; ConfigError names the bad one."""
        from ..xfr.grants import grant_from

        out = []
        for i, entry in enumerate(self.update_grants, 1):
            try:
                out.append(grant_from(entry))
            except ValueError as e:
                raise ConfigError(f"update_grants entry {i}: {e}") from None
        return tuple(out)

    def _check_updates(self) -> None:
        if self.update_max_records < 1 or self.update_max_queued < 1:
            raise ConfigError("update_max_records and update_max_queued must be positive")
        if not self.update_require_tsig and not self.update_acl:
            raise ConfigError("update_require_tsig = false needs update_acl: unsigned updates from anywhere are not taken")
        _check_prefixes("update_acl", self.update_acl)

    def _check_secondary(self, sec) -> None:
        if not isinstance(sec, dict) or "address" not in sec or set(sec) - {"address", "port", "key", "zones"}:
            raise ConfigError("secondaries entries are tables with address, and optionally port, key, zones")
        try:
            ipaddress.ip_address(sec["address"])
        except ValueError:
            raise ConfigError(f"secondaries: {sec['address']!r} is not an IP address") from None
        if not 0 < int(sec.get("port", 53)) < 65536:
            raise ConfigError(f"secondaries: bad port {sec.get('port')!r}")
        names = {str(k.get("name", "")).lower().rstrip(".") for k in self.tsig_keys}
        if sec.get("key") is not None and str(sec["key"]).lower().rstrip(".") not in names:
            raise ConfigError(f"secondaries: key {sec['key']!r} is not among tsig_keys")

    @property
    def worker_count(self) -> int:
        """How many DNS processes `serve` runs: `workers`, or when 0 one per CPU this process may
        use if any listen address is on port 53, else 1."""
        if self.workers:
            return self.workers
        if any(parse_listen(spec)[2] == 53 for spec in self.listen):
            return max(1, len(os.sched_getaffinity(0)))
        return 1

    def _check_abuse_settings(self) -> None:
        if min(self.tcp_max_per_client, self.xfr_max_concurrent, self.events_max_pending, self.api_max_requests) < 1 or self.tcp_query_timeout <= 0:
            raise ConfigError("tcp_max_per_client, tcp_query_timeout, xfr_max_concurrent, events_max_pending and "
                              "api_max_requests must be positive")
        rates = (self.rrl_responses_per_second, self.rrl_errors_per_second, self.rrl_nxdomains_per_second)
        if min(rates) < 0 or self.rrl_slip < 0 or self.rrl_window < 1 or self.rrl_max_table < 1:
            raise ConfigError("rrl_*_per_second and rrl_slip must be 0 or more, rrl_window and rrl_max_table positive")
        if not 8 <= self.rrl_ipv4_prefix <= 32 or not 16 <= self.rrl_ipv6_prefix <= 128:
            raise ConfigError("rrl_ipv4_prefix must be 8 to 32 and rrl_ipv6_prefix 16 to 128")
        _check_prefixes("rrl_exempt", self.rrl_exempt)
        if self.cookie_secret is not None:
            try:
                if len(bytes.fromhex(self.cookie_secret)) != 16:
                    raise ValueError
            except ValueError:
                raise ConfigError("cookie_secret must be 16 octets in hex (32 hex digits)") from None

    @property
    def uses_database(self) -> bool:
        """Zones come from PostgreSQL unless only zone files are configured."""
        return self.database_url is not None or not self.zone_files

    def master_key(self, *, create: bool = False) -> bytes | None:
        """The DNSSEC master key (store/keys.find_master_key): $MINIDNS_MASTER_KEY, else
        dnssec_master_key_file, else master.key in the embedded database's data directory."""
        from ..store.keys import find_master_key
        from ..store.embedded import default_data_dir

        data_dir = (self.data_dir or default_data_dir()) if self.database_url is None else None
        return find_master_key(self.dnssec_master_key_file, data_dir, create=create)

    def store_settings(self):
        from ..store.writer import StoreSettings

        return StoreSettings(self.serial_policy, self.change_log_keep, self.change_log_max_age, self.heartbeat_name,
                             tuple(self.pool_nameservers))  # fmt: skip


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
LIST_KEYS = ("openstack_transport_url", "openstack_exchanges", "openstack_topics", "openstack_priorities",
             "cloudstack_transport_url", "cloudstack_kafka_bootstrap")  # a string or a list of strings  # fmt: skip


def _check_prefixes(name: str, entries) -> None:
    """Each entry an address prefix (192.0.2.0/24, ::1); ConfigError naming the setting."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None


def load_config(path: str | None, overrides: dict) -> Config:
    """Read `path` (TOML), apply the non-None `overrides` from flags, validate."""
    values: dict = {}
    if path:
        try:
            with open(path, "rb") as f:
                values = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"{path}: {e.strerror or e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from None
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    for name, value in values.items():
        values[name] = _check_type(name, value)
    return Config(**values)


def _check_type(name: str, value):
    default = FIELDS[name].default
    if name in ("tsig_keys", "secondaries", "api_tokens", "update_grants"):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list of tables")
        return tuple(value)
    if name == "events_templates":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{name} must be a table of handler = \"template\"")
        return value
    if name == "zone_allow_transfer":
        if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
            raise ConfigError(f"{name} must be a table of zone = [entries]")
        return value
    if name in ("listen", "zone_files", "allow_transfer", "rrl_exempt", "pool_nameservers", "update_acl") or name in LIST_KEYS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
    elif isinstance(default, (int, float)) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{name} must be a number")
    elif isinstance(default, int) and not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number")
    elif default is None and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def parse_listen(spec: str) -> tuple[int, str, int]:
    """'127.0.0.1:5353', '[::1]:5353' or '::1' → (family, host, port); the port defaults to 5353."""
    host, port = spec, "5353"
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"listen address {spec!r}: expected [V6]:PORT")
            port = rest[1:]
    elif spec.count(":") == 1:
        host, port = spec.split(":")
    try:
        port_n = int(port)
        if not 0 <= port_n <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError(f"listen address {spec!r}: bad port {port!r}") from None
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return family, host, port_n
        except OSError:
            continue
    raise ConfigError(f"listen address {spec!r}: {host!r} is not an IPv4 or IPv6 address")
