"""Fixtures of the server tests; `serve`, `cli` and `Served` live in tests/conftest.py."""

from pathlib import Path

import pytest

ZONES = Path(__file__).resolve().parent.parent / "zones"


@pytest.fixture
def zone_args():
    return [
        "--zone-file", str(ZONES / "example.com.zone"),
        "--zone-file", str(ZONES / "child.example.com.zone"),
        "--zone-file", str(ZONES / "2.0.192.in-addr.arpa.zone"),
    ]
