"""The fast download path (pipeline/fastpath/) against the fixture server on 127.0.0.1.

Small chunks and buffers make the fixtures' small files travel as many ranged requests over several
connections, so the parallel machinery is exercised without big files.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tornado_engine import Engine, JobRequest, Status
from tornado_engine.errors import DownloadError, JobCancelled
from tornado_engine.netguard import NetGuard
from tornado_engine.pipeline.fastpath import FastDash, FastPathTuning, download_sync, eligible
from tornado_engine.pipeline.resolver import resolve_sync
from tornado_engine.safety import NetworkPolicy
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

LOOPBACK = NetworkPolicy.build(["127.0.0.0/8"])
SMALL = FastPathTuning(connections=4, chunk_size=64 * 1024, min_chunk_size=32 * 1024, buffer_size=16 * 1024)


def _info(url: str, format_id: str = "mp4", ext: str = "mp4", **fmt: Any) -> dict[str, Any]:
    """What the resolver returns for a direct file (yt-dlp's generic extractor), trimmed."""
    f = {"format_id": format_id, "url": url, "ext": ext, "protocol": url.split(":", 1)[0], **fmt}
    return {"id": "x", "title": "x", "formats": [f], "tornado_selected_format_ids": [format_id]}


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, int]] = []
        self.lock = threading.Lock()

    def __call__(self, pct: float, done: int, speed: float | None, eta: float | None) -> None:
        with self.lock:
            self.calls.append((pct, done))


def _fetch(info: dict[str, Any], job_dir: Path, **kw: Any) -> Any:
    kw.setdefault("policy", LOOPBACK)
    kw.setdefault("tuning", SMALL)
    kw.setdefault("cancel", threading.Event())
    kw.setdefault("on_progress", Progress())
    job_dir.mkdir(parents=True, exist_ok=True)
    return download_sync(info, job_dir, socket_timeout=5.0, **kw)


@pytest.fixture(scope="module")
def no_range_server(media_root: Path) -> Iterator[str]:
    """Serves files with 200 and the whole body whatever the Range header says (no Accept-Ranges)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.do_GET(head=True)

        def do_GET(self, head: bool = False) -> None:
            path = media_root / self.path.lstrip("/").split("?")[0]
            if not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the fast path hangs up on a 200 it does not want: no tracebacks

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def slow_server(media_root: Path) -> Iterator[MediaServer]:
    with MediaServer(media_root, slow_bytes_per_sec=16 * 1024) as srv:
        yield srv


# -- eligibility (which resolved formats the fast path takes) --------------------------------------------


def test_only_single_plain_http_files_are_eligible() -> None:
    url = "http://127.0.0.1:1/v.mp4"
    assert eligible(_info(url)) is not None
    assert eligible(_info("https://example.com/v.mp4")) is not None
    two = _info(url)
    two["formats"].append({**two["formats"][0], "format_id": "a"})
    two["tornado_selected_format_ids"] = ["mp4", "a"]
    assert eligible(two) is None  # video + audio: yt-dlp (then the muxer)
    dash = _info(url, protocol="http_dash_segments", fragments=[{"url": url}])
    assert isinstance(eligible(dash), FastDash)  # fragments on one origin: see the DASH test below
    assert eligible(_info(url, protocol="m3u8_native")) is None
    assert eligible(_info(url, cookies="a=b")) is None
    assert eligible(_info(url, ext="sh")) is None  # yt-dlp refuses odd extensions in its own words
    assert eligible(_info(url, http_headers={"X-Evil": "a\r\nHost: other"})) is None
    assert eligible({**_info(url), "is_live": True}) is None
    source = eligible(_info(url, format_id="../x y", http_headers={"Range": "bytes=5-", "Referer": "r"}))
    assert source is not None
    assert source.filename == "media.___x_y.mp4"  # one safe path component
    assert source.headers == (("Referer", "r"),)  # ours (Range, Host ...) are never taken from the source


def test_dash_with_plain_fragment_urls_is_eligible() -> None:
    base = "http://127.0.0.1:1/dash/"
    fragments = [{"path": "init-0.m4s"}, {"path": "chunk-0-1.m4s", "duration": 2.0}]
    video = {"format_id": "0", "ext": "mp4", "protocol": "http_dash_segments", "fragment_base_url": base,
             "fragments": fragments, "url": base + "m.mpd", "tbr": 800}  # fmt: skip
    audio = {**video, "format_id": "1", "ext": "m4a", "tbr": 128}
    info = {"id": "x", "duration": 4, "formats": [video, audio], "tornado_selected_format_ids": ["0", "1"]}
    dash = eligible(info)
    assert isinstance(dash, FastDash)
    assert [st.filename for st in dash.streams] == ["media.0.mp4", "media.1.m4a"]
    assert dash.streams[0].fragments == (base + "init-0.m4s", base + "chunk-0-1.m4s")
    assert dash.streams[0].weight > dash.streams[1].weight  # the video's share of the percent is larger
    ranged = {**audio, "fragments": [{"url": base + "a.mp4", "range": "0-99"}]}
    assert eligible({**info, "formats": [video, ranged]}) is None  # byte ranges in one file: yt-dlp
    elsewhere = {**audio, "fragment_base_url": "http://127.0.0.2:1/dash/"}
    assert eligible({**info, "formats": [video, elsewhere]}) is None  # one origin only
    assert eligible({**info, "formats": [video, {**audio, "has_drm": True}]}) is None


# -- downloads --------------------------------------------------------------------------------------------


def test_bytes_identical_over_several_connections(
    media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    source = media_set.path(media_set.progressive_mp4)
    before = media_server.hits["/" + media_set.progressive_mp4]
    progress = Progress()
    result = _fetch(
        _info(media_server.url(media_set.progressive_mp4)), tmp_path / "job", on_progress=progress
    )
    assert result is not None
    assert [p.name for p in result.files] == ["media.mp4.mp4"]
    assert result.files[0].read_bytes() == source.read_bytes()
    assert result.bytes == source.stat().st_size
    assert media_server.hits["/" + media_set.progressive_mp4] - before >= 3  # several ranged requests
    assert list((tmp_path / "job").iterdir()) == result.files  # nothing else left behind


def test_dash_fragments_are_joined_in_order(
    media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    info = resolve_sync(media_server.url(media_set.dash_mpd), None, 5.0)
    progress = Progress()
    result = _fetch(info, tmp_path, on_progress=progress, tuning=FastPathTuning(connections=3))
    assert result is not None
    by_id = {str(f["format_id"]): f for f in info["formats"]}
    for path, format_id in zip(result.files, result.format_ids, strict=True):
        fragments = by_id[format_id]["fragments"]
        expected = b"".join(media_set.path("dash/" + f["path"]).read_bytes() for f in fragments)
        assert path.read_bytes() == expected, path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in result.files)
    percents = [p for p, _ in progress.calls]
    assert percents == sorted(percents) and percents[-1] == 100.0


def test_descriptors_past_fd_setsize(media_server: MediaServer, media_set: MediaSet, tmp_path: Path) -> None:
    """With hundreds of jobs at once, sockets get descriptors above 1024, which select() refuses."""
    held = []
    with open(os.devnull, "rb") as devnull:
        try:
            while not held or held[-1] < 1100:
                held.append(os.dup(devnull.fileno()))
            result = _fetch(_info(media_server.url(media_set.progressive_mp4)), tmp_path)
        finally:
            for fd in held:
                os.close(fd)
    assert result is not None
    assert result.files[0].read_bytes() == media_set.path(media_set.progressive_mp4).read_bytes()


def test_progress_is_monotonic_and_ends_at_the_size(
    media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    size = media_set.path(media_set.progressive_mp4).stat().st_size
    progress = Progress()
    tuning = FastPathTuning(connections=4, chunk_size=32 * 1024, min_chunk_size=8 * 1024, buffer_size=8192)
    result = _fetch(
        _info(media_server.url(media_set.progressive_mp4)), tmp_path, on_progress=progress, tuning=tuning
    )
    assert result is not None
    percents = [p for p, _ in progress.calls]
    done = [d for _, d in progress.calls]
    assert len(progress.calls) >= 2
    assert percents == sorted(percents) and done == sorted(done)
    assert progress.calls[-1] == (100.0, size)
    assert all(0 < p <= 100 for p in percents)


def test_cancel_stops_within_two_seconds(
    slow_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    cancel = threading.Event()
    outcome: list[BaseException | object] = []
    info = _info(slow_server.url("slow/" + media_set.progressive_mp4))

    def run() -> None:
        try:
            outcome.append(_fetch(info, tmp_path, cancel=cancel))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.6)  # at 16 KiB/s per connection the file takes many seconds
    assert not outcome, "finished before the cancel: the test proves nothing"
    cancelled_at = time.monotonic()
    cancel.set()
    worker.join(5)
    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 2.0
    assert isinstance(outcome[0], JobCancelled), outcome
    # the partial file stays with its sidecar (a shutdown's job resumes it; a cancelled job's folder goes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media.mp4.mp4", "media.mp4.mp4.resume.json"]
    assert not [t for t in threading.enumerate() if t.name == "fastpath"]  # every connection ended


def test_server_without_range_support_falls_back(
    no_range_server: str, media_set: MediaSet, tmp_path: Path
) -> None:
    result = _fetch(_info(f"{no_range_server}/{media_set.progressive_mp4}"), tmp_path)
    assert result is None  # the caller runs yt-dlp
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("route", ["status/404/x.mp4", "status/503/x.mp4", "missing.mp4"])
def test_failed_first_request_falls_back(media_server: MediaServer, route: str, tmp_path: Path) -> None:
    """yt-dlp meets (and words) those errors as it always did: same texts, kinds and retries."""
    assert _fetch(_info(media_server.url(route)), tmp_path) is None


def test_reset_mid_body_is_a_transient_network_error_and_the_retry_resumes(
    media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    """The bytes a reset cut short stay, with their sidecar; the next try asks only for the rest."""
    rel = media_set.progressive_mp4
    source = media_set.path(rel).read_bytes()
    media_server.reset_once(rel, after=40_000)  # the first response, 64 KiB asked, stops at 40 kB
    before = len(media_server.requests)
    with pytest.raises(DownloadError) as caught:
        _fetch(_info(media_server.url(rel)), tmp_path)
    assert caught.value.kind in ("network", "truncated")
    assert "Connection reset by peer" in caught.value.message or "expected" in caught.value.message
    assert {p.name for p in tmp_path.iterdir()} == {"media.mp4.mp4", "media.mp4.mp4.resume.json"}
    first = [r for r in media_server.requests[before:] if r.path == f"/{rel}"]

    before = len(media_server.requests)
    result = _fetch(_info(media_server.url(rel)), tmp_path)
    assert result.files[0].read_bytes() == source
    assert [p.name for p in tmp_path.iterdir()] == ["media.mp4.mp4"]  # the sidecar went with the end
    second = [r for r in media_server.requests[before:] if r.path == f"/{rel}"]
    assert second and all(r.if_range for r in second)  # "only if it is still the same version"
    starts = sorted(int((r.range or "").split("=")[1].split("-")[0]) for r in second)
    assert starts[0] >= 40_000 - SMALL.buffer_size  # bytes 0..~40 kB were not asked for again
    assert first[0].range == "bytes=0-65535" and first[0].if_range is None  # a fresh start


def test_network_policy_refuses_a_blocked_address(
    media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    path = "/" + media_set.progressive_mp4
    before = media_server.hits[path]
    public_only = NetworkPolicy.build([])  # the default: loopback is not a public address
    with pytest.raises(DownloadError, match="Blocked by network policy") as caught:
        _fetch(_info(media_server.url(media_set.progressive_mp4)), tmp_path, policy=public_only)
    assert caught.value.kind == "http_error"  # permanent: never retried
    assert media_server.hits[path] == before  # nothing was sent to it


def test_through_the_guard_when_no_policy_is_given(
    media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    """Without a policy the connections are CONNECT tunnels through the network guard, which judges them."""
    url = media_server.url(media_set.progressive_mp4)
    allowing = NetGuard(LOOPBACK)
    blocking = NetGuard(NetworkPolicy.build([]))
    try:
        result = _fetch(_info(url), tmp_path / "ok", policy=None, proxy=allowing.start())
        assert result is not None
        assert result.files[0].read_bytes() == media_set.path(media_set.progressive_mp4).read_bytes()
        with pytest.raises(DownloadError, match="Blocked by network policy"):
            _fetch(_info(url), tmp_path / "no", policy=None, proxy=blocking.start())
        assert blocking.blocked >= 1
    finally:
        allowing.stop()
        blocking.stop()


# -- through the engine -------------------------------------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    async with Engine.open(
        data_dir=tmp_path / "engine", concurrency=4, poll_interval=0.1, expand_playlists=False
    ) as eng:
        yield eng


async def test_engine_job_takes_the_fast_path(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    created = await engine.create_job(JobRequest(url=media_server.url(media_set.progressive_mp4)))
    job = await engine.wait(created.job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.to_api()
    assert job.download_strategy == "fastpath"
    assert job.to_api()["download_strategy"] == "fastpath"
    stored = Path((job.s3_url or "").removeprefix("file://"))
    assert stored.read_bytes() == media_set.path(media_set.progressive_mp4).read_bytes()  # moved, not remuxed


async def test_engine_falls_back_to_ytdlp(engine: Engine, no_range_server: str, media_set: MediaSet) -> None:
    created = await engine.create_job(JobRequest(url=f"{no_range_server}/{media_set.progressive_mp4}"))
    job = await engine.wait(created.job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.to_api()
    assert job.download_strategy == "ytdlp"


async def test_engine_dash_takes_the_fast_path(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Any
) -> None:
    created = await engine.create_job(JobRequest(url=media_server.url(media_set.dash_mpd)))
    job = await engine.wait(created.job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.to_api()
    assert job.download_strategy == "fastpath"
    info = probe((job.s3_url or "").removeprefix("file://"))
    kinds = {s["codec_type"]: s["codec_name"] for s in info["streams"]}
    assert kinds == {"video": "h264", "audio": "aac"}
    assert abs(float(info["format"]["duration"]) - media_set.duration) <= 0.2


async def test_engine_hls_uses_ytdlp(engine: Engine, media_server: MediaServer, media_set: MediaSet) -> None:
    created = await engine.create_job(JobRequest(url=media_server.url(media_set.hls_master)))
    job = await engine.wait(created.job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.to_api()
    assert job.download_strategy == "ytdlp"


async def test_engine_cancel_during_a_fast_download(
    engine: Engine, slow_server: MediaServer, media_set: MediaSet
) -> None:
    created = await engine.create_job(JobRequest(url=slow_server.url("slow/" + media_set.progressive_mp4)))
    async with asyncio.timeout(30):
        async for event in engine.events(created.job_id):  # until bytes arrive
            if event.bytes_done:
                break
    started = time.monotonic()
    await engine.cancel_job(created.job_id)
    job = await engine.wait(created.job_id, timeout=10)
    assert job.status is Status.CANCELLED, job.to_api()
    assert time.monotonic() - started < 2.0
