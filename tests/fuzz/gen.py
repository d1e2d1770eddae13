"""Structure-aware DNS message generator and byte-level mutator, for the fuzz tests and bench/fuzz.py.

Every choice goes through a `Choices` object: `RandomChoices` (a seeded random.Random, fast, for
the million-packet bench) or the hypothesis-backed one in tests/fuzz/strategies.py (which can
shrink a failing message). So both run the same families of messages:

  query    an ordinary question, random type and class, random header bits, 0x20 case
  dnssec   DO queries for the signed zones: signed answers, compact denial with and without CO,
           NXNAME (type 128), random names below them, small payloads
  edns     OPT records: DO/CO flags, versions, payloads, NSID, cookies (option 10) of right and
           wrong lengths, padding, EDE, ECS, unknown codes, wrong option lengths, several OPTs,
           OPT not last, OPT in the answer section, OPT owner not the root
  names    compression pointers (backward, to itself, forward, into the header, loops of two),
           labels of the reserved 0x40/0x80 types, labels and names over their limits
  counts   header counts that do not match the records present
  tsig     signed with the fuzz keys, unknown keys, wrong secrets, other algorithms, truncated,
           empty or flipped MACs, bad times, other original IDs, TSIG not last or not in the
           additional section, two TSIGs, class not ANY, rdata cut short
  xfr      AXFR and IXFR, IXFR with its authority SOA well formed, malformed or absent
  notify   NOTIFY (RFC 1996) with and without the SOA, for served and unserved zones
  update   UPDATE (RFC 2136) and the other opcodes

Nothing here imports minidns: it only knows the fuzz target's zone names and keys (target.py
passes them in as `Keys`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from struct import pack

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

NOW = 1_790_000_000  # the fuzz target's clock, and the time good TSIG signatures are made at

QNAMES = (
    "example.com.", "www.example.com.", "nope.example.com.", "x.cwild.example.com.", "a.b.dname.example.com.",
    "www.deleg.example.com.", "child.example.com.", "ns1.child.example.com.", "Mixed.Case.example.com.",
    "big.example.com.", "loop1.example.com.", "chain1.example.com.", "x.long.example.com.",
    "mxmany.example.com.", "biggl.example.com.", "x.wild.example.com.", "a.b.wild2.example.com.",
    "_sip._tcp.example.com.", "dangling.example.com.", "ent.deep.example.com.",
    "2.0.192.in-addr.arpa.", "80.2.0.192.in-addr.arpa.", "9.2.0.192.in-addr.arpa.",
    "signed.test.", "www.signed.test.", "nx.signed.test.", "c.signed.test.", "a.b.c.signed.test.",
    "x.wild.signed.test.", "alias.signed.test.", "secure.signed.test.", "x.secure.signed.test.",
    "insecure.signed.test.", "x.dn.signed.test.", "mail.signed.test.",
    "version.bind.", "id.server.", "hostname.bind.", "version.server.",
    ".", "com.", "other.invalid.", "xn--nxasmq6b.example.com.",
)  # fmt: skip
ZONES = ("example.com.", "child.example.com.", "2.0.192.in-addr.arpa.", "signed.test.", "many.test.", "other.invalid.")
QTYPES = (1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 41, 43, 46, 47, 48, 50, 51, 52, 59, 64, 65, 99, 128, 249, 250, 251,
          252, 253, 254, 255, 256, 257, 0, 65535, 3, 4, 32768)  # fmt: skip
QCLASSES = (1, 1, 1, 1, 1, 3, 4, 254, 255, 0, 2, 65535)
OPCODES = (0, 0, 0, 0, 4, 4, 5, 1, 2, 3, 6, 7, 15)
SERIALS = (0, 1, 2026112200, 2026112201, 2026112202, 0xFFFFFFFF, 0x80000000, 6, 7, 8)
INTERESTING8 = (0, 1, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xFF)
INTERESTING16 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)


class Choices:
    """Where a generator's decisions come from."""

    def int(self, lo: int, hi: int) -> int:  # inclusive
        raise NotImplementedError

    def chance(self, p: float) -> bool:
        raise NotImplementedError

    def pick(self, seq):
        raise NotImplementedError

    def bytes(self, n: int) -> bytes:
        raise NotImplementedError


class RandomChoices(Choices):
    __slots__ = ("rnd", "int", "pick", "random")

    def __init__(self, rnd: random.Random):
        self.rnd = rnd
        self.int = rnd.randint
        self.pick = rnd.choice
        self.random = rnd.random

    def chance(self, p: float) -> bool:
        return self.random() < p

    def bytes(self, n: int) -> bytes:
        return self.rnd.randbytes(n)


@dataclass(frozen=True)
class Keys:
    """TSIG keys: `good` the server knows; `unknown` it does not (by name); `wrong` share a
    good key's name with another secret."""

    good: tuple[dns.tsig.Key, ...]
    unknown: tuple[dns.tsig.Key, ...]
    wrong: tuple[dns.tsig.Key, ...]


class Message:
    """A message being built: header fields, records appended as bytes, names compressed against
    what is already written."""

    def __init__(self, r: Choices):
        self.r = r
        self.buf = bytearray(12)
        self.offsets: dict[bytes, int] = {}  # lowercase wire suffix -> where it was written
        self.counts = [0, 0, 0, 0]

    # -- names ----------------------------------------------------------------------------------
    def name(self, text: str, weird: float = 0.0) -> None:
        """Write a name; with probability `weird`, a malformed or unusual encoding of it."""
        r = self.r
        labels = [lab.encode() for lab in text.rstrip(".").split(".") if lab] if text != "." else []
        if r.chance(0.2):  # DNS 0x20: random letter case
            labels = [bytes(c ^ 0x20 if 0x61 <= (c | 0x20) <= 0x7A and r.chance(0.5) else c for c in lab) for lab in labels]
        if weird and r.chance(weird):
            self._weird_name(labels)
            return
        for i in range(len(labels) + 1):
            suffix = b"".join(bytes([len(lab)]) + lab for lab in labels[i:]).lower() + b"\x00"
            at = self.offsets.get(suffix)
            if at is not None and i < len(labels) + 1 and r.chance(0.8) and suffix != b"\x00":
                self.buf += pack("!H", 0xC000 | at)
                break
            if len(self.buf) < 0x3FFF and suffix != b"\x00":
                self.offsets.setdefault(suffix, len(self.buf))
            if i < len(labels):
                self.buf += bytes([len(labels[i])]) + labels[i]
            else:
                self.buf += b"\x00"

    def _weird_name(self, labels: list[bytes]) -> None:
        r, buf = self.r, self.buf
        kind = r.int(0, 11)
        here = len(buf)
        if kind == 0:  # pointer to itself
            buf += pack("!H", 0xC000 | here)
        elif kind == 1:  # forward pointer
            buf += pack("!H", 0xC000 | min(0x3FFF, here + r.int(2, 40)))
        elif kind == 2:  # pointer into the header
            buf += pack("!H", 0xC000 | r.int(0, 11))
        elif kind == 3:  # a loop of two: label, pointer back to a pointer that points forward
            buf += b"\x01a" + pack("!H", 0xC000 | (here + 4)) + pack("!H", 0xC000 | here)
        elif kind == 4:  # reserved label types (RFC 6891 §5 retired 0x40, 0x80 undefined)
            buf += bytes([r.pick((0x40, 0x41, 0x80, 0xBF))]) + r.bytes(r.int(0, 4)) + b"\x00"
        elif kind == 5:  # a label longer than 63 can not be, read as a pointer
            buf += b"\x7f" + b"x" * 63 + b"\x00"
        elif kind == 6:  # a name over 255 octets
            buf += (b"\x3f" + b"y" * 63) * r.int(4, 5) + b"\x00"
        elif kind == 7:  # exactly 255 octets and 256
            n = r.int(0, 1)
            buf += (b"\x3f" + b"z" * 63) * 3 + bytes([61 + n]) + b"w" * (61 + n) + b"\x00"
        elif kind == 8:  # length byte running past the end of the message (the end comes later)
            buf += bytes([r.int(1, 63)]) + b"ab"
        elif kind == 9:  # a valid backward pointer, then labels after it (junk follows)
            buf += pack("!H", 0xC000 | 12) + b"\x03www\x00"
        elif kind == 10:  # a pointer to a random place behind
            buf += pack("!H", 0xC000 | r.int(12, max(12, here)))
        else:  # binary labels and empty labels
            buf += b"\x01\x00\x01\xff" + b"".join(bytes([len(lab)]) + lab for lab in labels) + b"\x00"

    # -- records ----------------------------------------------------------------------------------
    def question(self, qname: str, qtype: int, qclass: int, weird: float = 0.0) -> None:
        self.name(qname, weird)
        self.buf += pack("!HH", qtype, qclass)
        self.counts[0] += 1

    def rr(self, section: int, owner: str, rtype: int, rclass: int, ttl: int, rdata: bytes, rdlen: int | None = None,
           weird: float = 0.0) -> None:  # fmt: skip
        self.name(owner, weird)
        self.buf += pack("!HHIH", rtype, rclass, ttl & 0xFFFFFFFF, len(rdata) if rdlen is None else rdlen) + rdata
        self.counts[section] += 1

    def raw_rr(self, section: int, data: bytes) -> None:
        self.buf += data
        self.counts[section] += 1

    def finish(self, qid: int, flags: int, counts: list[int] | None = None) -> bytes:
        self.buf[:12] = pack("!6H", qid, flags, *(counts or self.counts))
        return bytes(self.buf)


def wire_name(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def soa_rdata(r: Choices, serial: int | None = None) -> bytes:
    serial = r.pick(SERIALS) if serial is None else serial
    return wire_name("ns1.example.com.") + wire_name("hostmaster.example.com.") + pack("!5I", serial, 7200, 3600, 1209600, 300)


def rdata_for(r: Choices, rtype: int) -> bytes:
    if rtype == 1:
        return r.bytes(4)
    if rtype == 28:
        return r.bytes(16)
    if rtype == 6:
        return soa_rdata(r)
    if rtype in (2, 5, 12, 39):
        return wire_name(r.pick(QNAMES))
    if rtype == 16:
        n = r.int(0, 40)
        return bytes([n]) + b"t" * n
    return r.bytes(r.int(0, 24))


# -- families ---------------------------------------------------------------------------------


def header_flags(r: Choices, opcode: int | None = None, qr: float = 0.03) -> int:
    opcode = r.pick(OPCODES) if opcode is None else opcode
    flags = opcode << 11
    if r.chance(qr):
        flags |= 0x8000
    for bit, p in ((0x0400, 0.1), (0x0200, 0.05), (0x0100, 0.5), (0x0080, 0.05), (0x0040, 0.05), (0x0020, 0.1),
                   (0x0010, 0.1)):  # fmt: skip
        if r.chance(p):
            flags |= bit
    if r.chance(0.05):
        flags |= r.int(0, 15)  # an rcode in a query
    return flags


def edns_options(r: Choices) -> bytes:
    out = b""
    for _ in range(r.int(0, 4) if r.chance(0.7) else 0):
        kind = r.int(0, 8)
        if kind == 0:
            code, data = 3, (b"" if r.chance(0.8) else r.bytes(r.int(1, 8)))  # NSID
        elif kind in (1, 2):  # cookie: client only (8), with a server cookie (16..40), or wrong
            n = r.pick((8, 8, 16, 24, 40, 0, 1, 7, 9, 15, 41, 48))
            code, data = 10, r.bytes(n)
        elif kind == 3:  # padding (RFC 7830)
            code, data = 12, b"\x00" * r.int(0, 300)
        elif kind == 4:  # EDE in a query
            code, data = 15, pack("!H", r.int(0, 30)) + r.bytes(r.int(0, 6))
        elif kind == 5:  # ECS (RFC 7871), sometimes with a bad family or prefix
            code, data = 8, pack("!HBB", r.pick((1, 2, 0, 3)), r.int(0, 129), r.int(0, 129)) + r.bytes(r.int(0, 17))
        elif kind == 6:  # TCP keepalive, expire, chain, key tag
            code, data = r.pick((11, 9, 13, 14)), r.bytes(r.pick((0, 2, 4, 3)))
        else:
            code, data = r.int(0, 65535), r.bytes(r.int(0, 12))
        length = len(data)
        if r.chance(0.05):
            length = r.pick((length + 1, max(0, length - 1), 0xFFFF, 0))
        out += pack("!HH", code, length) + data
    if r.chance(0.03):
        out += r.bytes(r.int(1, 3))  # a truncated option header
    return out


def add_opt(m: Message, r: Choices, section: int = 3) -> None:
    payload = r.pick((512, 1232, 4096, 65535, 0, 511, 1400, 1232))
    version = 0 if r.chance(0.9) else r.int(1, 255)
    ext_rcode = 0 if r.chance(0.95) else r.int(1, 255)
    flags = 0
    if r.chance(0.5):
        flags |= 0x8000  # DO
    if r.chance(0.3):
        flags |= 0x4000  # CO (RFC 9824)
    if r.chance(0.05):
        flags |= r.int(0, 0x3FFF)
    ttl = (ext_rcode << 24) | (version << 16) | flags
    owner = "." if r.chance(0.97) else r.pick(QNAMES)
    options = edns_options(r)
    rdlen = len(options) if r.chance(0.97) else r.pick((len(options) + 1, max(0, len(options) - 1), 0xFFFF))
    m.rr(section, owner, 41, payload, ttl, options, rdlen)


def fam_query(r: Choices, keys: Keys) -> bytes:
    m = Message(r)
    qtype = r.pick(QTYPES) if r.chance(0.9) else r.int(0, 65535)
    m.question(r.pick(QNAMES) if r.chance(0.85) else random_name(r), qtype, r.pick(QCLASSES), weird=0.02)
    if r.chance(0.6):
        add_opt(m, r)
    return m.finish(r.int(0, 65535), header_flags(r, opcode=0 if r.chance(0.9) else None))


def random_name(r: Choices) -> str:
    labels = []
    for _ in range(r.int(0, 6)):
        n = r.int(1, 20)
        labels.append("".join(r.pick("abcdefghijklmnopqrstuvwxyz0123456789-_*") for _ in range(n)))
    return ".".join(labels) + "." + r.pick(("example.com.", "signed.test.", "2.0.192.in-addr.arpa.", "com.", ""))


def fam_edns(r: Choices, keys: Keys) -> bytes:
    m = Message(r)
    m.question(r.pick(QNAMES), r.pick(QTYPES), 1)
    kind = r.int(0, 5)
    if kind == 0:  # two OPTs
        add_opt(m, r)
        add_opt(m, r)
    elif kind == 1:  # OPT not last
        add_opt(m, r)
        m.rr(3, r.pick(QNAMES), 1, 1, 300, r.bytes(4))
    elif kind == 2:  # OPT in the answer or authority section
        add_opt(m, r, section=r.int(1, 2))
    else:
        add_opt(m, r)
    return m.finish(r.int(0, 65535), header_flags(r, opcode=0))


SIGNED_NAMES = tuple(n for n in QNAMES if n.endswith("signed.test.")) + ("ed.test.", "www.ed.test.", "nx.ed.test.")
DNSSEC_TYPES = (1, 28, 16, 15, 6, 2, 5, 39, 48, 43, 46, 47, 50, 51, 255, 128, 99, 65, 0)


def fam_dnssec(r: Choices, keys: Keys) -> bytes:
    """Queries for the signed zones with DO set: signed answers, compact denial (CO), NXNAME."""
    m = Message(r)
    name = r.pick(SIGNED_NAMES)
    if r.chance(0.4):  # a random name below: a compact-denial name error, or a wildcard answer
        name = "".join(r.pick("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(r.int(1, 30))) + "." + name
    m.question(name, r.pick(DNSSEC_TYPES) if r.chance(0.95) else r.int(0, 65535), 1 if r.chance(0.95) else 255)
    flags = 0x8000 | (0x4000 if r.chance(0.5) else 0)
    options = edns_options(r) if r.chance(0.3) else b""
    m.rr(3, ".", 41, r.pick((512, 1232, 4096, 1400, 0, 700)), flags, options)
    return m.finish(r.int(0, 65535), header_flags(r, opcode=0, qr=0.0))


def fam_names(r: Choices, keys: Keys) -> bytes:
    m = Message(r)
    m.question(r.pick(QNAMES), r.pick(QTYPES), 1, weird=0.7)
    for _ in range(r.int(0, 2)):
        section = r.int(1, 3)
        rtype = r.pick((1, 2, 5, 6, 16, 28))
        m.rr(section, r.pick(QNAMES), rtype, 1, 300, rdata_for(r, rtype), weird=0.5)
    if r.chance(0.5):
        add_opt(m, r)
    if r.chance(0.1):
        m.buf += r.bytes(r.int(1, 8))  # trailing junk
    return m.finish(r.int(0, 65535), header_flags(r))


def fam_counts(r: Choices, keys: Keys) -> bytes:
    data = bytearray(fam_pick(r, keys, exclude_counts=True))
    if len(data) >= 12:
        i = r.int(0, 3)
        old = int.from_bytes(data[4 + 2 * i : 6 + 2 * i], "big")
        new = r.pick((0, 1, 2, old + 1, max(0, old - 1), 0xFFFF, r.int(0, 65535)))
        data[4 + 2 * i : 6 + 2 * i] = pack("!H", new & 0xFFFF)
    return bytes(data)


def tsig_rr(r: Choices, key: dns.tsig.Key, msg: bytes, qid: int, now: int = NOW) -> tuple[bytes, bytes]:
    """A TSIG record signing `msg` (whose ARCOUNT does not count it) with `key` at about `now`,
    perhaps made wrong on purpose; (record, MAC)."""
    time_signed = now + r.int(-250, 250) if r.chance(0.85) else now + r.pick((-100000, 100000, -301, 301, -now))
    fudge = 300 if r.chance(0.9) else r.pick((0, 1, 65535))
    original_id = qid if r.chance(0.9) else r.int(0, 65535)
    error = 0 if r.chance(0.95) else r.pick((16, 17, 18, 22, 1))
    other = b"" if r.chance(0.95) else r.bytes(r.pick((6, 0, 1, 7)))
    algorithm = key.algorithm
    template = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG, algorithm, 0, fudge, b"", original_id,
                                         error, other)  # fmt: skip
    rdata, _ = dns.tsig.sign(msg, key, template, time_signed, None)
    mac = rdata.mac
    bad = r.int(0, 19)
    if bad == 0:
        mac = mac[: r.int(0, len(mac) - 1)]  # truncated (RFC 8945 §5.2.2.1)
    elif bad == 1 and mac:
        i = r.int(0, len(mac) - 1)
        mac = mac[:i] + bytes([mac[i] ^ (1 << r.int(0, 7))]) + mac[i + 1 :]
    elif bad == 2:
        mac = r.bytes(r.pick((0, 10, 16, 32, 64, 100)))
    elif bad == 3:  # an algorithm the key is not
        algorithm = dns.name.from_text(r.pick(("hmac-sha1.", "hmac-md5.sig-alg.reg.int.", "hmac-sha512.", "unknown-alg.", ".")))
    rdata = rdata.replace(mac=mac, algorithm=algorithm)
    body = rdata.to_wire()
    rclass = 255 if r.chance(0.95) else r.pick((1, 254, 3))
    rdlen = len(body)
    if r.chance(0.03):
        cut = r.int(0, len(body))
        body = body[:cut]
        rdlen = cut if r.chance(0.5) else rdlen
    return key.name.to_wire() + pack("!HHIH", 250, rclass, 0, rdlen) + body, rdata.mac


def sign(r: Choices, keys: Keys, msg: bytes, now: int = NOW) -> bytes:
    """`msg` with a TSIG record appended, from a good key mostly, else a broken one."""
    which = r.int(0, 9)
    if which < 7:
        key = r.pick(keys.good)
    elif which < 8:
        key = r.pick(keys.unknown)
    else:
        key = r.pick(keys.wrong)
    qid = int.from_bytes(msg[:2], "big")
    record, _ = tsig_rr(r, key, msg, qid, now)
    arcount = int.from_bytes(msg[10:12], "big") + 1
    out = msg[:10] + pack("!H", arcount) + msg[12:] + record
    place = r.int(0, 29)
    if place == 0:  # a record after the TSIG
        out = out[:10] + pack("!H", arcount + 1) + out[12:] + wire_name("x.example.com.") + pack("!HHIH", 1, 1, 0, 4) + b"\x7f\0\0\1"
    elif place == 1:  # two TSIGs
        out = out[:10] + pack("!H", arcount + 1) + out[12:] + record
    elif place == 2:  # the TSIG counted in the authority section instead
        out = out[:8] + pack("!HH", int.from_bytes(msg[8:10], "big") + 1, arcount - 1) + out[12:]
    return out


def fam_tsig(r: Choices, keys: Keys) -> bytes:
    m = Message(r)
    opcode = r.pick((0, 0, 0, 4, 5, 1))
    qtype = r.pick((6, 1, 252, 251, 28, 255, 48, 128)) if opcode == 0 else 6
    qname = r.pick(ZONES) if r.chance(0.6) else r.pick(QNAMES)
    m.question(qname, qtype, 1 if r.chance(0.95) else r.pick(QCLASSES))
    if qtype == 251 and r.chance(0.8):
        m.rr(2, qname, 6, 1, 300, soa_rdata(r))
    if opcode == 4 and r.chance(0.5):
        m.rr(1, qname, 6, 1, 300, soa_rdata(r))
    if r.chance(0.5):
        add_opt(m, r)
    msg = m.finish(r.int(0, 65535), header_flags(r, opcode=opcode, qr=0.01))
    return sign(r, keys, msg)


def fam_xfr(r: Choices, keys: Keys) -> bytes:
    m = Message(r)
    qtype = r.pick((251, 252))
    qname = r.pick(ZONES) if r.chance(0.8) else r.pick(QNAMES)
    m.question(qname, qtype, 1 if r.chance(0.9) else r.pick(QCLASSES), weird=0.03)
    if qtype == 251 or r.chance(0.1):
        kind = r.int(0, 9)
        if kind <= 4:  # a well-formed SOA: current, older (history), newer, unrelated serials
            m.rr(2, qname, 6, 1, 300, soa_rdata(r))
        elif kind == 5:  # truncated SOA rdata (rdlength consistent)
            rd = soa_rdata(r)
            m.rr(2, qname, 6, 1, 300, rd[: r.int(0, len(rd) - 1)])
        elif kind == 6:  # not an SOA
            m.rr(2, qname, r.pick((1, 2, 16)), 1, 300, rdata_for(r, 1))
        elif kind == 7:  # SOA with compressed names in its rdata, and record(s) in the answer first
            m.rr(1, qname, 1, 1, 300, b"\x7f\0\0\1")
            m.name(qname)
            rd_start = len(m.buf) + 10
            m.buf += pack("!HHIH", 6, 1, 300, 0)
            m.name("ns1." + qname if qname != "." else "ns1.", weird=0.3)
            m.name("hostmaster." + qname if qname != "." else "h.", weird=0.3)
            m.buf += pack("!5I", r.pick(SERIALS), 1, 2, 3, 4)
            m.buf[rd_start - 2 : rd_start] = pack("!H", len(m.buf) - rd_start)
            m.counts[2] += 1
        elif kind == 8:  # the SOA's names run past its rdata into the next record
            m.rr(2, qname, 6, 1, 300, b"\x03ns1", rdlen=4)
            m.rr(3, "x.example.com.", 1, 1, 300, b"\x00" * 24)
        # kind 9: no SOA at all (FORMERR for IXFR)
    if r.chance(0.3):
        add_opt(m, r)
    msg = m.finish(r.int(0, 65535), header_flags(r, opcode=0, qr=0.01))
    return sign(r, keys, msg) if r.chance(0.35) else msg


def fam_notify(r: Choices, keys: Keys) -> bytes:
    m = Message(r)
    qname = r.pick(ZONES) if r.chance(0.8) else r.pick(QNAMES)
    m.question(qname, 6 if r.chance(0.9) else r.pick(QTYPES), 1 if r.chance(0.9) else r.pick(QCLASSES), weird=0.03)
    if r.chance(0.6):
        m.rr(1, qname, 6, 1, 300, soa_rdata(r))
    if r.chance(0.3):
        add_opt(m, r)
    flags = header_flags(r, opcode=4, qr=0.02) | (0x0400 if r.chance(0.8) else 0)
    msg = m.finish(r.int(0, 65535), flags)
    return sign(r, keys, msg) if r.chance(0.3) else msg


def fam_update(r: Choices, keys: Keys) -> bytes:
    m = Message(r)
    opcode = 5 if r.chance(0.7) else r.pick((1, 2, 3, 6, 7, 8, 15))
    zone = r.pick(ZONES)
    m.question(zone, 6, 1 if r.chance(0.9) else r.pick(QCLASSES))  # the zone section
    for _ in range(r.int(0, 2)):  # prerequisites (RFC 2136 §2.4)
        m.rr(1, "www." + zone.lstrip("."), r.pick((255, 1, 0)), r.pick((255, 254, 1)), 0, b"")
    for _ in range(r.int(0, 3)):  # updates (§2.5): add, delete an RRset, delete all, delete one
        rtype = r.pick((1, 16, 28, 255))
        rclass = r.pick((1, 255, 254))
        m.rr(2, r.pick(QNAMES), rtype, rclass, 300 if rclass == 1 else 0, rdata_for(r, rtype) if rclass != 255 else b"")
    if r.chance(0.3):
        add_opt(m, r)
    msg = m.finish(r.int(0, 65535), header_flags(r, opcode=opcode, qr=0.01))
    return sign(r, keys, msg) if r.chance(0.3) else msg


FAMILIES = {
    "query": (fam_query, 30),
    "edns": (fam_edns, 10),
    "dnssec": (fam_dnssec, 10),
    "names": (fam_names, 10),
    "counts": (fam_counts, 6),
    "tsig": (fam_tsig, 16),
    "xfr": (fam_xfr, 14),
    "notify": (fam_notify, 7),
    "update": (fam_update, 7),
}
_WEIGHTED = [name for name, (_, w) in FAMILIES.items() for _ in range(w)]
_NOT_COUNTS = [n for n in _WEIGHTED if n != "counts"]


def fam_pick(r: Choices, keys: Keys, exclude_counts: bool = False) -> bytes:
    return FAMILIES[r.pick(_NOT_COUNTS if exclude_counts else _WEIGHTED)][0](r, keys)


def generate(r: Choices, keys: Keys, family: str | None = None) -> tuple[str, bytes]:
    """(family, message) — one generated message of the given or a random family."""
    family = family or r.pick(_WEIGHTED)
    return family, FAMILIES[family][0](r, keys)


# -- byte-level mutation ----------------------------------------------------------------------


def mutate(r: Choices, data: bytes, others=()) -> bytes:
    """1-4 byte-level mutations of `data`: bit flips, interesting bytes, truncation, insertion,
    deletion, duplication, splicing with another message, 16-bit length and count changes and
    compression pointers."""
    buf = bytearray(data)
    for _ in range(r.int(1, 4)):
        op = r.int(0, 10)
        n = len(buf)
        if op == 0 and n:
            i = r.int(0, n - 1)
            buf[i] ^= 1 << r.int(0, 7)
        elif op == 1 and n:
            buf[r.int(0, n - 1)] = r.pick(INTERESTING8)
        elif op == 2 and n:
            del buf[r.int(0, n - 1) :]
        elif op == 3:
            at = r.int(0, n)
            buf[at:at] = r.bytes(r.int(1, 8))
        elif op == 4 and n > 1:
            a = r.int(0, n - 1)
            del buf[a : a + r.int(1, 16)]
        elif op == 5 and n > 1:
            a = r.int(0, n - 1)
            chunk = buf[a : a + r.int(1, 32)]
            at = r.int(0, n)
            buf[at:at] = chunk
        elif op == 6 and others:
            other = r.pick(others)
            cut = r.int(0, n)
            buf = buf[:cut] + other[r.int(0, len(other)) :]
        elif op == 7 and n >= 12:  # a header count
            i = 4 + 2 * r.int(0, 3)
            buf[i : i + 2] = pack("!H", r.pick(INTERESTING16))
        elif op == 8 and n >= 2:  # any 16-bit field (rdlength, option length, type, class)
            i = r.int(0, n - 2)
            old = int.from_bytes(buf[i : i + 2], "big")
            new = r.pick((old + 1, old - 1, old + r.int(2, 64), old - r.int(2, 64), r.pick(INTERESTING16)))
            buf[i : i + 2] = pack("!H", new & 0xFFFF)
        elif op == 9:  # a compression pointer anywhere after the header
            at = r.int(min(12, n), n)
            buf[at:at] = bytes([0xC0 | r.int(0, 0x3F) if r.chance(0.2) else 0xC0, r.int(0, max(0, min(255, n)))])
        elif n >= 4:  # flags
            buf[2] = r.int(0, 255) if r.chance(0.3) else buf[2] ^ (1 << r.int(0, 7))
    return bytes(buf)
