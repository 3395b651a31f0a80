"""Mux stage: probe the downloaded streams, label their quality, plan, check the quota, run ffmpeg.

The probe's labels are recorded before anything can fail, so a failed job still says what it found. A
plain file says its duration only once downloaded: the late quota check runs here, before the muxing or
the upload spends anything. When the download already is the requested file, ffmpeg is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..errors import MuxError
from ..ffmpeg import MediaInfo, MuxPlan, plan_mux, verify_output
from ..options import audio_quality, video_quality_label
from ..progress import transfer_rate
from ..quota import quota_problem
from ..states import Step
from . import muxer
from .context import Fetched, Labels, Muxed, StageContext

__all__ = ["labels", "mux"]


def labels(inputs: Sequence[MediaInfo], *, audio_only: bool, scaled_to: int | None = None) -> Labels:
    """Codecs of the first video (not a cover picture) and first audio stream, and the quality (pure);
    ``scaled_to``: the short side the video is scaled down to (what the stored file has)."""
    video = next((s for m in inputs for s in m.streams if s.kind == "video" and not s.attached_pic), None)
    audio = next((s for m in inputs for s in m.streams if s.kind == "audio"), None)
    if audio_only:
        quality = audio_quality(audio.bit_rate) if audio is not None else None
    elif scaled_to is not None:
        quality = f"{scaled_to}p"
    else:  # the short side: a 720x1280 portrait video is 720p
        quality = video_quality_label(video.width, video.height) if video is not None else None
    return Labels(
        video_codec=video.codec if video is not None else None,
        audio_codec=audio.codec if audio is not None else None,
        quality=quality,
        quality_from="audio" if audio_only else "video",
    )


def _plan(ctx: StageContext, inputs: Sequence[MediaInfo]) -> MuxPlan:
    req, opts = ctx.request, ctx.options
    return plan_mux(
        inputs,
        container=opts.container,
        video_codec=req.video_codec,
        audio_codec=req.audio_codec,
        audio_bitrate=req.audio_bitrate,
        crf=req.video_quality,
        quality=opts.quality_preset,
        clip=opts.clip,
        max_height=opts.max_height,
    )


async def mux(ctx: StageContext, fetched: Fetched) -> Muxed:
    """Raises MuxError (unreadable input, ffmpeg failure, failed verification, the quota) or JobCancelled."""
    started = time.monotonic()
    exact = ctx.options.audio_only  # only an audio-only job's label reads the audio bit rate
    inputs = [await muxer.probe(path, ctx.ffmpeg.ffprobe, audio_bit_rate=exact) for path in fetched.files]
    plan: MuxPlan | None = None
    try:
        plan = _plan(ctx, inputs)
    finally:  # recorded even when planning fails; a video scaled to the cap reports the cap
        scaled = plan.video.scaled_to if plan is not None and plan.video is not None else None
        ctx.record(labels(inputs, audio_only=ctx.options.audio_only, scaled_to=scaled))
    duration = plan.duration if plan.clip else max((m.duration or 0.0) for m in inputs) or fetched.duration
    late = quota_problem(ctx.quota, duration=duration) if ctx.quota is not None else None
    if late and not fetched.duration:
        raise MuxError(late, kind="quota_exceeded")
    if not plan.needs_work:  # the download already is the requested file: keep the probe's verdict
        verify_output(plan, inputs[0], duration=duration)
        return Muxed(inputs[0].path, time.monotonic() - started, fetched.side)
    output = ctx.folder / f"output.{ctx.options.extension}"
    async with ctx.acquire("cpu"):
        encoding = time.monotonic()

        def on_progress(pct: float) -> None:  # the ETA from ffmpeg's pace so far (no bytes to count here)
            eta = transfer_rate(pct, 100.0, time.monotonic() - encoding)[1]
            ctx.progress.emit(Step.MUXING, pct, eta_seconds=eta)

        await muxer.mux(
            plan,
            output,
            paths=ctx.ffmpeg,
            duration=duration,
            on_progress=on_progress,
            cancel=ctx.cancel_async,
        )
    return Muxed(output, time.monotonic() - started, fetched.side)
