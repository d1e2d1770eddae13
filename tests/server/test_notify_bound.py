"""Pending NOTIFY work is bounded by zones × secondaries: however fast a zone changes while the
NOTIFY rate limit holds messages back, each (zone, secondary) waits once, with the newest serial."""

import asyncio

from minidns.server.notify import Notifier, Secondary
from minidns.zones.loader import load_zone_text

ZONE = "$TTL 300\n@ SOA ns1 hostmaster {serial} 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n"


async def test_notify_queue_holds_each_zone_and_secondary_once(monkeypatch):
    sent = []

    async def fake_notify(self, snap, sec):
        sent.append((snap.serial, sec.label))

    monkeypatch.setattr(Notifier, "_notify", fake_notify)
    monkeypatch.setattr(Notifier, "_poll", lambda self, snap, sec: None)
    secs = [Secondary("192.0.2.1", 53), Secondary("192.0.2.2", 53)]
    n = Notifier(secs, rate=1)
    n.tokens, n.rate = 0, 1e-9  # the rate limit holds everything back
    snaps = [load_zone_text(ZONE.format(serial=serial), "zone.") for serial in range(1, 1001)]
    for snap in snaps:
        n.pending[snap.origin] = snap
        n._fire(snap.origin)
    assert len(n.queue) == 2 and len(n.queued) == 2
    assert {snap.serial for snap, _ in n.queued.values()} == {1000}
    n.tokens, n.rate = 10, 1000
    n._pump()
    await asyncio.sleep(0)
    assert sorted(sent) == [(1000, "192.0.2.1#53"), (1000, "192.0.2.2#53")] and not n.queue
