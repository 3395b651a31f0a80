"""Muxer: probe the downloaded streams, run the ffmpeg plan, check what it wrote.

Probes run in-process where PyAV can tell (:mod:`tornado_engine.avprobe`), else as an ffprobe process.

ffmpeg runs as a child started off the event loop (:mod:`.spawn`; stdin closed); ``-progress pipe:1``
gives the percent. Cancelling, whether by the ``cancel`` event or by cancelling the awaiting task, kills
ffmpeg, waits for it and removes the partial output, so no process or half-written file outlives the job.

Failure kinds (see :mod:`tornado_engine.retry`): ``invalid_media`` (ffprobe/ffmpeg cannot read an input),
``mux_failed`` (ffmpeg failed otherwise), ``verify_failed`` (the output does not match the plan).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from .. import avprobe
from ..diskspace import mentions_disk_full
from ..errors import ErrorKind, FFmpegNotFound, JobCancelled, MuxError
from ..ffmpeg import FFmpegPaths, MediaInfo, MuxPlan, build_args, parse_probe, verify_output
from .spawn import Child, spawn

__all__ = ["mux", "probe"]

_PROBE_TIMEOUT = 60.0
_STDERR_LINES = 20
# ffmpeg messages that mean the input itself is bad, not the conversion.
_BAD_INPUT = (
    "Invalid data found",
    "moov atom not found",
    "could not find codec parameters",
    "End of file",
    "Invalid NAL unit",
)


async def _kill(proc: Child) -> None:
    await proc.close()  # kills at once if it still runs: no orphan even if the wait is interrupted


async def _spawn(*args: str, die_with_parent: bool = True) -> Child:
    # Off the event loop (see spawn.py). ffmpeg, which can run for minutes, dies with the engine; a probe
    # of a local file ends by itself in milliseconds (and has a timeout here).
    try:
        return await spawn(*args, die_with_parent=die_with_parent)
    except OSError as exc:  # binary removed or not executable since locate_ffmpeg()
        raise FFmpegNotFound(f"cannot run {args[0]}: {exc.strerror or exc}") from exc


_CONTEXT = re.compile(r"\[[\w:./-]+ @ 0x[0-9a-f]+\] ")  # "[mov @ 0x55bd739b4940] " log prefixes


def _last_lines(text: str, limit: int = 3) -> str:
    lines = [_CONTEXT.sub("", line).strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-limit:])[-400:] or "no error output"


async def probe(
    path: Path | str, ffprobe: str, *, timeout: float = _PROBE_TIMEOUT, audio_bit_rate: bool = True
) -> MediaInfo:
    """Probe ``path`` (local files only): in-process (PyAV, in a thread) where it can tell, else ffprobe.
    ``audio_bit_rate``: the caller uses audio bit rates (see :mod:`tornado_engine.avprobe`). Failures
    (always ffprobe's verdict) raise ``MuxError(kind='invalid_media')``."""
    path = Path(os.path.abspath(path))
    info = await asyncio.to_thread(avprobe.probe_file, path, audio_bit_rate=audio_bit_rate)
    return info if info is not None else await _ffprobe(path, ffprobe, timeout)


async def _ffprobe(path: Path, ffprobe: str, timeout: float) -> MediaInfo:
    proc = await _spawn(
        ffprobe,
        "-v",
        "error",
        "-protocol_whitelist",
        "file,pipe",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        "-i",
        "file:" + str(path),
        die_with_parent=False,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        raise MuxError(f"ffprobe timed out reading {path.name}", kind="invalid_media") from None
    finally:
        await _kill(proc)
    if proc.returncode != 0:
        reason = _last_lines(err.decode(errors="replace"), 1).replace(f"file:{path}: ", "")
        raise MuxError(f"cannot read {path.name}: {reason}", kind="invalid_media")
    try:
        data = json.loads(out.decode(errors="replace"))
    except ValueError:
        raise MuxError(f"ffprobe gave unreadable output for {path.name}", kind="invalid_media") from None
    info = parse_probe(data, path)
    if not info.streams:
        raise MuxError(f"{path.name} has no media streams", kind="invalid_media")
    return info


async def _read_progress(
    stream: asyncio.StreamReader, duration: float | None, on_progress: Callable[[float], None] | None
) -> None:
    last = 0.0
    async for raw in stream:
        key, _, value = raw.decode(errors="replace").strip().partition("=")
        if on_progress is None:
            continue  # still drain the pipe so ffmpeg never blocks on it
        pct = None
        if key == "out_time_us" and duration and value.lstrip("-").isdigit():
            pct = min(99.9, max(0.0, int(value) / 1e4 / duration))  # 100 only once ffmpeg says "end"
        elif key == "progress" and value == "end":
            pct = 100.0
        if pct is not None and pct > last:
            last = pct
            on_progress(pct)


async def _read_tail(stream: asyncio.StreamReader, keep: collections.deque[str]) -> None:
    async for raw in stream:
        keep.append(raw.decode(errors="replace").rstrip()[:300])  # bounded: ffmpeg can be chatty


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def mux(
    plan: MuxPlan,
    output: Path,
    *,
    paths: FFmpegPaths,
    duration: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    cancel: asyncio.Event | None = None,
) -> MediaInfo:
    """Run ``plan`` into ``output``; return the verified output's probe. Raises MuxError / JobCancelled."""
    output = Path(os.path.abspath(output))
    expected = duration if duration is not None else plan.duration
    proc = await _spawn(*build_args(plan, output, paths.ffmpeg))
    tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
    reader = asyncio.create_task(_read_progress(proc.stdout, expected, on_progress))
    errors = asyncio.create_task(_read_tail(proc.stderr, tail))
    waiter = asyncio.create_task(proc.wait())
    stopper = asyncio.create_task(cancel.wait()) if cancel is not None else None
    helpers = [t for t in (reader, errors, waiter, stopper) if t is not None]
    ok = False
    try:
        pending: set[asyncio.Task[object]] = {waiter, reader} | ({stopper} if stopper else set())
        while not waiter.done():
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if stopper is not None and stopper in done:
                await _kill(proc)
                raise JobCancelled("mux cancelled")
            if reader in done:
                reader.result()  # re-raise an on_progress error (ffmpeg is killed below)
        await asyncio.gather(reader, errors)  # both pipes hit EOF once ffmpeg has exited
        if proc.returncode != 0:
            reason = _last_lines("\n".join(tail))
            bad_input = any(marker.lower() in reason.lower() for marker in _BAD_INPUT)
            kind: ErrorKind = "invalid_media" if bad_input else "mux_failed"
            if mentions_disk_full("\n".join(tail)):  # the output's disk filled: retried later
                kind, reason = "disk_full", "No space left on device"
            raise MuxError(f"ffmpeg failed (exit {proc.returncode}): {reason}", kind=kind)
        try:
            result = await probe(output, paths.ffprobe, audio_bit_rate=False)
            verify_output(plan, result, duration=expected)
        except MuxError as exc:
            exc.kind = "verify_failed"  # an unreadable output is a failed check too
            raise
        ok = True
        return result
    finally:
        # Runs on errors, on cancel and when the awaiting task itself is cancelled: no orphan ffmpeg.
        await _kill(proc)
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        if not ok:
            _remove(output)
