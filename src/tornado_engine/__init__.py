"""tornado_engine: turn media URLs into finished files in storage, from inside any Python service."""

import logging as _logging

from .bounds import ResolveBounds, StallPolicy
from .engine import Engine
from .errors import (
    BlockedAddress,
    DownloadError,
    ErrorKind,
    FFmpegNotFound,
    InvalidRequest,
    InvalidState,
    JobCancelled,
    LeaseLost,
    MediaGenerationError,
    MissingBackend,
    MuxError,
    NotFound,
    QuotaExceeded,
    ResolveError,
    SecretBoxError,
    SetupError,
    StageError,
    StoreError,
    TornadoError,
    UnresolvableHost,
    UploadError,
)
from .metadata import MediaMetadata
from .models import Job, JobCreated, JobRequest
from .progress import Event
from .results import BatchCreated, BatchStatus, BulkCreated, Quota, RenameResult, Usage
from .retry import RetryPolicy
from .scheduler import PoolLimits
from .states import Status, Step
from .storage import AzureBlobConfig, GCSConfig, LocalStorageConfig, OSSConfig, S3Config

__all__ = [
    "AzureBlobConfig",
    "BatchCreated",
    "BatchStatus",
    "BlockedAddress",
    "BulkCreated",
    "DownloadError",
    "Engine",
    "ErrorKind",
    "Event",
    "FFmpegNotFound",
    "GCSConfig",
    "InvalidRequest",
    "InvalidState",
    "Job",
    "JobCancelled",
    "JobCreated",
    "JobRequest",
    "LeaseLost",
    "LocalStorageConfig",
    "MediaGenerationError",
    "MediaMetadata",
    "MissingBackend",
    "MuxError",
    "NotFound",
    "OSSConfig",
    "PoolLimits",
    "Quota",
    "QuotaExceeded",
    "RenameResult",
    "ResolveBounds",
    "ResolveError",
    "RetryPolicy",
    "S3Config",
    "SecretBoxError",
    "SetupError",
    "StageError",
    "StallPolicy",
    "Status",
    "Step",
    "StoreError",
    "TornadoError",
    "UnresolvableHost",
    "UploadError",
    "Usage",
]

__version__ = "0.1.0"

# library etiquette: records go nowhere unless the host configures logging (no "no handler" warning)
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
