"""The names of event records (minidns/sink/naming.py): templates rendered with a resource's
fields, free text made into labels (IDNA for the rest, RFC 5891), the fallback and group names."""

import re

import dns.name
import pytest

from minidns.sink.naming import (
    DEFAULT_TEMPLATES,
    check_templates,
    fallback_name,
    group_label,
    ip_fields,
    make_name,
    render,
    safe_label,
)
from minidns.sink.outcome import BadEvent

LABELS = [
    ("Web 1", "web-1"),
    ("TestInstance", "testinstance"),
    ("  --db_server.02--  ", "db-server-02"),
    ("Web Servers", "web-servers"),
    ("Müller", "müller"),
    ("a" * 70, "a" * 63),
    ("x" * 62 + " y", "x" * 62),
    ("---", ""),
    (None, ""),
    (42, "42"),
]


@pytest.mark.parametrize("text, label", LABELS)
def test_safe_label(text, label):
    assert safe_label(text) == label


NAMES = [
    ("web1.example.com.", "web1.example.com."),
    ("web1.example.com", "web1.example.com."),
    ("müller.example.com.", "xn--mller-kva.example.com."),
    ("bücher.example.com", "xn--bcher-kva.example.com."),
]


@pytest.mark.parametrize("text, name", NAMES)
def test_make_name(text, name):
    assert make_name(text) == dns.name.from_text(name)


def test_make_name_refuses_what_is_no_name():
    with pytest.raises(BadEvent, match="is not a usable name"):
        make_name("a" * 64 + ".example.com.")
    with pytest.raises(BadEvent, match="is not a usable name"):
        make_name("a..example.com.")


FIELDS = {"hostname": "web1", "display_name": "web-1", "id": "i-1", "instance_id": "i-1", "project": "web-team",
          "project_id": "p1", "tenant_id": "p1", "zone": "example.com."}  # fmt: skip

RENDERED = [
    (DEFAULT_TEMPLATES["nova"], None, "web1.example.com."),
    (DEFAULT_TEMPLATES["neutron"], "203.0.113.10", "web1.fip.example.com."),
    (DEFAULT_TEMPLATES["neutron_unknown"], "203.0.113.10", "203-0-113-10.example.com."),
    # an IPv6 address in a template of octets: <ip_dashed>.<zone>
    (DEFAULT_TEMPLATES["neutron_unknown"], "2001:db8::a", "2001-db8-0-0-0-0-0-a.example.com."),
    ("%(project)s-%(hostname)s.%(zone)s", None, "web-team-web1.example.com."),
    ("%(ip_dashed)s.v%(ip_version)s.%(zone)s", "10.0.0.5", "10-0-0-5.v4.example.com."),
    ("%(hostname)s.%(zone)s", "2001:db8::a", "web1.example.com."),
]


@pytest.mark.parametrize("template, address, name", RENDERED)
def test_render(template, address, name):
    assert render(template, FIELDS, address) == dns.name.from_text(name)


def test_render_names_a_field_the_event_lacks():
    with pytest.raises(BadEvent, match=re.escape("name template '%(group)s.%(zone)s': no value for 'group' in this event")):
        render("%(group)s.%(zone)s", FIELDS)
    with pytest.raises(BadEvent, match="no value for 'octet0'"):
        render(DEFAULT_TEMPLATES["neutron_unknown"], FIELDS)  # octets and no address


def test_ip_fields():
    assert ip_fields("203.0.113.10") == {"ip_address": "203.0.113.10", "ip_version": "4", "ip_dashed": "203-0-113-10",
                                         "octet0": "203", "octet1": "0", "octet2": "113", "octet3": "10"}  # fmt: skip
    assert ip_fields("2001:DB8::A") == {"ip_address": "2001:db8::a", "ip_version": "6", "ip_dashed": "2001-db8-0-0-0-0-0-a"}


FALLBACKS = [
    ("web1.example.com.", "10.0.0.5", "web1-10-0-0-5.example.com."),
    ("web1.example.com.", "2001:db8:10::5", "web1-2001-db8-10-0-0-0-0-5.example.com."),
    ("a" * 60 + ".example.com.", "10.0.0.5", "a" * 60 + "-10.example.com."),  # cut to 63 octets
]


@pytest.mark.parametrize("name, address, fallback", FALLBACKS)
def test_fallback_name(name, address, fallback):
    assert fallback_name(dns.name.from_text(name), address) == dns.name.from_text(fallback)


def test_group_label():
    assert group_label("Web Servers", "e2c7ad16-7b1a-4a51-9f1b-3f3b8a9e5d70") == "web-servers-e2c7ad16"
    assert group_label("x" * 80, "E2C7-AD16-7B1A") == "x" * 54 + "-e2c7ad16"


TEMPLATE_ERRORS = [
    ({"nova": "%(hostname)s.%(zone)s", "cloudstack": "%(group)s-%(hostname)s.%(zone)s"}, None),
    ({"glance": "%(hostname)s.%(zone)s"}, "events_templates: unknown handler 'glance' (one of nova, neutron, neutron_unknown, cloudstack)"),
    ({"nova": 7}, "events_templates.nova must be a string"),
    ({"nova": "%(host)s.%(zone)s"}, "events_templates.nova: unknown field 'host'"),
    ({"neutron": "%(hostname)d.%(zone)s"}, "events_templates.neutron: %d format: a real number is required, not str"),
]  # fmt: skip


@pytest.mark.parametrize("templates, error", TEMPLATE_ERRORS)
def test_check_templates(templates, error):
    if error is None:
        check_templates(templates)
    else:
        with pytest.raises(ValueError, match=f"^{re.escape(error)}$"):
            check_templates(templates)
