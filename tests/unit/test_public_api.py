"""Each module's ``__all__`` lists exactly its public names (read with ``ast``), and the package's
``__all__`` is exactly what ``import tornado_engine`` exposes."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

import tornado_engine

_ROOT = Path(tornado_engine.__file__).parent
_MODULES = sorted(_ROOT.rglob("*.py"))


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements run at import, looking inside top-level ``if`` and ``try`` blocks."""
    found: list[ast.stmt] = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.If):
            found += _top_level(node.body) + _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            found += _top_level(node.body) + _top_level(node.orelse) + _top_level(node.finalbody)
            found += [n for handler in node.handlers for n in _top_level(handler.body)]
    return found


def _bound(target: ast.expr) -> list[str]:
    """The names an assignment binds: ``x`` and ``a, b``, not ``obj.attr`` or ``d[key]``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _bound(element)]
    return []


def _names(tree: ast.Module) -> tuple[set[str], set[str], list[str] | None]:
    """(names the module defines, names it imports, its ``__all__`` or None)."""
    defined: set[str] = set()
    imported: set[str] = set()
    exported: list[str] | None = None
    for node in _top_level(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {name for t in targets for name in _bound(t)}
            if "__all__" in names and node.value is not None:
                exported = list(ast.literal_eval(node.value))
            defined |= names
    return defined, imported, exported


@pytest.mark.parametrize("path", _MODULES, ids=[str(p.relative_to(_ROOT)) for p in _MODULES])
def test_all_lists_exactly_the_public_names(path: Path) -> None:
    defined, imported, exported = _names(ast.parse(path.read_text(), str(path)))
    public = {name for name in defined if not name.startswith("_")}
    if exported is None:
        assert not public, f"no __all__, but public names: {sorted(public)}"
        return
    assert not public - set(exported), (
        f"public but not in __all__ (make them _private?): {sorted(public - set(exported))}"
    )
    assert not set(exported) - defined - imported, (
        f"in __all__ but not there: {sorted(set(exported) - defined - imported)}"
    )
    assert len(exported) == len(set(exported)), "a name is listed twice"


def test_the_package_exposes_exactly_its_all() -> None:
    exposed = {
        name
        for name, value in vars(tornado_engine).items()
        # submodules appear as attributes once imported; they are reached as tornado_engine.x, not exports
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(tornado_engine.__all__) == sorted(exposed)
    assert tornado_engine.__all__ == sorted(tornado_engine.__all__)
