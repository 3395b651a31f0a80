"""Result shapes of the lifecycle operations (pure): batches, bulk submits, renames, usage, quotas.

Each dumps (``model_dump(mode="json", exclude_none=True)``) to TornadoAPI's JSON for the same endpoint.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidRequest

__all__ = [
    "BatchCreated",
    "BatchState",
    "BatchStatus",
    "BulkCreated",
    "BulkError",
    "EpisodeRef",
    "Quota",
    "RenameResult",
    "Usage",
    "batch_status",
]

_GB = 1024**3


class EpisodeRef(BaseModel):
    job_id: str
    url: str
    title: str | None = None


class BatchCreated(BaseModel):
    """POST /jobs on a playlist, channel or show URL."""

    batch_id: str
    total_episodes: int
    episode_jobs: list[str]
    episodes: list[EpisodeRef] = Field(default_factory=list)
    paused: bool = False


class BulkError(BaseModel):
    index: int
    url: str | None = None
    error: str


class BulkCreated(BaseModel):
    """POST /jobs/bulk: the good entries became jobs; the bad ones are listed in ``errors``."""

    batch_id: str | None
    total_jobs: int
    job_ids: list[str]
    errors: list[BulkError] = Field(default_factory=list)


BatchState = Literal["processing", "completed", "finished"]


def batch_status(total: int, completed: int, failed: int) -> BatchState:
    """TornadoAPI: done when completed + failed >= total; ``completed`` only with no failure."""
    if completed + failed < total:
        return "processing"
    return "completed" if failed == 0 else "finished"


class BatchStatus(BaseModel):
    """GET /batch/{id}."""

    id: str
    show_url: str | None = None
    status: BatchState
    folder: str | None = None
    total_episodes: int
    completed_episodes: int
    failed_episodes: int
    episode_jobs: list[str]
    paused: bool = False


class RenameResult(BaseModel):
    """PATCH /batch/{id}/jobs."""

    updated: int
    errors: list[str] = Field(default_factory=list)


class Quota(BaseModel):
    """Per-tenant limits, refused with a clear error before any download. None = no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    storage_bytes: int | None = None
    max_resolution: int | None = None
    max_duration_seconds: float | None = None
    max_file_size_bytes: int | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ()))
            raise InvalidRequest(f"quota {field}: {err['msg']}", field=field) from None

    @field_validator("storage_bytes", "max_resolution", "max_duration_seconds", "max_file_size_bytes")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be positive")
        return value


class Usage(BaseModel):
    """GET /usage."""

    usage_count: int
    jobs_by_status: dict[str, int]
    storage_usage_bytes: int
    storage_reserved_bytes: int
    storage_usage_gb: float
    storage_reserved_gb: float
    storage_effective_usage_gb: float
    storage_by_backend: dict[str, int] = Field(default_factory=dict)  # bytes stored per storage scheme
    storage_limit_gb: float | None = None
    storage_remaining_gb: float | None = None
    # not in the TornadoAPI (an extra field, like storage_by_backend): the job folders of this tenant's
    # jobs running in this process, in bytes allocated on disk (other workers' are on their disks)
    temp_bytes: int = 0
    # not in the TornadoAPI either: how many times this tenant's jobs waited for a source host's back-off
    # (a 429, a 503 with Retry-After or a bot check; Job.host_waits summed)
    host_waits: int = 0

    @classmethod
    def build(
        cls, counts: dict[str, int], stored: int, reserved: int, quota: Quota | None,
        by_backend: dict[str, int] | None = None, temp: int = 0, host_waits: int = 0,
    ) -> Usage:  # fmt: skip
        limit = quota.storage_bytes if quota else None
        effective = stored + reserved
        return cls(
            usage_count=sum(counts.values()),
            jobs_by_status=counts,
            storage_usage_bytes=stored,
            storage_reserved_bytes=reserved,
            storage_usage_gb=round(stored / _GB, 6),
            storage_reserved_gb=round(reserved / _GB, 6),
            storage_effective_usage_gb=round(effective / _GB, 6),
            storage_by_backend=by_backend or {},
            storage_limit_gb=round(limit / _GB, 6) if limit else None,
            storage_remaining_gb=round(max(0, limit - effective) / _GB, 6) if limit else None,
            temp_bytes=temp,
            host_waits=host_waits,
        )
