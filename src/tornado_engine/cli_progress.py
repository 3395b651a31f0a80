"""Live progress on a terminal while the CLI waits for jobs (``run``, and anything else that waits).

One job: a bar for the current stage with that stage's own numbers, as yt-dlp shows them
(``45.3% of 57.9MiB at 11.0MiB/s ETA 00:03``), and a line left behind as each stage ends
(``Downloaded  57.9MiB in 00:05 at 11.6MiB/s``). Several jobs (a playlist): an overall bar and one line
per episode. Every number comes from the jobs' events (bytes, speed, ETA); nothing is guessed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from .models import Job
from .progress import Event, LiveProgress
from .states import TERMINAL, Step
from .tenant_view import TenantView

__all__ = ["follow", "transfer_detail"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
_ENDED = {Step.DOWNLOADING: "Downloaded", Step.MUXING: "Muxed", Step.UPLOADING: "Uploaded"}
_NAME_WIDTH = 28  # an episode's name in the playlist view
# A job this process runs ends its events itself; one run elsewhere sends none here, so its bar stops at
# the stored state while wait() polls the store. This long is left for the last events to be drawn.
_DRAIN_SECONDS = 0.5


async def follow(
    engine: TenantView, job_ids: Sequence[str], *, show: bool = True, console: Console | None = None
) -> list[Job]:
    """Wait for ``job_ids`` to end and return their records, drawing their progress on ``console``
    (default: stderr) when ``show`` is set and the console is a terminal."""
    console = console or Console(stderr=True)
    if not (show and console.is_terminal and job_ids):
        return [await engine.wait(job_id) for job_id in job_ids]
    with _bar(console) as bar:
        if len(job_ids) == 1:
            draw = asyncio.ensure_future(_draw_one(engine, job_ids[0], bar))
        else:
            draw = asyncio.ensure_future(_draw_many(engine, job_ids, bar))
        try:
            jobs = [await engine.wait(job_id) for job_id in job_ids]
            await asyncio.wait({draw}, timeout=_DRAIN_SECONDS)
        finally:
            draw.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draw  # a drawing error surfaces here
    return jobs


def _bar(console: Console) -> Progress:
    # no markup: titles and error messages are remote text, and "[...]" in them is not a style
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(bar_width=30),
        TextColumn("{task.fields[detail]}", markup=False),
    )
    return Progress(*columns, console=console, transient=True)


async def _draw_one(engine: TenantView, job_id: str, bar: Progress) -> None:
    task = bar.add_task(_label(Step.QUEUED.value, 11), total=100, detail="")
    stage_started, last = time.monotonic(), None
    async for event in engine.events(job_id):
        now = time.monotonic()
        if last is not None and event.step != last.step:  # the stage ``last`` belongs to is over
            if line := _stage_ended(last, now - stage_started):
                bar.console.print(line, markup=False, highlight=False)
            stage_started = now
        last = event
        bar.update(task, description=_label(event.step.value, 11), completed=event.stage_percent,
                   detail=_detail(event))  # fmt: skip


async def _draw_many(engine: TenantView, job_ids: Sequence[str], bar: Progress) -> None:
    names = [_label(await _name(engine, job_id), _NAME_WIDTH) for job_id in job_ids]
    overall = bar.add_task(_label("All episodes", _NAME_WIDTH), total=100.0 * len(job_ids), detail="")
    tasks = {
        job_id: bar.add_task(name, total=100, detail="") for job_id, name in zip(job_ids, names, strict=True)
    }
    latest: dict[str, Event] = {}

    async def draw(job_id: str, name: str) -> None:
        async for event in engine.events(job_id):
            latest[job_id] = event
            if event.status in TERMINAL:  # a finished episode leaves its line above the bars
                bar.remove_task(tasks[job_id])
                bar.console.print(f"{name} {_detail(event)}", markup=False, highlight=False)
            else:
                bar.update(tasks[job_id], completed=event.percent, detail=_episode_detail(event))
            ended = sum(e.status in TERMINAL for e in latest.values())
            bar.update(overall, completed=sum(e.percent for e in latest.values()),
                       detail=f"{ended}/{len(job_ids)} done")  # fmt: skip

    await asyncio.gather(*(draw(job_id, name) for job_id, name in zip(job_ids, names, strict=True)))


async def _name(engine: TenantView, job_id: str) -> str:
    job = await engine.get_job(job_id)
    return job.title or job.request.filename or job_id


def _label(text: str, width: int) -> str:
    return f"{text[: width - 1]}…" if len(text) > width else f"{text:<{width}}"


def _detail(event: Event) -> str:
    """The current stage's numbers: ``45.3% of 57.9MiB at 11.0MiB/s ETA 00:03`` (the parts it knows)."""
    if event.status in TERMINAL:
        return event.status.value + (f": {event.message}" if event.message else "")
    if event.step == Step.QUEUED:
        return "waiting to start"
    return transfer_detail(event)


def transfer_detail(p: Event | LiveProgress) -> str:
    """A stage's numbers, from an event or a record's stored progress (the parts it knows)."""
    parts = [f"{p.stage_percent:5.1f}%"]
    if p.bytes_total:
        parts.append(f"of {_size(p.bytes_total)}")
    elif p.bytes_done:
        parts.append(f"({_size(p.bytes_done)} so far)")
    if p.speed_bps:
        parts.append(f"at {_size(p.speed_bps)}/s")
    if p.eta_seconds is not None:
        parts.append(f"ETA {_clock(p.eta_seconds)}")
    return " ".join(parts)


def _episode_detail(event: Event) -> str:
    if event.step == Step.QUEUED:
        return _detail(event)
    return f"{event.step.value} {_detail(event)}"


def _stage_ended(last: Event, seconds: float) -> str | None:
    """The line a finished stage leaves: ``Downloaded  57.9MiB in 00:05 at 11.6MiB/s``."""
    done = _ENDED.get(last.step)
    if done is None or last.status in TERMINAL:
        return None
    size = last.bytes_total or last.bytes_done
    if not size:
        return f"{done:<11} in {_clock(seconds)}"
    speed = f" at {_size(size / seconds)}/s" if seconds > 0 else ""
    return f"{done:<11} {_size(size)} in {_clock(seconds)}{speed}"


def _size(n: float) -> str:
    unit = 0
    while n >= 1024 and unit < len(_UNITS) - 1:
        n /= 1024
        unit += 1
    return f"{n:.0f}B" if unit == 0 else f"{n:.1f}{_UNITS[unit]}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
