"""minidns/commands.py: each database command as an operator runs it against a real PostgreSQL, and
the one line it prints."""

import re


def run(cli, database_url, *args) -> str:
    p = cli(*args, "--database-url", database_url)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_tsig_keys_are_added_listed_and_deleted(cli, database_url):
    secret = "c2VjcmV0c2VjcmV0c2VjcmV0"
    assert run(cli, database_url, "tsig", "add", "k1", "--secret", secret) == f"k1.\thmac-sha256\t{secret}\n"
    assert run(cli, database_url, "tsig", "list") == "k1.\thmac-sha256\n"
    assert run(cli, database_url, "tsig", "delete", "k1") == "deleted k1\n"
    assert run(cli, database_url, "tsig", "list") == ""


def test_a_token_is_printed_once_and_listed_without_it(cli, database_url):
    token = run(cli, database_url, "token", "create", "--project", "p1", "--role", "reader", "--description", "ci")
    assert re.fullmatch(r"[\w-]{32,}\n", token)
    listed = run(cli, database_url, "token", "list")
    token_id, rest = listed.split("\t", 1)
    assert rest == "p1\treader\tci\n" and token.strip() not in listed
    assert run(cli, database_url, "token", "delete", token_id) == f"deleted token {token_id}\n"
    assert run(cli, database_url, "token", "list") == ""


def test_records_and_zone_settings_through_the_write_path(cli, database_url):
    assert run(cli, database_url, "catalog", "create", "catalog.invalid.") == "created catalog zone catalog.invalid. serial 1\n"
    assert re.fullmatch(r"catalog\.invalid\.\t1\tPENDING\t[0-9a-f-]{36}\n", run(cli, database_url, "zone", "list"))
    record = ("catalog.invalid.", "x", "TXT", 60, "hi")
    assert run(cli, database_url, "record", "add", *record) == "catalog.invalid. serial 1 -> 2\n"
    assert run(cli, database_url, "record", "add", *record) == "catalog.invalid. unchanged (serial 2)\n"
    assert run(cli, database_url, "record", "delete", *record) == "catalog.invalid. serial 2 -> 3\n"
    secondary = ("catalog.invalid.", "192.0.2.1", "--port", 5300)
    assert run(cli, database_url, "zone", "secondary", "add", *secondary) == "catalog.invalid.: secondary 192.0.2.1#5300\n"
    assert run(cli, database_url, "zone", "secondary", "list", "catalog.invalid.") == "192.0.2.1\t5300\t-\n"
    assert run(cli, database_url, "zone", "allow-transfer", "catalog.invalid.", "--nobody") == (
        "catalog.invalid.: transfers allowed to nobody\n")
    assert run(cli, database_url, "zone", "delete", "catalog.invalid.") == "deleted catalog.invalid.\n"
    assert run(cli, database_url, "zone", "list") == ""


def test_an_error_prints_one_line_and_exits_1(cli, database_url):
    p = cli("record", "add", "absent.test.", "x", "TXT", 60, "hi", "--database-url", database_url)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("minidns: ") and p.stderr.count("\n") == 1, p.stderr
