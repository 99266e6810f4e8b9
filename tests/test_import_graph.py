"""The shape of the house: no import circles in src/deepfit (every import counted, those inside
functions and under TYPE_CHECKING too), no module over MAX_LINES, and no branch on a built-in
modality's name outside deepfit/modalities/ (the rest asks the Modality). Read with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "deepfit"
MAX_LINES = 400
BUILTIN_MODALITIES = {"tabular", "image", "sequence"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module → the deepfit modules it imports (`from a.b import c` counts a.b.c when c is a
    module, else a.b). Importing a.b.c also runs the packages above it (a, a.b), so those count
    too, except the packages the importing module itself lives in (they have run already)."""
    mods = modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = resolve(name)
                if target and target != module and target.split(".")[0] == "deepfit":
                    graph[module].add(target)
                    graph[module].update(p for p in _packages_above(target, mods)
                                         if not module.startswith(p + ".") and p != module)
    return graph


def _packages_above(module: str, mods: dict[str, Path]) -> list[str]:
    """The packages whose __init__ runs before `module` (deepfit itself left out: every module
    runs it first)."""
    parts = module.split(".")
    return [p for p in (".".join(parts[:i]) for i in range(2, len(parts))) if p in mods]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_reader_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_src_has_no_import_circles():
    graph = import_graph()
    assert len(graph) > 50 and graph["deepfit.lifecycle.train"]  # the graph was read
    assert cycles(graph) == []


def test_no_module_is_over_the_size_limit():
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_nothing_outside_the_modality_folders_branches_on_a_modality_name():
    branches = []
    for module, path in modules().items():
        if module.startswith("deepfit.modalities"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            constants = {c.value for o in operands for c in ast.walk(o)
                         if isinstance(c, ast.Constant) and isinstance(c.value, str)}
            if constants & BUILTIN_MODALITIES:
                branches.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert branches == []
