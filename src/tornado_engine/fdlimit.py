"""Open files for a wide engine: each running job holds a few descriptors (its download's connections,
its files, ffmpeg's pipes), and many systems start processes with a soft limit of 1,024, which
``concurrency=2000`` would exhaust. At start the engine raises its soft limit toward what its concurrency
may need, never above the hard limit (the only one an unprivileged process may raise to)."""

from __future__ import annotations

import logging
import resource

__all__ = ["FDS_PER_JOB", "raise_open_files_limit", "wanted_open_files"]

_log = logging.getLogger("tornado_engine.engine")

FDS_PER_JOB = 8  # a download's connections, the part file, ffmpeg's pipes; generous on purpose
_BASE_FDS = 256  # the store, the network guard, logging, the host application's own


def wanted_open_files(concurrency: int) -> int:
    return _BASE_FDS + FDS_PER_JOB * concurrency


def raise_open_files_limit(concurrency: int) -> int:
    """Raise ``RLIMIT_NOFILE``'s soft limit to what ``concurrency`` jobs may need (capped by the hard
    limit) when it is lower; returns the soft limit now in force. Never lowers it."""
    wanted = wanted_open_files(concurrency)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # a container may refuse it: say so, and run as it is
            _log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
            return soft
        _log.info("open files limit raised from %d to %d for concurrency %d", soft, target, concurrency)
    if target < wanted:
        _log.warning("open files: hard limit %d, below the ~%d that concurrency %d may need (ulimit -Hn)",
                     hard, wanted, concurrency)  # fmt: skip
    return target
