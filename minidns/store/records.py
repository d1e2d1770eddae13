"""Record data as the store keeps it, and the checks every write passes: names inside the zone,
RDATA that dnspython parses, TTL bounds (RFC 2181 §8), CNAME and DNAME rules (RFC 2181 §10.1,
RFC 6672 §2.4). Pure functions; no database here."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from struct import pack

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from ..wire import CDNSKEY, CDS, CNAME, DNAME, DNSKEY, NSEC, RRSIG, SOA

MAX_TTL = 2**31 - 1  # RFC 2181 §8
# Types minidns makes itself (SOA from the zone's fields, DNSSEC records when signing) or that are
# not data at all: never written as RRsets by users.
# The apex key RRsets (DNSKEY, and CDS/CDNSKEY of RFC 7344) are rows, written only by services/dnssec.py.
KEY_TYPES = frozenset({DNSKEY, CDS, CDNSKEY})
GENERATED = {SOA, RRSIG, NSEC, 50, 51, *KEY_TYPES}  # 50, 51: NSEC3, NSEC3PARAM
_CNAME_MAY_SHARE = {CNAME, RRSIG, NSEC}


class Invalid(ValueError):
    """Data a write refuses; the message says what and why (an API turns it into a 400)."""

    status, type = 400, "invalid_object"


class NotFound(LookupError):
    """No such zone, RRset or record."""

    status, type = 404, "not_found"


class Conflict(Exception):
    """The write collides with what exists (a name taken, an operation under way)."""

    status, type = 409, "conflict"


class Unsignable(Exception):
    """A signed zone cannot be written by this process: it has no DNSSEC master key to sign the
    change with. A setting of the server, not of the request: nothing was written."""

    status, type, retry_after = 503, "service_unavailable", 60


@dataclass(slots=True)
class RRsetData:
    """One RRset ready to be stored: owner in both forms, and each record's data both as text and
    as wire RDATA."""

    owner: bytes  # lowercase wire
    name: str  # absolute, lowercase
    rtype: int
    ttl: int
    records: list[str] = field(default_factory=list)
    rdata: list[bytes] = field(default_factory=list)

    def wire(self) -> bytes:
        """The records as the server holds them: TYPE TTL RDLENGTH RDATA each."""
        if len(self.rdata) == 1:
            rd = self.rdata[0]
            return pack("!HIH", self.rtype, self.ttl, len(rd)) + rd
        return b"".join(pack("!HIH", self.rtype, self.ttl, len(rd)) + rd for rd in self.rdata)

    @property
    def type_text(self) -> str:
        return dns.rdatatype.to_text(self.rtype)


def parse_owner(name: str, origin: dns.name.Name) -> dns.name.Name:
    """An owner given absolute, relative to the zone, or '@', checked to be inside the zone."""
    try:
        owner = dns.name.from_text(name, origin)
    except dns.exception.DNSException as e:
        raise Invalid(f"bad name {name!r}: {e}") from None
    if not owner.is_subdomain(origin):
        raise Invalid(f"{owner} is not inside the zone {origin}")
    return owner


def parse_type(rtype: str | int) -> int:
    try:
        value = rtype if isinstance(rtype, int) else dns.rdatatype.from_text(rtype.strip())
    except dns.exception.DNSException:
        raise Invalid(f"unknown record type {rtype!r}") from None
    if dns.rdatatype.is_metatype(value) or value in (0, 41):
        raise Invalid(f"{dns.rdatatype.to_text(value)} is not a record type that zones hold")
    return value


def check_ttl(ttl: int) -> int:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL:
        raise Invalid(f"TTL {ttl!r} is outside 0..{MAX_TTL} (RFC 2181 §8)")
    return ttl


def parse_rdata(rtype: int, text: str, origin: dns.name.Name) -> dns.rdata.Rdata:
    """Record data in presentation form; relative names are taken relative to the zone."""
    try:
        return dns.rdata.from_text(dns.rdataclass.IN, rtype, text, origin=origin, relativize=False)
    except (dns.exception.DNSException, ValueError, TypeError) as e:
        raise Invalid(f"bad {dns.rdatatype.to_text(rtype)} data {text!r}: {e}") from None


def rdata_from_wire(rtype: int, wire: bytes) -> dns.rdata.Rdata:
    return dns.rdata.from_wire(dns.rdataclass.IN, rtype, wire, 0, len(wire))


def check_owner_types(name: str, types: dict[int, int], apex: bool) -> None:
    """The rules across the RRsets at one owner; `types` maps each type present to its record count."""
    if CNAME in types:
        if apex:
            raise Invalid(f"{name}: a CNAME cannot be at the zone apex (RFC 1912 §2.4)")
        if set(types) - _CNAME_MAY_SHARE:
            raise Invalid(f"{name}: a CNAME cannot share its name with other data (RFC 2181 §10.1)")
        if types[CNAME] > 1:
            raise Invalid(f"{name}: only one CNAME record may exist at a name (RFC 2181 §10.1)")
    if types.get(DNAME, 0) > 1:
        raise Invalid(f"{name}: only one DNAME record may exist at a name (RFC 6672 §2.4)")


def email_to_rname(email: str) -> dns.name.Name:
    """hostmaster@example.com → hostmaster.example.com. (dots in the local part escaped)."""
    local, at, domain = email.partition("@")
    if not at or not local or not domain:
        raise Invalid(f"email {email!r} is not of the form user@domain")
    try:
        return dns.name.Name([local.encode()]).concatenate(dns.name.from_text(domain))
    except dns.exception.DNSException as e:
        raise Invalid(f"email {email!r}: {e}") from None


def rname_to_email(rname: dns.name.Name) -> str:
    """The inverse of `email_to_rname` (RFC 1035 §8: the first label is the local part)."""
    if len(rname.labels) < 2:
        return rname.to_text()
    local = rname.labels[0].decode("utf-8", "replace")
    return f"{local}@{rname.parent().to_text(omit_final_dot=True)}"


@functools.lru_cache(maxsize=4096)
def zone_name(name: str) -> dns.name.Name:
    """A zone name as given (trailing dot optional), checked (names are immutable: kept for the
    next writer that names the same zone)."""
    try:
        origin = dns.name.from_text(name.strip())
    except dns.exception.DNSException as e:
        raise Invalid(f"bad zone name {name!r}: {e}") from None
    if origin == dns.name.root:
        raise Invalid("the root zone is not served")
    return origin
