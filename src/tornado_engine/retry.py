"""How a failure ends a job, and when to try again (pure, table-driven).

A stage raises a :class:`StageError` whose ``kind`` (an ``ErrorKind``) is a key of ``OUTCOMES``; this
module says whether that kind is transient (retried with exponential backoff and jitter) and which
terminal status it gives: technical failures -> Failed / ``error``; content issues -> Warning /
``warning``; content that cannot be processed (DRM) -> Skipped. Every kind has an outcome (mypy and a
test check it), so a misspelt kind is an error, never a silent "unknown".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import ErrorKind
from .states import Status

__all__ = ["OUTCOMES", "Outcome", "RetryPolicy", "outcome_for"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    error_type: str
    transient: bool
    message: str


def _error(message: str, transient: bool = False) -> Outcome:
    return Outcome(Status.FAILED, "error", transient, message)


def _warning(message: str) -> Outcome:
    return Outcome(Status.WARNING, "warning", False, message)


OUTCOMES: dict[ErrorKind, Outcome] = {
    # technical: Failed, some worth another try
    "network": _error("Connection to the media source failed", transient=True),
    "timeout": _error("The media source timed out", transient=True),
    "truncated": _error("The media source closed the connection before the file was complete", True),
    "server_error": _error("The media source returned a server error", transient=True),
    "rate_limited": _error("The media source is rate limiting requests", transient=True),
    "bot_check": _error("The media source asked for a bot check"),
    "not_found": _error("The media source returned 404 Not Found"),
    "http_error": _error("The media source refused the request"),
    "unsupported_url": _error("No media found at this URL"),
    "no_formats": _error("No downloadable format matches the request"),
    "extractor_bug": _error("The downloader could not read this page"),
    "invalid_media": _error("The downloaded file is not valid media"),
    "mux_failed": _error("Converting the media failed"),
    "verify_failed": _error("The converted file failed verification"),
    "storage_transient": _error("The storage service is temporarily unavailable", transient=True),
    "storage_denied": _error("The storage service refused the credentials"),
    "storage_error": _error("Uploading to storage failed"),
    "quota_exceeded": _error("The tenant's quota does not allow this job"),
    "no_live_from_start": _error(
        "This live stream cannot be recorded from the start; record from now instead"
    ),
    "clip_out_of_range": _error("The clip starts after the end of the media"),
    "unknown": _error("The job failed unexpectedly"),
    # content issues: Warning
    "private": _warning("This video is private"),
    "members_only": _warning("This video is for channel members only"),
    "login_required": _warning("This video requires signing in"),
    "geo_restricted": _warning("This video is not available in this region"),
    "unavailable": _warning("This video is unavailable"),
    "upcoming": _warning(
        "This live stream has not started yet; set live_recording and wait_for_video to wait"
    ),
    # cannot be processed (as asked): Skipped
    "drm": Outcome(Status.SKIPPED, "warning", False, "This content is DRM protected and cannot be processed"),
    "live_stream": Outcome(
        Status.SKIPPED, "warning", False, "This is a live stream; set live_recording to record it"
    ),
    # technical again (kept last for merges): space may come back as other jobs end
    "disk_full": _error("Not enough disk space for this job's temporary files", transient=True),
    "too_large": _error("The source is larger than the engine's resolve bounds allow"),
    # retried like a timeout; the raised error's message gives the policy's numbers
    "stalled": _error("The source stopped sending data", transient=True),
}


def outcome_for(kind: ErrorKind) -> Outcome:
    return OUTCOMES[kind]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: retry n waits between half and all of min(cap, base * 2**n)."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0

    def should_retry(self, kind: ErrorKind, retries_so_far: int) -> bool:
        return outcome_for(kind).transient and retries_so_far < self.max_retries

    def delay(self, retries_so_far: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(retries_so_far, 60))
        return (rng or random).uniform(ceiling / 2, ceiling)
