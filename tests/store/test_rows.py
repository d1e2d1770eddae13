"""RRsets as rows (minidns.store.rows): the stored wire form, the row of an RRset, the SOA row a
zone's fields make (RFC 1035 §3.3.13)."""

import uuid

import dns.rdata
import dns.rdataclass

from minidns.store.rows import RRSET_COLUMNS, RRset, meta_default, pack_rr, rrset_row, soa_rdata, soa_row, split_wire

A, SOA = 1, 6
ZONE = {"id": uuid.uuid4(), "name": "rows.test.", "mname": "ns1.rows.test.", "email": "hostmaster@rows.test",
        "refresh": 3600, "retry": 600, "expire": 1209600, "minimum": 300, "ttl": 3600}  # fmt: skip


def a(text: str):
    return dns.rdata.from_text(dns.rdataclass.IN, A, text)


def test_the_stored_wire_splits_back_into_its_rdata():
    rdatas = [a("192.0.2.1").to_wire(), a("192.0.2.2").to_wire()]
    wire = b"".join(pack_rr(A, 300, rd) for rd in rdatas)
    assert wire[:8] == b"\x00\x01\x00\x00\x01\x2c\x00\x04"  # TYPE 1, TTL 300, RDLENGTH 4
    assert split_wire(wire) == rdatas
    assert split_wire(b"") == []


def test_an_rrset_row_holds_text_wire_and_metadata_in_column_order():
    recs = [(a("192.0.2.1"), a("192.0.2.1").to_wire())]
    meta = {**meta_default(), "description": "web", "managed": True, "managed_source": "nova"}
    row = dict(zip(RRSET_COLUMNS, rrset_row(ZONE["id"], (b"\x03www\x04rows\x04test\x00", A), RRset("www.rows.test.", 60, recs, meta))))
    assert (row["name"], row["type"], row["ttl"], row["records"]) == ("www.rows.test.", A, 60, ["192.0.2.1"])
    assert row["wire"] == pack_rr(A, 60, recs[0][1])
    assert (row["description"], row["managed"], row["managed_source"], row["managed_extra"]) == ("web", True, "nova", None)


def test_the_soa_is_made_from_the_zones_fields():
    rd = soa_rdata(ZONE, 2026120701)
    soa = dns.rdata.from_wire(dns.rdataclass.IN, SOA, rd, 0, len(rd))
    assert soa.to_text() == "ns1.rows.test. hostmaster.rows.test. 2026120701 3600 600 1209600 300"
    row = dict(zip(RRSET_COLUMNS, soa_row(ZONE, b"\x04rows\x04test\x00", rd)))
    assert (row["type"], row["ttl"], row["records"], row["managed"]) == (SOA, 3600, [soa.to_text()], False)
