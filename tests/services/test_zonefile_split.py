"""A zone file parsed in pieces by several processes gives exactly what one pass gives: the
same RRsets, TTLs, record order, counts, and the same first error with its line number."""

import dns.name
import pytest

from minidns.services import zonefile
from minidns.services.zonefile import ZoneFileError, read_zone_file

HEAD = """\
$ORIGIN split.test.
@ 3600 IN SOA ns1 hostmaster ( 2026113001 3600 600
                               1209600 300 )
$TTL 120
@ NS ns1
ns1 A 192.0.2.1
"""


def body(n: int) -> str:
    """Lines of every shape a cut must respect: implicit owners and TTLs, $ORIGIN (relative and
    absolute) and $TTL changes, comments, blank lines, RRsets spread over the whole file."""
    out = []
    for i in range(n):
        out.append(f"h{i} A 10.0.{i // 256 % 256}.{i % 256}\n")
        out.append(f"  300 AAAA 2001:db8::{i:x}\n")  # continuation of h{i}, explicit TTL
        out.append(f"  TXT \"record {i}; not a comment\"\n")
        if i % 97 == 0:
            out.append("; a comment line\n\n")
        if i % 211 == 0:
            out.append(f"$TTL {60 + i % 7}\n")
        if i % 401 == 0:
            out.append("$ORIGIN sub\n" if i % 2 else "$ORIGIN split.test.\n")
        if i % 50 == 0:
            out.append(f"spread IN 90 A 10.1.{i // 256 % 256}.{i % 256}\n")  # one RRset, every piece
    out.append("$ORIGIN split.test.\n")
    return "".join(out)


def as_data(content):
    return content.origin, content.soa, content.records, content.skipped, [
        (r.owner, r.name, r.rtype, r.ttl, r.records, r.rdata) for r in content.rrsets
    ]


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(zonefile, "PARALLEL_MIN_OCTETS", 1)
    monkeypatch.setattr(zonefile, "PIECE_OCTETS", 4096)


def test_pieces_equal_one_pass(tmp_path, small_pieces):
    path = tmp_path / "split.test.zone"
    path.write_text(HEAD + body(3000))
    data = path.read_bytes()
    chunks = zonefile._split(data, dns.name.from_text("split.test."), 2)
    assert chunks is not None and len(chunks) > 20
    assert chunks[0][0] == 0 and chunks[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    one = as_data(read_zone_file(str(path), workers=1))
    many = as_data(read_zone_file(str(path), workers=2))
    assert many == one
    spread = {r.name: r for r in read_zone_file(str(path), workers=2).rrsets if r.name.startswith("spread.")}
    assert set(spread) == {"spread.split.test.", "spread.sub.split.test."}  # $ORIGIN sub carried over
    assert sum(len(r.records) for r in spread.values()) == 60 and {r.ttl for r in spread.values()} == {90}


@pytest.mark.parametrize("wrong", ["broken A 999.1.2.3\n", "www.other.example. A 192.0.2.1\n"])
def test_error_in_a_later_piece_names_its_line(tmp_path, small_pieces, wrong):
    lines = (HEAD + body(3000)).splitlines(keepends=True)
    bad = len(lines) - 500
    while lines[bad][0] in " \t$;\n":
        bad += 1
    lines[bad] = wrong
    path = tmp_path / "bad.zone"
    path.write_text("".join(lines))
    assert len(zonefile._split(path.read_bytes(), dns.name.from_text("split.test."), 2)) > 20
    with pytest.raises(ZoneFileError) as one:
        read_zone_file(str(path), "split.test.", workers=1)
    with pytest.raises(ZoneFileError) as many:
        read_zone_file(str(path), "split.test.", workers=2)
    assert str(many.value) == str(one.value)
    assert f":{bad + 1}:" in str(many.value)


def test_first_error_wins_when_several_pieces_fail(tmp_path, small_pieces):
    lines = (HEAD + body(3000)).splitlines(keepends=True)
    for at in (len(lines) // 3, len(lines) - 100):
        while lines[at][0] in " \t$;\n":
            at += 1
        lines[at] = "broken A not-an-address\n"
    path = tmp_path / "bad.zone"
    path.write_text("".join(lines))
    with pytest.raises(ZoneFileError) as one:
        read_zone_file(str(path), "split.test.", workers=1)
    with pytest.raises(ZoneFileError) as many:
        read_zone_file(str(path), "split.test.", workers=2)
    assert str(many.value) == str(one.value)


@pytest.mark.parametrize(
    "text",
    [
        "$INCLUDE other.zone\n",  # the parser follows it; the pieces could not
        "$GENERATE 1-10 g$ A 10.9.9.$\n",
        'late TXT ( "a multi-line record" )\n',  # after it, nothing to cut
    ],
)
def test_files_that_cannot_be_cut_are_parsed_whole(tmp_path, small_pieces, text):
    path = tmp_path / "whole.zone"
    path.write_bytes((HEAD + body(300) + text).encode())
    assert zonefile._split(path.read_bytes(), dns.name.from_text("split.test."), 2) is None


def test_no_ttl_directive_means_no_cut(tmp_path, small_pieces):
    """Without $TTL a record's default TTL depends on the records before it (RFC 2308 §4)."""
    text = "$ORIGIN t.\n@ 60 SOA ns1 h 1 2 3 4 5\n" + "".join(f"h{i} A 10.0.0.{i % 250}\n" for i in range(2000))
    path = tmp_path / "nottl.zone"
    path.write_text(text)
    assert zonefile._split(path.read_bytes(), dns.name.from_text("t."), 2) is None
