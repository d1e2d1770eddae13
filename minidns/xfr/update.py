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


@dataclass(frozen=True, slots=True)
class Update:
    id: int
    flags: int
    zone: dns.name.Name
    zclass: int
    prerequisites: tuple[RR, ...]
    updates: tuple[RR, ...]

    def names(self) -> set[dns.name.Name]:
        """Every owner the message speaks of: the view must hold the RRsets at these."""
        return {rr.name for rr in self.prerequisites} | {rr.name for rr in self.updates}


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
    if rdlen == 0:
        return RR(name, rclass, rtype, ttl, None)
    if rtype in META_TYPES or rtype in RECORD_TYPES:
        raise UpdateError(FORMERR, f"{name}: type {rtype} with data")
    with p.restrict_to(rdlen):  # ANY and NONE records carry the zone class's rdata (§2.5.4)
        rdata = dns.rdata.from_wire_parser(zclass if rclass in (NONE, ANYCLASS) else rclass, rtype, p)
    return RR(name, rclass, rtype, ttl, rdata)


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
    """The RRsets at some owners of one zone (`rrsets[(owner, type)]`), with the apex SOA; what
    an update applies to. `copy()` is cheap (RRsets are immutable), so a batch of updates can
    each start from the previous one's result and be rolled back alone (§3.7)."""

    def __init__(self, origin: dns.name.Name, rrsets: dict | None = None, managed: dict | None = None):
        self.origin = origin
        self.rrsets: dict[tuple[dns.name.Name, int], RRset] = dict(rrsets or {})
        self.managed: dict[tuple[dns.name.Name, int], str] = managed if managed is not None else {}  # as loaded: what made it

    def copy(self) -> View:
        return View(self.origin, self.rrsets, self.managed)

    def at(self, name: dns.name.Name) -> list[int]:
        """The types of the RRsets at `name` (a name is "in use" when this is not empty, §2.4.4)."""
        return [t for (n, t) in self.rrsets if n == name]

    def changes(self, before: View) -> tuple[dict, list]:
        """(RRsets written or changed: (owner, type) → RRset, RRsets gone: [(owner, type)])
        between `before` and this view."""
        put = {k: v for k, v in self.rrsets.items() if before.rrsets.get(k) != v}
        gone = [k for k in before.rrsets if k not in self.rrsets]
        return put, gone


def check_prerequisites(update: Update, view: View) -> None:
    """The prerequisites evaluated on the zone's data (§3.2.5 pseudocode): YXDOMAIN, NXDOMAIN,
    YXRRSET, NXRRSET as the RFC gives them. The forms were checked (check_prerequisite_forms)."""
    wanted: dict[tuple, set] = {}  # the value-dependent RRsets (§2.4.2), compared whole at the end
    for rr in update.prerequisites:
        if rr.rclass == ANYCLASS:
            if rr.rtype == ANY:
                if not view.at(rr.name):
                    raise UpdateError(NXDOMAIN, f"{rr.name} is not in use")
            elif (rr.name, rr.rtype) not in view.rrsets:
                raise UpdateError(NXRRSET, f"no RRset {rr.name} type {rr.rtype}")
        elif rr.rclass == NONE:
            if rr.rtype == ANY:
                if view.at(rr.name):
                    raise UpdateError(YXDOMAIN, f"{rr.name} is in use")
            elif (rr.name, rr.rtype) in view.rrsets:
                raise UpdateError(YXRRSET, f"RRset {rr.name} type {rr.rtype} exists")
        else:
            wanted.setdefault((rr.name, rr.rtype), set()).add(rr.rdata)
    for key, rdatas in wanted.items():
        have = view.rrsets.get(key)
        if have is None or set(have.rdatas) != rdatas:
            raise UpdateError(NXRRSET, f"RRset {key[0]} type {key[1]} is not as required")


def apply_updates(update: Update, view: View) -> None:
    """The update section applied in order (§3.4.2), with the RFC's rules for what is silently
    skipped: a CNAME beside other data and other data beside a CNAME (§3.4.2.2), an SOA whose
    serial is not higher (RFC 1982), the apex SOA and NS RRsets never deleted whole and the last
    apex NS never removed (§3.4.2.3, §3.4.2.4)."""
    for rr in update.updates:
        if rr.rclass == ANYCLASS:
            _delete(view, rr)
        elif rr.rclass == NONE:
            _remove(view, rr)
        else:
            _add(view, rr)


def _add(view: View, rr: RR) -> None:
    key = (rr.name, rr.rtype)
    types = view.at(rr.name)
    if rr.rtype == SOA:
        have = view.rrsets.get(key)
        if have is None or not serial_lt(have.rdatas[0].serial, rr.rdata.serial) and have.rdatas[0].serial != rr.rdata.serial:
            return  # an SOA only at the apex, and only forwards
        view.rrsets[key] = RRset(rr.ttl, (rr.rdata,))
        return
    if rr.rtype == CNAME:
        if any(t not in (CNAME, *DNSSEC_TYPES) for t in types):
            return  # §3.4.2.2: a CNAME is not added beside other data
        view.rrsets[key] = RRset(rr.ttl, (rr.rdata,))  # a CNAME replaces the CNAME
        return
    if CNAME in types and rr.rtype not in DNSSEC_TYPES:
        return  # §3.4.2.2: nor other data beside a CNAME
    have = view.rrsets.get(key)
    rdatas = have.rdatas if have is not None else ()
    if rr.rdata not in rdatas:
        rdatas = (*rdatas, rr.rdata)
    view.rrsets[key] = RRset(rr.ttl, rdatas)  # one TTL for the RRset (RFC 2181 §5.2): the latest


def _delete(view: View, rr: RR) -> None:
    """Class ANY: delete an RRset, or (type ANY) every RRset at a name — at the apex, all but
    the SOA and NS (§3.4.2.3)."""
    apex = rr.name == view.origin
    if rr.rtype == ANY:
        for t in view.at(rr.name):
            if not (apex and t in (SOA, NS)):
                del view.rrsets[(rr.name, t)]
    elif not (apex and rr.rtype in (SOA, NS)):
        view.rrsets.pop((rr.name, rr.rtype), None)


def _remove(view: View, rr: RR) -> None:
    """Class NONE: delete one RR; never the SOA, nor the apex's last NS (§3.4.2.4)."""
    key = (rr.name, rr.rtype)
    have = view.rrsets.get(key)
    if rr.rtype == SOA or have is None or rr.rdata not in have.rdatas:
        return
    rest = tuple(r for r in have.rdatas if r != rr.rdata)
    if not rest and rr.rtype == NS and rr.name == view.origin:
        return
    if rest:
        view.rrsets[key] = RRset(have.ttl, rest)
    else:
        del view.rrsets[key]
