"""oslo.messaging transport URLs as operators write them in nova.conf — `rabbit://user:pass@h1:5672,
user2:pass2@h2:5672/vhost?ssl=1` — read into the brokers to try, in order (failover).

`rabbit://` and `amqp://` both mean AMQP 0-9-1 here (oslo's own `amqp://` is its AMQP 1.0 driver,
but RabbitMQ deployments write either); `rabbits://`/`amqps://`, or `ssl=1`, mean TLS. The TLS
options keep the names of oslo's [oslo_messaging_rabbit] section: `ssl_ca_file` (then the broker's
certificate and host name are checked against it), `ssl_cert_file` and `ssl_key_file` (a client
certificate); without `ssl_ca_file` the certificate chain is checked against the system's CAs.
A host written without credentials is `guest`/`guest`, as oslo's default; the vhost is "/" when
none is written; the port 5672 (5671 with TLS)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = {"rabbit": False, "amqp": False, "rabbits": True, "amqps": True}  # scheme → TLS
TRUE = ("1", "true", "yes", "on")


class InvalidTransportURL(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Tls:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def context(self) -> ssl.SSLContext:
        """The broker's certificate chain checked (against ssl_ca_file, else the system's CAs), and
        its host name too when ssl_ca_file is given, as oslo does."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.check_hostname = self.ca_file is not None
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file or None)
        return ctx


@dataclass(frozen=True, slots=True)
class Broker:
    """One host of a transport URL, with what connecting to it takes."""

    host: str
    port: int
    username: str
    password: str
    virtual_host: str
    tls: Tls | None = None

    def label(self) -> str:
        """host:port, for logs and status (never the credentials)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def connect_args(self) -> dict:
        """aio_pika.connect's keyword arguments for this broker."""
        args = {"host": self.host, "port": self.port, "login": self.username, "password": self.password,
                "virtualhost": self.virtual_host}  # fmt: skip
        if self.tls is not None:
            args.update(ssl=True, ssl_context=self.tls.context())
        return args


def brokers(urls: list[str]) -> list[Broker]:
    """Every host of every URL, in the order written: the order failover tries them in."""
    out = [b for url in urls for b in parse(url)]
    if urls and not out:
        raise InvalidTransportURL("the transport URLs name no host")
    return out


def parse(url: str) -> list[Broker]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower().removeprefix("kombu+")
    if scheme not in SCHEMES:
        raise InvalidTransportURL(f"{scheme or 'no'} scheme: minidns reads rabbit://, amqp://, rabbits:// or amqps:// (AMQP 0-9-1)")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = tls_options(query) if SCHEMES[scheme] or query.get("ssl", "").lower() in TRUE else None
    vhost = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    netloc = parts.netloc  # urlsplit keeps "user:pass@h1:5672,user2:pass2@h2" whole
    return [host(part, vhost or "/", tls) for part in netloc.split(",") if part]


def tls_options(query: dict) -> Tls:
    return Tls(query.get("ssl_ca_file") or None, query.get("ssl_cert_file") or None, query.get("ssl_key_file") or None)


def host(part: str, vhost: str, tls: Tls | None) -> Broker:
    """One `user:pass@host:port` of the URL's host list."""
    user, password = "guest", "guest"
    if "@" in part:
        cred, part = part.rsplit("@", 1)
        user, _, pw = cred.partition(":")
        user, password = unquote(user), unquote(pw)
    name, port = host_port(part)
    if not name:
        raise InvalidTransportURL(f"no host name in {part!r}")
    return Broker(name, port or (5671 if tls else 5672), user, password, vhost, tls)


def host_port(text: str) -> tuple[str, int | None]:
    """`h:5672`, `[2001:db8::1]:5672`, or a name alone."""
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        name, _, port = text.partition(":")
    if port and not port.isdigit():
        raise InvalidTransportURL(f"port {port!r} is not a number")
    return name, int(port) if port else None
