"""Online signing (RFC 4034/4035) with compact denial of existence (RFC 9824): a lookup's Answer
gets its RRSIGs and denial NSECs, from a bounded cache of signatures. No I/O; the clock is passed in.

Signatures are cached by (zone keys, owner, type, original TTL, the RRset's records, labels), so an
RRset whose data changed can never be served an old signature. Inception is an hour back,
expiration `validity` ahead less a spread drawn from the RRset (so signatures do not all expire
together); a cached signature is made again once 75% of its validity has passed. The engine is
single-threaded, so concurrent queries for one RRset sign it once: the first one signs and caches.

The NSEC of a name error is owned by the name asked (RFC 9824), so a random-subdomain flood makes
one per query, never asked again. Those signatures are kept apart, in a small cache of their own
(NX_RECENT: enough for the A and AAAA a resolver asks together): a flood churns that one and
leaves the signatures of the zone's real RRsets in place.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from struct import pack

from ..wire import CNAME, DNAME, DS, NOERROR, NS, NSEC, NXNAME, RRSIG, SOA, A
from ..wire.render import RRset, render_section_tail
from ..zones.lookup import Answer, find_cut_or_dname
from ..zones.snapshot import Snapshot, node_find, node_records
from .keys import SigningKey
from .records import INCEPTION_SKEW, KEY_SIGNED, VALIDITY, count_labels, remembered, expiration_for, rrsig_inputs, rrsig_rdatas, type_bitmap

REFRESH_AT = 0.75  # of the validity: a cached signature is made again after this share
EPOCH = 3600  # seconds a rendered signed reply may be reused before it is rendered (and signed) anew
NX_RECENT = 8192  # name errors' NSEC signatures kept apart
SOA_PART_SECONDS = 60  # how long a name error's encoded SOA part (with its RRSIGs) is reused


@dataclass(eq=False)
class ZoneKeys:
    """The keys a signed zone is served with: csk/ksk sign the DNSKEY RRset, csk/zsk the rest."""

    origin: bytes
    keys: list[SigningKey]
    validity: int = VALIDITY
    key_signers: list[SigningKey] = field(init=False)
    zone_signers: list[SigningKey] = field(init=False)
    ident: bytes = field(init=False)
    nsec_sig_octets: int = field(init=False)  # the RRSIG records over an NSEC, encoded (a deferred reply must fit)
    epoch_until: float = field(init=False, default=0.0)  # when the engine next retires the zone's cached replies

    def __post_init__(self):
        self.key_signers = [k for k in self.keys if k.signs_keys]
        self.zone_signers = [k for k in self.keys if k.signs_zone]
        # Bytes, so its hash is computed once: it keys every signature made with these keys.
        self.nsec_sig_octets = sum(28 + len(self.origin) + k.signature_octets for k in self.zone_signers)
        self.ident = self.origin + b"".join(pack("!BH", k.algorithm, k.key_tag) + k.public for k in self.keys)


class SignatureCache:
    """The signatures made, least recently used dropped first once `entries` are held."""

    def __init__(self, entries: int = 100_000):
        self.entries = max(1, entries)
        self.data: OrderedDict[tuple, tuple[tuple[bytes, ...], float]] = OrderedDict()
        self.signed = 0  # signatures made (for the metrics)

    def get(self, key: tuple, now: float):
        hit = self.data.get(key)
        if hit is None or now >= hit[1]:
            return None
        self.data.move_to_end(key)
        return hit[0]

    def put(self, key: tuple, sigs: tuple[bytes, ...], refresh_at: float) -> None:
        data = self.data
        if key in data:
            data.move_to_end(key)
        data[key] = (sigs, refresh_at)
        while len(data) > self.entries:
            data.popitem(last=False)

    def __len__(self) -> int:
        return len(self.data)


class Signer:
    """Adds RRSIGs and compact-denial NSECs to Answers of signed zones."""

    def __init__(self, cache: SignatureCache | None = None):
        self.cache = cache if cache is not None else SignatureCache()  # an empty cache is falsy (__len__)
        self.tails: dict[tuple, tuple[bytes, int, float]] = {}  # compact_nxdomain's encoded SOA part
        self.nx_cache = SignatureCache(NX_RECENT)  # name errors' NSEC signatures, apart from the rest

    def compact_nxdomain(self, zone: Snapshot, zk: ZoneKeys, qkey: bytes, question_len: int, now: float,
                         later: bool = False) -> tuple[bytes, int, tuple | None]:  # fmt: skip
        """The Authority section of a signed name error, encoded for a question of `question_len`
        octets: the SOA and its RRSIGs, then RFC 9824's NSEC at `qkey` and its RRSIGs; (octets, RR
        count, None). The same records `sign_answer` gives such an Answer, without the general
        encoder: this is the reply a random-subdomain flood asks for, once per query.

        With `later`, an NSEC whose signatures are not cached is not signed here: the octets end
        with the NSEC, the count includes the RRSIGs to come, and the third item is what makes
        them (`sign_pending`, then `pending_records`), so that a burst of these is signed back to
        back (Engine.finish)."""
        head = self._soa_part(zone, zk, question_len, now)
        rdata = b"\x01\x00" + qkey + NXNAME_BITMAP
        ttl = zone.neg_ttl
        key = (zk.ident, qkey, ttl)
        # Both owners point at the question name (offset 12); the next name is not compressed
        # (RFC 4034 §4.1.1, RFC 3597 §4).
        nsec = head[0] + pack("!HHHIH", 0xC00C, NSEC, 1, ttl, len(rdata)) + rdata
        sigs = self.nx_cache.get(key, now)
        if sigs is None:
            inception, expiration = expiration_for(qkey, NSEC, now, zk.validity)
            # The NSEC in canonical form (RFC 4034 §6.2): the owner is lowercase already, and an
            # NSEC's next name is not lowercased (RFC 6840 §5.1).
            body = qkey + pack("!HHIH", NSEC, 1, ttl, len(rdata)) + rdata
            inputs = rrsig_inputs(zk.zone_signers, zk.origin, NSEC, ttl, count_labels(qkey), inception, expiration, body)
            pending = (inputs, key, _refresh_at(inception, expiration), ttl)
            if later:
                return nsec, head[1] + 1 + len(inputs), pending
            return nsec + self.pending_records(pending, self.sign_pending(pending)), head[1] + 1 + len(inputs), None
        return nsec + _sig_records(sigs, ttl), head[1] + 1 + len(sigs), None

    @staticmethod
    def sign_pending(pending: tuple) -> tuple[bytes, ...]:
        """The RRSIG RDATAs of a name error's NSEC that compact_nxdomain left to be made."""
        return tuple([fields + k.sign(data) for k, fields, data in pending[0]])

    def pending_records(self, pending: tuple, sigs: tuple[bytes, ...]) -> bytes:
        """Those RRSIGs cached in the name errors' cache and encoded as compact_nxdomain encodes
        them."""
        _, key, refresh_at, ttl = pending
        self.cache.signed += len(sigs)
        self.nx_cache.put(key, sigs, refresh_at)
        return _sig_records(sigs, ttl)

    def _soa_part(self, zone: Snapshot, zk: ZoneKeys, question_len: int, now: float) -> tuple[bytes, int, float]:
        """The SOA and its RRSIGs of a name error, encoded after a question of `question_len`
        octets; (octets, RR count, until when it is used). Kept SOA_PART_SECONDS, so it carries
        signatures at most that much older than the signature cache would give."""
        key = (zk.ident, zone.origin, zone.neg_ttl, zone.soa.ttl, zone.soa.rdatas, question_len)
        part = self.tails.get(key)
        if part is None or now >= part[2]:
            if len(self.tails) > 1024:
                self.tails.clear()
            soa = RRset(zone.origin, SOA, zone.neg_ttl, zone.soa.rdatas)
            soa_sigs = self.rrsigs(zk, soa, now, zone.soa.ttl)
            part = self.tails[key] = (*render_section_tail(question_len, zone.origin, [soa, soa_sigs]), now + SOA_PART_SECONDS)
        return part

    # -- signatures -------------------------------------------------------------------------
    def rrsigs(self, zk: ZoneKeys, rrset: RRset, now: float, orig_ttl: int | None = None,
               wildcard: bytes | None = None) -> RRset:  # fmt: skip
        """The RRSIG RRset covering `rrset` (served with its TTL). `orig_ttl`: the TTL signed when
        the served one is lowered (a negative answer's SOA); `wildcard`: the wildcard owner the
        RRset was made from, whose label count goes in the RRSIG (RFC 4035 §5.3.2)."""
        owner, rtype = rrset.owner.lower(), rrset.rtype
        ttl = rrset.ttl if orig_ttl is None else orig_ttl
        labels = count_labels(wildcard if wildcard is not None else owner)
        key = (zk.ident, owner, rtype, ttl, rrset.rdatas, labels)
        sigs = self.cache.get(key, now)
        if sigs is None:
            signers = zk.key_signers if rtype in KEY_SIGNED else zk.zone_signers
            inception, expiration = expiration_for(owner, rtype, now, zk.validity)
            sigs = rrsig_rdatas(signers, zk.origin, wildcard or owner, rtype, ttl, rrset.rdatas, labels, inception, expiration)
            self.cache.signed += len(sigs)
            self.cache.put(key, sigs, _refresh_at(inception, expiration))
        return RRset(rrset.owner, RRSIG, rrset.ttl, sigs)

    # -- answers ----------------------------------------------------------------------------
    def sign_answer(self, zone: Snapshot, zk: ZoneKeys, qtype: int, unsigned: Answer, now: float, co: bool) -> Answer:
        """The signed Answer (RFC 4035 §3.1), `unsigned` left as it is: each authoritative RRset
        followed by its RRSIGs, denial by one NSEC at the name (RFC 9824 §3), DS or its absence
        proven at a referral."""
        ans = replace(unsigned, answer=self._signed(zone, zk, unsigned.answer, now, unsigned.wild),
                      authority=list(unsigned.authority))  # fmt: skip
        if ans.nxname is not None:
            self._deny(zone, zk, ans, ans.nxname, NXNAME_TYPES, now)
            if not co:  # RFC 9824 §3.1: NOERROR, unless the client sent Compact Answers OK
                ans.rcode = NOERROR
        elif ans.nodata is not None:
            types = {t for t, _, _ in node_records(ans.nodata_node)} | {RRSIG, NSEC}
            types.discard(qtype)  # never the type asked for (the wildcard's case too)
            self._deny(zone, zk, ans, ans.nodata, frozenset(types), now)
        elif not ans.aa and ans.authority and ans.authority[0].rtype == NS:
            self._referral(zone, zk, ans, now)
        if ans.wild and ans.nodata is None:
            self._no_closer_match(zone, zk, ans, now)
        if ans.aa and ans.additional:
            auth = [r for r in ans.additional if not _below_cut(zone, r.owner)]
            if auth:
                glue = [r for r in ans.additional if r not in auth]
                ans.additional = self._signed(zone, zk, auth, now, None) + glue
        return ans

    def _signed(self, zone: Snapshot, zk: ZoneKeys, rrsets: list[RRset], now: float, wild: dict | None) -> list[RRset]:
        out = []
        for r in rrsets:
            out.append(r)
            if r.rtype == RRSIG:  # the signatures themselves are not signed (RFC 4035 §2.2)
                continue
            if r.rtype == CNAME and _synthesized(r, rrsets):  # RFC 6672 §5.3.1: DNAME-made CNAMEs go unsigned
                continue
            orig = zone.soa.ttl if r.rtype == SOA else None
            out.append(self.rrsigs(zk, r, now, orig, wild.get(r.owner.lower()) if wild else None))
        return out

    def _deny(self, zone: Snapshot, zk: ZoneKeys, ans: Answer, name: bytes, types, now: float) -> None:
        """RFC 9824 §3: one NSEC at the name, next name `\\000.name`, with the types given; its
        TTL the lesser of the SOA's TTL and MINIMUM (RFC 9077 §3)."""
        ans.authority = self._signed(zone, zk, ans.authority, now, None)
        nsec = RRset(name, NSEC, zone.neg_ttl, (b"\x01\x00" + name.lower() + _bitmap(types),))
        ans.authority += [nsec, self.rrsigs(zk, nsec, now)]

    def _no_closer_match(self, zone: Snapshot, zk: ZoneKeys, ans: Answer, now: float) -> None:
        """An answer made from a wildcard also proves that the next closer name does not exist
        (RFC 4035 §3.1.3.3), by a minimally covering NSEC (RFC 4470 §3)."""
        for name, wildcard in ans.wild.items():
            closer = next_closer(name, wildcard[2:])
            # From just before the next closer name to just after it at the same depth: it and all
            # below it (the query name) are covered, and the names the NSEC shares with the query
            # name end at the closest encloser, which is how validators find it (RFC 4035 §5.3.4).
            nsec = RRset(predecessor(closer), NSEC, zone.neg_ttl, (successor(closer) + _bitmap(_NSEC_ONLY),))
            ans.authority += [nsec, self.rrsigs(zk, nsec, now)]

    def _referral(self, zone: Snapshot, zk: ZoneKeys, ans: Answer, now: float) -> None:
        """A referral carries the child's DS and its RRSIG, or an NSEC at the cut proving there is
        no DS (an insecure delegation, RFC 4035 §3.1.4)."""
        cut = ans.authority[0].owner.lower()
        node = zone.nodes.get(cut, b"")
        found = node_find(node, DS)
        if found is not None:
            ds = RRset(cut, DS, found[0], found[1])
            ans.authority += [ds, self.rrsigs(zk, ds, now)]
            return
        types = frozenset({t for t, _, _ in node_records(node)} | {RRSIG, NSEC})
        nsec = RRset(cut, NSEC, zone.neg_ttl, (b"\x01\x00" + cut + _bitmap(types),))
        ans.authority += [nsec, self.rrsigs(zk, nsec, now)]


NXNAME_TYPES = frozenset((RRSIG, NSEC, NXNAME))
NXNAME_BITMAP = type_bitmap(NXNAME_TYPES)
_NSEC_ONLY = frozenset((RRSIG, NSEC))
_BITMAPS: dict[frozenset, bytes] = {}


def _sig_records(sigs: tuple[bytes, ...], ttl: int) -> bytes:
    """RRSIG records at the question name (a pointer to offset 12) with these RDATAs."""
    if len(sigs) == 1:
        return pack("!HHHIH", 0xC00C, RRSIG, 1, ttl, len(sigs[0])) + sigs[0]
    return b"".join(pack("!HHHIH", 0xC00C, RRSIG, 1, ttl, len(sig)) + sig for sig in sigs)


def _refresh_at(inception: int, expiration: int) -> float:
    """When a signature made with this validity is made again: REFRESH_AT of the way from now
    (inception + INCEPTION_SKEW) to its expiration."""
    return inception + INCEPTION_SKEW + (expiration - inception - INCEPTION_SKEW) * REFRESH_AT


def _bitmap(types: frozenset) -> bytes:
    return remembered(_BITMAPS, types, type_bitmap)


def _synthesized(cname: RRset, rrsets: list[RRset]) -> bool:
    owner = cname.owner.lower()
    return any(r.rtype == DNAME and owner.endswith(r.owner.lower()) and owner != r.owner.lower() for r in rrsets)


def _below_cut(zone: Snapshot, owner: bytes) -> bool:
    """Whether `owner` is glue: at or below a zone cut, so not ours to sign (RFC 4035 §2.2)."""
    if not zone.cuts:
        return False
    hit = find_cut_or_dname(zone, owner.lower(), A)
    return hit is not None and hit[1] == NS


def next_closer(name: bytes, encloser: bytes) -> bytes:
    """The ancestor of `name` (or itself) one label longer than its closest encloser (RFC 5155 §1.3)."""
    while len(name) > len(encloser) and name[name[0] + 1 :] != encloser:
        name = name[name[0] + 1 :]
    return name


def successor(name: bytes) -> bytes:
    """A name sorting just after `name` and all names below it, at its depth (RFC 4471 §3,
    simplified): its first label with a \\000 octet appended (or, at 63 octets, the last raised)."""
    label, rest = name[1 : 1 + name[0]], name[1 + name[0] :]
    if len(label) < 63 and len(name) < 255:
        label += b"\x00"
    elif label[-1] < 255:
        label = label[:-1] + bytes([label[-1] + 1])
    else:
        return b"\x01\x00" + name  # below it, then: covers only the name itself
    return bytes([len(label)]) + label + rest


def predecessor(name: bytes) -> bytes:
    """A name sorting just before `name` in canonical order (RFC 4471 §3, simplified): its first
    label with the last octet lowered and filled up with \\255 (or, ending in \\000, shortened)."""
    label, rest = name[1 : 1 + name[0]], name[1 + name[0] :]
    if label[-1:] == b"\x00":
        label = label[:-1]
    else:
        room = min(63, 255 - len(rest) - 1) - len(label)
        label = label[:-1] + bytes([label[-1] - 1]) + b"\xff" * max(0, room)
    return (bytes([len(label)]) + label + rest) if label else rest
