"""minidns/cli.py: each flag of serve overrides the TOML key it names, and a configuration error
stops any command with one line and exit status 2, before anything is opened."""

import re

import pytest

from minidns.cli import SERVE_FLAGS, build_parser, main
from minidns.server.config import FIELDS


def serve_actions():
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    return [a for a in serve._actions if a.option_strings and a.dest not in ("help", "config")]


def test_each_serve_flag_sets_the_setting_its_help_names():
    actions = serve_actions()
    assert len(actions) == len(SERVE_FLAGS) + 2  # with --database-url and --data-dir
    for action in actions:
        named = re.findall(r"\[(\w+)\]$", action.help)
        assert named == [action.dest], f"{action.option_strings[0]}: help names {named}, sets {action.dest}"
        assert action.dest in FIELDS, action.dest
        assert action.default is None, f"{action.option_strings[0]}: a default would hide the file's value"


@pytest.mark.parametrize("argv", [["zone", "list"], ["check"], ["dnssec", "advance"]])
def test_a_configuration_error_stops_a_command_with_status_2(tmp_path, capsys, argv):
    conf = tmp_path / "minidns.toml"
    conf.write_text("edns_payload = 100\n")
    assert main([*argv, "--config", str(conf)]) == 2
    assert capsys.readouterr().err == "minidns: configuration error: edns_payload must be between 512 and 65535\n"


def test_a_missing_configuration_file_stops_a_command_with_status_2(capsys):
    assert main(["zone", "list", "--database-url", "postgresql://x/y", "--config", "/nonexistent/minidns.toml"]) == 2
    assert capsys.readouterr().err.startswith("minidns: configuration error: /nonexistent/minidns.toml: ")
