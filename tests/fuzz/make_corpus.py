"""Write the seed corpus, tests/fuzz/corpus/*.bin: one message per file, each a case the fuzzers
mutate from and the tests replay. Run from the repository root: `python3 tests/fuzz/make_corpus.py`.
Files named regress-*.bin are inputs that once broke the server; they are kept by hand, not
written here."""

from __future__ import annotations

import sys
from pathlib import Path
from struct import pack

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig
import dns.update

from tests.fuzz.gen import NOW, soa_rdata, wire_name
from minidns.answer.cookies import Cookies, address_octets
from tests.fuzz.target import COOKIE_SECRET, CORPUS, GOOD_KEYS, KEYS, TRUSTED


def q(name, rdtype="A", rdclass="IN", **kw) -> bytes:
    m = dns.message.make_query(name, rdtype, rdclass, **kw)
    m.id = 0x1234
    return m.to_wire()


def edns(name, rdtype, options=(), **kw) -> bytes:
    return q(name, rdtype, use_edns=0, payload=kw.pop("payload", 1232), options=list(options), **kw)


def co(wire: bytes) -> bytes:
    """The CO flag (RFC 9824) set in the OPT record of `wire` (the last record, no options)."""
    at = wire.rfind(b"\x00\x00\x29")
    flags = int.from_bytes(wire[at + 7 : at + 9], "big") | 0x4000
    return wire[: at + 7] + pack("!H", flags) + wire[at + 9 :]


def tsig(wire: bytes, key: dns.tsig.Key, time: int = NOW, mac=None, fudge: int = 300) -> bytes:
    template = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, fudge, b"",
                                         int.from_bytes(wire[:2], "big"), 0, b"")  # fmt: skip
    rdata, _ = dns.tsig.sign(wire, key, template, time, None)
    if mac is not None:
        rdata = rdata.replace(mac=mac(rdata.mac))
    body = rdata.to_wire()
    arcount = int.from_bytes(wire[10:12], "big") + 1
    return wire[:10] + pack("!H", arcount) + wire[12:] + key.name.to_wire() + pack("!HHIH", 250, 255, 0, len(body)) + body


def ixfr(zone: str, serial: int | None) -> bytes:
    head = pack("!6H", 0x1234, 0, 1, 0, 1 if serial is not None else 0, 0)
    body = wire_name(zone) + pack("!HH", 251, 1)
    if serial is not None:
        rd = wire_name("ns1.example.com.") + wire_name("hostmaster.example.com.") + pack("!5I", serial, 7200, 3600, 1209600, 300)
        body += wire_name(zone) + pack("!HHIH", 6, 1, 300, len(rd)) + rd
    return head + body


def notify(zone: str, with_soa: bool = True) -> bytes:
    m = dns.message.make_query(zone, "SOA")
    m.id = 0x1234
    m.set_opcode(dns.opcode.NOTIFY)
    m.flags |= dns.flags.AA
    wire = m.to_wire()
    if with_soa:
        class _R:  # a fixed serial
            def pick(self, seq):
                return 2026112202
        rd = soa_rdata(_R())
        wire = wire[:6] + pack("!H", 1) + wire[8:] + wire_name(zone) + pack("!HHIH", 6, 1, 300, len(rd)) + rd
    return wire


def upd(*ops, zone: str = "example.com.") -> bytes:
    """An UPDATE (RFC 2136) of `zone` made by dnspython's UpdateMessage: each op is a method name
    (add, replace, delete, present, absent) and its arguments."""
    m = dns.update.UpdateMessage(zone, id=0x1234)
    for op, *args in ops:
        getattr(m, op)(*args)
    return m.to_wire()


def raw(header, *parts) -> bytes:
    return pack("!6H", *header) + b"".join(parts)


SHA256, MD5, SHA512 = GOOD_KEYS
AXFR_SIGNED = q("signed.test.", "AXFR")

SEEDS = {
    "query-a": q("www.example.com."),
    "query-aaaa-edns": edns("mail.example.com.", "AAAA", []),
    "query-txt-big-edns700": edns("big.example.com.", "TXT", payload=700),
    "query-any": q("example.com.", "ANY"),
    "query-nxdomain": q("nope.example.com.", "MX"),
    "query-cname-chain": q("chain1.example.com."),
    "query-dname": q("a.b.dname.example.com."),
    "query-dname-too-long": q("x" * 60 + ".long.example.com."),
    "query-wildcard": q("x.wild.example.com.", "TXT"),
    "query-referral": q("www.deleg.example.com.", "AAAA"),
    "query-referral-many-ns": q("a.biggl.example.com."),
    "query-ptr": q("80.2.0.192.in-addr.arpa.", "PTR"),
    "query-ch-version": q("version.bind.", "TXT", "CH"),
    "query-ch-id": q("id.server.", "TXT", "CH"),
    "query-0x20-case": q("WwW.ExAmPlE.cOm."),
    "query-class-hs": q("www.example.com.", "A", "HS"),
    "query-outside": q("www.example.org."),
    "query-root": q(".", "NS"),
    "edns-nsid": edns("www.example.com.", "A", [dns.edns.GenericOption(3, b"")]),
    "edns-cookie-client": edns("www.example.com.", "A", [dns.edns.GenericOption(10, bytes(range(8)))]),
    "edns-cookie-full": edns("www.example.com.", "A", [dns.edns.GenericOption(10, bytes(range(24)))]),
    "edns-cookie-valid-server": edns("www.example.com.", "A", [dns.edns.GenericOption(
        10, bytes(range(8)) + Cookies(COOKIE_SECRET).make(bytes(range(8)), address_octets(TRUSTED), NOW))]),
    "edns-cookie-bad-length": edns("www.example.com.", "A", [dns.edns.GenericOption(10, bytes(range(7)))]),
    "edns-padding": edns("www.example.com.", "A", [dns.edns.GenericOption(12, bytes(64))]),
    "edns-ecs": edns("www.example.com.", "A", [dns.edns.ECSOption("192.0.2.0", 24)]),
    "edns-version-1": q("www.example.com.", use_edns=1),
    "edns-payload-0": q("www.example.com.", use_edns=0, payload=0),
    "edns-two-opts": (lambda w: w[:10] + pack("!H", 2) + w[12:] + w[-11:])(edns("www.example.com.", "A")),
    "edns-opt-not-last": (lambda w: w[:10] + pack("!H", 2) + w[12:] + wire_name("x.") + pack("!HHIH", 1, 1, 0, 4) + bytes(4))(
        edns("www.example.com.", "A")),
    "dnssec-do-a": edns("www.signed.test.", "A", want_dnssec=True),
    "dnssec-do-nxdomain": edns("nx.signed.test.", "A", want_dnssec=True),
    "dnssec-do-co-nxdomain": co(edns("nx.signed.test.", "A", want_dnssec=True)),
    "dnssec-do-nodata": edns("www.signed.test.", "MX", want_dnssec=True),
    "dnssec-do-wildcard": edns("x.wild.signed.test.", "TXT", want_dnssec=True),
    "dnssec-do-ent": edns("c.signed.test.", "TXT", want_dnssec=True),
    "dnssec-dnskey": edns("signed.test.", "DNSKEY", want_dnssec=True),
    "dnssec-ds-secure": edns("secure.signed.test.", "DS", want_dnssec=True),
    "dnssec-referral-insecure": edns("x.insecure.signed.test.", "A", want_dnssec=True),
    "dnssec-nxname-type128": edns("www.signed.test.", 128, want_dnssec=True),
    "dnssec-ed25519-nx": co(edns("nx.ed.test.", "AAAA", want_dnssec=True)),
    "xfr-axfr": q("example.com.", "AXFR"),
    "xfr-axfr-unknown-zone": q("nowhere.test.", "AXFR"),
    "xfr-ixfr-from-history": ixfr("example.com.", 2026112199),
    "xfr-ixfr-current": ixfr("example.com.", 2026112201),
    "xfr-ixfr-newer": ixfr("example.com.", 2026112300),
    "xfr-ixfr-no-soa": ixfr("example.com.", None),
    "xfr-axfr-signed-zone-unsigned-request": AXFR_SIGNED,
    "tsig-axfr-sha256": tsig(AXFR_SIGNED, SHA256),
    "tsig-axfr-many-messages": tsig(q("many.test.", "AXFR"), SHA256),
    "xfr-axfr-many-messages": q("many.test.", "AXFR"),
    "tsig-ixfr-md5": tsig(ixfr("example.com.", 2026112199), MD5),
    "tsig-query-sha512": tsig(q("www.example.com."), SHA512),
    "tsig-query-do-signed-zone": tsig(edns("nx.signed.test.", "A", want_dnssec=True), SHA256),
    "tsig-badkey": tsig(q("example.com.", "SOA"), KEYS.unknown[0]),
    "tsig-badsig": tsig(q("example.com.", "SOA"), KEYS.wrong[0]),
    "tsig-badtime": tsig(q("example.com.", "SOA"), SHA256, time=NOW - 3600),
    "tsig-truncated-mac": tsig(q("example.com.", "SOA"), SHA256, mac=lambda m: m[:10]),  # under half: FORMERR
    "tsig-axfr-truncated-128": tsig(q("many.test.", "AXFR"), SHA256, mac=lambda m: m[:16]),  # as Kea and BIND send
    "tsig-query-md5-truncated-80": tsig(q("www.example.com."), MD5, mac=lambda m: m[:10]),
    "tsig-empty-mac": tsig(q("example.com.", "SOA"), SHA256, mac=lambda m: b""),
    "tsig-not-last": (lambda w: w[:10] + pack("!H", 2) + w[12:] + wire_name("x.") + pack("!HHIH", 1, 1, 0, 4) + bytes(4))(
        tsig(q("example.com.", "SOA"), SHA256)),
    "tsig-notify": tsig(notify("example.com."), SHA256),
    "notify-soa": notify("example.com."),
    "notify-no-soa": notify("example.com.", with_soa=False),
    "notify-unknown-zone": notify("nowhere.test."),
    "update-add": upd(("add", "new", 300, "A", "192.0.2.9")),
    "update-prereq-name-in-use": upd(("present", "www"), ("add", "www", 300, "TXT", '"in use"')),
    "update-prereq-name-not-in-use": upd(("absent", "fresh"), ("add", "fresh", 300, "A", "192.0.2.10")),
    "update-prereq-rrset-exists": upd(("present", "www", "A"), ("add", "www", 300, "AAAA", "2001:db8::1")),
    "update-prereq-rrset-not-exists": upd(("absent", "www", "MX"), ("add", "www", 300, "MX", "10 mail")),
    "update-prereq-rrset-value": upd(("present", "www", "A", "192.0.2.80"), ("replace", "www", 300, "A", "192.0.2.81")),
    "update-delete-name": upd(("delete", "www")),
    "update-delete-rrset": upd(("delete", "www", "AAAA")),
    "update-delete-rr": upd(("delete", "www", "A", "192.0.2.80")),
    "update-soa": upd(("replace", "@", 3600, "SOA", "ns1 hostmaster 2026112300 7200 3600 1209600 300")),
    "update-cname": upd(("add", "alias2", 300, "CNAME", "www")),
    "update-outside-zone": upd(("add", "x.example.org.", 300, "A", "192.0.2.1")),
    "tsig-update-sha256": tsig(upd(("absent", "signed"), ("add", "signed", 300, "A", "192.0.2.11")), SHA256),
    "opcode-iquery": raw((0x1234, 1 << 11, 1, 0, 0, 0), wire_name("example.com."), pack("!HH", 1, 1)),
    "opcode-15": raw((0x1234, 15 << 11, 0, 0, 0, 0)),
    "names-pointer-loop": raw((0x1234, 0, 1, 0, 0, 0), b"\xc0\x0c", pack("!HH", 1, 1)),
    "names-forward-pointer": raw((0x1234, 0, 1, 0, 0, 0), b"\xc0\x20", pack("!HH", 1, 1), bytes(20)),
    "names-pointer-into-header": raw((0x1234, 0, 1, 0, 0, 0), b"\xc0\x04", pack("!HH", 1, 1)),
    "names-too-long": raw((0x1234, 0, 1, 0, 0, 0), (b"\x3f" + b"y" * 63) * 4 + b"\x00", pack("!HH", 1, 1)),
    "names-label-0x40": raw((0x1234, 0, 1, 0, 0, 0), b"\x41\x00\x00", pack("!HH", 1, 1)),
    "counts-qdcount-0": raw((0x1234, 0, 0, 0, 0, 0)),
    "counts-qdcount-2": raw((0x1234, 0, 2, 0, 0, 0), (wire_name("example.com.") + pack("!HH", 1, 1)) * 2),
    "counts-arcount-too-big": raw((0x1234, 0, 1, 0, 0, 5), wire_name("example.com.") + pack("!HH", 1, 1)),
    "header-only": raw((0x1234, 0x0100, 0, 0, 0, 0)),
    "short": b"\x12\x34\x01",
    "qr-set": raw((0x1234, 0x8000, 1, 0, 0, 0), wire_name("example.com.") + pack("!HH", 1, 1)),
}


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, wire in SEEDS.items():
        (CORPUS / f"{name}.bin").write_bytes(wire)
    print(f"wrote {len(SEEDS)} seeds to {CORPUS}")


if __name__ == "__main__":
    main()
