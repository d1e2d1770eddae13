"""Start `minidns serve` as a real process on loopback and talk to it over real sockets."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ZONES = Path(__file__).resolve().parent.parent / "zones"
ROOT = Path(__file__).resolve().parent.parent.parent


class Served:
    """A running `minidns serve`: its process, port and collected log lines."""

    def __init__(self, args, env=None):
        env = dict(env or os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))  # this checkout
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "minidns", "serve", *args],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
        )
        self.lines: list[str] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = None
        self.wait_for(r"serving \d+ zone", 30)
        m = re.search(r"port (\d+)", self.log)
        self.port = int(m.group(1)) if m else None

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    @property
    def log(self) -> str:
        with self.cond:
            return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 10, after: int = 0) -> str:
        """Wait until a log line (from line number `after` on) matches `pattern`."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self.cond:
            while True:
                for line in self.lines[after:]:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no log line matching {pattern!r}; log:\n{''.join(self.lines)}")
                self.cond.wait(min(left, 0.2))

    def signal(self, sig) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def serve():
    """serve(*args) starts a server (listening on a free loopback port unless --listen is given)."""
    started = []

    def start(*args, env=None):
        args = list(args)
        if "--listen" not in args and not any(a.startswith("--config") for a in args):
            args += ["--listen", "127.0.0.1:0"]
        s = Served(args, env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def zone_args():
    return [
        "--zone-file", str(ZONES / "example.com.zone"),
        "--zone-file", str(ZONES / "child.example.com.zone"),
        "--zone-file", str(ZONES / "2.0.192.in-addr.arpa.zone"),
    ]



@pytest.fixture
def cli():
    """cli(*args, env=None, timeout=60) runs one `minidns` command (this checkout's) to its end
    and returns the CompletedProcess, stdout and stderr as text."""

    def run(*args, env=None, timeout=60):
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        return subprocess.run(
            [sys.executable, "-m", "minidns", *map(str, args)],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
        )

    return run
