"""The layering of STYLE.md §1: a package imports only packages below it."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "minidns"
# Each layer and the layers it may import from (besides itself).
ALLOWED = {
    "wire": set(),
    "zones": {"wire"},
    "xfr": {"wire", "zones"},
    "dnssec": {"wire", "zones"},
    "answer": {"wire", "zones", "dnssec"},
    "store": {"wire", "zones", "xfr", "dnssec"},  # TSIG keys are checked as transfers use them; DNSSEC keys made
    "server": {"wire", "zones", "xfr", "dnssec", "answer", "store"},
    "admin": {"wire", "zones", "xfr", "dnssec", "answer", "store", "server"},
}


def imported_layers(path: Path, layer: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("minidns."):
                found.add(node.module.split(".")[1])
            elif node.level == 2 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.add(layer)
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("minidns.")}
    return found


def test_layers_import_only_downwards():
    problems = []
    for layer, allowed in ALLOWED.items():
        for path in (PKG / layer).rglob("*.py"):
            bad = imported_layers(path, layer) - allowed - {layer}
            if bad:
                problems.append(f"{path.relative_to(PKG)} imports {sorted(bad)}")
    assert not problems, problems


def test_every_package_is_in_the_layer_table():
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"data"} == set(ALLOWED)


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from ..server.engine import Engine\nfrom minidns.admin import x\n")
    assert imported_layers(bad, "zones") == {"server", "admin"}
