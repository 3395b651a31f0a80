"""The SQL of each dialect, kept in files beside the code (package data): ``sql/<dialect>/queries.sql``
holds named queries (procrastinate's layout), ``sql/<dialect>/NNNN_name.sql`` the schema's migrations.

Queries are read once, when a store module is imported. In a query, ``{terminal}`` stands for the
terminal statuses (:data:`~tornado_engine.store.rules.TERMINAL_SQL`), ``{open}`` for the others
(``OPEN_SQL``), so that rule is written once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from ..errors import StoreError
from .rules import OPEN_SQL, TERMINAL_SQL

__all__ = ["Migration", "load_migrations", "load_queries", "sql_dir"]

_NAME = re.compile(r"^-- name: (\w+)[ \t]*$", re.MULTILINE)
_MIGRATION_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


def sql_dir(dialect: str) -> Traversable:
    return resources.files(__package__).joinpath("sql", dialect)


def _read(dialect: str, name: str) -> str:
    try:
        return sql_dir(dialect).joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:  # a packaging slip, not a database problem: say what is missing
        raise StoreError(f"the {dialect} SQL files are missing from this installation ({name})") from None


def load_queries(dialect: str) -> dict[str, str]:
    """``-- name: xyz`` blocks of ``sql/<dialect>/queries.sql``: {name: statement}. Comment lines right
    under a name describe the query and are kept with it."""
    parts = _NAME.split(_read(dialect, "queries.sql"))
    queries = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise StoreError(f"query {name!r} is defined twice in the {dialect} queries.sql")
        queries[name] = body.strip().replace("{terminal}", TERMINAL_SQL).replace("{open}", OPEN_SQL)
    return queries


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """``sql/<dialect>/NNNN_name.sql``, in version order."""
    folder = sql_dir(dialect)
    found = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        if match := _MIGRATION_NAME.match(entry.name):
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    if not found:
        raise StoreError(f"the {dialect} schema files are missing from this installation ({folder})")
    return sorted(found, key=lambda m: m.version)
