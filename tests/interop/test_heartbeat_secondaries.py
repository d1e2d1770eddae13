"""The heartbeat TXT (store/heartbeat.py) at real secondaries: Knot and NSD transfer a zone from a
real `minidns serve` that writes `_heartbeat.<zone>` with every change and bumps it while the zone
is left alone; each secondary then answers the heartbeat of the serial it holds, and takes each
new one by IXFR — so asking a secondary for it tells how stale that secondary is."""

from __future__ import annotations

import re
import time

import dns.message
import dns.query

from minidns.store.writer import Edit, StoreSettings
from tests.server.test_operations import heartbeat_in
from secondaries import free_port, soa_serial, transfer_kinds
from test_transfers_interop import ME, XFR_TIMEOUT, ports, setup  # noqa: F401  (setup is a fixture)

ZONE = "beat.test."
HB = "_heartbeat"
INTERVAL = 3


def heartbeat(target, zone: str = ZONE) -> tuple[int, int] | None:
    """(serial, unix) of the heartbeat TXT that `target` (a secondary, or an address) answers."""
    addr = ("127.0.0.1", target.port) if hasattr(target, "port") else target
    return heartbeat_in(dns.query.udp(dns.message.make_query(f"{HB}.{zone}", "TXT"), addr[0], port=addr[1], timeout=2, source=ME))


def test_knot_and_nsd_serve_the_heartbeat_and_follow_it_by_ixfr(setup):  # noqa: F811
    d = setup.open_db(StoreSettings(heartbeat_name=HB))
    d.create(ZONE, [Edit("add", "@", "NS", None, ("ns1",)), Edit("add", "ns1", "A", None, ("192.0.2.53",))])
    sec_ports = ports(2)
    m = setup.serve(free_port(), [(p, None) for p in sec_ports],
                    extra=f'heartbeat_name = "{HB}"\nheartbeat_interval = {INTERVAL}\n')  # fmt: skip
    for kind, port in zip(("knot", "nsd"), sec_ports):
        setup.secondary(kind, kind, port, [ZONE])
    setup.wait_all(ZONE, soa_serial(m.addr, ZONE))
    for name, sec in setup.secs.items():  # each holds the heartbeat of the serial it serves
        assert heartbeat(sec)[0] == soa_serial(sec, ZONE), name

    serial = d.change(ZONE, [Edit("add", "www", "A", None, ("192.0.2.80",))])  # a change carries its heartbeat
    setup.wait_all(ZONE, serial)
    for name, sec in setup.secs.items():
        got = heartbeat(sec)[0]
        assert got == soa_serial(sec, ZONE) and got >= serial, name

    left_alone = time.time()  # no change now: minidns bumps the heartbeat and the secondaries follow
    for _ in range(2):
        before = soa_serial(m.addr, ZONE)
        deadline = time.monotonic() + INTERVAL + 3
        while soa_serial(m.addr, ZONE) == before:
            assert time.monotonic() < deadline, f"no heartbeat change within {INTERVAL + 3}s:\n{setup.logs()}"
            time.sleep(0.1)
        now_serial = soa_serial(m.addr, ZONE)
        setup.wait_all(ZONE, now_serial, timeout=XFR_TIMEOUT)
        for name, sec in setup.secs.items():
            hb_serial, unix = heartbeat(sec)
            assert hb_serial == soa_serial(sec, ZONE) >= now_serial and unix >= int(left_alone), name
    for name, sec in setup.secs.items():
        kinds = transfer_kinds(sec, ZONE)
        assert kinds[0] == "AXFR" and kinds.count("IXFR") >= 3, (name, kinds)
    assert m.lines(rf"IXFR of {re.escape(ZONE)} \d+ -> \d+ to 127\.0\.0\.1"), setup.logs()
