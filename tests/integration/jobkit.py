"""Helpers shared by the integration tests that run whole jobs (``from jobkit import run_job``)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from tornado_engine import Engine, JobCreated, JobRequest
from tornado_engine.models import Job


async def run_job(engine: Engine, timeout: float = 120, **fields: object) -> Job:
    """Submit one job and wait for its end."""
    created = await engine.create_job(JobRequest(**fields))
    assert isinstance(created, JobCreated), "a single media URL was expected, not a playlist"
    return await engine.wait(created.job_id, timeout=timeout)


def local_path(url: str | None) -> Path:
    """The file behind a local storage ``file://`` URL."""
    assert url and url.startswith("file://"), url
    return Path(urllib.parse.unquote(url.removeprefix("file://")))
