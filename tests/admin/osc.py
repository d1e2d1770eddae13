"""The real `openstack` CLI (python-openstackclient with python-designateclient's plugin) run as
a subprocess against a test server, the way an operator points it at minidns: admin_token auth,
the endpoint given with or without /v2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("openstackclient.shell")
pytest.importorskip("designateclient.osc.plugin")


def osc(api, token: str, *args: str, v2: bool = True, ok: bool = True) -> subprocess.CompletedProcess:
    """Run `openstack <args>` as the holder of `token`; with `ok` it must succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    endpoint = f"{api.url}/v2" if v2 else api.url
    cmd = [sys.executable, "-m", "openstackclient.shell", "--os-auth-type", "admin_token", "--os-endpoint", endpoint,
           "--os-token", token, *args]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def osc_json(api, token: str, *args: str, v2: bool = True):
    """The parsed `-f json` output of a command that must succeed."""
    return json.loads(osc(api, token, *args, "-f", "json", v2=v2).stdout)


def refused(api, token: str, *args: str, v2: bool = True) -> str:
    """A command that must fail; its error output."""
    p = osc(api, token, *args, v2=v2, ok=False)
    assert p.returncode != 0, (args, p.stdout)
    return p.stderr
