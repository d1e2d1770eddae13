"""Reading a notification's fields: the payload object, a required string, an IP address — each
refused (BadEvent) with the reason."""

from __future__ import annotations

import functools
import ipaddress

from .outcome import BadEvent


def payload_of(ev: dict) -> dict:
    p = ev.get("payload")
    if not isinstance(p, dict):
        raise BadEvent("the notification has no payload object")
    return p


def required(d: dict, key: str, what: str) -> str:
    """`d[key]`, a non-empty string."""
    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, str) or not v:
        raise BadEvent(f"{what} has no {key}")
    return v


def address(value, what: str) -> str:
    """An IP address in its canonical text form (RFC 5952 for IPv6)."""
    try:
        return canonical(value) if isinstance(value, str) else str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise BadEvent(f"{what}: {value!r} is not an IP address") from None


@functools.lru_cache(maxsize=8192)
def canonical(text: str) -> str:
    return str(ipaddress.ip_address(text))


def add_address(addresses: list[str], value, what: str) -> None:
    """Append the address once, in the order the cloud gave them."""
    a = address(value, what)
    if a not in addresses:
        addresses.append(a)
