"""What every stage is given (:class:`StageContext`) and what the stages hand on (their typed results).

A job's data flows ``StageContext -> resolve -> Resolved -> download -> Fetched -> mux -> Muxed -> upload
-> Stored``. Stages never touch the Job or the store: they return their result, and report what a failed
attempt's record must still show (the download strategy, the probe's labels, each stored object, pool
waits) through ``ctx.record``; the runner applies both in one place (:mod:`tornado_engine.attempt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from ..bounds import ResolveBounds, StallPolicy
from ..coalesce import ReuseDesk
from ..errors import JobCancelled, StageError
from ..ffmpeg import FFmpegPaths
from ..models import Job, JobRequest
from ..netguard import NetGuard
from ..options import MediaOptions
from ..progress import expected_bytes
from ..results import Quota
from ..reuse import source_key
from ..safety import NetworkPolicy, remote_text
from ..scheduler import Pool, Pools
from ..sources.settings import JobSources
from ..states import Step
from ..storage import StorageTarget, StoredObject
from ..ytdlp import is_live
from .downloader import requested_formats
from .sidecar import SideFiles

__all__ = [
    "Counter", "Fetched", "Labels", "Muxed", "Progress", "Resolved", "Result", "Retrier", "Reused",
    "StageContext", "Stored", "Strategy", "Uploaded", "Waited",
]  # fmt: skip

_T = TypeVar("_T")
Counter = Literal["download", "upload"]  # which retry count a retried step adds to


class Progress(Protocol):
    """Where a stage's progress events go (the runner's attempt)."""

    def emit(self, step: Step, stage_percent: float, **extra: Any) -> None: ...

    def emit_threadsafe(self, step: Step, stage_percent: float, **extra: Any) -> None: ...


class Retrier(Protocol):
    """Runs ``attempt`` again on a transient failure (after ``cleanup``), as the runner's policy says."""

    def __call__(
        self,
        counter: Counter,
        attempt: Callable[[], Awaitable[_T]],
        cleanup: Callable[[], None] | None = None,
    ) -> Awaitable[_T]: ...


@dataclass(frozen=True)
class Resolved:
    """What the resolver found behind the URL. The raw yt-dlp info stays inside, for yt-dlp's own calls."""

    _info: dict[str, Any] = field(repr=False)

    @property
    def title(self) -> str | None:
        return _short(self._info.get("title"), 500)

    @property
    def description(self) -> str | None:
        return _short(self._info.get("description"), 5000)

    @property
    def release_date(self) -> str | None:
        return _short(self._info.get("release_date") or self._info.get("upload_date"), 32)

    @property
    def duration(self) -> float | None:
        duration = self._info.get("duration")
        return float(duration) if isinstance(duration, int | float) else None

    @property
    def live(self) -> bool:
        return is_live(self._info)

    @property
    def formats(self) -> list[dict[str, Any]]:
        """The picked formats (one or two), or the info itself: read-only, for size and resolution."""
        return requested_formats(self._info)

    @property
    def expected_bytes(self) -> int:
        return sum(int(expected_bytes(f, self.duration) or 0) for f in self.formats)

    @property
    def short_side(self) -> int | None:
        """The picked video's short side in pixels (a 720x1280 portrait video is 720p)."""
        formats = self.formats
        sides = [min(f["width"], f["height"]) for f in formats if f.get("width") and f.get("height")]
        sides += [f["height"] for f in formats if f.get("height") and not f.get("width")]
        return max(sides) if sides else None

    def ytdlp_info(self) -> dict[str, Any]:
        """The raw info, for the download calls (yt-dlp's and the fast path's) only."""
        return self._info

    def source_key(self, url: str) -> str:
        """What the source is, for reuse: ``extractor:id`` or a digest of the page URL (reuse.py)."""
        return source_key(self._info, url)

    @property
    def extractor(self) -> str | None:
        """yt-dlp's extractor that read the page (``Generic``, ``Youtube``), for logs and traces."""
        return _short(self._info.get("extractor_key") or self._info.get("extractor"), 64)


@dataclass(frozen=True)
class Fetched:
    """The downloaded streams in the job folder (``strategy`` None when resumed from a checkpoint)."""

    files: tuple[Path, ...]
    format_ids: tuple[str, ...]
    bytes: int
    seconds: float
    side: SideFiles = field(default_factory=SideFiles)
    duration: float | None = None  # the source's, as the resolver saw it
    strategy: str | None = None


@dataclass(frozen=True)
class Muxed:
    output: Path
    seconds: float | None = None  # None when resumed from a checkpoint
    side: SideFiles = field(
        default_factory=SideFiles
    )  # the download's subtitles and thumbnail, for the upload


@dataclass(frozen=True)
class Stored:
    media: StoredObject
    seconds: float


@dataclass(frozen=True)
class Strategy:
    """How the download is being made (``fastpath`` or ``ytdlp``)."""

    name: str


@dataclass(frozen=True)
class Labels:
    """What the probe says about the first video and the first audio stream."""

    video_codec: str | None = None
    audio_codec: str | None = None
    quality: str | None = None  # e.g. 720p, or 128k for an audio-only request
    quality_from: Literal["video", "audio"] = "video"


@dataclass(frozen=True)
class Uploaded:
    """One object written to storage: the media (``kind`` "media"), a subtitle or the thumbnail."""

    kind: Literal["media", "subtitle", "thumbnail"]
    stored: StoredObject
    storage_url: str


@dataclass(frozen=True)
class Waited:
    pool: Pool
    ms: int


@dataclass(frozen=True)
class Reused:
    """The stored file of ``source`` (a finished job) taken instead of a download; its copy, if one was
    made, is recorded as ``Uploaded``."""

    source: Job = field(repr=False)
    storage_url: str


Result = Resolved | Fetched | Muxed | Stored | Strategy | Labels | Uploaded | Waited | Reused


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs for one attempt at one job; built once per attempt by the runner."""

    job_id: str
    url: str
    request: JobRequest
    options: MediaOptions  # computed once per attempt from the request
    folder: Path  # the job's own folder (made by the runner before a stage needs it)
    ffmpeg: FFmpegPaths
    socket_timeout: float
    executor: Executor | None
    network: NetworkPolicy | None  # the fast path connects only to what this allows
    proxy: str | None  # the network guard (SSRF filter) every yt-dlp request goes through
    cancel: threading.Event  # read by yt-dlp's progress hook and the fast path, in their threads
    cancel_async: asyncio.Event  # awaited by the muxer and the resolver's wait for a scheduled stream
    progress: Progress
    record: Callable[[Result], None]  # a fact the job's record must show even if the attempt fails
    retry: Retrier
    pools: Pools
    storage: StorageTarget
    quota: Quota | None
    bounds: ResolveBounds = field(default_factory=ResolveBounds)  # what one resolve may cost
    stall: StallPolicy = field(default_factory=StallPolicy)  # how slow a transfer may be (bounds.py)
    # the network guard ``proxy`` points at: it cuts this job's stalled transfers and tells (take_stall)
    guard: NetGuard | None = None
    # cookies, upstream proxies, bandwidth, impersonation for this attempt (tornado_engine.sources)
    sources: JobSources = field(default_factory=JobSources)
    # reuse of finished jobs' files and this process's downloads in flight (tornado_engine.coalesce)
    reuse: ReuseDesk | None = None
    owner: str = ""  # the job's tenant: reuse looks among its jobs only

    @property
    def ffmpeg_dir(self) -> str:
        return str(Path(self.ffmpeg.ffmpeg).parent)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled(f"job {self.job_id} cancelled")

    def acquire(self, pool: Pool) -> AbstractAsyncContextManager[None]:
        """A slot in ``pool``; the time spent waiting for it is recorded."""
        return self.pools.acquire(pool, lambda ms: self.record(Waited(pool, ms)))

    @contextlib.contextmanager
    def charging_stalls(self) -> Iterator[None]:
        """Around a yt-dlp call through the guard: a stage failure after the guard cut this job's stalled
        transfer is re-raised as kind ``stalled`` (yt-dlp itself saw only a short read or a reset)."""
        guard = self.guard
        if guard is not None:
            guard.take_stall(self.job_id)  # a cut from an earlier call is not this one's
        try:
            yield
        except StageError as exc:
            if exc.kind != "stalled" and guard is not None and guard.take_stall(self.job_id):
                raise type(exc)(self.stall.message, kind="stalled") from exc
            raise


def _short(value: Any, limit: int) -> str | None:
    return remote_text(str(value), limit) if value else None
