"""The sync step's plan (minidns/sink/sync.py plan): a resource's RRsets as they are, and as it
wants them, give the edits per zone and the changes an event reports — nothing for what is already
so, a replace for what differs, an add for what is new, a remove for what is no longer wanted."""

import uuid

import dns.name
import pytest

from minidns.sink.sync import Ident, Want, plan

FWD, REV = uuid.UUID(int=1), uuid.UUID(int=2)
NOVA = Ident("nova", "instance", "3e301a55-fbbe-478d-92d0-eefabf135c38", "33a88272e06a49c1a0f653abc374b56b")
A, AAAA, PTR = 1, 28, 12


def have(zone_id, zone, name, rtype, records, extra=None) -> dict:
    return {"zone_id": zone_id, "zone": zone, "name": name, "type": rtype, "records": records, "managed_extra": extra}


def want(zone_id, zone, owner, rtype, records) -> Want:
    return Want(zone_id, zone, dns.name.from_text(owner), rtype, tuple(records))


WEB1_A = want(FWD, "example.com.", "web1.example.com.", "A", ["10.0.0.5"])
WEB1_AAAA = want(FWD, "example.com.", "web1.example.com.", "AAAA", ["2001:db8:10::5"])
WEB1_PTR = want(REV, "0.0.10.in-addr.arpa.", "5.0.0.10.in-addr.arpa.", "PTR", ["web1.example.com."])

PLANS = [
    # a create: everything added, the zones in name order
    ([], [WEB1_A, WEB1_AAAA, WEB1_PTR], {
        REV: [{"op": "add", "zone": "0.0.10.in-addr.arpa.", "name": "5.0.0.10.in-addr.arpa.", "type": "PTR",
               "records": ["web1.example.com."]}],
        FWD: [{"op": "add", "zone": "example.com.", "name": "web1.example.com.", "type": "A", "records": ["10.0.0.5"]},
              {"op": "add", "zone": "example.com.", "name": "web1.example.com.", "type": "AAAA", "records": ["2001:db8:10::5"]}],
    }),
    # the same event again: nothing to do (addresses compared in their canonical form, names without case)
    ([have(FWD, "example.com.", "web1.example.com.", A, ["10.0.0.5"]),
      have(FWD, "example.com.", "web1.example.com.", AAAA, ["2001:DB8:10:0::5"]),
      have(REV, "0.0.10.in-addr.arpa.", "5.0.0.10.in-addr.arpa.", PTR, ["WEB1.example.com."])],
     [WEB1_A, WEB1_AAAA, WEB1_PTR], {}),
    # a delete wants nothing: every RRset it made is removed
    ([have(FWD, "example.com.", "web1.example.com.", A, ["10.0.0.5"]),
      have(REV, "0.0.10.in-addr.arpa.", "5.0.0.10.in-addr.arpa.", PTR, ["web1.example.com."])], [], {
        REV: [{"op": "remove", "zone": "0.0.10.in-addr.arpa.", "name": "5.0.0.10.in-addr.arpa.", "type": "PTR",
               "records": ["web1.example.com."]}],
        FWD: [{"op": "remove", "zone": "example.com.", "name": "web1.example.com.", "type": "A", "records": ["10.0.0.5"]}],
    }),
    # a new address: replaced, with what it was; the IPv6 address gone: removed
    ([have(FWD, "example.com.", "web1.example.com.", A, ["10.0.0.4"]),
      have(FWD, "example.com.", "web1.example.com.", AAAA, ["2001:db8:10::5"])], [WEB1_A], {
        FWD: [{"op": "replace", "zone": "example.com.", "name": "web1.example.com.", "type": "A", "records": ["10.0.0.5"],
               "previous": ["10.0.0.4"]},
              {"op": "remove", "zone": "example.com.", "name": "web1.example.com.", "type": "AAAA",
               "records": ["2001:db8:10::5"]}],
    }),
]  # fmt: skip


@pytest.mark.parametrize("rows, wants, changes", PLANS)
def test_plan(rows, wants, changes):
    p = plan(NOVA, rows, wants)
    assert {z: p.log[z] for z in p.zones()} == changes
    assert p.zones() == list(changes)
    ops = {"add": "replace", "replace": "replace", "remove": "delete"}
    for z, entries in changes.items():
        assert [(e.op, str(e.name).lower()) for e in p.edits[z]] == [(ops[c["op"]], c["name"]) for c in entries]


def test_a_changed_provenance_is_written_again():
    """A floating IP's A record carries the port and instance behind it (managed_extra): when they
    change, the records are written again even though the address is the same."""
    fip = Ident("neutron", "floatingip", "f38ff2b6-cd4d-433e-8a9c-9e00dfc05b1e", "p1",
                {"port_id": "289ed46b", "fixed_ip": "10.0.0.5", "instance_id": "i-2"})  # fmt: skip
    row = have(FWD, "example.com.", "web1.fip.example.com.", A, ["203.0.113.10"],
               {"port_id": "289ed46b", "fixed_ip": "10.0.0.5", "instance_id": "i-1"})  # fmt: skip
    wanted = want(FWD, "example.com.", "web1.fip.example.com.", "A", ["203.0.113.10"])
    p = plan(fip, [row], [wanted])
    assert p.log[FWD][0]["op"] == "replace" and p.edits[FWD][0].managed == fip.managed()
    assert plan(Ident(fip.source, fip.rtype, fip.rid, "p1", row["managed_extra"]), [row], [wanted]).zones() == []


def test_ident_owns_only_its_own_rows():
    mine = {"managed": True, "managed_source": "nova", "managed_resource_type": "instance", "managed_resource_id": NOVA.rid}
    assert NOVA.owns(mine)
    assert not NOVA.owns({**mine, "managed_resource_id": "another"})
    assert not NOVA.owns({**mine, "managed": False})  # a person's record


def test_addresses_reach_the_store_as_rdata_and_anything_else_as_text():
    from minidns.sink.sync import rdatas

    assert [r.to_text() for r in rdatas("A", ("10.0.0.5",))] == ["10.0.0.5"]
    assert [r.to_text() for r in rdatas("AAAA", ("2001:db8::5",))] == ["2001:db8::5"]
    assert rdatas("A", ("10.0.0.300",)) == ("10.0.0.300",)  # the store's parser says what is wrong with it
    assert rdatas("PTR", ("web1.example.com.",)) == ("web1.example.com.",)
