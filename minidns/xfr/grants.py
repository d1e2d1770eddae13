"""Who may UPDATE what (RFC 2136 §3.3 leaves the policy to the server): a table of per-key grants
like BIND's update-policy and Knot's update ACL, read in order, the first matching grant deciding."""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype

from ..wire import ANY
from .update import DNSSEC_TYPES

# Never granted: online signing and key management make these (xfr/update.py DNSSEC_TYPES).
MATCHES = ("name", "subdomain", "wildcard", "self", "selfsub", "zone")
_WITH_PATTERN = ("name", "subdomain", "wildcard")
FIELDS = ("key", "zone", "match", "pattern", "types", "action", "managed")
ACTIONS = {"grant": True, "deny": False}


@dataclass(frozen=True, slots=True)
class Grant:
    """One rule: `key` may (allow) or may not change RRsets of `types` (empty: every type) at the
    owners `match` and `pattern` select, in `zone` (None: every zone). `managed`: also RRsets the
    event sink made."""

    key: dns.name.Name  # absolute key name
    zone: dns.name.Name | None  # None: every zone
    match: str  # name, subdomain, wildcard, self, selfsub, zone
    pattern: dns.name.Name | None
    types: frozenset[int]  # empty: every type
    allow: bool
    managed: bool = False

    def matches(self, key: dns.name.Name, zone: dns.name.Name, owner: dns.name.Name, rtype: int) -> bool:
        """Does the rule apply to `key` changing `owner`'s `rtype` in `zone`? ANY (RFC 2136 §2.5.3,
        delete every RRset at a name) is granted only by a rule for every type, and denied by any
        deny rule for the name whatever its types: it would delete those types too."""
        if key != self.key or (self.zone is not None and zone != self.zone):
            return False
        if self.types and rtype == ANY:
            return not self.allow and self.covers(key, zone, owner)
        if self.types and rtype not in self.types:
            return False
        return self.covers(key, zone, owner)

    def covers(self, key: dns.name.Name, zone: dns.name.Name, owner: dns.name.Name) -> bool:
        """The owner test alone, with BIND's update-policy meanings."""
        if self.match == "name":
            return owner == self.pattern
        if self.match == "subdomain":
            return owner.is_subdomain(self.pattern)
        if self.match == "wildcard":  # RFC 4592 §2.1.1: `*.x` stands for the names strictly below x
            base = self.pattern.parent()
            return owner != base and owner.is_subdomain(base)
        if self.match == "self":
            return owner == key
        if self.match == "selfsub":
            return owner.is_subdomain(key)
        return owner.is_subdomain(zone)  # "zone"


def decide(grants, key: dns.name.Name, zone: dns.name.Name, owner: dns.name.Name, rtype: int) -> Grant | None:
    """The first grant that matches, or None when none does (the caller refuses: no match, no
    right). The grant's `allow` says grant or deny."""
    for grant in grants:
        if grant.matches(key, zone, owner, rtype):
            return grant
    return None


def canonical_name(value, what: str) -> dns.name.Name:
    """`value` as an absolute lowercase name; ValueError naming `what` when it is none."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a domain name, not {value!r}")
    try:
        return dns.name.from_text(value.strip()).canonicalize()
    except dns.exception.DNSException as e:
        raise ValueError(f"{what} {value!r} is not a domain name: {e}") from None


def _type(value) -> int:
    if not isinstance(value, str):
        raise ValueError(f"types: {value!r} is not a type name")
    try:
        rtype = dns.rdatatype.from_text(value.strip())
    except dns.exception.DNSException:
        raise ValueError(f"types: unknown type {value!r}") from None
    if rtype in DNSSEC_TYPES:
        raise ValueError(f"types: {dns.rdatatype.to_text(rtype)} is a DNSSEC type; the signer alone writes it")
    if dns.rdatatype.is_metatype(rtype) or rtype in (0, 41):
        raise ValueError(f"types: {dns.rdatatype.to_text(rtype)} is not a record type (leave types empty for every type)")
    return rtype


def _pattern(entry: dict, match: str, zone: dns.name.Name | None) -> dns.name.Name | None:
    value = entry.get("pattern")
    if match not in _WITH_PATTERN:
        if value is not None:
            raise ValueError(f"match {match} takes no pattern (it matches by the {'zone' if match == 'zone' else 'key name'})")
        return None
    if value is None:
        raise ValueError(f"match {match} needs a pattern")
    pattern = canonical_name(value, "pattern")
    if match == "wildcard" and (len(pattern) < 2 or pattern.labels[0] != b"*"):
        raise ValueError(f"wildcard pattern {pattern} does not start with a '*' label (as in *.{pattern})")
    if zone is not None and not pattern.is_subdomain(zone):
        raise ValueError(f"pattern {pattern} is outside the zone {zone}")
    return pattern


def grant_from(entry: dict) -> Grant:
    """A grant from its dict form (configuration table, API body, CLI flags): key, match, and
    optionally zone, pattern, types (names), action ("grant" or "deny"), managed. ValueError says
    what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError("a grant is a table of key, zone, match, pattern, types, action, managed")
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown grant field(s): {', '.join(map(str, unknown))} (known: {', '.join(FIELDS)})")
    if "key" not in entry or "match" not in entry:
        raise ValueError("a grant needs key and match")
    key = canonical_name(entry["key"], "key")
    zone = None if entry.get("zone") is None else canonical_name(entry["zone"], "zone")
    match = entry["match"]
    if match not in MATCHES:
        raise ValueError(f"match {match!r} is not one of {', '.join(MATCHES)}")
    types = entry.get("types") or []
    if not isinstance(types, (list, tuple)):
        raise ValueError("types must be a list of type names (empty: every type)")
    action = entry.get("action", "grant")
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not grant or deny")
    managed = entry.get("managed", False)
    if not isinstance(managed, bool):
        raise ValueError("managed must be true or false")
    return Grant(key, zone, match, _pattern(entry, match, zone), frozenset(_type(t) for t in types), ACTIONS[action], managed)


def grant_to(grant: Grant) -> dict:
    """The dict form grant_from reads: names as absolute lowercase text, types as sorted names."""
    return {
        "key": grant.key.to_text(),
        "zone": None if grant.zone is None else grant.zone.to_text(),
        "match": grant.match,
        "pattern": None if grant.pattern is None else grant.pattern.to_text(),
        "types": sorted(dns.rdatatype.to_text(t) for t in grant.types),
        "action": "grant" if grant.allow else "deny",
        "managed": grant.managed,
    }
