"""The one exception tree of tornado_engine.

Callers catch these; third-party errors (yt-dlp, ffmpeg, fsspec, sqlite) are mapped to them at the
boundary with ``raise ... from exc``, so nobody needs to import yt-dlp to handle a failure.

    TornadoError
     ├── InvalidRequest        bad input, refused before anything is stored (ValueError too)
     │    ├── BlockedAddress   a URL's host resolves to an address the network policy refuses
     │    └── UnresolvableHost a URL's host does not resolve (a job's source: a network failure, retried)
     ├── NotFound              unknown job id, or one that belongs to another tenant (LookupError too)
     ├── InvalidState          the operation does not fit the job's state (e.g. cancel a finished job)
     ├── FFmpegNotFound        neither a system ffmpeg nor the optional wheel is installed
     ├── SecretBoxError        a stored secret cannot be decrypted (wrong or rotated-away key, damaged)
     ├── SetupError            the engine cannot open here: a data dir or local storage folder not usable
     │    └── MissingBackend   a storage backend's optional package is not installed (names the extra)
     ├── StoreError            the job store failed
     │    └── LeaseLost        a write refused: the job's lease now belongs to another attempt
     ├── QuotaExceeded         a tenant's quota refuses the job (before any download)
     ├── MediaGenerationError  the testing kit could not generate its media (ffmpeg failed)
     ├── JobCancelled          raised inside a running job when it is cancelled
     └── StageError            a pipeline stage failed; carries how the job should end
          ├── ResolveError     metadata extraction
          ├── DownloadError    fetching the media
          ├── MuxError         ffmpeg
          └── UploadError      storage

A stage error's ``kind`` is an :data:`ErrorKind`; :data:`tornado_engine.retry.OUTCOMES` says how each ends
a job, and a test checks that the two name the same kinds.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "BlockedAddress",
    "DownloadError",
    "ErrorKind",
    "FFmpegNotFound",
    "InvalidRequest",
    "InvalidState",
    "JobCancelled",
    "LeaseLost",
    "MediaGenerationError",
    "MissingBackend",
    "MuxError",
    "NotFound",
    "QuotaExceeded",
    "ResolveError",
    "SecretBoxError",
    "SetupError",
    "StageError",
    "StoreError",
    "TornadoError",
    "UnresolvableHost",
    "UploadError",
]

ErrorKind = Literal[
    # technical: the job fails; the first six are worth another try
    "network", "timeout", "truncated", "server_error", "rate_limited", "storage_transient",
    "bot_check", "not_found", "http_error", "unsupported_url", "no_formats", "extractor_bug",
    "invalid_media", "mux_failed", "verify_failed", "storage_denied", "storage_error", "quota_exceeded",
    "no_live_from_start", "clip_out_of_range", "unknown",
    # content issues: a warning
    "private", "members_only", "login_required", "geo_restricted", "unavailable", "upcoming",
    # cannot be processed as asked: skipped
    "drm", "live_stream",
    # technical, worth another try: no space left for the job's temporary files (issue 13)
    "disk_full",
    # a resolve bound (manifest size, segments, declared duration): Failed, never retried
    "too_large",
    # a source or storage that sends/accepts too little for too long (bounds.StallPolicy): retried
    "stalled",
]  # fmt: skip


class TornadoError(Exception):
    """Base of every error this library raises on purpose."""


class InvalidRequest(TornadoError, ValueError):
    """A request was refused at the boundary; ``field`` names the offending field when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BlockedAddress(InvalidRequest):
    """A URL whose host resolves to an address the network policy refuses."""


class UnresolvableHost(InvalidRequest):
    """A URL's host does not resolve. Refused at submit for webhook and storage hosts; a job's source is
    only judged when it is fetched (the DNS failure is then a network failure, retried like one)."""


class NotFound(TornadoError, LookupError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidState(TornadoError):
    pass


class FFmpegNotFound(TornadoError):
    pass


class SetupError(TornadoError):
    """The engine cannot open here (a data dir that is a file, a storage folder it cannot write); the
    message says which option to fix. The CLI exits 5 (environment not ready)."""


class MissingBackend(SetupError):
    """A storage backend's optional package is not installed; the message says which extra to add."""


class SecretBoxError(TornadoError):
    """A secret could not be decrypted (wrong or rotated-away key, or a damaged token)."""


class StoreError(TornadoError):
    pass


class LeaseLost(StoreError):
    """A write was refused because the job's lease now belongs to another attempt."""


class QuotaExceeded(TornadoError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MediaGenerationError(TornadoError, RuntimeError):
    """An ffmpeg command failed; the message ends with the tail of its stderr."""

    def __init__(self, cmd: list[str], returncode: int, stderr: str) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        super().__init__(f"ffmpeg failed (rc={returncode}): {' '.join(cmd)}\n{tail}")
        self.cmd = cmd
        self.returncode = returncode
        self.stderr = stderr


class JobCancelled(TornadoError):
    pass


class StageError(TornadoError):
    """A stage failed. ``kind`` is a classification key understood by :mod:`tornado_engine.retry`."""

    stage = "pipeline"

    def __init__(
        self, message: str, kind: ErrorKind = "unknown", *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ErrorKind = kind
        # seconds the source asked to wait (its ``Retry-After``), for the retry and the host's back-off
        self.retry_after = retry_after


class ResolveError(StageError):
    stage = "resolve"


class DownloadError(StageError):
    stage = "download"


class MuxError(StageError):
    stage = "mux"


class UploadError(StageError):
    stage = "upload"
