"""The bus_status table (minidns/bus/status_table.py): each process's sources written and rewritten,
read back on any host, and told to a person — connected or why not, counts, lag, last error, and a
row no longer written called stale."""

from minidns.bus.status import BusStatus
from minidns.bus.status_table import read_status, report, write_status


async def test_sources_are_written_read_and_reported(pool):
    bus = BusStatus()
    up, down = bus.add("openstack", "amqp"), bus.add("cloudstack", "amqp")
    up.up("mq1:5672")
    up.receive(3, 1)
    up.applied, up.lag = 3, 7
    down.down("mq2:5672: ConnectionRefusedError: [Errno 111] Connection refused")
    await write_status(pool, "dns1:100", bus)
    up.applied = 4
    await write_status(pool, "dns1:100", bus)
    await write_status(pool, "dns2:200", BusStatus(sources={"openstack": up}))
    rows = await read_status(pool)
    assert [(r["host"], r["source"]) for r in rows] == [("dns1:100", "cloudstack"), ("dns1:100", "openstack"), ("dns2:200", "openstack")]
    assert rows[1]["state"]["applied"] == 4 and rows[1]["age"] < 30
    text = "\n".join(report(rows))
    assert "openstack (amqp) on dns1:100: connected to mq1:5672" in text
    assert "cloudstack (amqp) on dns1:100: not connected: mq2:5672: ConnectionRefusedError" in text
    assert "messages: received 3, applied 4, ignored 0, failed 0, duplicates 0, redelivered 1" in text and "lag: 7" in text
    assert "last error (" in text and "lag: not known" in text
    await pool.execute("UPDATE bus_status SET updated_at = now() - interval '5 minutes' WHERE host = 'dns2:200'")
    stale = report([r for r in await read_status(pool) if r["host"] == "dns2:200"])
    assert stale[0].startswith("openstack (amqp) on dns2:200: unknown: not updated for 300 s")
    await pool.execute("UPDATE bus_status SET updated_at = now() - interval '2 days' WHERE host = 'dns2:200'")
    await write_status(pool, "dns1:100", bus)
    assert {r["host"] for r in await read_status(pool)} == {"dns1:100"}  # a process silent for a day is forgotten
    assert report([]) == ["no serve process consumes a message bus (bus_status is empty)"]
