"""The systemd unit shipped in contrib/systemd: systemd's own checker accepts it, and it is the
Type=notify service the server speaks to (tests/server/test_workers.py checks the protocol)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from minidns.server.config import load_config

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd"


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    beside = Path(sys.executable).parent / "minidns"  # the virtual environment's, as scripts/test.sh runs it
    minidns = str(beside) if beside.exists() else shutil.which("minidns")
    assert minidns, "the minidns command is installed (pip install)"
    unit = tmp_path / "minidns.service"
    unit.write_text((UNIT / "minidns.service").read_text().replace("/opt/minidns/bin/minidns", minidns))
    p = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr


def test_unit_is_a_hardened_notify_service():
    text = (UNIT / "minidns.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"] and settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["KillMode"] == "mixed"
    assert settings["User"] == "minidns" and settings["StateDirectory"] == "minidns"
    assert settings["CapabilityBoundingSet"] == settings["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictSUIDSGID"):
        assert settings[key] == "yes", key
    assert settings["ProtectSystem"] == "strict"


def test_the_example_configuration_loads():
    values = tomllib.loads((UNIT / "minidns.toml").read_text())
    config = load_config(str(UNIT / "minidns.toml"), {})
    assert config.listen == tuple(values["listen"]) and config.data_dir == "/var/lib/minidns"
    assert config.worker_count >= 1
