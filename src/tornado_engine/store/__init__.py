"""Job stores: the protocol (base), what every store decides (rules), SQLite and PostgreSQL, and
:func:`open_store` to pick one by URL."""

from .base import Claim, JobStore
from .factory import open_store
from .sqlite import SQLiteStore

__all__ = ["Claim", "JobStore", "SQLiteStore", "open_store"]
