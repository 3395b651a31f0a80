"""The PostgreSQL schema, versioned SQL in ``sql/postgres/``: ``NNNN_name.sql`` migrations, recorded in
``tornado_schema_migrations``, and ``schema.sql`` (what they all add up to) for a fresh database."""

from __future__ import annotations

import logging

from ..errors import StoreError
from .pg_pool import Conn
from .sqlfiles import Migration, sql_dir
from .sqlfiles import load_migrations as _load

__all__ = ["Migration", "load_migrations", "migrate"]

_log = logging.getLogger("tornado_engine.store.postgres")

_LOCK_KEY = 0x746F726E61646F  # "tornado": the advisory lock that serializes schema changes
_MIGRATIONS_TABLE = b"""
CREATE TABLE IF NOT EXISTS tornado_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def load_migrations() -> list[Migration]:
    """``sql/postgres/NNNN_name.sql``, in version order."""
    return _load("postgres")


async def _applied(conn: Conn, newest: int) -> set[int]:
    cur = await conn.execute(b"SELECT version FROM tornado_schema_migrations")
    applied = {row[0] for row in await cur.fetchall()}
    if applied and max(applied) > newest:
        raise StoreError(
            f"the PostgreSQL schema is at version {max(applied)}, newer than this tornado-engine "
            f"knows ({newest}); upgrade tornado-engine"
        )
    return applied


async def migrate(conn: Conn, *, upto: int | None = None, create: bool = True) -> list[int]:
    """Bring the schema up to date in one transaction, under an advisory lock so that workers starting
    together apply each migration once. A fresh database gets ``schema.sql`` (what all migrations add
    up to) unless ``upto`` asks for the migrations themselves, as the schema test does. ``create=False``:
    a database without the job tables is refused (the transaction rolled back: nothing is left in it)."""
    every = load_migrations()
    known = [m for m in every if upto is None or m.version <= upto]
    async with conn.transaction():
        await conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(_MIGRATIONS_TABLE)
        applied = await _applied(conn, max(m.version for m in every))
        cur = await conn.execute(b"SELECT to_regclass('tornado_jobs') IS NULL")
        fresh = not applied and (await cur.fetchone() or (False,))[0]
        if fresh and not create:
            raise StoreError(
                "no job store in this PostgreSQL database (no tornado tables), and this command does not "
                "create one: give the database the workers use"
            )
        todo = [m for m in known if m.version not in applied]
        if fresh and upto is None:
            await conn.execute(
                sql_dir("postgres").joinpath("schema.sql").read_text(encoding="utf-8").encode()
            )
        else:
            for migration in todo:
                await conn.execute(migration.sql.encode())
        for migration in todo:
            await conn.execute(
                b"INSERT INTO tornado_schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
    if todo:
        _log.info("PostgreSQL schema: applied %s", ", ".join(f"{m.version:04d}_{m.name}" for m in todo))
    return [m.version for m in todo]
