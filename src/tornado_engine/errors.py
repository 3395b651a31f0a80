"""The one exception tree of tornado_engine.

Callers catch these; third-party errors (yt-dlp, ffmpeg, fsspec, sqlite) are mapped to them at the
boundary with ``raise ... from exc``, so nobody needs to import yt-dlp to handle a failure.

    TornadoError
     ├── InvalidRequest        bad input, refused before anything is stored (ValueError too)
     ├── NotFound              unknown job id, or one that belongs to another tenant (LookupError too)
     ├── InvalidState          the operation does not fit the job's state (e.g. cancel a finished job)
     ├── FFmpegNotFound        neither a system ffmpeg nor the optional wheel is installed
     ├── StoreError            the job store failed
     │    └── LeaseLost        a write refused: the job's lease now belongs to another attempt
     ├── QuotaExceeded         a tenant's quota refuses the job (before any download)
     ├── JobCancelled          raised inside a running job when it is cancelled
     └── StageError            a pipeline stage failed; carries how the job should end
          ├── ResolveError     metadata extraction
          ├── DownloadError    fetching the media
          ├── MuxError         ffmpeg
          └── UploadError      storage
"""

from __future__ import annotations

__all__ = [
    "DownloadError",
    "FFmpegNotFound",
    "InvalidRequest",
    "InvalidState",
    "JobCancelled",
    "LeaseLost",
    "MuxError",
    "NotFound",
    "QuotaExceeded",
    "ResolveError",
    "StageError",
    "StoreError",
    "TornadoError",
    "UploadError",
]


class TornadoError(Exception):
    """Base of every error this library raises on purpose."""


class InvalidRequest(TornadoError, ValueError):
    """A request was refused at the boundary; ``field`` names the offending field when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(TornadoError, LookupError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidState(TornadoError):
    pass


class FFmpegNotFound(TornadoError):
    pass


class StoreError(TornadoError):
    pass


class LeaseLost(StoreError):
    """A write was refused because the job's lease now belongs to another attempt."""


class QuotaExceeded(TornadoError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobCancelled(TornadoError):
    pass


class StageError(TornadoError):
    """A stage failed. ``kind`` is a classification key understood by :mod:`tornado_engine.retry`."""

    stage = "pipeline"

    def __init__(self, message: str, kind: str = "unknown") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class ResolveError(StageError):
    stage = "resolve"


class DownloadError(StageError):
    stage = "download"


class MuxError(StageError):
    stage = "mux"


class UploadError(StageError):
    stage = "upload"
