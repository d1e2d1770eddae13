"""Load zone files (RFC 1035 §5) into snapshots, using dnspython's parser without keeping its objects.

dnspython's `Reader` reads the master-file format ($ORIGIN, $TTL, $INCLUDE, $GENERATE, parentheses,
escapes) and hands each record to a transaction; ours packs it into the snapshot builder at once,
so nothing of dnspython outlives the line it came from.
"""

from __future__ import annotations

import contextlib
import gc
import io
import re

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.zonefile

from .snapshot import Snapshot, SnapshotBuilder, ZoneError


_PREFIX = re.compile(r"^.*?:\d+: ")


@contextlib.contextmanager
def paused_gc():
    """The cyclic garbage collector off while a zone file is imported: that makes millions of
    lasting objects and no cycles, and the collector's full passes over them took a third of the
    time. (Loading into a snapshot keeps few objects and gains nothing from it.)"""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class ZoneFileError(Exception):
    """A zone file that cannot be loaded; the message names the file, the line and the reason."""


class NoOrigin(ZoneFileError):
    """A zone file whose origin was not given and cannot be read from it. The message says how to
    give one; each door that reads files names its own way (`with_hint`)."""

    def with_hint(self, hint: str) -> "NoOrigin":
        return NoOrigin(f"{self.args[0]}; {hint}")


class _Manager:
    def __init__(self, origin: dns.name.Name):
        self.origin = origin

    def origin_information(self):
        return (self.origin, False, self.origin)


class _RecordError(Exception):
    """A record refused by `add`: the file and the line it ended on, and why."""

    def __init__(self, filename: str, line: int, error: Exception):
        super().__init__(str(error))
        self.filename = filename
        self.line = line
        self.error = error


class _Txn:
    """The part of dnspython's transaction interface that its zone-file Reader uses: each record
    goes to `add(name, ttl, rdata)` as it is read, once it is known to be in the zone."""

    def __init__(self, origin: dns.name.Name, add):
        self.manager = _Manager(origin)
        self.origin = origin
        self._add = add
        self.reader: dns.zonefile.Reader | None = None  # its tokenizer says where it is ($INCLUDE: in that file)

    def add(self, name: dns.name.Name, ttl: int, rdata) -> None:
        try:
            if not name.is_subdomain(self.origin):
                # RFC 1035 §5.2: data outside the zone is an origin error, not something to serve.
                raise ZoneError(f"{name} is outside the zone {self.origin}")
            self._add(name, ttl, rdata)
        except (ZoneError, ValueError) as e:
            # The Reader has read the record's end of line: the record is on the line before
            # (unless the file ended without one).
            tok = self.reader.tok
            raise _RecordError(tok.filename, tok.line_number - (0 if tok.eof else 1), e) from None

    def check_put_rdataset(self, check) -> None:
        pass  # CNAME exclusivity is checked once per owner by whoever receives the records

    def _set_origin(self, origin) -> None:
        pass  # a later $ORIGIN changes how names are read, not the zone's origin


def read_records(stream, filename: str, origin: str, add, line_offset: int = 0) -> None:
    """Read master-file text, calling `add(name, ttl, rdata)` (dnspython objects) per record.
    A record outside the zone of `origin` is an error, as is any other bad line: an error from
    the file or raised by `add` (ZoneError, ValueError) becomes a ZoneFileError naming the file
    and line (`line_offset` is added: for text that starts inside a file)."""
    tok = dns.tokenizer.Tokenizer(stream, filename=filename)
    try:
        txn = _Txn(dns.name.from_text(origin), add)
        txn.reader = reader = dns.zonefile.Reader(tok, dns.rdataclass.IN, txn, allow_include=True)
        # dnspython's Reader skips a record whose owner is outside its zone without a word (a
        # `www.other.example.` line in an `example.` file is simply gone). Its zone is made the
        # root, so that every record reaches the transaction, which refuses the ones outside
        # ours and the error names the line. (Relative names still take the origin: the Reader's
        # current origin is unchanged, and rdata is not relativized.)
        reader.zone_origin = dns.name.root
        reader.read()
    except _RecordError as e:
        offset = line_offset if e.filename == filename else 0
        raise ZoneFileError(f"{e.filename}:{e.line + offset}: {_reason(e.error)}") from None
    except (ZoneError, ValueError, dns.exception.DNSException) as e:
        raise ZoneFileError(f"{filename}:{_line(tok) + line_offset}: {_reason(e)}") from None


def file_origin(path: str) -> str:
    """The origin of a file given without one: its first $ORIGIN, else its first (absolute) owner."""
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
    raise NoOrigin(f"{path}: no $ORIGIN and the first owner name is not absolute")


def _read(stream, filename: str, origin: str) -> Snapshot:
    try:
        builder = SnapshotBuilder(dns.name.from_text(origin).to_wire())
    except dns.exception.DNSException as e:
        raise ZoneFileError(f"{filename}: bad origin {origin!r}: {e}") from None

    def add(name, ttl, rdata) -> None:
        builder.add(name.to_wire(), rdata.rdtype, ttl, rdata.to_wire())

    read_records(stream, filename, origin, add)
    try:
        return builder.build()
    except ZoneError as e:
        raise ZoneFileError(f"{filename}: {e}") from None


def _line(tok: dns.tokenizer.Tokenizer) -> int:
    """The line being read: the tokenizer counts a newline it has read ahead and put back."""
    return tok.line_number - (1 if tok.ungotten_char == "\n" else 0)


def _reason(e: Exception) -> str:
    """The error text without the 'file:line: ' prefix dnspython's Reader puts on it."""
    text = str(e) or type(e).__name__
    return _PREFIX.sub("", text, count=1)


def load_zone_file(path: str, origin: str | None = None) -> Snapshot:
    """Parse `path` into a Snapshot. The origin is `origin`, else the file's first $ORIGIN, else
    the owner of its first record. Raises ZoneFileError naming file, line and reason."""
    try:
        with open(path, encoding="utf-8") as f:
            return _read(f, path, origin or file_origin(path))
    except NoOrigin as e:
        raise e.with_hint("give the zone as ORIGIN=PATH") from None
    except OSError as e:
        raise ZoneFileError(f"{path}: {e.strerror or e}") from None


def load_zone_text(text: str, origin: str) -> Snapshot:
    """Parse zone-file text (the master-file format) for `origin` into a Snapshot."""
    return _read(io.StringIO(text), "<text>", origin)
