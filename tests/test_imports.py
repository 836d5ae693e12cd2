"""The architecture of ../shared/DESIGN.md, checked on the source: no import cycles
(not even under TYPE_CHECKING or inside a function), sub-packages import only in
the dependency direction, and the CLI and benchmarks use public names only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mascope"

# Layers, as DESIGN.md draws them: cli, tui -> evals -> diagnosis -> graphs ->
# agents -> models; jobs is used by diagnosis, evals and cli; integrations writes
# through traces; everything may use traces and taxonomy (except models, which
# knows nothing of traces), and traces and taxonomy use only each other.
ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "agents": {"models"},
    "graphs": {"agents", "models"},
    "jobs": set(),
    "diagnosis": {"graphs", "agents", "models", "jobs"},
    "evals": {"diagnosis", "graphs", "agents", "models", "jobs"},
    "integrations": set(),
    "tui": {"evals", "diagnosis", "graphs", "agents", "models"},
    "cli": {"tui", "evals", "diagnosis", "graphs", "agents", "models", "jobs", "integrations"},
    "examples": {"evals", "diagnosis", "graphs", "agents", "models", "jobs", "integrations"},
    "testing": {"models"},  # mascope/testing.py: the scripted model and a store for users' tests
    "traces": set(),
    "taxonomy": set(),
}
SHARED = {"traces", "taxonomy"}
"""Usable by every sub-package but `models`."""
FOUNDATION = {
    "errors",
    "settings",
    "_lazy",
    "_sync",
    "_files",
    "_safeload",
    "_style",
    "_vocabulary",
    "_version",
}
"""Top-level modules anything may import; they import only each other."""
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()
"""(importing module, imported module) pairs that break the direction today, each with why."""


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module the imported name is defined in
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` in `module` names."""
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package(module) else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def reexports(package: str) -> dict[str, tuple[str, str]]:
    """Names a package's `__init__` imports from elsewhere (eagerly, lazily under
    TYPE_CHECKING, or as a lazy `{name: "module:attr"}` table): name -> (module, name)."""
    out: dict[str, tuple[str, str]] = {}
    for node in ast.walk(parse(MODULES[package])):
        if isinstance(node, ast.ImportFrom):
            base = absolute(package, node)
            for alias in node.names:
                out[alias.asname or alias.name] = (base, alias.name)
    return out


_REEXPORTS = {name: reexports(name) for name in MODULES if is_package(name)}


def resolve(module: str, name: str, depth: int = 0) -> str:
    """The module that defines `name` when a module says `from module import name`."""
    if f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    origin = _REEXPORTS.get(module, {}).get(name)
    if origin is None or depth > 20 or not origin[0].startswith("mascope"):
        return module
    return resolve(origin[0], origin[1], depth + 1)


def imports_in(path: Path, source: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement in a file, wherever it is, with the module it names."""
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            yield node, absolute(source, node)


def edges(path: Path, source: str) -> Iterator[Import]:
    """What `source` depends on, each imported name followed to the module defining it."""
    for node, base in imports_in(path, source):
        if not base.startswith("mascope"):
            continue
        if isinstance(node, ast.Import):
            parts = base.split(".")
            while parts and ".".join(parts) not in MODULES:
                parts.pop()
            if parts:
                yield Import(source, ".".join(parts), node.lineno)
            continue
        for alias in node.names:
            yield Import(source, resolve(base, alias.name), node.lineno)


GRAPH: dict[str, set[str]] = {m: set() for m in MODULES}
EDGES: list[Import] = []
for _name, _path in MODULES.items():
    for _edge in edges(_path, _name):
        EDGES.append(_edge)
        if _edge.target != _name and _edge.target in MODULES:
            GRAPH[_name].add(_edge.target)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> str:
    """`mascope.graphs._team` -> graphs; `mascope.errors` -> errors; `mascope` -> mascope."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


# -- the checks themselves, on small examples -----------------------------------


def test_the_cycle_finder_finds_a_cycle_and_only_that() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_imports_are_followed_to_the_module_that_defines_the_name() -> None:
    # A package's re-export (lazy, under TYPE_CHECKING) is an import of the module behind it.
    assert resolve("mascope.graphs", "Team") == "mascope.graphs._team"
    assert resolve("mascope", "Team") == "mascope.graphs._team"
    assert resolve("mascope.diagnosis", "judge") == "mascope.diagnosis._judge"
    assert resolve("mascope.evals", "MAST_PUBLISHED") == "mascope.evals._eval_mast"
    assert resolve("mascope", "__version__") == "mascope._version"
    # Imports inside functions and under TYPE_CHECKING count.
    local = {e.target for e in EDGES if e.source == "mascope.diagnosis._attribution"}
    assert {"mascope.diagnosis._reroll", "mascope.graphs._team"} <= local


# -- the package ---------------------------------------------------------------------


def test_no_import_cycles() -> None:
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles (the shared part belongs in a third module):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_sub_packages_import_in_the_dependency_direction() -> None:
    wrong = []
    for e in EDGES:
        src, dst = layer(e.source), layer(e.target)
        if src == dst or dst in FOUNDATION or e.source == "mascope" or dst == "mascope":
            continue
        if src in FOUNDATION:
            wrong.append(e)
            continue
        allowed = ALLOWED[src] | (SHARED if src != "models" else set())
        if src in SHARED:
            allowed = SHARED
        if dst not in allowed and (e.source, e.target) not in KNOWN_EXCEPTIONS:
            wrong.append(e)
    assert not wrong, "imports against DESIGN.md's dependency direction:\n" + "\n".join(
        f"{MODULES[e.source].relative_to(ROOT)}:{e.line}: {e.source} imports {e.target}"
        for e in wrong
    )


def test_every_sub_package_has_a_layer() -> None:
    # A new sub-package must be placed in the layers above, not waved through.
    tops = {layer(m) for m in MODULES} - FOUNDATION - {"mascope"}
    assert tops <= set(ALLOWED), sorted(tops - set(ALLOWED))


def private_imports(path: Path, source: str, own: str | None) -> list[str]:
    """`from mascope.x._y import ...` (or `from mascope.x import _y`) where x is not `own`."""
    out = []
    for node, base in imports_in(path, source):
        names = [base]
        if isinstance(node, ast.ImportFrom):
            names += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
        for name in names:
            parts = name.split(".")
            if parts[0] != "mascope" or len(parts) < 2:
                continue
            if own is not None and (parts[1] == own or parts[1].startswith("_")):
                continue  # its own private modules, and the root's shared helpers (mascope._style)
            if any(p.startswith("_") for p in parts[1:]):
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    return out


@pytest.mark.parametrize("client", ["mascope/cli", "benchmarks"])
def test_the_cli_and_benchmarks_import_only_public_names(client: str) -> None:
    own = "cli" if client == "mascope/cli" else None
    found = []
    for path in sorted((ROOT / client).rglob("*.py")):
        source = module_name(path) if client.startswith("mascope") else path.stem
        found += private_imports(path, source, own)
    assert not found, "private modules imported (export a public name instead):\n" + "\n".join(
        found
    )
