"""No-op stages: measure (or test) the engine itself, with the media work taken out.

    from tornado_engine.testing.noop import NoopStages, noop_engine

    async with noop_engine(data_dir=tmp, concurrency=500) as engine:     # or Engine(stages=NoopStages())
        created = await engine.create_job(JobRequest(url="http://127.0.0.1:9/noop"))
        job = await engine.wait(created.job_id)                          # Completed, s3_url noop://...

Every job still goes Pending -> Processing (Downloading, Muxing, Uploading) -> Completed through the
scheduler, its pools, leases and heartbeats, with the same store writes a real job makes (claim, each
stage's step, the resolver's space reservation, the fenced terminal write with its webhook events) and the
same progress events. Only the work inside the stages is skipped: nothing is resolved, downloaded,
converted or stored, no network is touched and no ffmpeg runs. ``stage_seconds`` stands in for work that
waits (I/O) without using CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from ..attempt import StageRun
from ..engine import Engine
from ..ffmpeg import FFmpegPaths
from ..states import Step
from ..storage import StoredObject

__all__ = ["NoopStages", "StageRun", "noop_engine"]


@dataclass
class NoopStages:
    """A ``StageRunner`` that does no work. ``calls`` counts the attempts it ran."""

    stage_seconds: float = 0.0  # asyncio.sleep per stage (download, mux, upload): waiting, not CPU
    file_size: int = 0  # what the job reports as downloaded and stored
    calls: int = 0

    async def _work(self, run: StageRun) -> None:
        if self.stage_seconds > 0:
            await asyncio.sleep(self.stage_seconds)
        run.check_cancel()

    async def __call__(self, run: StageRun) -> StoredObject:
        self.calls += 1
        job = run.job
        job.title = job.title or "noop"
        await run.save()  # where a real job writes the resolver's space reservation
        await self._work(run)
        job.download_strategy = "noop"
        job.download_duration_ms = int(self.stage_seconds * 1000)
        run.emit(Step.DOWNLOADING, 100.0, bytes_done=self.file_size, bytes_total=self.file_size)
        await run.enter(Step.MUXING)
        await self._work(run)
        job.mux_duration_ms = int(self.stage_seconds * 1000)
        await run.enter(Step.UPLOADING)
        await self._work(run)
        key = f"noop/{job.id}"
        return StoredObject(key=key, url=f"noop://{key}", size=self.file_size)


def noop_engine(**options: Any) -> contextlib.AbstractAsyncContextManager[Engine]:
    """``Engine.open(**options)`` with :class:`NoopStages` (unless ``stages`` is given).

    ffmpeg is neither looked for nor run, and ``create_job`` does not probe URLs for playlists.
    """
    options.setdefault("stages", NoopStages())
    options.setdefault("ffmpeg", FFmpegPaths("ffmpeg", "ffprobe"))  # never run by no-op stages
    options.setdefault("expand_playlists", False)
    return Engine.open(**options)
