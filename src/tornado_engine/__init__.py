"""tornado_engine: turn media URLs into finished files in storage, from inside any Python service."""

from .engine import Engine
from .errors import (
    DownloadError,
    FFmpegNotFound,
    InvalidRequest,
    InvalidState,
    JobCancelled,
    MuxError,
    NotFound,
    ResolveError,
    StageError,
    StoreError,
    TornadoError,
    UploadError,
)
from .models import Job, JobCreated, JobRequest
from .progress import Event
from .retry import RetryPolicy
from .scheduler import PoolLimits
from .states import Status, Step

__all__ = [
    "DownloadError",
    "Engine",
    "Event",
    "FFmpegNotFound",
    "InvalidRequest",
    "InvalidState",
    "Job",
    "JobCancelled",
    "JobCreated",
    "JobRequest",
    "MuxError",
    "NotFound",
    "PoolLimits",
    "ResolveError",
    "RetryPolicy",
    "StageError",
    "Status",
    "Step",
    "StoreError",
    "TornadoError",
    "UploadError",
]

__version__ = "0.1.0"
