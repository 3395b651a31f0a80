"""``open_store``: a store for a URL. Apart from the protocol (base.py), so that the stores importing the
protocol and the protocol's users importing the factory make no circle."""

from __future__ import annotations

from ..errors import StoreError
from .base import JobStore
from .sqlite import SQLiteStore

__all__ = ["open_store"]


def open_store(url: str, *, create: bool = True) -> JobStore:
    """A store for a URL: ``sqlite:///path/jobs.db`` (or a plain path), ``postgresql://...``.

    ``create=False`` (read-only commands): a SQLite file that does not exist, or a PostgreSQL database
    without the job tables, is a StoreError, not a new empty store."""
    if url.startswith("sqlite:///"):
        # as in SQLAlchemy: sqlite:///rel/jobs.db is relative, sqlite:////abs/jobs.db absolute
        return SQLiteStore(url.removeprefix("sqlite:///"), create=create)
    if url.startswith(("postgresql://", "postgres://")):
        try:  # psycopg is an optional extra: import it only for a PostgreSQL URL
            from .postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                f"a PostgreSQL store needs {exc.name or 'psycopg'}: pip install 'tornado-engine[postgres]'"
            ) from None
        return PostgresStore(url, create=create)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise StoreError(f"unsupported store URL scheme {scheme!r} (supported: sqlite, postgresql)")
    return SQLiteStore(url, create=create)
