#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine (as root), then run the whole suite.
# The tests talk only to servers they start on loopback: minidns, NSD and Knot (the differential
# suite), Unbound, BIND's named, PowerDNS Recursor and Knot Resolver (validating resolvers in front of
# minidns, each started by its test on a free loopback port), BIND, Knot, NSD and PowerDNS as
# secondaries of minidns (transfers), with dig, kdig and delv as clients; dnssec-verify,
# ldns-verify-zone and kzonecheck check signed zones as transferred; RabbitMQ (a private node per test
# session, tests/bus) carries the clouds' notifications to minidns. RFC 2136 clients write to minidns
# (tests/interop/test_update_clients.py): ISC Kea's DHCP-DDNS daemon, lego getting a certificate from
# pebble (the ACME test CA) by DNS-01, and octodns (PyPI, the test extra) with octodns-bind.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in nsd:nsd knotd:knot kdig:knot-dnsutils dig:bind9-dnsutils delv:bind9-dnsutils named:bind9 rndc:bind9-utils \
           unbound:unbound pdns_server:pdns-server dnssec-verify:bind9-utils ldns-verify-zone:ldnsutils \
           kzonecheck:knot-dnssecutils pdns_recursor:pdns-recursor kresd:knot-resolver systemd-analyze:systemd \
           rabbitmq-server:rabbitmq-server kea-dhcp-ddns:kea-dhcp-ddns-server lego:lego pebble:pebble; do
  command -v "${bin%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${bin%%:*}" ] || need+=("${bin#*:}")
done
# PowerDNS as a secondary keeps its zones in SQLite (the backend has no binary to look for).
[ -e /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql ] || need+=(pdns-backend-sqlite3)
# A C compiler builds minidns's optional accelerator for P-256 signatures (minidns/dnssec/_p256.c).
command -v gcc >/dev/null 2>&1 || need+=(gcc)
# The tests run in a virtual environment (.venv): a stock Debian Python refuses `pip install` into
# itself (PEP 668, "externally-managed-environment"); Debian keeps venv's pip apart, in python3-venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
  # Installing a server package (DNS servers, RabbitMQ, Kea) must not start it as a system service.
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# --system-site-packages: what the machine's Python already has installed is used, not fetched again.
[ -x .venv/bin/python ] || python3 -m venv --system-site-packages .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# The environment's commands (minidns, openstack, dnsviz) come first on the path, as after `activate`.
export PATH="$PWD/.venv/bin:$PATH"
# Two processes (pytest-xdist), each taking whole test modules: most tests wait on servers they
# started, so the two cores stay busy; a module's tests run in order in one process, as written.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile "$@"
