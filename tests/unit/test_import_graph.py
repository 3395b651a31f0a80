"""No import circles inside tornado_engine, read from the source with ``ast`` (nothing is imported).

Every import counts: module level, inside functions, under ``if TYPE_CHECKING:``, relative or absolute.
``from . import x`` imports the submodule ``x`` when there is one, and importing a package (or anything
inside it) runs its ``__init__``, so that counts as an edge to the package too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tornado_engine

_ROOT = Path(tornado_engine.__file__).parent
_PACKAGE = "tornado_engine"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(_ROOT.rglob("*.py")):
        parts = list(path.relative_to(_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([_PACKAGE, *parts])] = path
    return found


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _targets(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The tornado_engine modules ``module`` imports, with the packages whose ``__init__`` that runs."""
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            # a submodule's name imports the submodule; any other name is read from ``base`` itself
            named.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    # importing a.b.c runs a/__init__ and a/b/__init__ too, except the packages holding ``module``:
    # those are already running when ``module`` runs
    own = {".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)}
    targets: set[str] = set()
    for name in named:
        parts = name.split(".")
        ancestors = {".".join(parts[:n]) for n in range(1, len(parts))} - own
        targets.update(m for m in (name, *ancestors) if m in known)
    return targets - {module}


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {module: _targets(module, path, known) for module, path in known.items()}


def _cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """Each circle (a strongly connected component of several modules, by Tarjan) and one cycle in it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(_one_cycle(graph, component), component) for component in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, staying inside the component."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = _graph()
    assert "tornado_engine.errors" in graph["tornado_engine.codecs"]  # relative, module level
    assert "tornado_engine.pipeline" in graph["tornado_engine.runner"]  # a package's __init__
    assert "tornado_engine" not in graph["tornado_engine.engine"]  # its own package is already running
    assert "tornado_engine.options" in graph["tornado_engine.models"]  # from . import options
    assert graph["tornado_engine.errors"] == set()


def test_cycle_finder_finds_a_planted_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _cycles(graph) == [(["a", "b", "c", "a"], {"a", "b", "c"})]


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(
        f"{' -> '.join(cycle)}  (circle of: {', '.join(sorted(members))})" for cycle, members in cycles
    )
