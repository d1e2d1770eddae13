"""/metrics: the DNS query families (cache hits per transport; engine answers by transport, type
and rcode; answer latency) beside the API's, after some DNS queries and API calls."""

from __future__ import annotations

import re

import dns.message
import dns.query
import dns.rcode
from conftest import ALICE
from policyutil import make_zone


def scrape(api) -> dict[str, float]:
    r = api.get("/metrics", token=None)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    out = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out, r.text


def test_dns_and_api_metrics(api):
    make_zone(api, "metrics.test.", records=[("www", "A", 300, "192.0.2.1")])
    api.wait_dns("www.metrics.test.", "A", lambda r: r.answer)
    for _ in range(5):
        assert api.dig("www.metrics.test.", "A").answer
    assert api.dig("nope.metrics.test.", "A").rcode() == dns.rcode.NXDOMAIN
    assert api.dig("www.metrics.test.", "AAAA").rcode() == dns.rcode.NOERROR
    assert api.dig("elsewhere.example.", "A").rcode() == dns.rcode.REFUSED
    q = dns.message.make_query("www.metrics.test.", "A")
    for _ in range(3):
        assert dns.query.tcp(q, "127.0.0.1", port=api.dns_port, timeout=2).answer
    api.get("/v2/tlds", token=ALICE)
    api.get("/v2/tlds", token=None)
    values, text = scrape(api)

    for family, kind in (("minidns_dns_cache_hits_total", "counter"), ("minidns_dns_answers_total", "counter"),
                         ("minidns_dns_answer_seconds", "histogram"), ("minidns_api_requests_total", "counter"),
                         ("minidns_api_request_seconds", "histogram"), ("minidns_dnssec_signatures_total", "counter"),
                         ("minidns_dnssec_signed_zones", "gauge")):  # fmt: skip
        assert f"# TYPE {family} {kind}" in text and f"# HELP {family} " in text
    assert values["minidns_dnssec_signed_zones"] == 0 and values["minidns_dnssec_signatures_total"] == 0
    assert values['minidns_dns_cache_hits_total{transport="udp"}'] >= 4
    assert values['minidns_dns_cache_hits_total{transport="tcp"}'] >= 2
    assert values['minidns_dns_answers_total{transport="udp",qtype="A",rcode="NOERROR"}'] >= 1
    assert values['minidns_dns_answers_total{transport="udp",qtype="A",rcode="NXDOMAIN"}'] >= 1
    assert values['minidns_dns_answers_total{transport="udp",qtype="AAAA",rcode="NOERROR"}'] >= 1
    assert values['minidns_dns_answers_total{transport="udp",qtype="A",rcode="REFUSED"}'] >= 1
    assert values['minidns_dns_answers_total{transport="tcp",qtype="A",rcode="NOERROR"}'] >= 1
    misses = sum(v for k, v in values.items() if k.startswith('minidns_dns_answers_total{transport="udp"'))
    assert values['minidns_dns_answer_seconds_count{transport="udp"}'] == misses
    assert values['minidns_dns_answer_seconds_bucket{transport="udp",le="+Inf"}'] == misses
    buckets = [v for k, v in values.items() if k.startswith('minidns_dns_answer_seconds_bucket{transport="udp"')]
    assert buckets == sorted(buckets)  # cumulative
    assert values['minidns_dns_answer_seconds_sum{transport="udp"}'] > 0
    assert values['minidns_api_requests_total{method="GET",status="200"}'] >= 1
    assert values['minidns_api_requests_total{method="GET",status="401"}'] >= 1
    # every sample line is name{labels} value, labels quoted
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r'[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? -?[0-9.e+-]+', line), line


def test_malformed_queries_are_counted(api):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff", ("127.0.0.1", api.dns_port))
        assert s.recv(512)[3] & 0xF == dns.rcode.FORMERR
    values, _ = scrape(api)
    assert values['minidns_dns_answers_total{transport="udp",qtype="malformed",rcode="FORMERR"}'] == 1
