"""A private RabbitMQ node for the tests (Debian's rabbitmq-server): on loopback, with its own node
name, ports (AMQP, Erlang distribution, epmd), data, logs, config and Erlang cookie under one
directory; started once, restartable with the same data and ports (the broker-restart tests)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


BIN = Path("/usr/lib/rabbitmq/bin")  # /usr/sbin's wrappers re-run these as the rabbitmq user
CONFIG = """listeners.tcp.default = 127.0.0.1:{port}
log.console = false
log.file.level = warning
disk_free_limit.absolute = 10MB
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def installed() -> bool:
    return (BIN / "rabbitmq-server").exists() and shutil.which("epmd") is not None


class Rabbit:
    def __init__(self, root: Path):
        self.root = root
        self.port, dist, epmd = free_port(), free_port(), free_port()
        for d in ("home", "mnesia", "log"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "rabbitmq.conf").write_text(CONFIG.format(port=self.port))
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(root / "home"),  # the Erlang cookie is made there, private to this node
            "RABBITMQ_NODENAME": f"minidns-test-{os.getpid()}-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist), "ERL_EPMD_PORT": str(epmd), "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"), "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"), "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"), "RABBITMQ_PID_FILE": str(root / "pid"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
        }  # fmt: skip
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The transport URL as nova.conf writes it (oslo's `amqp://` would be its AMQP 1.0 driver)."""
        return f"rabbit://guest:guest@127.0.0.1:{self.port}/"

    @property
    def amqp_url(self) -> str:
        """The same broker as aio-pika's URL."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run([str(BIN / "rabbitmqctl"), *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if out.returncode:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {out.stdout}{out.stderr}")
        return out.stdout

    def start(self) -> None:
        with open(self.root / "server.out", "ab") as out:
            self.proc = subprocess.Popen([str(BIN / "rabbitmq-server")], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.root)  # fmt: skip
        deadline = time.monotonic() + 90
        while not self.listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ did not start: {(self.root / 'server.out').read_text()[-3000:]}")
            time.sleep(0.1)
        self.ctl("await_startup", "--timeout", "60")

    def listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the node as its service manager does (SIGTERM: RabbitMQ shuts down cleanly)."""
        if self.proc is None:
            return
        pid = int((self.root / "pid").read_text().strip()) if (self.root / "pid").exists() else self.proc.pid
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stopped and started again: the same data directory, node name and ports."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        subprocess.run(["epmd", "-kill"], env=self.env, capture_output=True, timeout=10)  # the epmd the node started
