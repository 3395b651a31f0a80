"""Progress: one job-level percent across streams and stages (pure).

Stages own fixed slices of the job's 0-100 % (TornadoAPI's stage webhooks use the same thirds), and the
download slice is shared by its streams in proportion to their expected sizes, fixed at resolve time,
so the percent never restarts at 0 when the audio stream begins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, cast

from .api_types import EventAPI
from .states import Status, Step

__all__ = [
    "STAGE_SLICES",
    "DownloadProgress",
    "Event",
    "LiveProgress",
    "ProgressCallback",
    "estimated_total",
    "expected_bytes",
    "job_percent",
    "transfer_rate",
]

# What a download reports: (stage percent, bytes done, speed in bytes/s, seconds left); called from threads.
ProgressCallback = Callable[[float, int, float | None, float | None], None]

STAGE_SLICES: dict[Step, tuple[float, float]] = {
    Step.QUEUED: (0.0, 0.0),
    Step.DOWNLOADING: (0.0, 33.0),
    Step.MUXING: (33.0, 66.0),
    Step.UPLOADING: (66.0, 100.0),
    Step.FINISHED: (100.0, 100.0),
}


def job_percent(step: Step, stage_percent: float) -> float:
    low, high = STAGE_SLICES[step]
    if stage_percent <= 0.0:  # a step's start and end (most events): its slice's bounds, already round
        return low
    if stage_percent >= 100.0:
        return high
    return round(low + (high - low) * max(0.0, min(100.0, stage_percent)) / 100.0, 2)


@dataclass(frozen=True, slots=True)
class Event:
    """One progress or state change of a job, as ``engine.events(job_id)`` yields it."""

    job_id: str
    status: Status
    step: Step
    percent: float
    stage_percent: float = 0.0
    bytes_done: int | None = None
    bytes_total: int | None = None
    speed_bps: float | None = None
    eta_seconds: float | None = None
    message: str | None = None
    batch_id: str | None = None
    # whose job (for the engine-wide stream's tenant filter); a tenant key may be an API key: never shown
    owner: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k in _EVENT_SHOWN if (v := getattr(self, k)) is not None}
        out["status"], out["step"] = self.status.value, self.step.value
        return out

    def to_api(self) -> EventAPI:
        """This event as JSON-ready data (what ``to_dict`` gives), typed."""
        return cast(EventAPI, self.to_dict())


_EVENT_SHOWN = tuple(f.name for f in fields(Event) if f.name != "owner")  # to_dict's keys, in order


@dataclass(frozen=True, slots=True)
class LiveProgress:
    """A running job's latest progress as its worker stored it (with the lease renewal, about once a
    second), so that ``get_job`` in any process shows it; ``updated_at`` in epoch ms."""

    step: Step
    percent: float
    stage_percent: float = 0.0
    bytes_done: int | None = None
    bytes_total: int | None = None
    speed_bps: float | None = None
    eta_seconds: float | None = None
    updated_at: int = 0

    @classmethod
    def from_event(cls, event: Event, now_ms: int) -> LiveProgress:
        return cls(event.step, event.percent, event.stage_percent, event.bytes_done, event.bytes_total,
                   event.speed_bps, event.eta_seconds, now_ms)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The stored form; also the job JSON's ``progress`` object (no empty fields)."""
        out = {name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None}
        out["step"] = self.step.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LiveProgress:
        def number(name: str) -> Any:
            value = data.get(name)
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None

        return cls(Step(data["step"]), float(number("percent") or 0.0), float(number("stage_percent") or 0.0),
                   number("bytes_done"), number("bytes_total"), number("speed_bps"),
                   number("eta_seconds"), int(number("updated_at") or 0))  # fmt: skip


def expected_bytes(fmt: dict[str, Any], duration: float | None) -> float | None:
    size = fmt.get("filesize") or fmt.get("filesize_approx")
    if size:
        return float(size)
    dur = duration or sum((f.get("duration") or 0) for f in fmt.get("fragments") or []) or None
    tbr = fmt.get("tbr") or (128 if fmt.get("vcodec") == "none" else None)  # kbit/s
    return float(tbr) * 125 * dur if tbr and dur else None


def estimated_total(done: int, percent: float) -> int | None:
    """The whole download's size that ``done`` bytes at ``percent`` imply: exact for one file of known
    size, an estimate for streams weighted by expected size. None below 1 %, where it is mostly noise."""
    return round(done * 100.0 / percent) if percent >= 1.0 and done > 0 else None


def transfer_rate(done: float, total: float | None, elapsed: float) -> tuple[float | None, float | None]:
    """(average speed in units per second, seconds left) for ``done`` of ``total`` after ``elapsed`` s."""
    if elapsed <= 0 or done <= 0:
        return None, None
    speed = done / elapsed
    return speed, (max(0.0, (total - done) / speed) if total else None)


class DownloadProgress:
    """Folds yt-dlp's per-stream hook calls into one download percent; thread-safe (fragment threads)."""

    def __init__(self, formats: list[dict[str, Any]], duration: float | None) -> None:
        expected = {str(f.get("format_id")): expected_bytes(f, duration) for f in formats}
        known = [v for v in expected.values() if v]
        fallback = sum(known) / len(known) if known else 1.0
        self.weights = {k: v or fallback for k, v in expected.items()} or {"": 1.0}
        self.fractions = dict.fromkeys(self.weights, 0.0)
        self.bytes_done: dict[str, int] = {}
        self.percent = 0.0
        self._lock = threading.Lock()

    def update(self, d: dict[str, Any]) -> float:
        fid = str((d.get("info_dict") or {}).get("format_id"))
        with self._lock:
            if fid not in self.weights:  # a format we did not foresee: give it an average share
                self.weights[fid] = sum(self.weights.values()) / len(self.weights)
                self.fractions[fid] = 0.0
            if d.get("status") == "finished":
                frac = 1.0
            elif d.get("total_bytes"):
                frac = d.get("downloaded_bytes", 0) / d["total_bytes"]
            elif d.get("fragment_count"):
                frac = (d.get("fragment_index") or 0) / d["fragment_count"]
            else:
                frac = min(0.99, (d.get("downloaded_bytes") or 0) / self.weights[fid])
            self.fractions[fid] = max(self.fractions[fid], min(1.0, frac))
            if d.get("downloaded_bytes") is not None:
                self.bytes_done[fid] = int(d["downloaded_bytes"])
            total = sum(self.weights.values())
            done = sum(self.weights[k] * self.fractions[k] for k in self.weights)
            self.percent = max(self.percent, 100.0 * done / total)
            return self.percent

    @property
    def total_bytes_done(self) -> int:
        with self._lock:
            return sum(self.bytes_done.values())
