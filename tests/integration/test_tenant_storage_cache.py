"""A tenant's storage is read from the store at most once a second per process for its jobs' attempts; a
change made in the same process applies at once, one made by another process once the entry ages."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tornado_engine import tenant_storage
from tornado_engine.models import Job, JobRequest
from tornado_engine.safety import NetworkPolicy
from tornado_engine.storage import StorageTarget
from tornado_engine.store.sqlite import SQLiteStore
from tornado_engine.tenant_storage import TenantStorage

URL = "https://media.example/v.mp4"


class _CountingStore(SQLiteStore):
    """A real SQLite store that counts its tenant reads."""

    reads = 0

    async def get_tenant(self, owner: str) -> dict[str, Any] | None:
        self.reads += 1
        return await super().get_tenant(owner)


def _job(owner: str) -> Job:
    return Job(id=f"job-{owner}", url=URL, request=JobRequest(url=URL), owner=owner)


async def test_tenant_storage_reads_are_cached_and_invalidated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = _CountingStore(tmp_path / "jobs.db"), _CountingStore(tmp_path / "jobs.db")
    await here.open()
    await there.open()
    default = StorageTarget(f"file://{tmp_path / 'default'}")
    with ThreadPoolExecutor(2) as pool:
        mine = TenantStorage(here, default, NetworkPolicy(), pool, tmp_path)
        theirs = TenantStorage(there, default, NetworkPolicy(), pool, tmp_path)  # another process
        try:
            for _ in range(5):
                assert await mine.for_job(_job("alice")) is default
                assert await theirs.for_job(_job("alice")) is default
            assert (here.reads, there.reads) == (1, 1)  # one read each for five attempts

            await mine.configure("alice", {"kind": "local", "path": str(tmp_path / "alice")}, verify=False)
            target = await mine.for_job(_job("alice"))
            assert target is not default and target.local_root == tmp_path / "alice"  # at once, here
            assert await mine.for_job(_job("bob")) is default  # another tenant's entry is its own

            monkeypatch.setattr(tenant_storage, "FRESH_SECONDS", 0.0)  # the other process's entry aged
            seen = await theirs.for_job(_job("alice"))
            assert seen.local_root == tmp_path / "alice"
            assert await theirs.remove("alice") is True
            assert await theirs.for_job(_job("alice")) is default
            assert await mine.for_job(_job("alice")) is default
        finally:
            await here.close()
            await there.close()
