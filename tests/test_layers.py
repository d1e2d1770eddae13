"""The layering of STYLE.md §1: a package imports only packages below it, no module imports another's
underscore names or uses its classes' underscore members, and the module import graph
(function-local imports counted) has no cycle."""

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
    "services": {"wire", "zones", "xfr", "dnssec", "store"},
    "sink": {"wire", "zones", "xfr", "dnssec", "store", "services"},
    "bus": {"wire", "zones", "xfr", "dnssec", "store", "services", "sink"},  # the sink fed from message buses
    "server": {"wire", "zones", "xfr", "dnssec", "answer", "store", "services", "sink", "bus"},
    "admin": {"wire", "zones", "xfr", "dnssec", "answer", "store", "services", "sink", "bus", "server"},
}


def imported_layers(path: Path, layer: str, where: tuple[str, ...] | None = None) -> set[str]:
    """The packages of minidns the module at `path` imports from; its relative imports are read
    from the package it sits in (`where`, e.g. ("sink", "clouds"); by default its place under
    minidns/, or the top of package `layer`)."""
    here = where or (path.relative_to(PKG).parent.parts if path.is_relative_to(PKG) else (layer,))
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            parts = node.module.split(".") if node.module else []
            if node.level:
                parts = list(here[: len(here) - node.level + 1]) + parts
            elif parts[0] == "minidns":
                parts = parts[1:]
            else:
                continue
            found |= {parts[0]} if parts else {a.name for a in node.names if not a.name.startswith("__")}
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
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()} - {"data"}
    assert packages <= set(ALLOWED), f"packages missing from the layer table: {sorted(packages - set(ALLOWED))}"
    assert set(ALLOWED) <= packages, f"layers without a package: {sorted(set(ALLOWED) - packages)}"


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from ..server.engine import Engine\nfrom minidns.admin import x\n")
    assert imported_layers(bad, "zones") == {"server", "admin"}


def test_the_checker_reads_relative_imports_from_where_the_module_sits(tmp_path):
    deep = tmp_path / "nova.py"
    deep.write_text("from ..services import a\nfrom ... import wire, __version__\nfrom . import neutron\n")
    assert imported_layers(deep, "sink", where=("sink", "clouds")) == {"sink", "wire"}


# The module graph: every import statement of a module, at any depth (functions included), as
# (line, imported module, imported name) with relative imports resolved.


def module_name(path: Path, root: Path) -> str:
    """minidns/store/writer.py → minidns.store.writer; a package's __init__.py → the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def statements(path: Path, root: Path):
    """Each import statement of the module at `path` (a file under `root`, the directory holding the
    package), at any depth, as (node, alias, module, name): `from a import b` gives module a.b when b
    is a module of its own, else module a and name b; `import a.b` gives module a.b and no name."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node, a, a.name, None) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                yield (node, a, sub, None) if is_module(sub, root) else (node, a, base, a.name)


def ours(root: Path) -> list[tuple[str, Path]]:
    return sorted((module_name(p, root), p) for p in (root / "minidns").rglob("*.py"))


def private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__") and name != "_"


def private_imports(root: Path) -> list[tuple[str, int, str, str]]:
    """(module, line, source module, name) for each underscore name a module of minidns takes from
    another: `from .x import _y`, or module `x` imported then `x._y` used."""
    found = []
    for me, path in ours(root):
        modules = {}  # local name → the module of minidns it is bound to
        for node, alias, module, name in statements(path, root):
            if not module.startswith("minidns") or module == me:
                continue
            if name is not None and private(name):
                found.append((me, node.lineno, module, name))
            if name is None and (alias.asname or isinstance(node, ast.ImportFrom)):
                modules[alias.asname or alias.name] = module
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and private(node.attr):
                if node.value.id in modules:
                    found.append((me, node.lineno, modules[node.value.id], node.attr))
    return sorted(set(found))


def class_members(tree: ast.Module) -> set[str]:
    """The underscore names a module's classes define: methods, class attributes, `self._x = ...`."""
    names = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for n in ast.walk(cls):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(n.name)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                names.add(n.id)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and ast.unparse(n.value) == "self":
                names.add(n.attr)
    return {name for name in names if private(name)}


def private_members(root: Path) -> list[tuple[str, int, str, str]]:
    """(module, line, expression, defining modules) for each use of an underscore member that only
    other modules' classes define (`store._change(...)` outside the writer): those modules' private
    business. Found by name, so `self.x._y` counts too; `self._y` and `cls._y` are the module's own."""
    trees = {me: ast.parse(path.read_text(), str(path)) for me, path in ours(root)}
    members = {me: class_members(tree) for me, tree in trees.items()}
    found = []
    for me, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not private(node.attr) or node.attr in members[me]:
                continue
            owners = sorted(m for m, names in members.items() if node.attr in names)
            if owners and ast.unparse(node.value) not in ("self", "cls"):
                found.append((me, node.lineno, ast.unparse(node), ", ".join(owners)))
    return sorted(set(found))


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """Each module of minidns → {module of minidns it imports: first line doing so}."""
    graph = {}
    for me, path in ours(root):
        edges = graph.setdefault(me, {})
        for node, _alias, module, _name in statements(path, root):
            if module.startswith("minidns") and module != me and is_module(module, root):
                edges.setdefault(module, node.lineno)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def describe_cycle(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    inside = set(component)
    edges = [f"{a}:{line} imports {b}" for a in component for b, line in sorted(graph[a].items()) if b in inside]
    return "cycle among " + ", ".join(component) + ": " + "; ".join(edges)


def test_no_module_imports_another_modules_underscore_names():
    found = private_imports(PKG.parent)
    assert not found, "make these names public: " + "; ".join(
        f"{me}:{line} takes {name} from {module}" for me, line, module, name in found)


def test_no_module_uses_another_modules_underscore_members():
    found = private_members(PKG.parent)
    assert not found, "make these members public: " + "; ".join(
        f"{me}:{line} uses {expression} (private to {owners})" for me, line, expression, owners in found)


def test_the_module_imports_are_acyclic():
    graph = import_graph(PKG.parent)
    found = cycles(graph)
    assert not found, " | ".join(describe_cycle(c, graph) for c in found)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "minidns" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checker_sees_an_underscore_import(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "", "zones/__init__.py": "", "zones/lookup.py": "_CACHE = {}\ndef _find(): pass\n",
        "zones/table.py": "from .lookup import _find, lookup_name\n",
        "server/__init__.py": "",
        "server/app.py": "def f():\n    from ..zones import lookup\n    return lookup._CACHE, lookup.__name__\n",
        "server/engine.py": "import minidns.zones.lookup as lk\nfrom .. import __version__\nx = lk._find\n",
    })  # fmt: skip
    assert private_imports(root) == [
        ("minidns.server.app", 3, "minidns.zones.lookup", "_CACHE"),
        ("minidns.server.engine", 3, "minidns.zones.lookup", "_find"),
        ("minidns.zones.table", 1, "minidns.zones.lookup", "_find"),
    ]


def test_the_checker_sees_an_underscore_member_used_from_another_module(tmp_path):
    root = _package(tmp_path, {
        "store/writer.py": "class Store:\n    _ZONE = 1\n    def __init__(self):\n        self._lock = None\n"
                           "    async def _change(self):\n        return self._lock, Store._ZONE\n",
        "store/recordsets.py": "async def write(store, engine):\n    await store._change()\n    return store.__class__, engine._lock\n",
        "store/follow.py": "class Follower:\n    def __init__(self):\n        self._lock = 1\n"
                           "    def held(self, other):\n        return other._lock, other._change\n",
    })  # fmt: skip
    assert private_members(root) == [
        ("minidns.store.follow", 5, "other._change", "minidns.store.writer"),
        ("minidns.store.recordsets", 2, "store._change", "minidns.store.writer"),
        ("minidns.store.recordsets", 3, "engine._lock", "minidns.store.follow, minidns.store.writer"),
    ]


def test_the_checker_sees_a_cycle_through_a_function_local_import(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "", "store/__init__.py": "", "wire.py": "",
        "store/writer.py": "from .. import wire\ndef sign():\n    from .signing import sign_zone\n",
        "store/signing.py": "from minidns.store.writer import Edit\n",
        "store/heartbeat.py": "from . import writer\n",
    })  # fmt: skip
    graph = import_graph(root)
    assert graph["minidns.store.writer"] == {"minidns.wire": 1, "minidns.store.signing": 3}
    assert graph["minidns.store.heartbeat"] == {"minidns.store.writer": 1}
    assert cycles(graph) == [["minidns.store.signing", "minidns.store.writer"]]
    assert describe_cycle(cycles(graph)[0], graph) == (
        "cycle among minidns.store.signing, minidns.store.writer: minidns.store.signing:1 imports "
        "minidns.store.writer; minidns.store.writer:3 imports minidns.store.signing")
