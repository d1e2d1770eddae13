"""The real `openstack` CLI (python-openstackclient with python-designateclient's plugin) run as
a subprocess against a test server, the way an operator points it at minidns: admin_token auth,
the endpoint given with or without /v2."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("openstackclient.shell")
pytest.importorskip("designateclient.osc.plugin")


# One process imports the client once and forks a child for each command: `openstack` is
# openstackclient.shell:main, so each command line goes through exactly the code the console
# script runs, in a process state of its own (the client keeps state between runs in one process),
# only without its 3 s of imports each time. `openstack_process` runs the console script itself,
# for the test that the installed command works as a whole.
_DRIVER = r"""
import contextlib, io, json, os, sys
from openstackclient import shell
for line in sys.stdin:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = shell.main(json.loads(line))
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        with os.fdopen(w, "w") as f:
            f.write(json.dumps([rc or 0, out.getvalue(), err.getvalue()]))
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        reply = f.read()
    os.waitpid(pid, 0)
    sys.stdout.write((reply or json.dumps([1, "", "the command's process died"])) + "\n")
    sys.stdout.flush()
"""
_driver: list[subprocess.Popen] = []


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("OS_")}


def _argv(api, token: str, args, v2: bool) -> list[str]:
    endpoint = f"{api.url}/v2" if v2 else api.url
    return ["--os-auth-type", "admin_token", "--os-endpoint", endpoint, "--os-token", token, *args]


def _run(argv: list[str]) -> tuple[int, str, str]:
    if not _driver or _driver[0].poll() is not None:
        _driver[:] = [subprocess.Popen([sys.executable, "-c", _DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, env=_env())]  # fmt: skip
        atexit.register(_driver[0].kill)
    proc = _driver[0]
    proc.stdin.write(json.dumps(argv) + "\n")
    proc.stdin.flush()
    return tuple(json.loads(proc.stdout.readline()))


def osc(api, token: str, *args: str, v2: bool = True, ok: bool = True) -> subprocess.CompletedProcess:
    """Run `openstack <args>` as the holder of `token`; with `ok` it must succeed."""
    rc, out, err = _run(_argv(api, token, args, v2))
    p = subprocess.CompletedProcess(["openstack", *args], rc, out, err)
    if ok:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def openstack_process(api, token: str, *args: str, v2: bool = True) -> subprocess.CompletedProcess:
    """The installed `openstack` command itself, as a process of its own."""
    exe = shutil.which("openstack") or os.path.join(os.path.dirname(sys.executable), "openstack")
    return subprocess.run([exe, *_argv(api, token, args, v2)], capture_output=True, text=True, env=_env(), timeout=120)


def osc_json(api, token: str, *args: str, v2: bool = True):
    """The parsed `-f json` output of a command that must succeed."""
    return json.loads(osc(api, token, *args, "-f", "json", v2=v2).stdout)


def refused(api, token: str, *args: str, v2: bool = True) -> str:
    """A command that must fail; its error output."""
    p = osc(api, token, *args, v2=v2, ok=False)
    assert p.returncode != 0, (args, p.stdout)
    return p.stderr
