"""The no-op stages kit (tornado_engine.testing.noop): a fake attempt records what the stages do."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tornado_engine import JobRequest, Status
from tornado_engine.errors import JobCancelled
from tornado_engine.models import Job
from tornado_engine.states import Step
from tornado_engine.testing.noop import NoopStages, noop_engine


class FakeRun:
    """The part of the runner's attempt that stages use, recording each call."""

    def __init__(self, cancelled: bool = False) -> None:
        self.job = Job(id="j1", url="http://127.0.0.1:9/x", request=JobRequest(url="http://127.0.0.1:9/x"))
        self.calls: list[tuple[Any, ...]] = []
        self.cancelled = cancelled

    async def enter(self, step: Step) -> None:
        self.calls.append(("enter", step))

    async def save(self) -> None:
        self.calls.append(("save",))

    def emit(self, step: Step, stage_percent: float, **extra: Any) -> None:
        self.calls.append(("emit", step, stage_percent))

    def check_cancel(self) -> None:
        if self.cancelled:
            raise JobCancelled("cancelled")


def test_stages_make_the_writes_and_steps_of_a_real_job() -> None:
    stages = NoopStages(file_size=123)
    run = FakeRun()
    stored = asyncio.run(stages(run))
    assert run.calls == [
        ("save",),  # the resolver's space reservation
        ("emit", Step.DOWNLOADING, 100.0),
        ("enter", Step.MUXING),
        ("enter", Step.UPLOADING),
    ]
    assert (stored.key, stored.url, stored.size) == ("noop/j1", "noop://noop/j1", 123)
    assert run.job.download_strategy == "noop"
    assert run.job.title == "noop"
    assert stages.calls == 1


def test_stage_seconds_wait_without_cpu_and_cancel_is_honoured() -> None:
    stages = NoopStages(stage_seconds=0.05)
    loop = asyncio.new_event_loop()
    try:
        started = loop.time()
        loop.run_until_complete(stages(FakeRun()))
        assert loop.time() - started >= 0.15  # three stages
        with pytest.raises(JobCancelled):
            loop.run_until_complete(stages(FakeRun(cancelled=True)))
    finally:
        loop.close()
    assert stages.calls == 2


async def test_noop_engine_completes_jobs_without_media_work(tmp_path: Path) -> None:
    """Through the real scheduler and SQLite store: no network, no ffmpeg, nothing stored."""
    stages = NoopStages()
    async with noop_engine(data_dir=tmp_path, stages=stages, poll_interval=0.05) as engine:
        bulk = await engine.create_bulk([f"http://127.0.0.1:9/noop/{i}" for i in range(20)])
        jobs = [await engine.wait(job_id, timeout=30) for job_id in bulk.job_ids]
    assert {job.status for job in jobs} == {Status.COMPLETED}
    assert stages.calls == 20
    assert all(job.s3_url == f"noop://noop/{job.id}" and job.download_strategy == "noop" for job in jobs)
    assert all(job.queue_wait_ms is not None for job in jobs)
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").iterdir())
