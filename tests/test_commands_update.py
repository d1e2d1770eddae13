"""`minidns update grant …` against a real PostgreSQL (minidns/commands_update.py)."""

import re

from test_commands import run  # tests/ is on sys.path


def test_update_grants_are_added_listed_in_order_and_deleted(cli, database_url):
    added = run(cli, database_url, "update", "grant", "add", "--key", "DDNS-Key", "--zone", "example.com", "--match", "subdomain",
                "--pattern", "dyn.example.com.", "--types", "A,AAAA,TXT", "--description", "kea leases")  # fmt: skip
    first = re.fullmatch(r"added grant ([0-9a-f-]{36}) at position 1\n", added).group(1)
    added = run(cli, database_url, "update", "grant", "add", "--key", "ddns-key.", "--match", "name", "--pattern",
                "ns1.example.com.", "--deny", "--managed", "--position", "1")  # fmt: skip
    second = re.fullmatch(r"added grant ([0-9a-f-]{36}) at position 1\n", added).group(1)
    lines = run(cli, database_url, "update", "grant", "list").splitlines()
    assert lines[0].split() == ["POS", "ID", "KEY", "ZONE", "MATCH", "PATTERN", "TYPES", "ACTION", "MANAGED", "DESCRIPTION"]
    assert [line.split() for line in lines[1:]] == [
        ["1", second, "ddns-key.", "*", "name", "ns1.example.com.", "*", "deny", "yes"],
        ["2", first, "ddns-key.", "example.com.", "subdomain", "dyn.example.com.", "A,AAAA,TXT", "grant", "no", "kea", "leases"],
    ]
    assert lines[0].index("ZONE") == lines[1].index("*") == lines[2].index("example.com.")  # a table: aligned columns
    assert len(run(cli, database_url, "update", "grant", "list", "--zone", "example.org.").splitlines()) == 2  # every zone's
    assert len(run(cli, database_url, "update", "grant", "list", "--key", "other.").splitlines()) == 1
    assert run(cli, database_url, "update", "grant", "delete", second) == f"deleted grant {second}\n"
    assert [line.split()[:2] for line in run(cli, database_url, "update", "grant", "list").splitlines()[1:]] == [["1", first]]


def test_a_bad_update_grant_is_refused_in_one_line(cli, database_url):
    p = cli("update", "grant", "add", "--key", "k.", "--zone", "example.com.", "--match", "wildcard", "--pattern",
            "dyn.example.com.", "--database-url", database_url)  # fmt: skip
    assert p.returncode == 1 and p.stderr == ("minidns: wildcard pattern dyn.example.com. does not start with a '*' label "
                                         "(as in *.dyn.example.com.)\n")
    p = cli("update", "grant", "add", "--key", "k.", "--match", "zone", "--types", "A,NSEC3", "--database-url", database_url)
    assert p.returncode == 1 and "NSEC3 is a DNSSEC type" in p.stderr
    p = cli("update", "grant", "delete", "5e9b1f0e-0000-4000-8000-000000000000", "--database-url", database_url)
    assert p.returncode == 1 and "no update grant" in p.stderr
    assert run(cli, database_url, "update", "grant", "list").splitlines()[1:] == []
