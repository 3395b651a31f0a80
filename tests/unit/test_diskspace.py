"""A full disk, recognised wherever it surfaces, and the pre-download room check (pure, no event loop)."""

from __future__ import annotations

import errno
import sys

import pytest
import yt_dlp

from tornado_engine.diskspace import DEFAULT_RESERVE_BYTES, is_disk_full, mentions_disk_full, room_problem
from tornado_engine.results import Usage
from tornado_engine.retry import RetryPolicy, outcome_for
from tornado_engine.states import Status
from tornado_engine.storage.errors import classify, describe
from tornado_engine.ytdlp import map_error

MB = 1024 * 1024


def _enospc(path: str | None = None) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", path) if path else OSError(errno.ENOSPC, "x")


def _ytdlp_write_error() -> yt_dlp.utils.DownloadError:
    """What yt-dlp's HTTP downloader raises when its write fails (report_error inside ``except OSError``)."""
    try:
        raise _enospc()
    except OSError as err:
        return yt_dlp.utils.DownloadError(f"ERROR: unable to write data: {err}", sys.exc_info())


def test_disk_full_is_a_transient_failure() -> None:
    outcome = outcome_for("disk_full")
    assert (outcome.status, outcome.error_type, outcome.transient) == (Status.FAILED, "error", True)
    assert "disk space" in outcome.message
    assert RetryPolicy(max_retries=2).should_retry("disk_full", 1)


@pytest.mark.parametrize(
    "exc",
    [
        _enospc(),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        RuntimeError("ffmpeg: av_interleaved_write_frame(): No space left on device"),
        _ytdlp_write_error(),
    ],
)
def test_full_disks_are_recognised(exc: BaseException) -> None:
    assert is_disk_full(exc)


def test_a_full_disk_deep_in_the_cause_chain_is_recognised() -> None:
    try:
        try:
            raise _enospc()
        except OSError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert is_disk_full(outer)


@pytest.mark.parametrize(
    "exc",
    [
        None,
        OSError(errno.ECONNRESET, "Connection reset by peer"),
        OSError(errno.EACCES, "Permission denied"),
        ValueError("Errno 280 is not a thing"),
        yt_dlp.utils.DownloadError("ERROR: HTTP Error 404: Not Found"),
    ],
)
def test_other_failures_are_not_a_full_disk(exc: BaseException | None) -> None:
    assert not is_disk_full(exc)


def test_mentions_disk_full_reads_tool_output() -> None:
    assert mentions_disk_full("Error writing trailer of out.mp4: No space left on device")
    assert mentions_disk_full("[Errno 28] whatever follows")
    assert not mentions_disk_full("Conversion failed!")


def test_ytdlp_write_error_maps_to_disk_full_with_our_sentence() -> None:
    mapped = map_error(_ytdlp_write_error(), resolving=False)
    assert (mapped.stage, mapped.kind) == ("download", "disk_full")
    assert mapped.message == outcome_for("disk_full").message


def test_ytdlp_text_only_error_maps_to_disk_full() -> None:
    mapped = map_error(
        Exception("ERROR: unable to write data: [Errno 28] No space left on device"), resolving=False
    )
    assert mapped.kind == "disk_full"


def test_local_storage_full_disk_is_disk_full_without_the_path() -> None:
    exc = _enospc("/srv/secret/media/x.mp4")
    assert classify(exc).kind == "disk_full"
    text = describe(exc)
    assert "No space left on device" in text and "/srv/secret" not in text


def test_a_refused_storage_key_stays_denied_even_on_a_full_disk_message() -> None:
    try:
        raise PermissionError(errno.EACCES, "denied") from _enospc()
    except PermissionError as exc:
        assert classify(exc).kind == "storage_denied"


@pytest.mark.parametrize(
    ("free", "expected", "reserve", "fits"),
    [
        (1000 * MB, 100 * MB, 256 * MB, True),
        (356 * MB, 100 * MB, 256 * MB, True),  # exactly fits above the reserve
        (355 * MB, 100 * MB, 256 * MB, False),
        (300 * MB, 0, 256 * MB, True),  # unknown size: the reserve itself must be free
        (200 * MB, 0, 256 * MB, False),
        (10 * MB, 20 * MB, 0, False),
        (10 * MB, 0, 0, True),
        (0, 0, 0, False),  # nothing free at all
    ],
)
def test_room_problem(free: int, expected: int, reserve: int, fits: bool) -> None:
    problem = room_problem(free=free, expected=expected, reserve=reserve)
    assert (problem is None) == fits
    if problem is not None:
        assert problem.startswith("Not enough disk space")
        assert "/" not in problem  # says sizes, never a path


def test_room_problem_says_the_sizes() -> None:
    problem = room_problem(free=300 * MB, expected=100 * MB, reserve=256 * MB)
    assert problem == (
        "Not enough disk space: the download needs about 100 MB, 44 MB are free beyond the 256 MB "
        "reserve and the running downloads"
    )


def test_room_problem_counts_what_running_downloads_will_still_write() -> None:
    assert room_problem(free=500 * MB, expected=100 * MB, reserve=256 * MB, promised=100 * MB) is None
    assert room_problem(free=500 * MB, expected=100 * MB, reserve=256 * MB, promised=200 * MB) is not None
    # a download already further than it promised owes nothing (never a negative debt)
    assert room_problem(free=400 * MB, expected=100 * MB, reserve=256 * MB, promised=-50 * MB) is None


def test_default_reserve_is_a_few_hundred_megabytes() -> None:
    assert 100 * MB <= DEFAULT_RESERVE_BYTES <= 1024 * MB


def test_usage_carries_the_temporary_bytes() -> None:
    usage = Usage.build({"Completed": 1}, 10, 0, None, temp=4096)
    assert usage.temp_bytes == 4096
    assert Usage.build({}, 0, 0, None).temp_bytes == 0
    assert "temp_bytes" in usage.model_dump()
