"""Log output (server/logs.py): RFC 3339 times, and JSON lines carrying a record's extra fields."""

import json
import logging
import sys

import pytest

from minidns.server.logs import JsonFormatter, rfc3339


@pytest.mark.parametrize("t, text", [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1796652000.123, "2026-12-07T14:00:00.123Z"),
    (1796652000.9996, "2026-12-07T14:00:00.999Z"),  # milliseconds are cut, never rounded into the next second
])  # fmt: skip
def test_times_are_rfc3339_utc_with_milliseconds(t, text):
    assert rfc3339(t) == text


def record(msg, *args, exc_info=None, **extra):
    rec = logging.LogRecord("minidns.query", logging.INFO, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_has_the_standard_fields_then_the_extra_ones():
    line = JsonFormatter().format(record("%s asked %s", "192.0.2.1", "www.example.", client="192.0.2.1", qtype="A"))
    out = json.loads(line)
    assert out["level"] == "info" and out["logger"] == "minidns.query"
    assert out["message"] == "192.0.2.1 asked www.example."
    assert (out["client"], out["qtype"]) == ("192.0.2.1", "A")
    assert "args" not in out and "msg" not in out and "\n" not in line


def test_an_extra_field_never_overwrites_a_standard_one_and_odd_values_become_text():
    out = json.loads(JsonFormatter().format(record("m", level="forged", when=object)))
    assert out["level"] == "info" and out["when"].startswith("<class")


def test_an_exception_is_kept_in_one_field():
    try:
        raise ValueError("boom")
    except ValueError:
        info = sys.exc_info()
    out = json.loads(JsonFormatter().format(record("failed", exc_info=info)))
    assert "ValueError: boom" in out["exception"] and out["message"] == "failed"
