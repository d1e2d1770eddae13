"""Load zone files (RFC 1035 §5) into snapshots, using dnspython's parser without keeping its objects.

dnspython's `Reader` reads the master-file format ($ORIGIN, $TTL, $INCLUDE, $GENERATE, parentheses,
escapes) and hands each record to a transaction; ours packs it into the snapshot builder at once,
so nothing of dnspython outlives the line it came from.
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.zonefile

from .snapshot import Snapshot, SnapshotBuilder, ZoneError


class ZoneFileError(Exception):
    """A zone file that cannot be loaded; the message names the file, the line and the reason."""


class _Manager:
    def __init__(self, origin):
        self.origin = origin

    def origin_information(self):
        return (self.origin, False, self.origin)


class _Txn:
    """The part of dnspython's transaction interface its zone-file Reader uses."""

    def __init__(self, origin: dns.name.Name | None):
        self.manager = _Manager(origin)
        self.builder: SnapshotBuilder | None = None
        self.first: list = []  # records read before the origin is known

    def check_put_rdataset(self, check) -> None:
        pass  # CNAME exclusivity is checked once per owner by the builder

    def _set_origin(self, origin) -> None:
        if self.manager.origin is None:
            self.manager.origin = origin

    def add(self, name, ttl, rdata) -> None:
        if self.builder is None:
            if rdata.rdtype != dns.rdatatype.SOA and self.manager.origin is None:
                raise ZoneError("the first record must be the SOA when no $ORIGIN is given")
            origin = self.manager.origin or name
            self.manager.origin = origin
            self.builder = SnapshotBuilder(origin.to_wire())
        self.builder.add(name.to_wire(), rdata.rdtype, ttl, rdata.to_wire())


def _first_owner(path: str) -> str:
    """The origin of a file with no $ORIGIN: the absolute owner of its first record (the SOA)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = line.split(";", 1)[0]
            if not text.strip():
                continue
            if text.startswith("$ORIGIN"):
                return text.split()[1]
            if text[0] in " \t$":
                continue
            owner = text.split()[0]
            if owner.endswith("."):
                return owner
            break
    raise ZoneFileError(f"{path}: no $ORIGIN and the first owner name is not absolute; give ORIGIN=PATH")


def load_zone_file(path: str, origin: str | None = None) -> Snapshot:
    """Parse `path` into a Snapshot. The origin is `origin`, else the file's $ORIGIN, else the
    owner of its first record, which must then be the SOA. Raises ZoneFileError with file:line."""
    try:
        zone_origin = dns.name.from_text(origin or _first_owner(path))
        with open(path, encoding="utf-8") as f:
            tok = dns.tokenizer.Tokenizer(f, filename=path)
            txn = _Txn(zone_origin)
            reader = dns.zonefile.Reader(tok, dns.rdataclass.IN, txn, allow_include=True)
            try:
                reader.read()
            except ZoneError as e:
                filename, line = tok.where()
                raise ZoneFileError(f"{filename}:{line}: {e}") from None
    except OSError as e:
        raise ZoneFileError(f"{path}: {e.strerror or e}") from None
    except dns.exception.DNSException as e:
        raise ZoneFileError(str(e) if str(e).startswith(path) else f"{path}: {e}") from None
    if txn.builder is None:
        raise ZoneFileError(f"{path}: no records")
    try:
        return txn.builder.build()
    except ZoneError as e:
        raise ZoneFileError(f"{path}: {e}") from None
