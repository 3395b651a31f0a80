"""What the heartbeat stores of this process's running jobs' progress: each job's latest event, at most
about once per ``interval`` and only when it changed since the last write (pure: no I/O)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection

from .models import now_ms
from .progress import Event, LiveProgress
from .states import Status

__all__ = ["ProgressSampler"]


class ProgressSampler:
    """Fed every event (:meth:`note`); the heartbeat takes what is due (:meth:`take`) with the leases it
    renews, so storing progress costs no write of its own."""

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        # a heartbeat may wake a hair early: a job written one beat ago is due again
        self._interval = interval * 0.95
        self._clock = clock
        # not stored yet: each job's latest event and when it came (made a LiveProgress only when due)
        self._latest: dict[str, tuple[Event, int]] = {}
        self._written: dict[str, float] = {}  # when each job's progress was last handed out

    def note(self, event: Event) -> None:
        if event.status is not Status.PROCESSING:  # ended or given back: nothing more to store
            self._latest.pop(event.job_id, None)
            self._written.pop(event.job_id, None)
            return
        self._latest[event.job_id] = (event, now_ms())

    def take(self, held: Collection[str]) -> dict[str, str]:
        """{job id: progress JSON} of the ``held`` jobs due now; they count as written from now on."""
        now = self._clock()
        due: dict[str, str] = {}
        for job_id in held:
            latest = self._latest.get(job_id)
            if latest is None or now - self._written.get(job_id, float("-inf")) < self._interval:
                continue
            del self._latest[job_id]
            self._written[job_id] = now
            live = LiveProgress.from_event(*latest)
            due[job_id] = json.dumps(live.to_dict(), separators=(",", ":"))
        for gone in [job_id for job_id in self._written if job_id not in held]:  # attempts that ended here
            del self._written[gone]
        return due
