"""NSEC3 chain building (minidns/dnssec/nsec3.py) against RFC 5155 Appendix A: its example zone's
hashed owner names (salt aabbccdd, 12 iterations) and its whole opt-out chain, record for record."""

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from minidns.dnssec.nsec3 import (
    ancestors, chain, chain_bitmap, in_chain, is_below, nsec3_bitmap, nsec3_hash, nsec3_next, nsec3_owner, nsec3_rdata,
    nsec3_with_next, owner_hash,
)  # fmt: skip

SALT, ITERATIONS = bytes.fromhex("aabbccdd"), 12
APEX = dns.name.from_text("example.").to_wire()
T = dns.rdatatype.from_text


def w(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


def types(*names: str) -> set[int]:
    return {T(n) for n in names}


# RFC 5155 Appendix A: owner → hashed owner label.
HASHES = [
    ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
    ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
    ("ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"),
    ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"),
    ("ns2.example.", "q04jkcevqvmu85r014c7dkba38o0ji5r"),
    ("w.example.", "k8udemvp1j2f7eg6jebps17vp3n8i58h"),
    ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
    ("x.w.example.", "b4um86eghhds6nea196smvmlo4ors995"),
    ("y.w.example.", "ji6neoaepv8b5o6k4ev33abha8ht9fgc"),
    ("x.y.w.example.", "2vptu5timamqttgl4luu9kg21e0aor3s"),
    ("xx.example.", "t644ebqk9bibcna874givr6joj62mlhv"),
    ("2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.", "kohar7mbb8dc2ce8a9qvl8hon4k53uhi"),
]

# The example zone of RFC 5155 Appendix A: the types at each owner (signing adds RRSIG).
ZONE = {
    "example.": types("SOA", "NS", "MX", "DNSKEY", "NSEC3PARAM"),
    "2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.": types("A"),
    "a.example.": types("NS", "DS"),
    "ns1.a.example.": types("A"),  # glue
    "ns2.a.example.": types("A"),
    "ai.example.": types("A", "HINFO", "AAAA"),
    "c.example.": types("NS"),  # an insecure delegation: opted out
    "ns1.c.example.": types("A"),
    "ns2.c.example.": types("A"),
    "ns1.example.": types("A"),
    "ns2.example.": types("A"),
    "*.w.example.": types("MX"),
    "x.w.example.": types("MX"),
    "x.y.w.example.": types("MX"),
    "xx.example.": types("A", "HINFO", "AAAA"),
}

# Its NSEC3 RRs as Appendix A lists them (hashed owner, RDATA), in hash order.
CHAIN = [
    ("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom", "2t7b4g4vsa5smi47k61mv5bv1a22bojr MX DNSKEY NS SOA NSEC3PARAM RRSIG"),
    ("2t7b4g4vsa5smi47k61mv5bv1a22bojr", "2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG"),
    ("2vptu5timamqttgl4luu9kg21e0aor3s", "35mthgpgcu1qg68fab165klnsnk3dpvl MX RRSIG"),
    ("35mthgpgcu1qg68fab165klnsnk3dpvl", "b4um86eghhds6nea196smvmlo4ors995 NS DS RRSIG"),
    ("b4um86eghhds6nea196smvmlo4ors995", "gjeqe526plbf1g8mklp59enfd789njgi MX RRSIG"),
    ("gjeqe526plbf1g8mklp59enfd789njgi", "ji6neoaepv8b5o6k4ev33abha8ht9fgc A HINFO AAAA RRSIG"),
    ("ji6neoaepv8b5o6k4ev33abha8ht9fgc", "k8udemvp1j2f7eg6jebps17vp3n8i58h"),  # y.w: an empty non-terminal
    ("k8udemvp1j2f7eg6jebps17vp3n8i58h", "kohar7mbb8dc2ce8a9qvl8hon4k53uhi"),  # w: an empty non-terminal
    ("kohar7mbb8dc2ce8a9qvl8hon4k53uhi", "q04jkcevqvmu85r014c7dkba38o0ji5r A RRSIG"),
    ("q04jkcevqvmu85r014c7dkba38o0ji5r", "r53bq7cc2uvmubfu5ocmm6pers9tk9en A RRSIG"),
    ("r53bq7cc2uvmubfu5ocmm6pers9tk9en", "t644ebqk9bibcna874givr6joj62mlhv MX RRSIG"),
    ("t644ebqk9bibcna874givr6joj62mlhv", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom A HINFO AAAA RRSIG"),
]


def rfc_rdata(rest: str) -> bytes:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NSEC3, f"1 1 12 aabbccdd {rest}").to_wire()


@pytest.mark.parametrize("owner,hashed", HASHES)
def test_hashed_owner_names_are_rfc5155_appendix_a(owner, hashed):
    h = nsec3_hash(w(owner), SALT, ITERATIONS)
    assert nsec3_owner(h, APEX) == w(f"{hashed}.example.")
    assert owner_hash(nsec3_owner(h, APEX)) == h


def test_the_hash_ignores_the_owners_letter_case():
    assert nsec3_hash(w("NS1.Example."), SALT, ITERATIONS) == nsec3_hash(w("ns1.example."), SALT, ITERATIONS)


def test_the_example_zone_makes_appendix_a_chain_record_for_record():
    made = chain({w(o): t for o, t in ZONE.items()}, APEX, optout=True, salt=SALT, iterations=ITERATIONS)
    assert list(made) == [w(f"{h}.example.") for h, _ in CHAIN], "the chain's names, in hash order"
    for hashed, rest in CHAIN:
        assert made[w(f"{hashed}.example.")] == rfc_rdata(rest), hashed


def test_without_opt_out_an_insecure_delegation_has_its_nsec3():
    made = chain({w(o): t for o, t in ZONE.items()}, APEX, optout=False)
    c = nsec3_owner(nsec3_hash(w("c.example.")), APEX)
    assert nsec3_bitmap(made[c]) == chain_bitmap(types("NS"), True)  # NS alone: nothing signed, no RRSIG
    assert len(made) == len(CHAIN) + 1
    assert all(rd[1] == 0 for rd in made.values()), "no Opt-Out flag"


def test_the_chain_is_a_ring_in_hash_order():
    made = chain({w(o): t for o, t in ZONE.items()}, APEX)
    hashes = [owner_hash(o) for o in made]
    assert hashes == sorted(hashes)
    assert [nsec3_next(made[o]) for o in made] == hashes[1:] + hashes[:1]


def test_rfc9276_parameters_by_default():
    rd = nsec3_rdata(b"\x01" * 20, b"")
    parsed = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.NSEC3, rd, 0, len(rd))
    assert (parsed.algorithm, parsed.flags, parsed.iterations, parsed.salt) == (1, 0, 0, b"")
    assert nsec3_hash(w("example.")) == nsec3_hash(w("example."), b"", 0)


@pytest.mark.parametrize("types_, is_cut, optout, member", [
    (types("A"), False, True, True),
    (types("NS"), True, False, True),
    (types("NS"), True, True, False),  # RFC 5155 §6: opted out
    (types("NS", "DS"), True, True, True),  # a secure delegation stays
    (set(), False, False, False),  # an empty non-terminal is in by what is below it, not by itself
])  # fmt: skip
def test_which_names_have_an_nsec3_of_their_own(types_, is_cut, optout, member):
    assert in_chain(types_, is_cut, optout) is member


@pytest.mark.parametrize("bitmap_types,is_cut,want", [
    (types("A"), False, "A RRSIG"),
    (types("NS"), True, "NS"),
    (types("NS", "DS"), True, "NS DS RRSIG"),
    (types("NS"), False, "NS RRSIG"),  # the apex's NS is signed
])  # fmt: skip
def test_the_type_bitmap_adds_rrsig_where_something_is_signed(bitmap_types, is_cut, want):
    assert nsec3_bitmap(rfc_rdata("0p9mhaveqvm6t7vbl5lop2u3t2rp3tom " + want)) == chain_bitmap(bitmap_types, is_cut)


def test_ancestors_stop_above_the_apex():
    assert list(ancestors(w("x.y.w.example."), APEX)) == [w("y.w.example."), w("w.example.")]
    assert list(ancestors(w("w.example."), APEX)) == []
    assert list(ancestors(APEX, APEX)) == []


@pytest.mark.parametrize("owner,name,below", [
    ("x.w.example.", "w.example.", True),
    ("xw.example.", "w.example.", False),  # ends in the same octets, not at a label boundary
    ("w.example.", "w.example.", True),
])  # fmt: skip
def test_descendants_end_at_a_label_boundary(owner, name, below):
    assert is_below(w(owner), w(name)) is below


def test_relinking_changes_only_the_next_hash():
    rd = rfc_rdata("2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG")
    relinked = nsec3_with_next(rd, b"\x02" * 20)
    assert nsec3_next(relinked) == b"\x02" * 20
    assert nsec3_bitmap(relinked) == nsec3_bitmap(rd) and relinked[:10] == rd[:10]
