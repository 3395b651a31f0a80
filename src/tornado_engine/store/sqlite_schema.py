"""The SQLite schema, versioned like PostgreSQL's: ``sql/sqlite/NNNN_name.sql`` applied in order, the
version kept in ``PRAGMA user_version``.

A store applies what is missing when it opens, in one transaction under the write lock
(``BEGIN IMMEDIATE``), so processes opening one file together apply each migration once: the others
wait for the lock, then find the version already there. A database of the releases before migrations
(version 0, tables made with CREATE IF NOT EXISTS) takes 0001 as a no-op and carries on from there. A
database newer than this code knows is refused rather than misread.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3

from ..errors import StoreError
from .sqlfiles import Migration, load_migrations

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

_log = logging.getLogger("tornado_engine.store.sqlite")

MIGRATIONS = load_migrations("sqlite")


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _statements(script: str) -> list[str]:
    """A script's statements, one by one (each ends its line): ``executescript`` would COMMIT the
    migration's transaction."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(ln.strip().startswith("--") for ln in pending.splitlines() if ln.strip()):
        raise StoreError(f"an SQLite migration ends in an unfinished statement: {pending.strip()[:60]!r}")
    return statements


def _refuse_newer(version: int, newest: int) -> None:
    if version > newest:
        raise StoreError(
            f"the SQLite store is at schema version {version}, newer than this tornado-engine knows "
            f"({newest}); upgrade tornado-engine"
        )


def migrate(conn: sqlite3.Connection, migrations: list[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations the database lacks (on a connection in autocommit mode); the versions
    applied. Nothing to do (the usual open) costs one read and no write lock."""
    newest = migrations[-1].version
    version = schema_version(conn)
    _refuse_newer(version, newest)
    if version == newest:
        return []
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)  # another process may have migrated while this one waited
        _refuse_newer(version, newest)
        todo = [m for m in migrations if m.version > version]
        for migration in todo:
            for statement in _statements(migration.sql):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(newest)}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    if todo:
        _log.info("SQLite schema: applied %s", ", ".join(f"{m.version:04d}_{m.name}" for m in todo))
    return [m.version for m in todo]
