"""What ``python -m tornado_engine top`` shows, built from one look at the store (:class:`TopRows`): the
queue by status, running jobs with their progress, the workers holding leases, the last minute's
throughput and failures, the most recent errors (pure: no I/O; the rendering is in :mod:`.top_render`).

Workers are known by the leases they hold: one with no job running is not in the store, so not here.
Times come from the workers' clocks (SQLite) or the database's (PostgreSQL); ages are taken against
``now_ms`` (the machine running ``top``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .models import Job
from .safety import strip_credentials
from .states import TERMINAL, Status
from .store.base import TopRows, WorkerRow

__all__ = ["WINDOW_MS", "RecentError", "RunningJob", "TopSnapshot", "WorkerInfo", "build_snapshot"]

WINDOW_MS = 60_000  # "the last minute"


@dataclass(frozen=True)
class RunningJob:
    id: str
    worker: str | None
    step: str
    percent: float  # the job's 0-100 across its stages
    stage_percent: float | None
    bytes_done: int | None
    bytes_total: int | None
    speed_bps: float | None
    eta_seconds: float | None  # the stage's own estimate, else one from the job's pace so far
    running_seconds: float | None
    progress_age_seconds: float | None  # since its worker last stored its progress
    title: str


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    alive: bool  # its newest lease has not expired
    jobs: int
    job_ids: list[str]  # of the running jobs listed
    heartbeat_age_seconds: float | None
    lease_left_seconds: float | None


@dataclass(frozen=True)
class RecentError:
    id: str
    status: str
    error_type: str | None
    error: str | None
    finished_at: int | None
    title: str


@dataclass(frozen=True)
class TopSnapshot:
    taken_at: int  # epoch ms
    queue: dict[str, int]  # every status, 0 included
    running: list[RunningJob]
    workers: list[WorkerInfo]
    last_minute: dict[str, int]  # finished, completed, failed, cancelled, bytes (stored by the Completed)
    errors: list[RecentError]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _seconds(later: int | None, earlier: int | None) -> float | None:
    return round((later - earlier) / 1000, 1) if later is not None and earlier is not None else None


def _title(job: Job) -> str:
    return job.title or strip_credentials(job.url)


def _running(job: Job, worker: str | None, now_ms: int) -> RunningJob:
    live = job.live
    running = _seconds(now_ms, job.started_at)
    percent = live.percent if live is not None else job.progress
    eta = live.eta_seconds if live is not None else None
    if eta is None and running and 0 < percent < 100:  # the job's pace so far
        eta = round(running * (100 - percent) / percent, 1)
    return RunningJob(
        id=job.id, worker=worker, step=job.step.value, percent=percent,
        stage_percent=live.stage_percent if live else None, bytes_done=live.bytes_done if live else None,
        bytes_total=live.bytes_total if live else None, speed_bps=live.speed_bps if live else None,
        eta_seconds=eta, running_seconds=running,
        progress_age_seconds=_seconds(now_ms, live.updated_at) if live else None, title=_title(job),
    )  # fmt: skip


def _worker(row: WorkerRow, running: list[RunningJob], now_ms: int) -> WorkerInfo:
    return WorkerInfo(
        id=row.worker_id,
        alive=row.lease_expires_at is not None and row.lease_expires_at > now_ms,
        jobs=row.jobs,
        job_ids=[job.id for job in running if job.worker == row.worker_id],
        heartbeat_age_seconds=_seconds(now_ms, row.heartbeat_at),
        lease_left_seconds=_seconds(row.lease_expires_at, now_ms),
    )


def _last_minute(finished: dict[str, tuple[int, int]]) -> dict[str, int]:
    count = {status: n for status, (n, _) in finished.items()}
    completed, cancelled = count.get(Status.COMPLETED.value, 0), count.get(Status.CANCELLED.value, 0)
    total = sum(count.values())
    return {"finished": total, "completed": completed, "failed": total - completed - cancelled,
            "cancelled": cancelled, "bytes": sum(size for _, size in finished.values())}  # fmt: skip


def build_snapshot(rows: TopRows, now_ms: int) -> TopSnapshot:
    """The view of ``rows`` at ``now_ms``."""
    running = [_running(job, worker, now_ms) for job, worker in rows.running]
    errors = [RecentError(job.id, job.status.value, job.error_type, job.error, job.finished_at, _title(job))
              for job in rows.errors if job.status in TERMINAL]  # fmt: skip
    return TopSnapshot(
        taken_at=now_ms,
        queue={status.value: rows.counts.get(status.value, 0) for status in Status},
        running=running,
        workers=[_worker(row, running, now_ms) for row in rows.workers],
        last_minute=_last_minute(rows.finished),
        errors=errors,
    )
