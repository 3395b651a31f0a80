"""Job stores: the protocol and its implementations."""

from .base import Claim, JobStore, LeaseLost, open_store
from .sqlite import SQLiteStore

__all__ = ["Claim", "JobStore", "LeaseLost", "SQLiteStore", "open_store"]
