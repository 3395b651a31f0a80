"""Each module's ``__all__`` lists exactly its public names (read with ``ast``), and the package's
``__all__`` is exactly what ``import tornado_engine`` exposes; the public API is typed and documented
(``Engine.open``'s keywords, docstrings, ``JobRequest``'s JSON Schema, typed ``to_api()`` results)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import types
from pathlib import Path
from typing import Any

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


# -- the typed, documented surface (issue 14 point 15) ------------------------------------------------------


def _keywords(function: Any) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values() if p.name not in ("self", "cls")]


def test_engine_open_takes_exactly_the_engines_keywords() -> None:
    from tornado_engine import Engine

    init = inspect.signature(Engine.__init__).parameters
    assert all(p.kind is p.KEYWORD_ONLY for name, p in init.items() if name != "self")
    assert _keywords(Engine.open) == _keywords(Engine.__init__)  # declared once, on __init__


def test_every_engine_keyword_is_documented_on_the_class() -> None:
    from tornado_engine import Engine

    doc = Engine.__doc__ or ""
    missing = [name for name in _keywords(Engine.__init__) if f"\n        {name}: " not in doc]
    assert not missing, f"Engine keywords without a line in the class docstring: {missing}"


def test_public_methods_document_every_parameter() -> None:
    from tornado_engine import Engine
    from tornado_engine.tenant_view import TenantView

    undocumented: list[str] = []
    for cls in (TenantView, Engine):
        for name, member in vars(cls).items():
            if name.startswith("_") or name == "open":  # open's keywords are the class's (tested above)
                continue
            function = member.fget if isinstance(member, property) else getattr(cls, name)
            doc = function.__doc__ or ""
            if not doc.strip():
                undocumented.append(f"{cls.__name__}.{name}")
            params = [] if isinstance(member, property) else _keywords(function)
            undocumented += [f"{cls.__name__}.{name}({p})" for p in params if not re.search(rf"\b{p}\b", doc)]
    assert not undocumented, f"not in the docstring: {undocumented}"


def test_job_request_schema_describes_every_field() -> None:
    from tornado_engine import JobRequest

    properties = JobRequest.model_json_schema()["properties"]
    assert [name for name, schema in properties.items() if not schema.get("description")] == []
    assert properties["url"]["format"] == "uri"
    offered = properties["max_resolution"]["enum"]
    assert {"best", "720", "720p", "2160p"} <= set(offered)
    for value in offered:  # every value the schema offers is accepted
        JobRequest(url="https://example.com/v.mp4", max_resolution=value)


def test_to_api_results_are_typed_by_their_typeddicts() -> None:
    from tornado_engine import Event, Job, JobRequest, MediaMetadata, Status, Step
    from tornado_engine.api_types import EventAPI, JobAPI, LiveProgressAPI, MediaMetadataAPI
    from tornado_engine.models import _BASE_FIELDS, _FINISHED_FIELDS
    from tornado_engine.progress import LiveProgress

    beyond = ("thumbnail_url", "progress")  # progress: a running job's, from its worker (Job.live)
    assert set(_BASE_FIELDS + _FINISHED_FIELDS + beyond) == set(JobAPI.__annotations__)
    done = Job(id="j", url="https://example.com/v.mp4", request=JobRequest(url="https://example.com/v.mp4"))
    assert JobAPI.__required_keys__ <= set(done.to_api()) <= set(JobAPI.__annotations__)
    done.status, done.step, done.finished_at, done.file_size = Status.COMPLETED, Step.FINISHED, 1, 2
    assert set(done.to_api()) <= set(JobAPI.__annotations__)
    running = Job(id="r", url=done.url, request=done.request, status=Status.PROCESSING, step=Step.DOWNLOADING)
    running.live = LiveProgress(Step.DOWNLOADING, 12.5, 50.0, bytes_done=10, updated_at=1)
    progress = running.to_api()["progress"]
    assert set(progress) <= set(LiveProgressAPI.__annotations__) and LiveProgressAPI.__required_keys__ <= set(
        progress
    )
    shown = {f.name for f in dataclasses.fields(Event) if f.repr}
    assert shown == set(EventAPI.__annotations__)
    event = Event(job_id="j", status=Status.PROCESSING, step=Step.DOWNLOADING, percent=1.0, bytes_done=3)
    assert EventAPI.__required_keys__ <= set(event.to_api()) <= shown
    assert set(MediaMetadata.model_fields) == set(MediaMetadataAPI.__annotations__)
    assert MediaMetadataAPI.__required_keys__ <= set(MediaMetadata().to_api())


def test_storage_configs_and_results_are_exported_at_the_top() -> None:
    from tornado_engine import storage

    for name in ("S3Config", "AzureBlobConfig", "GCSConfig", "OSSConfig", "LocalStorageConfig"):
        assert getattr(tornado_engine, name) is getattr(storage, name)
    assert {"Job", "Event", "MediaMetadata", "JobCreated", "BatchCreated"} <= set(tornado_engine.__all__)
