"""Each stage run alone, on real parts: yt-dlp against the fixture server, the fast path, ffmpeg, storage.

A stage is given a StageContext and the previous stage's result; what it reports through ``ctx.record``
and ``ctx.progress`` is collected by a recorder standing in for the runner's attempt.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tornado_engine import JobRequest
from tornado_engine.errors import JobCancelled, MuxError
from tornado_engine.ffmpeg import FFmpegPaths
from tornado_engine.options import MediaOptions
from tornado_engine.pipeline.context import (
    Counter,
    Fetched,
    Labels,
    Muxed,
    Resolved,
    Result,
    StageContext,
    Strategy,
    Uploaded,
    Waited,
)  # fmt: skip
from tornado_engine.pipeline.download import download
from tornado_engine.pipeline.mux import mux
from tornado_engine.pipeline.resolve import resolve
from tornado_engine.pipeline.sidecar import SideFiles
from tornado_engine.pipeline.upload import upload
from tornado_engine.results import Quota
from tornado_engine.safety import NetworkPolicy
from tornado_engine.scheduler import PoolLimits, Pools
from tornado_engine.states import Step
from tornado_engine.storage import StorageTarget
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

LOOPBACK = NetworkPolicy.build(["127.0.0.0/8"])
T = TypeVar("T")


class Recorder:
    """The runner's side of a stage: progress events, recorded results, retried steps."""

    def __init__(self) -> None:
        self.events: list[tuple[Step, float, dict[str, Any]]] = []
        self.results: list[Result] = []
        self.retried: list[Counter] = []
        self.lock = threading.Lock()

    def emit(self, step: Step, stage_percent: float, **extra: Any) -> None:
        with self.lock:
            self.events.append((step, stage_percent, extra))

    emit_threadsafe = emit

    def record(self, result: Result) -> None:
        self.results.append(result)

    async def retry(
        self, counter: Counter, attempt: Callable[[], Awaitable[T]], cleanup: Callable[[], None] | None = None
    ) -> T:
        self.retried.append(counter)
        return await attempt()

    def of(self, kind: type[T]) -> list[T]:
        return [r for r in self.results if isinstance(r, kind)]


def context(
    rec: Recorder,
    job_folder: Path,
    ffmpeg: FFmpegPaths,
    *,
    url: str = "http://127.0.0.1:9/x",
    network: NetworkPolicy | None = LOOPBACK,
    storage: StorageTarget | None = None,
    quota: Quota | None = None,
    cancel: bool = False,
    **request: Any,
) -> StageContext:
    req = JobRequest(url=url, **request)
    job_folder.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    if cancel:
        stop.set()
    return StageContext(
        job_id="job-1", url=url, request=req, options=MediaOptions.from_request(req), folder=job_folder,
        ffmpeg=ffmpeg, socket_timeout=5.0, executor=None, network=network, proxy=None, cancel=stop,
        cancel_async=asyncio.Event(), progress=rec, record=rec.record, retry=rec.retry,
        pools=Pools(PoolLimits()), storage=storage or StorageTarget((job_folder.parent / "store").as_uri()),
        quota=quota,
    )  # fmt: skip


@pytest.fixture(scope="module")
def paths(ffmpeg_bin: str, ffprobe_bin: str) -> FFmpegPaths:
    return FFmpegPaths(ffmpeg_bin, ffprobe_bin)


async def test_resolve_wraps_what_ytdlp_found(
    media_server: MediaServer, media_set: MediaSet, paths: FFmpegPaths, tmp_path: Path
) -> None:
    url = media_server.url(media_set.dash_mpd)
    resolved = await resolve(context(Recorder(), tmp_path / "job", paths, url=url))
    assert resolved.title and not resolved.live
    assert len(resolved.formats) == 2  # best video and best audio
    assert resolved.short_side == 360 and resolved.expected_bytes > 0
    assert "formats" not in repr(resolved)  # the raw info stays inside


async def test_download_takes_the_fast_path_for_a_plain_file(
    media_server: MediaServer, media_set: MediaSet, paths: FFmpegPaths, tmp_path: Path
) -> None:
    rec = Recorder()
    ctx = context(rec, tmp_path / "job", paths, url=media_server.url(media_set.progressive_mp4))
    fetched = await download(ctx, await resolve(ctx))
    source = media_set.path(media_set.progressive_mp4)
    assert fetched.strategy == "fastpath" and rec.of(Strategy) == [Strategy("fastpath")]
    assert [f.read_bytes() for f in fetched.files] == [source.read_bytes()]
    assert fetched.bytes == source.stat().st_size
    assert rec.events[-1][:2] == (Step.DOWNLOADING, 100.0)
    percents = [pct for _, pct, _ in rec.events]
    assert percents == sorted(percents)  # never backwards


async def test_download_goes_to_ytdlp_when_the_fast_path_cannot(
    media_server: MediaServer, media_set: MediaSet, paths: FFmpegPaths, tmp_path: Path
) -> None:
    rec = Recorder()
    ctx = context(rec, tmp_path / "job", paths, url=media_server.url(media_set.hls_master), network=None)
    fetched = await download(ctx, await resolve(ctx))
    # the fast path looked first (eligibility is judged in its thread) and left it to yt-dlp
    assert fetched.strategy == "ytdlp" and rec.of(Strategy)[-1] == Strategy("ytdlp")
    assert len(fetched.files) == 2 and all(f.parent == ctx.folder and f.stat().st_size for f in fetched.files)
    assert fetched.bytes == sum(f.stat().st_size for f in fetched.files)


def _fetched(media_set: MediaSet, folder: Path, *, duration: float | None = 2.0) -> Fetched:
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / "media.mp4.mp4"
    shutil.copyfile(media_set.path(media_set.progressive_mp4), local)
    thumb = folder / "side.jpg"
    shutil.copyfile(media_set.path(media_set.thumb_jpg), thumb)
    side = SideFiles(thumbnail=thumb)
    return Fetched((local,), ("mp4",), local.stat().st_size, 0.1, side, duration=duration)


async def test_mux_probes_labels_and_converts(
    media_set: MediaSet, paths: FFmpegPaths, tmp_path: Path
) -> None:
    rec = Recorder()
    ctx = context(rec, tmp_path / "job", paths, format="mkv")
    fetched = _fetched(media_set, ctx.folder)
    muxed = await mux(ctx, fetched)
    assert muxed.output == ctx.folder / "output.mkv" and muxed.output.stat().st_size > 0
    assert muxed.side == fetched.side and muxed.seconds is not None
    assert rec.of(Labels) == [Labels(video_codec="h264", audio_codec="aac", quality="360p")]
    assert [w.pool for w in rec.of(Waited)] == ["cpu"]
    assert rec.events[-1][:2] == (Step.MUXING, 100.0)


async def test_mux_skips_ffmpeg_when_the_download_already_is_the_file(
    media_set: MediaSet, paths: FFmpegPaths, tmp_path: Path
) -> None:
    rec = Recorder()
    ctx = context(rec, tmp_path / "job", paths, format="mp4")
    fetched = _fetched(media_set, ctx.folder)
    muxed = await mux(ctx, fetched)
    assert muxed.output == fetched.files[0] and not rec.of(Waited)  # no cpu slot: no ffmpeg


async def test_mux_checks_the_quota_on_a_duration_known_only_now(
    media_set: MediaSet, paths: FFmpegPaths, tmp_path: Path
) -> None:
    rec = Recorder()
    ctx = context(rec, tmp_path / "job", paths, format="mkv", quota=Quota(max_duration_seconds=0.5))
    with pytest.raises(MuxError) as caught:
        await mux(ctx, _fetched(media_set, ctx.folder, duration=None))
    assert caught.value.kind == "quota_exceeded"
    assert rec.of(Labels)  # recorded before the refusal: the failed job still says what it found
    assert not (ctx.folder / "output.mkv").exists()


async def test_upload_stores_media_and_side_files_under_one_stem(
    media_set: MediaSet, paths: FFmpegPaths, tmp_path: Path
) -> None:
    rec = Recorder()
    ctx = context(rec, tmp_path / "job", paths, folder="shows")
    fetched = _fetched(media_set, ctx.folder)
    stored = await upload(ctx, Muxed(fetched.files[0], side=fetched.side), title="A talk")
    assert stored.media.key == "shows/A talk.mp4" and stored.seconds >= 0
    kinds = [(u.kind, u.stored.key) for u in rec.of(Uploaded)]
    assert kinds == [("media", "shows/A talk.mp4"), ("thumbnail", "shows/A talk.jpg")]
    assert rec.retried == ["upload", "upload"]  # each object its own retried step
    store = tmp_path / "store" / "shows"
    assert sorted(p.name for p in store.iterdir()) == ["A talk.jpg", "A talk.mp4"]
    assert rec.events[-1][:2] == (Step.UPLOADING, 100.0)
    assert [w.pool for w in rec.of(Waited)] == ["upload", "upload"]


async def test_upload_cancelled_stops_and_leaves_nothing_unrecorded(
    media_set: MediaSet, paths: FFmpegPaths, tmp_path: Path
) -> None:
    rec = Recorder()
    ctx = context(rec, tmp_path / "job", paths, cancel=True, filename="clip")
    fetched = _fetched(media_set, ctx.folder)
    with pytest.raises(JobCancelled):
        await upload(ctx, Muxed(fetched.files[0], side=fetched.side), title=None)
    # the write stopped at its progress report; what it had finished is removed by the stage itself
    # (anything recorded would be removed by the runner)
    assert rec.of(Uploaded) == []
    assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


def test_resolved_reads_the_info_it_wraps() -> None:
    info = {
        "title": "t" * 600, "upload_date": "20240102", "duration": 12, "is_live": False,
        "formats": [
            {"format_id": "v", "width": 720, "height": 1280, "filesize": 1000},
            {"format_id": "a", "vcodec": "none", "tbr": 128},
        ],
        "tornado_selected_format_ids": ["v", "a"],
    }  # fmt: skip
    resolved = Resolved(info)
    assert resolved.title == "t" * 500 and resolved.release_date == "20240102"
    assert resolved.description is None and resolved.duration == 12.0
    assert resolved.short_side == 720  # portrait: the short side
    assert resolved.expected_bytes == 1000 + 128 * 125 * 12
    assert resolved.ytdlp_info() is info
