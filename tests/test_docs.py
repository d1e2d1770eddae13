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


ROOT = README.parent
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(text: str, kinds: str = "sh|console") -> list[str]:
    return re.findall(rf"```(?:{kinds})\n(.*?)```", text, re.S)


def test_command_1_installs_into_a_venv_and_command_2_is_what_ci_runs():
    """Command 1 works where the system Python refuses `pip install` (PEP 668): it makes and uses a
    virtual environment, the one the systemd unit runs; command 2 is exactly what .ci/run runs."""
    first = _blocks(README.read_text(), "sh")[0]
    commands = re.sub(r"\\\n\s*", " ", re.sub(r"#.*", "", first)).split("\n")
    commands = [c.strip() for c in commands if c.strip()]
    assert len(commands) == 2, commands
    install, tests = commands
    assert "python3 -m venv /opt/minidns" in install and "/opt/minidns/bin/pip install ." in install
    assert install.endswith("/opt/minidns/bin/minidns serve")
    assert tests == "bash scripts/test.sh"
    assert (ROOT / ".ci/run").read_text().strip().endswith("exec bash scripts/test.sh")
    assert "ExecStart=/opt/minidns/bin/minidns serve" in (ROOT / "contrib/systemd/minidns.service").read_text()
    assert ".venv/bin/python -m pytest" in (ROOT / "scripts/test.sh").read_text()


def _minidns_commands(text: str) -> list[str]:
    out = []
    for block in _blocks(text):
        for line in block.splitlines():
            line = re.sub(r"\$\([^)]*\)", "X", re.sub(r"\s#\s.*", "", line.removeprefix("$ ")))  # $(…) is one word
            for part in re.split(r";|&&|\|", line):
                part = part.strip()
                if part.startswith(("minidns ", "/opt/minidns/bin/minidns ")):
                    out.append(part)
    return out


def test_every_minidns_command_shown_parses():
    """Each `minidns …` line of the README and docs/ is a command the parser takes as written."""
    import shlex

    seen = 0
    for doc in DOCS:
        for command in _minidns_commands(doc.read_text()):
            if "…" in command:
                continue
            argv = shlex.split(re.split(r"\s[<>]", command)[0], comments=True)[1:]  # no redirections
            try:
                build_parser().parse_args(argv)
            except SystemExit:
                raise AssertionError(f"{doc.name}: `{command}` does not parse") from None
            seen += 1
    assert seen >= 25, seen  # the tour alone shows more


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_pages_resolve():
    """README ↔ docs/ links (files and #anchors) name what is there: nothing moved is lost."""
    for doc in DOCS:
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"https?:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            assert dest.exists(), f"{doc.name}: link to {target}: no such file"
            if anchor:
                heads = {_slug(h) for h in re.findall(r"^#+ (.*)$", dest.read_text(), re.M)}
                assert anchor in heads, f"{doc.name}: link to {target}: no such heading"


def test_the_tour_imports_the_sample_zone_that_ships():
    from minidns.zones.loader import load_zone_file

    text = README.read_text()
    assert "minidns zone import contrib/zones/example.org.zone" in text
    assert load_zone_file(str(ROOT / "contrib/zones/example.org.zone")).name == "example.org."
    assert "/etc/zones/example.org.zone\n" not in text.split("## Configuration")[0]
    for moved in ("How it answers", "Differences that remain", "The fast path"):
        assert f"## {moved}" in (ROOT / "docs/internals.md").read_text() and f"## {moved}" not in text
    assert "## Production hardening" in (ROOT / "docs/benchmarks.md").read_text() and "## Benchmarks" not in text
