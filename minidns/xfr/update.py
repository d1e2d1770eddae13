"""Dynamic UPDATE (RFC 2136): the message read (§2), its sections checked without the zone's data
(§3.1.1 zone section, §3.2 prerequisite forms, §3.4.1 update prescan), its prerequisites evaluated
(§3.2) and its updates applied (§3.4.2) on a `View` — the RRsets at the names it touches, which
the caller loads under the zone lock and writes back through the store (services/updates.py).

No I/O here: (message, view) → rcode and a changed view.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.wire

from ..wire import (
    ANY, ANYCLASS, AXFR, CDNSKEY, CDS, CNAME, DNSKEY, FORMERR, IN, IXFR, MAILA, MAILB, NONE, NOTZONE, NS, NSEC, NSEC3,
    NSEC3PARAM, NXDOMAIN, NXRRSET, OPT, REFUSED, RRSIG, SOA, TKEY, TSIG, YXDOMAIN, YXRRSET,
)  # fmt: skip
from .transfer import serial_lt

META_TYPES = frozenset({AXFR, IXFR, MAILA, MAILB, ANY})  # never data (RFC 2136 §3.4.1.2)
RECORD_TYPES = frozenset({OPT, TSIG, TKEY})  # belong in the additional section, never updated
# Records a signed zone derives from its data and keys (RFC 4035, RFC 5155, RFC 7344): made by
# minidns's signer and its key management, never written by UPDATE (as Knot refuses them).
DNSSEC_TYPES = frozenset({RRSIG, NSEC, NSEC3, NSEC3PARAM, DNSKEY, CDS, CDNSKEY})


class UpdateError(Exception):
    """An update refused with `rcode`; `reason` is for the log, never sent."""

    def __init__(self, rcode: int, reason: str):
        super().__init__(reason)
        self.rcode = rcode


@dataclass(frozen=True, slots=True)
class RR:
    """A record of the prerequisite or update section: `rdata` None when RDLENGTH is 0."""

    name: dns.name.Name
    rclass: int
    rtype: int
    ttl: int
    rdata: dns.rdata.Rdata | None
    owner: bytes  # the name in lowercase wire form: how a View keys it


@dataclass(frozen=True, slots=True)
class Update:
    id: int
    flags: int
    zone: dns.name.Name
    zclass: int
    prerequisites: tuple[RR, ...]
    updates: tuple[RR, ...]

    def names(self) -> dict[bytes, dns.name.Name]:
        """Every owner the message speaks of (lowercase wire → name): the view must hold the RRsets
        at these."""
        return {rr.owner: rr.name for rr in (*self.prerequisites, *self.updates)}


def parse_update(data: bytes, max_records: int | None = None) -> Update:
    """The UPDATE message's zone, prerequisite and update sections (RFC 2136 §2); FORMERR when it
    does not parse — the additional section (OPT, TSIG) is the caller's. More than `max_records`
    records in the two sections is REFUSED before they are read."""
    try:
        p = dns.wire.Parser(data)
        qid, flags, zocount, prcount, upcount, _ = p.get_struct("!6H")
        if zocount != 1:  # §3.1.1
            raise UpdateError(FORMERR, f"ZOCOUNT is {zocount}, not 1")
        if max_records is not None and prcount + upcount > max_records:
            raise UpdateError(REFUSED, f"{prcount + upcount} records in one update; at most {max_records} are taken")
        zone = p.get_name(decompress=True)
        ztype, zclass = p.get_struct("!HH")
        if ztype != SOA:  # §3.1.1
            raise UpdateError(FORMERR, f"the zone section's type is {ztype}, not SOA")
        prereqs = tuple(_read_rr(p, zclass) for _ in range(prcount))
        updates = tuple(_read_rr(p, zclass) for _ in range(upcount))
    except UpdateError:
        raise
    except (dns.exception.DNSException, ValueError, IndexError, TypeError) as e:
        raise UpdateError(FORMERR, f"malformed UPDATE: {type(e).__name__}: {e}") from None
    return Update(qid, flags, zone, zclass, prereqs, updates)


def _read_rr(p: dns.wire.Parser, zclass: int) -> RR:
    name = p.get_name(decompress=True)
    rtype, rclass, ttl, rdlen = p.get_struct("!HHIH")
    owner = name.to_wire().lower()
    if rdlen == 0:
        return RR(name, rclass, rtype, ttl, None, owner)
    if rtype in META_TYPES or rtype in RECORD_TYPES:
        raise UpdateError(FORMERR, f"{name}: type {rtype} with data")
    with p.restrict_to(rdlen):  # ANY and NONE records carry the zone class's rdata (§2.5.4)
        rdata = dns.rdata.from_wire_parser(zclass if rclass in (NONE, ANYCLASS) else rclass, rtype, p)
    return RR(name, rclass, rtype, ttl, rdata, owner)


# -- the checks that need no zone data -----------------------------------------------------------
def check_prerequisite_forms(update: Update) -> None:
    """Each prerequisite's form (§3.2.1–§3.2.3): TTL 0, inside the zone, a class and RDLENGTH
    that mean something. FORMERR or NOTZONE."""
    for rr in update.prerequisites:
        if rr.ttl != 0:
            raise UpdateError(FORMERR, f"prerequisite {rr.name} has TTL {rr.ttl}, not 0")
        if not rr.name.is_subdomain(update.zone):
            raise UpdateError(NOTZONE, f"prerequisite {rr.name} is outside the zone {update.zone}")
        if rr.rclass in (ANYCLASS, NONE):
            if rr.rdata is not None:
                raise UpdateError(FORMERR, f"prerequisite {rr.name} of class {rr.rclass} has data")
            if rr.rtype in META_TYPES - {ANY}:
                raise UpdateError(FORMERR, f"prerequisite {rr.name} asks for meta type {rr.rtype}")
        elif rr.rclass == update.zclass:
            if rr.rdata is None:
                raise UpdateError(FORMERR, f"value-dependent prerequisite {rr.name} has no data")
        else:
            raise UpdateError(FORMERR, f"prerequisite {rr.name} has class {rr.rclass}")


def prescan(update: Update) -> None:
    """The update section prescan (§3.4.1): every record inside the zone (NOTZONE) and of a form
    that means something (FORMERR); records of the DNSSEC types are REFUSED — a signed zone's are
    made by its signer (RFC 4035), an unsigned zone has none to write."""
    for rr in update.updates:
        if not rr.name.is_subdomain(update.zone):
            raise UpdateError(NOTZONE, f"{rr.name} is outside the zone {update.zone}")
        if rr.rtype in RECORD_TYPES:
            raise UpdateError(FORMERR, f"{rr.name}: type {rr.rtype} cannot be updated")
        if rr.rclass == update.zclass:
            if rr.rtype in META_TYPES:
                raise UpdateError(FORMERR, f"{rr.name}: meta type {rr.rtype} cannot be added")
            if rr.rdata is None:
                raise UpdateError(FORMERR, f"{rr.name}: a record to add has no data")
        elif rr.rclass == ANYCLASS:
            if rr.ttl != 0 or rr.rdata is not None or rr.rtype in META_TYPES - {ANY}:
                raise UpdateError(FORMERR, f"{rr.name}: a class ANY deletion must have TTL 0 and no data")
        elif rr.rclass == NONE:
            if rr.ttl != 0 or rr.rtype in META_TYPES or rr.rdata is None:
                raise UpdateError(FORMERR, f"{rr.name}: a class NONE deletion must have TTL 0 and data")
        else:
            raise UpdateError(FORMERR, f"{rr.name}: class {rr.rclass}")
        if rr.rtype in DNSSEC_TYPES:
            raise UpdateError(REFUSED, f"{rr.name}: DNSSEC records are made by minidns's signer, not updated")


# -- the zone's data at the names an update touches ----------------------------------------------
@dataclass(frozen=True, slots=True)
class RRset:
    ttl: int
    rdatas: tuple  # dns.rdata.Rdata, no two equal


class View:
    """The RRsets at some owners of one zone, with the apex SOA: `rrsets[(owner, type)]`, the owner
    in lowercase wire form; what an update applies to. `copy()` is cheap (RRsets are immutable), so
    each update of a batch starts from the previous one's result and is rolled back alone (§3.7);
    `touched` are the RRsets the updates applied to this copy may have changed."""

    def __init__(self, origin: dns.name.Name):
        self.origin = origin
        self.apex = origin.to_wire().lower()
        self.rrsets: dict[tuple[bytes, int], RRset] = {}
        self.types: dict[bytes, frozenset] = {}  # owner → the types of its RRsets (kept by put and drop)
        self.managed: dict[tuple[bytes, int], str] = {}  # as loaded: what made each managed RRset
        self.touched: set[tuple[bytes, int]] = set()

    def copy(self) -> View:
        """The same RRsets, nothing touched yet; `managed` shared (it is what was loaded)."""
        view = View.__new__(View)
        view.origin, view.apex, view.managed = self.origin, self.apex, self.managed
        view.rrsets, view.types, view.touched = dict(self.rrsets), dict(self.types), set()
        return view

    def at(self, owner: bytes) -> frozenset:
        """The types of the RRsets at `owner` (a name is "in use" when there is one, §2.4.4)."""
        return self.types.get(owner, frozenset())

    def put(self, key: tuple[bytes, int], rrset: RRset) -> None:
        self.rrsets[key] = rrset
        self.types[key[0]] = self.at(key[0]) | {key[1]}
        self.touched.add(key)

    def drop(self, key: tuple[bytes, int]) -> None:
        if self.rrsets.pop(key, None) is not None:
            self.types[key[0]] = self.at(key[0]) - {key[1]}
            self.touched.add(key)

    def changes(self, before: View, touched=None) -> tuple[dict, list]:
        """(RRsets written or changed: key → RRset, RRsets gone: [key]) between `before` and this
        view, among `touched` (by default this copy's)."""
        put, gone = {}, []
        for key in self.touched if touched is None else touched:
            now = self.rrsets.get(key)
            if now is None:
                if key in before.rrsets:
                    gone.append(key)
            elif before.rrsets.get(key) != now:
                put[key] = now
        return put, gone


def check_prerequisites(update: Update, view: View) -> None:
    """The prerequisites evaluated on the zone's data (§3.2.5 pseudocode): YXDOMAIN, NXDOMAIN,
    YXRRSET, NXRRSET as the RFC gives them. The forms were checked (check_prerequisite_forms)."""
    wanted: dict[tuple, set] = {}  # the value-dependent RRsets (§2.4.2), compared whole at the end
    for rr in update.prerequisites:
        if rr.rclass == ANYCLASS:
            if rr.rtype == ANY:
                if not view.at(rr.owner):
                    raise UpdateError(NXDOMAIN, f"{rr.name} is not in use")
            elif (rr.owner, rr.rtype) not in view.rrsets:
                raise UpdateError(NXRRSET, f"no RRset {rr.name} type {rr.rtype}")
        elif rr.rclass == NONE:
            if rr.rtype == ANY:
                if view.at(rr.owner):
                    raise UpdateError(YXDOMAIN, f"{rr.name} is in use")
            elif (rr.owner, rr.rtype) in view.rrsets:
                raise UpdateError(YXRRSET, f"RRset {rr.name} type {rr.rtype} exists")
        else:
            wanted.setdefault((rr.owner, rr.rtype), (rr.name, set()))[1].add(rr.rdata)
    for key, (name, rdatas) in wanted.items():
        have = view.rrsets.get(key)
        if have is None or set(have.rdatas) != rdatas:
            raise UpdateError(NXRRSET, f"RRset {name} type {key[1]} is not as required")


def apply_updates(update: Update, view: View) -> None:
    """The update section applied in order (§3.4.2), with the RFC's rules for what is silently
    skipped: a CNAME beside other data and other data beside a CNAME (§3.4.2.2), an SOA whose
    serial is not higher (RFC 1982; §3.4.2.2 — the same serial too, as BIND and Knot), the apex SOA and NS RRsets never deleted whole and the last
    apex NS never removed (§3.4.2.3, §3.4.2.4)."""
    for rr in update.updates:
        if rr.rclass == ANYCLASS:
            _delete(view, rr)
        elif rr.rclass == NONE:
            _remove(view, rr)
        else:
            _add(view, rr)


def _add(view: View, rr: RR) -> None:
    key = (rr.owner, rr.rtype)
    types = view.at(rr.owner)
    if rr.rtype == SOA:
        have = view.rrsets.get(key)
        if have is None or not serial_lt(have.rdatas[0].serial, rr.rdata.serial):
            return  # an SOA only at the apex, and only forwards: an equal serial is ignored too, as BIND and Knot do
        view.put(key, RRset(rr.ttl, (rr.rdata,)))
        return
    if rr.rtype == CNAME:
        if any(t not in (CNAME, *DNSSEC_TYPES) for t in types):
            return  # §3.4.2.2: a CNAME is not added beside other data
        view.put(key, RRset(rr.ttl, (rr.rdata,)))  # a CNAME replaces the CNAME
        return
    if CNAME in types and rr.rtype not in DNSSEC_TYPES:
        return  # §3.4.2.2: nor other data beside a CNAME
    have = view.rrsets.get(key)
    rdatas = have.rdatas if have is not None else ()
    if rr.rdata not in rdatas:
        rdatas = (*rdatas, rr.rdata)
    view.put(key, RRset(rr.ttl, rdatas))  # one TTL for the RRset (RFC 2181 §5.2): the latest


def _delete(view: View, rr: RR) -> None:
    """Class ANY: delete an RRset, or (type ANY) every RRset at a name — at the apex, all but
    the SOA and NS (§3.4.2.3)."""
    apex = rr.owner == view.apex
    if rr.rtype == ANY:
        for t in view.at(rr.owner):
            if not (apex and t in (SOA, NS)):
                view.drop((rr.owner, t))
    elif not (apex and rr.rtype in (SOA, NS)):
        view.drop((rr.owner, rr.rtype))


def _remove(view: View, rr: RR) -> None:
    """Class NONE: delete one RR; never the SOA, nor the apex's last NS (§3.4.2.4)."""
    key = (rr.owner, rr.rtype)
    have = view.rrsets.get(key)
    if rr.rtype == SOA or have is None or rr.rdata not in have.rdatas:
        return
    rest = tuple(r for r in have.rdatas if r != rr.rdata)
    if not rest and rr.rtype == NS and rr.owner == view.apex:
        return
    if rest:
        view.put(key, RRset(have.ttl, rest))
    else:
        view.drop(key)
