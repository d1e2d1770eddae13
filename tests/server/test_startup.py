"""What a starting server says about itself (server/startup.py): database URLs without their
passwords, and the number of records served."""

import dns.zone
import pytest

from minidns.server.startup import record_count, redact_url
from minidns.zones.loader import load_zone_text


@pytest.mark.parametrize("url, shown", [
    ("postgresql://minidns:s3cret@db.example:5432/minidns", "postgresql://minidns:***@db.example:5432/minidns"),
    ("postgresql://minidns@db.example/minidns", "postgresql://minidns@db.example/minidns"),
    ("postgresql:///minidns?host=/run/pg&password=s3cret", "postgresql:///minidns?host=/run/pg&password=***"),
    ("postgresql://u:p@h/d?sslmode=require&PASSWORD=x", "postgresql://u:***@h/d?sslmode=require&PASSWORD=***"),
])  # fmt: skip
def test_a_database_url_is_shown_without_its_password(url, shown):
    assert redact_url(url) == shown


def test_records_are_counted_in_every_served_snapshot():
    text = "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nns AAAA 2001:db8::1\nwww A 192.0.2.2\nwww A 192.0.2.3\n"
    snaps = [load_zone_text(text, "a.example."), load_zone_text(text, "b.example.")]
    expected = sum(len(list(dns.zone.from_text(text, o).iterate_rdatas())) for o in ("a.example.", "b.example."))
    assert record_count(snaps) == expected == 12
    assert record_count([]) == 0
