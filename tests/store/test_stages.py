"""store/stages.py against a real PostgreSQL: a Store composed with write_stages() signs each
change to a signed zone (the changed RRset's RRSIG validates with the zone's DNSKEY) and writes
the heartbeat TXT naming the change's serial; composed without them, it writes neither."""

from struct import unpack_from

import dns.dnssec
import dns.name
import dns.rdata
import dns.rrset
import pytest

from minidns.services import dnssec
from minidns.store.stages import write_stages
from minidns.store.writer import Edit, Stages, Store, StoreSettings

ZONE = "stages.test."
ORIGIN = dns.name.from_text(ZONE)
MASTER = bytes(range(32))
A, TXT, RRSIG, DNSKEY = 1, 16, 46, 48


def records(wire: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(wire):
        rdlen = unpack_from("!HIH", wire, off)[2]
        out.append(bytes(wire[off + 8 : off + 8 + rdlen]))
        off += 8 + rdlen
    return out


async def rows(pool, name: str) -> dict[int, list[bytes]]:
    owner = dns.name.from_text(name).to_wire()
    return {r["type"]: records(bytes(r["wire"])) for r in await pool.fetch("SELECT type, wire FROM rrsets WHERE owner = $1", owner)}


def rdata(rtype: int, wire: bytes) -> dns.rdata.Rdata:
    return dns.rdata.from_wire(1, rtype, wire, 0, len(wire))


def store_with(pool, stages: Stages) -> Store:
    return Store(pool, StoreSettings(heartbeat_name="_hb"), master=MASTER, stages=stages)


async def test_write_stages_sign_a_change_to_a_signed_zone_and_write_the_heartbeat(pool):
    store = store_with(pool, write_stages())
    await store.create_zone(ZONE, email=f"h@{ZONE}", edits=[Edit("add", "ns1", "A", 300, ("192.0.2.53",))])
    await dnssec.enable(store, ZONE, MASTER, "ed25519")
    change = await store.change(ZONE, [Edit("add", "www", "A", 300, ("192.0.2.80",))], source="test")

    www = await rows(pool, f"www.{ZONE}")
    assert set(www) == {A, RRSIG}
    (sig,) = [s for s in www[RRSIG] if unpack_from("!H", s)[0] == A]
    name = dns.name.from_text(f"www.{ZONE}")
    keys = dns.rrset.from_rdata_list(ORIGIN, 3600, [rdata(DNSKEY, w) for w in (await rows(pool, ZONE))[DNSKEY]])
    dns.dnssec.validate(dns.rrset.from_rdata(name, 300, rdata(A, www[A][0])), dns.rrset.from_rdata(name, 300, rdata(RRSIG, sig)),
                        {ORIGIN: keys})  # fmt: skip

    hb = await rows(pool, f"_hb.{ZONE}")
    assert set(hb) == {TXT, RRSIG}  # the heartbeat is signed like any edit
    assert f"serial={change.serial_to} ".encode() in hb[TXT][0]


async def test_without_the_stages_a_store_writes_no_heartbeat(pool):
    store = store_with(pool, Stages())
    await store.create_zone(ZONE, email=f"h@{ZONE}")
    await store.change(ZONE, [Edit("add", "www", "A", 300, ("192.0.2.80",))], source="test")
    assert await rows(pool, f"www.{ZONE}") == {A: [bytes([192, 0, 2, 80])]}
    assert await rows(pool, f"_hb.{ZONE}") == {}


async def test_the_stages_are_the_signing_and_heartbeat_ones():
    stages = write_stages()
    assert stages.signing is not None and stages.heartbeat is not None
    edit = stages.heartbeat("_hb", 7, 0.0)
    assert (edit.name, edit.rtype, edit.records) == ("_hb", "TXT", ('"serial=7 committed=1970-01-01T00:00:00Z unix=0"',))
