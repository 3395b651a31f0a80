"""The queue-aware side of the command line: which store a command uses when ``--store`` is not given,
``jobs wait`` (follow a job that runs anywhere, through the store) and what a command that leaves a job
in the queue says about who runs it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from .cli_progress import transfer_detail
from .models import Job
from .states import Status
from .tenant_view import TenantView

__all__ = ["queued_note", "say", "store_url", "wait_job"]

# DATABASE_URL is often another program's database: taken only when it names a store this engine opens
_STORE_SCHEMES = ("postgresql://", "postgres://", "sqlite:///")


def store_url(given: str | None) -> str | None:
    """``--store``, else ``$TORNADO_STORE``, else ``$DATABASE_URL`` (a PostgreSQL or SQLite URL), else
    None: the data dir's own ``jobs.db``."""
    if given:
        return given
    if named := os.environ.get("TORNADO_STORE", "").strip():
        return named
    database = os.environ.get("DATABASE_URL", "").strip()
    return database if database.startswith(_STORE_SCHEMES) else None


def say(message: str) -> None:
    """A line for the person at the terminal (stderr: stdout carries the JSON)."""
    print(f"tornado-engine: {message}", file=sys.stderr, flush=True)


def queued_note(job_ids: Sequence[str]) -> str:
    """What runs a job left in the queue, and how to follow it. The store is not named: its URL may hold
    a password."""
    what = f"as {job_ids[0]}" if len(job_ids) == 1 else f"{len(job_ids)} jobs"
    return (
        f"queued {what}; a worker on this store will run it (python -m tornado_engine worker, with the "
        f"same --store); follow it with: python -m tornado_engine jobs wait {job_ids[0]}"
    )


def _state(job: Job) -> str:
    if job.status is Status.PENDING:
        return "Pending (waiting for a worker on this store)"
    if job.status is Status.PROCESSING:
        if job.live is not None and job.live.step is job.step:  # its worker's latest stored progress
            return f"{job.step.value} {transfer_detail(job.live).strip()}"
        return f"{job.step.value} {job.progress:.0f}%"
    return job.status.value + (f": {job.error}" if job.error else "")


async def wait_job(engine: TenantView, job_id: str, *, quiet: bool, interval: float = 0.5) -> Job:
    """Read ``job_id`` from the store until it has ended, saying each new step on stderr (unless
    ``quiet``). Whoever runs it (a worker, another ``run``), its record is where its progress is."""
    shown = ""
    while True:
        job = await engine.get_job(job_id)
        if not quiet and (state := _state(job)) != shown:
            say(f"job {job_id}: {state}")
            shown = state
        if job.is_terminal:
            return job
        await asyncio.sleep(interval)
