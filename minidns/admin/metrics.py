"""Prometheus metrics (text exposition format 0.0.4): the API's requests, the server's zones and
database state, and propagation per secondary."""

from __future__ import annotations

import time
from collections import Counter

import dns.rcode
import dns.rdatatype

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    def __init__(self, buckets=BUCKETS):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1
                break

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, total = [], 0
        sep = "," if labels else ""
        for b, c in zip(self.buckets, self.counts):
            total += c
            out.append(f'{name}_bucket{{{labels}{sep}le="{b}"}} {total}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        lab = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{lab} {self.sum:.6f}")
        out.append(f"{name}_count{lab} {self.count}")
        return out


class Metrics:
    """Counters kept by the API process, and gauges read from the server when scraped."""

    def __init__(self, server):
        self.server = server
        self.started = time.time()
        self.api_requests: Counter = Counter()  # (method, status) -> n
        self.api_latency = Histogram()
        self.events: Counter = Counter()  # outcome -> n

    def api_request(self, method: str, status: int, seconds: float) -> None:
        self.api_requests[(method, status)] += 1
        self.api_latency.observe(seconds)

    async def render(self, app) -> str:
        server = self.server
        out = [
            "# HELP minidns_up 1 while the process runs.", "# TYPE minidns_up gauge", "minidns_up 1",
            "# HELP minidns_start_time_seconds When the process started.", "# TYPE minidns_start_time_seconds gauge",
            f"minidns_start_time_seconds {self.started:.3f}",
        ]  # fmt: skip
        zones = server.engine.table.zones
        out += ["# HELP minidns_zones Zones served.", "# TYPE minidns_zones gauge", f"minidns_zones {len(zones)}",
                "# HELP minidns_names Names (nodes) in the served zones.", "# TYPE minidns_names gauge",
                f"minidns_names {sum(len(z) for z in zones.values())}"]  # fmt: skip
        out += worker_lines(server)
        out += abuse_lines(server)
        out += dnssec_lines(zones, server.engine.signer.cache)
        out += database_lines(server.state)
        out += self.api_lines()
        out += propagation_lines(getattr(server, "notifier", None))
        out += server_job_lines(server)
        out += heartbeat_lines(zones, server.config.heartbeat_name, time.time())
        out += bus_lines(getattr(server, "bus", None))
        return "\n".join(out) + "\n"

    def api_lines(self) -> list[str]:
        """The API's requests by method and status, their latency, and the events ingested."""
        out = ["# HELP minidns_api_requests_total API requests by method and status.",
               "# TYPE minidns_api_requests_total counter"]  # fmt: skip
        for (method, status), n in sorted(self.api_requests.items()):
            out.append(f'minidns_api_requests_total{{method="{method}",status="{status}"}} {n}')
        out += ["# HELP minidns_api_request_seconds API request latency.", "# TYPE minidns_api_request_seconds histogram"]
        out += self.api_latency.lines("minidns_api_request_seconds")
        out += ["# HELP minidns_events_total Events ingested, by outcome.", "# TYPE minidns_events_total counter"]
        for outcome, n in sorted(self.events.items()):
            out.append(f'minidns_events_total{{outcome="{outcome}"}} {n}')
        return out


BUS_OUTCOMES = (("received", "received"), ("applied", "applied"), ("ignored", "ignored"), ("failed", "failed"),
                ("duplicate", "duplicates"), ("redelivered", "redelivered"))  # label → SourceStatus counter  # fmt: skip


def bus_lines(bus) -> list[str]:
    """The message-bus sources (server/buses.py): connected, messages by outcome, lag."""
    if bus is None or not bus.sources:
        return []
    sources = list(bus.sources.values())
    out = ["# HELP minidns_bus_connected 1 while the message-bus source is connected.", "# TYPE minidns_bus_connected gauge"]
    out += [f'minidns_bus_connected{{source="{s.name}"}} {int(s.connected)}' for s in sources]
    out += ["# HELP minidns_bus_messages_total Messages from the bus, by outcome.", "# TYPE minidns_bus_messages_total counter"]
    out += [f'minidns_bus_messages_total{{source="{s.name}",outcome="{label}"}} {getattr(s, field)}'
            for s in sources for label, field in BUS_OUTCOMES]  # fmt: skip
    out += ["# HELP minidns_bus_lag Messages waiting in the broker for this source (when the bus says).",
            "# TYPE minidns_bus_lag gauge"]  # fmt: skip
    return out + [f'minidns_bus_lag{{source="{s.name}"}} {s.lag}' for s in sources if s.lag is not None]


def worker_lines(server) -> list[str]:
    """The DNS queries answered by all processes, and the worker processes answering them."""
    workers = getattr(server, "workers", None)
    out = dns_query_lines(workers.total_stats(server.engine.stats) if workers is not None else server.engine.stats)
    out += ["# HELP minidns_workers DNS processes answering (the main process and its workers).",
            "# TYPE minidns_workers gauge", f"minidns_workers {1 + (workers.running if workers is not None else 0)}",
            "# HELP minidns_worker_restarts_total Worker processes started again after they ended.",
            "# TYPE minidns_worker_restarts_total counter",
            f"minidns_worker_restarts_total {workers.restarts if workers is not None else 0}"]  # fmt: skip
    return out


def dnssec_lines(zones: dict, cache) -> list[str]:
    """Zones served signed, and the signatures made for answers and kept in `cache`."""
    return ["# HELP minidns_dnssec_signed_zones Zones served signed.", "# TYPE minidns_dnssec_signed_zones gauge",
            f"minidns_dnssec_signed_zones {sum(1 for z in zones.values() if z.keys is not None)}",
            "# HELP minidns_dnssec_signatures_total Signatures made for answers (not from the cache).",
            "# TYPE minidns_dnssec_signatures_total counter", f"minidns_dnssec_signatures_total {cache.signed}",
            "# HELP minidns_dnssec_signature_cache_entries Signatures kept for answers.",
            "# TYPE minidns_dnssec_signature_cache_entries gauge", f"minidns_dnssec_signature_cache_entries {len(cache)}"]  # fmt: skip


def database_lines(state: str) -> list[str]:
    out = ["# HELP minidns_database_state 1 for the database state the server is in.",
           "# TYPE minidns_database_state gauge"]  # fmt: skip
    for s in ("loading", "ready", "stale"):
        out.append(f'minidns_database_state{{state="{s}"}} {1 if state == s else 0}')
    return out


def propagation_lines(notifier) -> list[str]:
    """Each zone's propagation status, each secondary's lag and sync, and the NOTIFYs sent; nothing
    without a notifier."""
    if notifier is None:
        return []
    out = ["# HELP minidns_zone_status 1 for each zone's propagation status.", "# TYPE minidns_zone_status gauge",
           "# HELP minidns_secondary_lag_seconds Seconds from a change reaching this server to the secondary"
           " serving it (for the last change seen there).",
           "# TYPE minidns_secondary_lag_seconds gauge",
           "# HELP minidns_secondary_in_sync 1 when the secondary has the zone's current serial.",
           "# TYPE minidns_secondary_in_sync gauge"]  # fmt: skip
    for name, zs in sorted(notifier.zones.items()):
        out.append(f'minidns_zone_status{{zone="{name}",status="{zs.status}"}} 1')
        for label, st in sorted(zs.secondaries.items()):
            out.append(f'minidns_secondary_in_sync{{zone="{name}",secondary="{label}"}} {1 if st.state == "OK" else 0}')
            if st.seen_at is not None:
                out.append(f'minidns_secondary_lag_seconds{{zone="{name}",secondary="{label}"}} '
                           f"{max(0.0, st.seen_at - zs.changed_at):.3f}")  # fmt: skip
    out += ["# HELP minidns_notify_sent_total NOTIFY messages sent.", "# TYPE minidns_notify_sent_total counter",
            f"minidns_notify_sent_total {notifier.sent}",
            "# HELP minidns_notify_renotified_total NOTIFYs sent again to a secondary still behind.",
            "# TYPE minidns_notify_renotified_total counter", f"minidns_notify_renotified_total {notifier.renotified}"]  # fmt: skip
    return out


def server_job_lines(server) -> list[str]:
    """The changes applied from the change log, the zone transfers served and the UPDATEs answered,
    when the server has them."""
    out = []
    follower = getattr(server, "follower", None)
    if follower is not None:
        out += ["# HELP minidns_changes_applied_total Changes applied from the change log.",
                "# TYPE minidns_changes_applied_total counter", f"minidns_changes_applied_total {follower.applied}"]
    xfr = getattr(server, "transfers", None)
    if xfr is not None:
        out += ["# HELP minidns_transfers_total Zone transfers served, by kind.", "# TYPE minidns_transfers_total counter"]
        for kind, n in sorted(xfr.stats.items()):
            out.append(f'minidns_transfers_total{{kind="{kind}"}} {n}')
        door = getattr(xfr, "updates", None)
        if door is not None:
            out += ["# HELP minidns_updates_total Dynamic UPDATE messages answered (RFC 2136), by rcode.",
                    "# TYPE minidns_updates_total counter"]  # fmt: skip
            out += [f'minidns_updates_total{{rcode="{rcode}"}} {n}' for rcode, n in sorted(door.stats.items())]
    return out


def heartbeat_lines(zones: dict, name: str | None, now: float) -> list[str]:
    """Per zone, the age of the heartbeat (store/heartbeat.py) this process serves: how long ago
    the commit it holds was made. Nothing when heartbeats are off."""
    if not name:
        return []
    from ..store.heartbeat import heartbeat_time

    out = ["# HELP minidns_heartbeat_age_seconds Seconds since the commit whose heartbeat TXT this process serves.",
           "# TYPE minidns_heartbeat_age_seconds gauge"]  # fmt: skip
    for snap in sorted(zones.values(), key=lambda z: z.name):
        t = heartbeat_time(snap, name)
        if t is not None:
            out.append(f'minidns_heartbeat_age_seconds{{zone="{snap.name}"}} {max(0.0, now - t):.3f}')
    return out


def _qtype(qtype: int) -> str:
    if qtype == -1:
        return "malformed"
    if qtype == 0:
        return "other"
    return dns.rdatatype.to_text(qtype)


def _rcode(rcode: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(rcode))
    except ValueError:
        return str(rcode)


def dns_query_lines(stats) -> list[str]:
    """The DNS query families from answer/stats.QueryStats: cache hits per transport, queries the
    engine answered (cache misses) by transport, type and rcode, and their latency."""
    udp, tcp = stats.hits()
    out = ["# HELP minidns_dns_cache_hits_total DNS queries answered from the reply cache, by transport.",
           "# TYPE minidns_dns_cache_hits_total counter",
           f'minidns_dns_cache_hits_total{{transport="udp"}} {udp}',
           f'minidns_dns_cache_hits_total{{transport="tcp"}} {tcp}',
           "# HELP minidns_dns_answers_total DNS queries answered by the engine (not from the reply cache), by"
           " transport, query type and reply rcode (header rcode; types outside a fixed set are \"other\").",
           "# TYPE minidns_dns_answers_total counter"]  # fmt: skip
    for (is_tcp, qtype, rcode), n in sorted(stats.answers.items()):
        out.append(f'minidns_dns_answers_total{{transport="{"tcp" if is_tcp else "udp"}",qtype="{_qtype(qtype)}",'
                   f'rcode="{_rcode(rcode)}"}} {n}')  # fmt: skip
    out += ["# HELP minidns_dns_answer_seconds Time to answer a query that missed the reply cache, by transport.",
            "# TYPE minidns_dns_answer_seconds histogram"]
    for i, transport in enumerate(("udp", "tcp")):
        total = 0
        for b, c in zip(stats.BUCKETS, stats.buckets[i]):
            total += c
            out.append(f'minidns_dns_answer_seconds_bucket{{transport="{transport}",le="{b}"}} {total}')
        out.append(f'minidns_dns_answer_seconds_bucket{{transport="{transport}",le="+Inf"}} {stats.counts[i]}')
        out.append(f'minidns_dns_answer_seconds_sum{{transport="{transport}"}} {stats.sums[i]:.6f}')
        out.append(f'minidns_dns_answer_seconds_count{{transport="{transport}"}} {stats.counts[i]}')
    return out


def abuse_lines(server) -> list[str]:
    """Response rate limiting, DNS cookies and the TCP limits (answer/rrl.py, answer/cookies.py, server/transport.py)."""
    out = []
    rrl = getattr(server, "rrl", None)
    if rrl is not None:
        out += ["# HELP minidns_rrl_replies_total UDP replies rate limited: dropped, or slipped (sent truncated or BADCOOKIE).",
                "# TYPE minidns_rrl_replies_total counter",
                f'minidns_rrl_replies_total{{action="dropped"}} {rrl.dropped}',
                f'minidns_rrl_replies_total{{action="slipped"}} {rrl.slipped}',
                "# HELP minidns_rrl_table_entries Rate accounts kept.", "# TYPE minidns_rrl_table_entries gauge",
                f"minidns_rrl_table_entries {len(rrl.table)}"]  # fmt: skip
    cookies = getattr(server.engine, "cookies", None)
    if cookies is not None:
        out += ["# HELP minidns_dns_cookies_total Queries with a COOKIE option: with a valid server cookie, or given a new one.",
                "# TYPE minidns_dns_cookies_total counter",
                f'minidns_dns_cookies_total{{result="valid"}} {cookies.valid}',
                f'minidns_dns_cookies_total{{result="new"}} {cookies.made}']  # fmt: skip
    limits = getattr(server, "limits", None)
    if limits is not None and hasattr(limits, "refused"):
        out += ["# HELP minidns_tcp_connections Open DNS TCP connections.", "# TYPE minidns_tcp_connections gauge",
                f"minidns_tcp_connections {limits.open}",
                "# HELP minidns_tcp_closed_total DNS TCP connections closed by a limit: refused (over the total or"
                " per-client cap), query_timeout (a message not whole in time), slow_reader (replies not read).",
                "# TYPE minidns_tcp_closed_total counter",
                f'minidns_tcp_closed_total{{reason="refused"}} {limits.refused}',
                f'minidns_tcp_closed_total{{reason="query_timeout"}} {limits.timed_out}',
                f'minidns_tcp_closed_total{{reason="slow_reader"}} {limits.dropped}']  # fmt: skip
    return out
