"""Engines sharing one data folder: each works in its own locked slot of DATA_DIR/tmp, so one engine's
start-up sweep never removes another's files in flight (two engines in one process, and in two), a slot
whose holder died (kill -9) is taken and swept by the next engine, and job errors show no local path."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from tornado_engine import Engine, JobRequest, Status
from tornado_engine.attempt import Attempt, StageRun
from tornado_engine.errors import DownloadError, StoreError
from tornado_engine.storage import StoredObject
from tornado_engine.store import JobStore, open_store
from tornado_engine.testing import MediaServer, MediaSet
from tornado_engine.testing.noop import noop_engine
from tornado_engine.workspace import holder_of

pytestmark = pytest.mark.integration

_CHILD = """
import asyncio, json, sys
from pathlib import Path
from tornado_engine.testing.noop import noop_engine
from tornado_engine.workspace import holder_of

async def main() -> None:
    data = Path(sys.argv[1])
    async with noop_engine(data_dir=data, store=f"sqlite:///{sys.argv[2]}", poll_interval=0.1) as engine:
        slot = engine._runtime.workspace.path
        print(json.dumps({"slot": slot.name, "swept": engine._swept,
                          "holder0": holder_of(data / "tmp" / "engine-0.lock")}), flush=True)
        (slot / "job-of-the-child").mkdir()
        (slot / "job-of-the-child" / "media.part").write_bytes(b"x" * 1000)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def _until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


async def test_a_second_engine_in_the_process_leaves_the_first_ones_download_alone(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    data = tmp_path / "shared"
    slow = media_server.url(f"slow/{media_set.progressive_mp4}")
    async with Engine.open(data_dir=data, store=f"sqlite:///{tmp_path / 'a.db'}", poll_interval=0.1) as first:
        job_id = (await first.create_job(JobRequest(url=slow))).job_id
        folder = data / "tmp" / "engine-0" / job_id
        await _until(lambda: _has_files(folder))
        other_store = f"sqlite:///{tmp_path / 'b.db'}"
        async with Engine.open(data_dir=data, store=other_store, poll_interval=0.1) as second:
            # its start-up sweep ran while the first engine's download was in flight
            assert (await first.get_job(job_id)).status is Status.PROCESSING
            assert second._swept == (0, 0) and _has_files(folder)
            other = await second.create_job(JobRequest(url=media_server.url(media_set.progressive_mp4)))
            assert (await second.wait(other.job_id, timeout=60)).status is Status.COMPLETED
        job = await first.wait(job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.to_api()


async def test_engines_in_two_processes_and_a_killed_holder(tmp_path: Path) -> None:
    data = tmp_path / "shared"
    async with noop_engine(data_dir=data, store=f"sqlite:///{tmp_path / 'a.db'}", poll_interval=0.1) as mine:
        ours = data / "tmp" / "engine-0" / "job-of-ours"
        ours.mkdir()
        (ours / "media.part").write_bytes(b"y" * 1000)
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, str(data), str(tmp_path / "c.db"), stdout=asyncio.subprocess.PIPE
        )
        try:
            assert child.stdout is not None
            said = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
            assert said["slot"] == "engine-1" and said["swept"] == [0, 0]
            assert said["holder0"].startswith(f"pid {os.getpid()} on ")  # who holds the first slot
            assert (ours / "media.part").is_file()  # the other process's sweep left our files alone
            await _until(lambda: _has_files(data / "tmp" / "engine-1" / "job-of-the-child"))
            assert holder_of(data / "tmp" / "engine-1.lock").startswith(f"pid {child.pid} on ")
            os.kill(child.pid, signal.SIGKILL)
        finally:
            with_code = await child.wait()
        assert with_code == -signal.SIGKILL
        # the kernel dropped the dead engine's lock: the next engine takes its slot and sweeps it
        store = f"sqlite:///{tmp_path / 'b.db'}"
        async with noop_engine(data_dir=data, store=store, poll_interval=0.1) as after:
            assert after._runtime.workspace is not None
            assert after._runtime.workspace.path.name == "engine-1" and after._swept == (1, 0)
            assert not (data / "tmp" / "engine-1" / "job-of-the-child").exists()
            job = await mine.create_job(JobRequest(url="http://127.0.0.1:9/noop"))
            assert (await mine.wait(job.job_id, timeout=30)).status is Status.COMPLETED
        assert (ours / "media.part").is_file()


async def _fail_with_paths(run: StageRun) -> StoredObject:
    folder = cast(Attempt, run).folder
    data = folder.parent.parent.parent
    raise DownloadError(
        f"Unable to rename file: [Errno 2] No such file or directory: '{folder}/media.mp4.mp4.part'"
        f" (cache in {data}/cache)",
        kind="http_error",
    )


async def test_job_errors_show_no_local_path(tmp_path: Path) -> None:
    data = tmp_path / "engine"
    async with noop_engine(data_dir=data, stages=_fail_with_paths, poll_interval=0.1) as engine:
        created = await engine.create_job(JobRequest(url="http://127.0.0.1:9/fails"))
        job = await engine.wait(created.job_id, timeout=30)
    assert job.status is Status.FAILED
    assert job.error == (
        "Unable to rename file: [Errno 2] No such file or directory: 'media.mp4.mp4.part'"
        " (cache in DATA_DIR/cache)"
    )
    assert str(tmp_path) not in json.dumps(job.to_api())


class _StoreGoneAtStart:
    """A real store whose first re-queue (the scheduler's, at start, after the slot is taken) fails."""

    def __init__(self, inner: JobStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def requeue_expired(self, is_dead_owner: Callable[[str], bool]) -> list[str]:
        raise StoreError("injected fault: the store went away")


async def test_an_engine_that_fails_to_start_gives_its_slot_back(tmp_path: Path) -> None:
    data, url = tmp_path / "shared", f"sqlite:///{tmp_path / 'jobs.db'}"
    broken = cast(JobStore, _StoreGoneAtStart(open_store(url)))
    with pytest.raises(StoreError):
        async with noop_engine(data_dir=data, store=broken):
            pass
    async with noop_engine(data_dir=data, store=url) as engine:
        assert engine._runtime.workspace is not None
        assert engine._runtime.workspace.path.name == "engine-0"
