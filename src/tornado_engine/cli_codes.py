"""The command line's exit codes, shared by ``run``, ``jobs wait`` and the rest (see cli.py's doc)."""

from __future__ import annotations

from collections.abc import Iterable

from .models import Job
from .states import Status

__all__ = ["EXIT_CODES", "EXIT_ENVIRONMENT", "EXIT_INTERRUPTED", "EXIT_USAGE", "exit_code"]

EXIT_CODES = {
    Status.COMPLETED: 0,
    Status.FAILED: 1,
    Status.WARNING: 3,
    Status.SKIPPED: 4,
    Status.CANCELLED: 6,
}
EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 2, 5, 130


def exit_code(jobs: Iterable[Job]) -> int:
    """The worst of the jobs' codes (a job not finished counts as a failure)."""
    return max((EXIT_CODES.get(job.status, 1) for job in jobs), default=0)
