"""The documentation runs: the README's configuration example loads, and --help names every key."""

import dataclasses
import re
from pathlib import Path

from minidns.cli import build_parser
from minidns.server.config import Config, load_config

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_config_example_is_valid(tmp_path):
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README shows a configuration example"
    cfg = tmp_path / "minidns.toml"
    cfg.write_text(blocks[0])
    config = load_config(str(cfg), {})
    assert config.listen == ("127.0.0.1:5353", "[::1]:5353") and config.nsid == "ns1-fra"


def test_readme_example_names_every_setting():
    block = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)[0]
    keys = set(re.findall(r"^(\w+) =", block, re.M))
    assert keys == {f.name for f in dataclasses.fields(Config)}


def test_serve_help_documents_every_setting():
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    text = serve.format_help()
    for field in dataclasses.fields(Config):
        assert f"[{field.name}]" in text, f"--help does not document {field.name}"
