"""What a starting server says about itself: the one startup line's details (zones, records,
listen addresses, database, workers, API), also given as fields for the JSON log."""

from __future__ import annotations

from struct import unpack_from
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """A database URL without its password (in the authority or a `password=` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="/*")
    shown = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if not netloc and url.startswith(f"{parts.scheme}://"):  # a socket URL, postgresql:///db: urlunsplit drops the //
        shown = f"{parts.scheme}://{shown[len(parts.scheme) + 1:]}"
    return shown


def record_count(snapshots) -> int:
    """Records in the served snapshots (each node is TYPE TTL RDLENGTH RDATA, packed)."""
    total = 0
    for snap in snapshots:
        for node in snap.nodes.values():
            off, n = 0, len(node)
            while off < n:
                off += 8 + unpack_from("!H", node, off + 6)[0]
                total += 1
    return total


def database_text(server) -> str:
    db = server.database
    if db is None:
        return "none (zone files only)"
    if getattr(db, "embedded", None) is not None:
        return f"embedded PostgreSQL in {server.config.data_dir or _default_data_dir()}"
    return redact_url(db.url)


def _default_data_dir() -> str:
    from ..store.embedded import default_data_dir

    return default_data_dir()


def api_text(server) -> str:
    for service in server.services:
        runner = getattr(service, "runner", None)
        if runner is not None and runner.addresses:
            host, port = runner.addresses[0][:2]
            return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    return "off"


def details(server) -> tuple[str, dict]:
    """(text after "serving N zone(s) on ADDRESSES", the same as log fields)."""
    zones = list(server.engine.table.zones.values())
    listen = list(getattr(server, "bound", None) or server.config.listen)
    workers = getattr(server.config, "worker_count", 1) if getattr(server, "role", "main") == "main" else 1
    fields = {"zones": len(zones), "records": record_count(zones), "listen": listen,
              "database": database_text(server), "workers": workers, "api": api_text(server)}  # fmt: skip
    text = (f", {fields['records']} record(s), database {fields['database']}, {workers} worker(s), "
            f"API {fields['api']}")  # fmt: skip
    return text, fields
