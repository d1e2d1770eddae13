"""The names of event records: name templates (events_templates) rendered with a resource's fields,
free text made into labels, the `<label>-<address>` fallback, CloudStack group labels."""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata

import dns.exception
import dns.name

from .outcome import BadEvent

DEFAULT_TEMPLATES = {
    "nova": "%(hostname)s.%(zone)s",  # an instance's fixed IPs
    "neutron": "%(hostname)s.fip.%(zone)s",  # a floating IP, named after the instance behind it
    "neutron_unknown": "%(octet0)s-%(octet1)s-%(octet2)s-%(octet3)s.%(zone)s",  # instance not known
    "cloudstack": "%(hostname)s.%(zone)s",  # a CloudStack VM
}
TEMPLATE_FIELDS = (
    "hostname", "display_name", "id", "instance_id", "project", "project_id", "tenant_id", "zone",
    "ip_address", "ip_dashed", "ip_version", "octet0", "octet1", "octet2", "octet3", "group", "account", "domain",
)  # fmt: skip


def check_templates(templates: dict) -> None:
    """Raise ValueError naming a template that is not a string or uses an unknown field."""
    for handler, tpl in templates.items():
        check_template(handler, tpl)


def check_template(handler: str, tpl) -> None:
    if handler not in DEFAULT_TEMPLATES:
        raise ValueError(f"events_templates: unknown handler {handler!r} (one of {', '.join(DEFAULT_TEMPLATES)})")
    if not isinstance(tpl, str):
        raise ValueError(f"events_templates.{handler} must be a string")  # noqa: TRY004 - a configuration error
    try:
        tpl % {f: "x" for f in TEMPLATE_FIELDS}
    except KeyError as e:
        raise ValueError(f"events_templates.{handler}: unknown field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"events_templates.{handler}: {e}") from None


def safe_label(value) -> str:
    """A label from free text: lower case, runs of anything but letters, digits and '-' become one
    '-'; non-ASCII letters stay (the name is IDNA-encoded when made)."""
    return text_label(value) if isinstance(value, str) else text_label.__wrapped__(value)


@functools.lru_cache(maxsize=8192)
def text_label(value) -> str:
    s = unicodedata.normalize("NFC", str(value or "")).strip().lower()
    s = re.sub(r"[^\w-]+|_", "-", s)
    s = re.sub(r"-{2,}", "-", s).strip("-")
    return s[:63].strip("-")


def idna_label(label: str) -> str:
    """The label's A-label (RFC 5891): UTS #46 with the idna package, else IDNA 2003."""
    if label.isascii():
        return label
    try:
        import idna

        return idna.encode(label, uts46=True).decode("ascii")
    except Exception:  # noqa: BLE001 - the idna package missing or refusing: IDNA 2003
        try:
            return label.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise BadEvent(f"cannot IDNA-encode {label!r}: {e}") from None


@functools.lru_cache(maxsize=8192)
def make_name(text: str) -> dns.name.Name:
    """An absolute DNS name from a rendered template; non-ASCII labels IDNA-encoded."""
    try:
        labels = [idna_label(lab) for lab in text.rstrip(".").split(".")]
        return dns.name.from_text(".".join(labels) + ".")
    except dns.exception.DNSException as e:
        raise BadEvent(f"{text!r} is not a usable name: {e}") from None


def ip_fields(address: str) -> dict:
    """The template fields of an address: ip_address, ip_version, ip_dashed, and octet0-3 for IPv4."""
    ip = ipaddress.ip_address(address)
    out = {"ip_address": str(ip), "ip_version": str(ip.version)}
    if ip.version == 4:
        out["ip_dashed"] = str(ip).replace(".", "-")
        out.update({f"octet{i}": part for i, part in enumerate(str(ip).split("."))})
    else:
        out["ip_dashed"] = "-".join(format(int(h, 16), "x") for h in ip.exploded.split(":"))
    return out


def render(template: str, fields: dict, address: str | None = None) -> dns.name.Name:
    """The template filled with `fields` (and the address's fields); an IPv6 address in a template
    of octets gets `<ip_dashed>.<zone>`."""
    values = dict(fields)
    if address is not None:
        values.update(ip_fields(address))
    try:
        text = template % values
    except KeyError as e:
        if address is not None and str(e.args[0]).startswith("octet"):
            text = "%(ip_dashed)s.%(zone)s" % values  # noqa: UP031 - the templates' own % form
        else:
            raise BadEvent(f"name template {template!r}: no value for {e.args[0]!r} in this event") from None
    return make_name(text)


def fallback_name(name: dns.name.Name, address: str) -> dns.name.Name:
    """The `name-1-2-3-4` form: the address appended to the first label."""
    first = name.labels[0].decode("ascii") + "-" + ip_fields(address)["ip_dashed"]
    return dns.name.Name((first[:63].encode(),) + name.labels[1:])


def group_label(group: str, account_id: str) -> str:
    """`<safe-group>-<first 8 of the account uuid>`: the owner of a CloudStack VM group's records."""
    acct8 = re.sub(r"[^0-9a-z]", "", account_id.lower())[:8]
    return f"{safe_label(group)[:54].strip('-')}-{acct8}"
