"""The outcome classification table, case by case, through whole engine jobs with real yt-dlp.

Content errors come from the test extractor plugin (tests/plugins/yt_dlp_plugins/extractor/engine_test.py,
``/ie/<case>``); technical ones from the fixture server's fault routes and from sockets that refuse or
never answer. Every job runs with a tiny-delay RetryPolicy, so the retry counts are checked exactly.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tornado_engine import Engine, JobRequest, RetryPolicy, Status
from tornado_engine.models import Job
from tornado_engine.testing import MediaServer

pytestmark = pytest.mark.integration

MAX_RETRIES = 2


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    policy = RetryPolicy(max_retries=MAX_RETRIES, base_delay=0.01, max_delay=0.05)
    # expand_playlists=False: create_job does not probe the URL first, so every request counted below
    # is one of the job's own attempts
    async with Engine.open(
        data_dir=tmp_path / "engine",
        concurrency=4,
        poll_interval=0.1,
        retry=policy,
        socket_timeout=1.0,
        expand_playlists=False,
    ) as eng:
        yield eng


async def run_job(engine: Engine, url: str) -> Job:
    created = await engine.create_job(JobRequest(url=url))
    return await engine.wait(created.job_id, timeout=120)


@pytest.fixture(scope="module")
def refused_url() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/video.mp4"


@pytest.fixture(scope="module")
def silent_url() -> Iterator[str]:
    with socket.socket() as s:  # listens (the kernel completes the handshake) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/video.mp4"


@dataclass(frozen=True)
class Case:
    path: str  # on the media server, or "refused" / "silent"
    status: Status
    error_type: str
    error: str | tuple[str, ...]  # a part of the error text (any one of them)
    retries: int


F, W, S = Status.FAILED, Status.WARNING, Status.SKIPPED
CASES: dict[str, Case] = {
    # content issues (test extractor): Warning, never retried, our own sentence
    "private": Case("ie/private", W, "warning", "This video is private", 0),
    "members-only": Case("ie/members", W, "warning", "This video is for channel members only", 0),
    "login": Case("ie/login", W, "warning", "This video requires signing in", 0),
    "geo-blocked": Case("ie/geo", W, "warning", "This video is not available in this region", 0),
    "removed": Case("ie/removed", W, "warning", "This video is unavailable", 0),
    # cannot be processed: Skipped
    "drm-reported": Case("ie/drm", S, "warning", "This content is DRM protected and cannot be processed", 0),
    "drm-formats": Case("ie/drmformats", S, "warning", "This content is DRM protected", 0),
    # technical, permanent: Failed at once
    "bot-check": Case("ie/bot", F, "error", "The media source asked for a bot check", 0),
    "extractor-crash": Case("ie/bug", F, "error", "An extractor error has occurred", 0),
    "http-404": Case("status/404/{token}", F, "error", "HTTP Error 404: Not Found", 0),
    # technical, transient: retried up to the limit, then Failed
    "http-500": Case("status/500/{token}", F, "error", "HTTP Error 500", MAX_RETRIES),
    "http-503": Case("status/503/{token}", F, "error", "HTTP Error 503", MAX_RETRIES),
    "http-429": Case("status/429/{token}", F, "error", "HTTP Error 429", MAX_RETRIES),
    # Every yt-dlp request goes through the engine's network guard (a filtering proxy): a reset behind it
    # reaches yt-dlp as a body cut short; a refused connection as the proxy's 502, which carries the
    # origin's cause back (test_unreachable_origin.py): the job says "Connection refused by ...".
    "connection-reset": Case(
        "drop/progressive.mp4", F, "error", ("Connection reset by peer", "more expected"), MAX_RETRIES
    ),
    "truncated-body": Case("short/progressive.mp4", F, "error", "1000 more expected", MAX_RETRIES),
    "connection-refused": Case("refused", F, "error", "Connection refused by 127.0.0.1:", MAX_RETRIES),
    "timeout": Case("silent", F, "error", "timed out", MAX_RETRIES),
    # transient, then fine: Completed, the retries counted
    "flaky-then-ok": Case("ie/flaky-2-{token}", Status.COMPLETED, "", "", 2),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_outcome(
    name: str, engine: Engine, media_server: MediaServer, refused_url: str, silent_url: str
) -> None:
    case = CASES[name]
    token = uuid.uuid4().hex[:12]
    specials = {"refused": refused_url, "silent": silent_url}
    url = specials.get(case.path) or media_server.url(case.path.format(token=token))
    path = "/" + url.split("/", 3)[3]
    hits_before = media_server.hits[path]

    job = await run_job(engine, url)

    assert job.status is case.status, job.to_api()
    assert job.download_retries == case.retries
    assert job.upload_retries == 0
    if case.status is Status.COMPLETED:
        assert job.error is None and job.error_type is None and job.s3_url
        return
    assert job.error_type == case.error_type
    wanted = case.error if isinstance(case.error, tuple) else (case.error,)
    assert job.error and any(part in job.error for part in wanted), job.error
    # short, human, one line, naming no internal tool
    assert len(job.error) <= 300 and "\n" not in job.error and not job.error.startswith(("ERROR", "["))
    assert not any(word in job.error.lower() for word in ("yt-dlp", "youtube-dl", "yt_dlp", "ffmpeg"))
    api = job.to_api()
    assert (api["status"], api["error_type"], api["error"]) == (case.status.value, case.error_type, job.error)
    if case.path.startswith("status/"):
        # each attempt reached the server: permanent ones once, transient ones 1 + retries times
        assert media_server.hits[path] - hits_before == case.retries + 1


def test_every_kind_of_the_issue_is_covered() -> None:
    """The classes the engine promises: each has at least one row above."""

    def by_status(status: Status) -> set[str]:
        return {n for n, c in CASES.items() if c.status is status}

    assert {"private", "members-only", "geo-blocked", "removed"} <= by_status(Status.WARNING)
    assert {"drm-reported"} <= by_status(Status.SKIPPED)
    technical = {"connection-refused", "connection-reset", "timeout", "http-500", "http-429"}
    assert technical | {"truncated-body", "bot-check"} <= by_status(Status.FAILED)
