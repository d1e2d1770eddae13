"""The shape of the code: no module over 500 lines, no function over 60 lines unless it is a data
table, the median function 10 lines or fewer, and beside each module with logic a test module.
`python3 tests/test_shape.py` prints the figures."""

import ast
import statistics
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "minidns"
TESTS = Path(__file__).resolve().parent
MAX_MODULE, MAX_FUNCTION, MAX_MEDIAN = 500, 60, 10

# Functions that are data tables written as code, allowed past MAX_FUNCTION: (module, function) → why.
DATA_TABLES: dict[tuple[str, str], str] = {}



def functions(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length in lines) of each function and method of a module, nested
    ones included; the length runs from the `def` line to the body's last line, decorators left out."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((prefix + child.name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(), str(path)), "")
    return found


def measure(root: Path) -> tuple[list[tuple[str, str, int, int]], dict[str, int]]:
    """Every function of the package under `root` as (module, name, line, length), and each
    module's length in lines; modules named by their path from the package's parent."""
    funcs, modules = [], {}
    for path in sorted(root.rglob("*.py")):
        module = path.relative_to(root.parent).as_posix()
        modules[module] = len(path.read_text().splitlines())
        funcs += [(module, name, line, length) for name, line, length in functions(path)]
    return funcs, modules


def long_functions(funcs) -> list[tuple[str, str, int, int]]:
    return [f for f in funcs if f[3] > MAX_FUNCTION and (f[0], f[1]) not in DATA_TABLES]


def long_modules(modules: dict[str, int]) -> dict[str, int]:
    return {m: n for m, n in modules.items() if n > MAX_MODULE}


def test_no_module_is_over_500_lines():
    found = long_modules(measure(PKG)[1])
    assert not found, "split: " + "; ".join(f"{m} has {n} lines" for m, n in found.items())


def test_no_function_is_over_60_lines_unless_a_data_table():
    found = long_functions(measure(PKG)[0])
    assert not found, "split: " + "; ".join(f"{m}:{line} {name} has {n} lines" for m, name, line, n in found)


def test_the_median_function_is_10_lines_or_fewer():
    funcs = measure(PKG)[0]
    assert statistics.median(f[3] for f in funcs) <= MAX_MEDIAN


def test_data_tables_say_why_and_exist():
    funcs = {(f[0], f[1]) for f in measure(PKG)[0]}
    assert all(reason.strip() for reason in DATA_TABLES.values())
    assert set(DATA_TABLES) <= funcs, f"no such function: {sorted(set(DATA_TABLES) - funcs)}"


def test_the_measure_sees_long_functions_and_modules(tmp_path):
    root = tmp_path / "minidns"
    (root / "zones").mkdir(parents=True)
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    (root / "zones" / "lookup.py").write_text(
        f"class Zone:\n    @property\n    def name(self):\n        def inner():\n            return 1\n"
        f"        return inner()\n\n\nasync def answer():\n{body}\n\ndef short():\n{body[:-len('    x59 = 59')-1]}\n"
    )  # fmt: skip
    (root / "big.py").write_text("\n" * 501)
    funcs, modules = measure(root)
    assert funcs == [
        ("minidns/zones/lookup.py", "Zone.name", 3, 4),
        ("minidns/zones/lookup.py", "Zone.name.inner", 4, 2),
        ("minidns/zones/lookup.py", "answer", 9, 61),
        ("minidns/zones/lookup.py", "short", 72, 60),
    ]
    assert long_functions(funcs) == [("minidns/zones/lookup.py", "answer", 9, 61)]
    assert long_modules(modules) == {"minidns/big.py": 501}


def unmirrored(root: Path, tests: Path) -> list[str]:
    """Modules of the package under `root` that define a function and have no test module beside
    them: minidns/<package>/<module>.py is mirrored by tests/<package>/test_<module>.py, or by
    test_<module>_<aspect>.py there when one module's tests are split (basenames are unique)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if not functions(path):
            continue
        rel = path.relative_to(root)
        beside = tests / rel.parent
        if not (beside / f"test_{rel.stem}.py").exists() and not any(beside.glob(f"test_{rel.stem}_*.py")):
            found.append(path.relative_to(root.parent).as_posix())
    return found


def test_each_module_with_logic_has_a_test_module_beside_it():
    found = unmirrored(PKG, TESTS)
    assert not found, "no test module beside: " + "; ".join(found)


def test_the_mirror_sees_a_module_without_tests(tmp_path):
    root, tests = tmp_path / "minidns", tmp_path / "tests"
    for name in ("zones/lookup.py", "zones/table.py", "zones/snapshot.py", "cli.py", "zones/__init__.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("def f():\n    pass\n" if name != "zones/__init__.py" else "A = 1\n")
    for name in ("zones/test_lookup.py", "zones/test_table_split.py", "test_cli.py", "test_snapshot.py"):
        (tests / name).parent.mkdir(parents=True, exist_ok=True)
        (tests / name).write_text("")
    assert unmirrored(root, tests) == ["minidns/zones/snapshot.py"]


def report(root: Path = PKG) -> str:
    """The figures for the README: the median function, and what is over the bars."""
    funcs, modules = measure(root)
    lines = [f"{len(funcs)} functions in {len(modules)} modules; median function "
             f"{statistics.median(f[3] for f in funcs):g} lines (bar {MAX_MEDIAN})"]  # fmt: skip
    over = sorted((f for f in funcs if f[3] > MAX_FUNCTION), key=lambda f: -f[3])
    lines.append(f"functions over {MAX_FUNCTION} lines: {len(over)}")
    lines += [f"  {n:5d}  {m}:{line} {name}" + (" (data table)" if (m, name) in DATA_TABLES else "")
              for m, name, line, n in over]  # fmt: skip
    big = sorted(long_modules(modules).items(), key=lambda item: -item[1])
    lines.append(f"modules over {MAX_MODULE} lines: {len(big)}")
    lines += [f"  {n:5d}  {m}" for m, n in big]
    alone = unmirrored(root, TESTS)
    lines.append(f"modules with logic and no test module beside: {len(alone)}")
    lines += [f"         {m}" for m in alone]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
