"""A private RabbitMQ node for the tests (Debian's rabbitmq-server): on loopback, with its own node
name, ports (AMQP, AMQP over TLS with a certificate from a private CA, Erlang distribution, epmd),
data, logs, config and Erlang cookie under one directory; started once, restartable with the same
data and ports (the broker-restart tests)."""

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
listeners.ssl.default = 127.0.0.1:{tls_port}
ssl_options.certfile = {root}/server.pem
ssl_options.keyfile = {root}/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
log.console = false
log.file.level = warning
disk_free_limit.absolute = 10MB
"""


def make_certificates(root: Path) -> None:
    """ca.pem (a private CA) and server.pem/server.key (127.0.0.1, signed by it) in `root`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minidns test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # fmt: skip
    (root / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (root / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))  # fmt: skip


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def installed() -> bool:
    return (BIN / "rabbitmq-server").exists() and shutil.which("epmd") is not None


class Rabbit:
    def __init__(self, root: Path):
        self.root = root
        self.port, self.tls_port, dist, epmd = free_port(), free_port(), free_port(), free_port()
        for d in ("home", "mnesia", "log"):
            (root / d).mkdir(parents=True, exist_ok=True)
        make_certificates(root)
        (root / "rabbitmq.conf").write_text(CONFIG.format(port=self.port, tls_port=self.tls_port, root=root))
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
    def tls_url(self) -> str:
        """The TLS listener, its certificate checked against the test CA (oslo's option names)."""
        return f"rabbits://guest:guest@127.0.0.1:{self.tls_port}/?ssl_ca_file={self.root / 'ca.pem'}"

    @property
    def amqp_url(self) -> str:
        """The same broker as aio-pika's URL."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run([str(BIN / "rabbitmqctl"), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
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
        return listening(self.port)

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
        subprocess.run(["epmd", "-kill"], env=self.env, capture_output=True, timeout=10, check=False)  # the epmd the node started
