"""Every exception tornado_engine exposes is in the one tree of ``tornado_engine.errors``, drawn in its
docstring. A module (or a private module of a package) may keep a private exception as an internal signal
that never leaves it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import tornado_engine
from tornado_engine import errors


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(tornado_engine.__path__, "tornado_engine."):
        if info.name == "tornado_engine.__main__":  # runs the CLI when imported
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return found


def test_errors_module_draws_its_whole_tree() -> None:
    tree = [v for v in vars(errors).values() if inspect.isclass(v) and issubclass(v, BaseException)]
    assert tree and all(issubclass(cls, errors.TornadoError) for cls in tree)
    drawn = errors.__doc__ or ""
    assert [cls.__name__ for cls in tree if not re.search(rf"(─ |^\s*){cls.__name__}\b", drawn, re.M)] == []
    assert {cls.__name__ for cls in tree} <= set(errors.__all__)


def test_no_public_exception_outside_the_tree() -> None:
    outside = [
        path
        for path, cls in _defined_exceptions().items()
        if not path.startswith("tornado_engine.errors.")
        and not any(part.startswith("_") for part in path.split("."))
    ]
    assert not outside, (
        f"exceptions outside tornado_engine.errors (move them there, or make them private): {outside}"
    )


def test_the_package_exports_the_whole_tree_and_no_other_exception() -> None:
    exported = [getattr(tornado_engine, name) for name in tornado_engine.__all__]
    exceptions = [v for v in exported if inspect.isclass(v) and issubclass(v, BaseException)]
    assert all(issubclass(cls, errors.TornadoError) for cls in exceptions)
    tree = [getattr(errors, name) for name in errors.__all__]
    assert [cls for cls in tree if inspect.isclass(cls) and cls not in exceptions] == []
