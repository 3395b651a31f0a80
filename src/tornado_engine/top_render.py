"""``top``'s terminal view of a :class:`~tornado_engine.top.TopSnapshot`, as rich renderables."""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .top import TopSnapshot

__all__ = ["render"]

_STATUS_STYLE = {"Pending": "cyan", "Processing": "yellow", "Completed": "green", "Failed": "red",
                 "Warning": "magenta", "Skipped": "magenta", "Cancelled": "dim"}  # fmt: skip


def _size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole >= 3600:
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{whole // 60}:{whole % 60:02d}"


def _clock(epoch_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_ms / 1000))


def _header(snap: TopSnapshot, source: str) -> Text:
    minute = snap.last_minute
    text = Text(f"tornado top  {source}  {_clock(snap.taken_at)}\n", style="bold")
    for status, count in snap.queue.items():
        text.append(f"{status} ", style=_STATUS_STYLE.get(status, ""))
        text.append(f"{count}  ", style="bold")
    text.append(
        f"\nlast minute: {minute['finished']} finished, {minute['completed']} completed, "
        f"{minute['failed']} failed, {minute['cancelled']} cancelled, {_size(minute['bytes'])} stored"
    )
    return text


def _running(snap: TopSnapshot) -> Table:
    table = Table(title=f"Running ({snap.queue.get('Processing', 0)})", expand=True, title_justify="left")
    for name in ("job", "title", "worker", "step", "%", "done", "speed", "ETA", "seen"):
        right = name in ("%", "done", "speed", "ETA")
        table.add_column(name, no_wrap=True, overflow="ellipsis", justify="right" if right else "left")
    for job in snap.running:
        done = f"{_size(job.bytes_done)}/{_size(job.bytes_total)}" if job.bytes_done is not None else "-"
        speed = f"{_size(job.speed_bps)}/s" if job.speed_bps is not None else "-"
        seen = f"{job.progress_age_seconds:.0f}s ago" if job.progress_age_seconds is not None else "-"
        table.add_row(job.id[:12], job.title[:40], job.worker or "-", job.step, f"{job.percent:.1f}", done,
                      speed, _duration(job.eta_seconds), seen)  # fmt: skip
    return table


def _workers(snap: TopSnapshot) -> Table:
    table = Table(title="Workers (holding leases)", expand=True, title_justify="left")
    for name in ("worker", "state", "jobs", "last heartbeat", "lease left", "running"):
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    for worker in snap.workers:
        state = Text("alive", style="green") if worker.alive else Text("lease expired", style="red")
        beat = f"{worker.heartbeat_age_seconds:.1f}s ago" if worker.heartbeat_age_seconds is not None else "-"
        left = f"{worker.lease_left_seconds:.0f}s" if worker.lease_left_seconds is not None else "-"
        table.add_row(worker.id, state, str(worker.jobs), beat, left, " ".join(j[:8] for j in worker.job_ids))
    return table


def _errors(snap: TopSnapshot) -> Table:
    table = Table(title="Recent errors", expand=True, title_justify="left")
    for name in ("job", "ended", "status", "kind", "error"):
        table.add_column(name, no_wrap=name != "error", overflow="fold" if name == "error" else "ellipsis")
    for error in snap.errors:
        ended = (
            time.strftime("%H:%M:%S", time.localtime(error.finished_at / 1000)) if error.finished_at else "-"
        )
        style = _STATUS_STYLE.get(error.status, "")
        table.add_row(error.id[:12], ended, Text(error.status, style=style), error.error_type or "-",
                      error.error or "-")  # fmt: skip
    return table


def render(snap: TopSnapshot, source: str) -> RenderableType:
    """The whole view; ``source`` names the store (no secrets: a store's repr)."""
    return Group(_header(snap, source), _running(snap), _workers(snap), _errors(snap))
