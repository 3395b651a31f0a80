"""Integration fixtures: an engine on the embedded default, and the storage servers (storage_fixtures.py)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from storage_fixtures import (  # noqa: F401 - fixtures are found by name
    azure_endpoint,
    backend,
    gcs_endpoint,
    oss_server,
    s3_endpoint,
    s3_iam,
    service_account,
    storage_workdir,
)

from tornado_engine import Engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """An engine on a fresh data folder (SQLite + local storage), polling fast for short tests."""
    async with Engine.open(data_dir=tmp_path / "engine", concurrency=4, poll_interval=0.1) as eng:
        yield eng
