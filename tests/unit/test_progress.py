"""One job-level percent across streams and stages (pure)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tornado_engine.progress import (
    STAGE_SLICES,
    DownloadProgress,
    Event,
    estimated_total,
    job_percent,
    transfer_rate,
)
from tornado_engine.states import Status, Step

# DASH as yt-dlp reports it: top-level duration None, per-format tbr and fragment durations
VIDEO = {"format_id": "0", "vcodec": "avc1", "tbr": 1000.0, "fragments": [{"duration": 1.0}] * 10}
AUDIO = {"format_id": "2", "vcodec": "none", "acodec": "mp4a", "fragments": [{"duration": 1.0}] * 10}


def frag(fid: str, index: int, count: int, done: int = 0, **kw: Any) -> dict[str, Any]:
    return {
        "status": "downloading",
        "info_dict": {"format_id": fid},
        "fragment_index": index,
        "fragment_count": count,
        "downloaded_bytes": done,
        **kw,
    }


def finished(fid: str, size: int = 0) -> dict[str, Any]:
    return {
        "status": "finished",
        "info_dict": {"format_id": fid},
        "downloaded_bytes": size,
        "total_bytes": size,
    }


def test_dash_weights_from_tbr_and_fragment_durations() -> None:
    p = DownloadProgress([VIDEO, AUDIO], None)
    assert p.weights["0"] == pytest.approx(1000 * 125 * 10)
    assert p.weights["2"] == pytest.approx(128 * 125 * 10)  # audio without tbr: 128 kbit/s assumed
    assert p.percent == 0.0


def test_dash_two_streams_monotonic_no_restart_and_100_at_end() -> None:
    p = DownloadProgress([VIDEO, AUDIO], None)
    seen = []
    for i in range(1, 11):
        seen.append(p.update(frag("0", i, 10, done=i * 125_000, total_bytes_estimate=5355)))
    seen.append(p.update(finished("0", 1_250_000)))
    video_done = seen[-1]
    share = 1000 / (1000 + 128)
    assert video_done == pytest.approx(100 * share)
    # audio starts: hooks restart at fragment 0 -- the job percent must not
    audio_first = p.update(frag("2", 0, 10, done=0, total_bytes_estimate=5355))
    assert audio_first == pytest.approx(video_done)
    seen.append(audio_first)
    for i in range(1, 11):
        seen.append(p.update(frag("2", i, 10, done=i * 16_000)))
    seen.append(p.update(finished("2", 160_000)))
    assert seen == sorted(seen)
    assert all(x > 0 for x in seen)
    assert seen[-1] == 100.0
    assert p.percent == 100.0
    # each audio fragment adds a small step, each video fragment a large one
    assert seen[1] - seen[0] > 5 * (seen[-2] - seen[-3])


def test_early_total_bytes_estimate_does_not_reweight() -> None:
    p = DownloadProgress([VIDEO, AUDIO], None)
    before = dict(p.weights)
    p.update(frag("2", 1, 10, done=800, total_bytes_estimate=5355))
    assert p.weights == before


def test_audio_first_then_video_still_monotonic() -> None:
    p = DownloadProgress([VIDEO, AUDIO], None)
    seq = [p.update(frag("2", i, 4)) for i in range(1, 5)] + [p.update(finished("2"))]
    seq += [p.update(frag("0", i, 4)) for i in range(0, 5)] + [p.update(finished("0"))]
    assert seq == sorted(seq)
    assert seq[4] == pytest.approx(100 * 128 / 1128)
    assert seq[-1] == 100.0


def test_total_bytes_based_updates() -> None:
    p = DownloadProgress([{"format_id": "18", "filesize": 1000}], 10.0)
    assert p.update({"status": "downloading", "info_dict": {"format_id": "18"},
                     "downloaded_bytes": 250, "total_bytes": 1000}) == 25.0  # fmt: skip
    assert p.update({"status": "downloading", "info_dict": {"format_id": "18"},
                     "downloaded_bytes": 500, "total_bytes": 1000}) == 50.0  # fmt: skip
    assert p.total_bytes_done == 500
    assert p.update(finished("18", 1000)) == 100.0
    assert p.total_bytes_done == 1000


def test_filesize_approx_and_total_bytes_weights() -> None:
    p = DownloadProgress(
        [{"format_id": "v", "filesize": 3000}, {"format_id": "a", "filesize_approx": 1000}], None
    )
    assert p.weights == {"v": 3000.0, "a": 1000.0}
    p.update({"status": "downloading", "info_dict": {"format_id": "a"}, "downloaded_bytes": 500,
              "total_bytes": 1000})  # fmt: skip
    assert p.percent == pytest.approx(12.5)
    p.update(finished("a", 1000))
    assert p.percent == pytest.approx(25.0)
    p.update(finished("v", 3000))
    assert p.percent == 100.0


def test_fragment_based_updates() -> None:
    p = DownloadProgress([{"format_id": "hls", "tbr": 800, "fragments": [{"duration": 2}] * 5}], None)
    assert [p.update(frag("hls", i, 5)) for i in range(6)] == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]


def test_unknown_size_stays_below_100_until_finished() -> None:
    p = DownloadProgress([{"format_id": "x"}], None)  # no size, no duration: fallback weight 1.0
    assert p.weights == {"x": 1.0}
    assert (
        p.update({"status": "downloading", "info_dict": {"format_id": "x"}, "downloaded_bytes": 10**9}) < 100
    )
    assert p.update(finished("x")) == 100.0


def test_unknown_size_uses_average_of_known() -> None:
    p = DownloadProgress([{"format_id": "v", "filesize": 4000}, {"format_id": "a"}], None)
    assert p.weights == {"v": 4000.0, "a": 4000.0}


def test_unforeseen_format_gets_an_average_share() -> None:
    p = DownloadProgress([VIDEO, AUDIO], None)
    p.update(finished("0"))
    before = p.percent
    p.update(frag("999", 1, 2))
    assert "999" in p.weights
    assert p.percent >= before  # never goes back
    p.update(finished("2"))
    p.update(finished("999"))
    assert p.percent == 100.0


def test_no_formats() -> None:
    p = DownloadProgress([], None)
    assert p.update(finished("x")) <= 100.0
    assert p.percent >= 0.0


def test_fraction_never_exceeds_one() -> None:
    p = DownloadProgress([{"format_id": "f", "filesize": 100}], None)
    p.update({"status": "downloading", "info_dict": {"format_id": "f"}, "downloaded_bytes": 500,
              "total_bytes": 100})  # fmt: skip
    assert p.percent == 100.0


@given(
    st.lists(
        st.tuples(st.sampled_from(["0", "2"]), st.integers(min_value=0, max_value=10), st.booleans()),
        max_size=40,
    )
)
def test_percent_is_monotonic_and_bounded(steps: list[tuple[str, int, bool]]) -> None:
    p = DownloadProgress([VIDEO, AUDIO], None)
    last = 0.0
    for fid, index, done in steps:
        value = p.update(finished(fid) if done else frag(fid, index, 10))
        assert last <= value <= 100.0
        last = value
    for fid in ("0", "2"):
        last = p.update(finished(fid))
    assert last == 100.0


def test_thread_safe_updates() -> None:
    p = DownloadProgress([{"format_id": "f", "fragments": [{"duration": 1}] * 400, "tbr": 100}], None)

    def worker(start: int) -> None:
        for i in range(start, 401, 4):
            p.update(frag("f", i, 400, done=i))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.percent == 100.0


# --------------------------------------------------------------------------- job_percent


@pytest.mark.parametrize(
    ("step", "stage", "expected"),
    [
        (Step.QUEUED, 0, 0.0),
        (Step.QUEUED, 100, 0.0),
        (Step.DOWNLOADING, 0, 0.0),
        (Step.DOWNLOADING, 50, 16.5),
        (Step.DOWNLOADING, 100, 33.0),
        (Step.MUXING, 0, 33.0),
        (Step.MUXING, 50, 49.5),
        (Step.MUXING, 100, 66.0),
        (Step.UPLOADING, 0, 66.0),
        (Step.UPLOADING, 100, 100.0),
        (Step.FINISHED, 0, 100.0),
        (Step.DOWNLOADING, -5, 0.0),
        (Step.DOWNLOADING, 150, 33.0),
        (Step.DOWNLOADING, 100 / 3, 11.0),
        (Step.MUXING, float("nan"), 66.0),  # as min/max have always taken it
    ],
)
def test_job_percent(step: Step, stage: float, expected: float) -> None:
    assert job_percent(step, stage) == expected


def test_stage_slices_match_stage_webhooks() -> None:
    # downloading 0 %, download_complete 33 %, muxing 33 %, mux_complete 66 %, uploading 66 %, completed 100 %
    assert STAGE_SLICES[Step.DOWNLOADING] == (0.0, 33.0)
    assert STAGE_SLICES[Step.MUXING] == (33.0, 66.0)
    assert STAGE_SLICES[Step.UPLOADING] == (66.0, 100.0)
    assert set(STAGE_SLICES) == set(Step)


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_job_percent_monotonic_across_stages(a: float, b: float) -> None:
    order = [Step.QUEUED, Step.DOWNLOADING, Step.MUXING, Step.UPLOADING, Step.FINISHED]
    values = [job_percent(step, x) for step in order for x in sorted((a, b))]
    assert values == sorted(values)
    assert all(0.0 <= v <= 100.0 for v in values)


# --------------------------------------------------------------------------- Event


def test_event_to_dict_minimal() -> None:
    e = Event("job-1", Status.PROCESSING, Step.DOWNLOADING, 12.5)
    d = e.to_dict()
    assert d == {"job_id": "job-1", "status": "Processing", "step": "Downloading", "percent": 12.5,
                 "stage_percent": 0.0}  # fmt: skip
    assert type(d["status"]) is str and type(d["step"]) is str
    assert json.loads(json.dumps(d)) == d


def test_event_to_dict_full() -> None:
    e = Event("j", Status.COMPLETED, Step.FINISHED, 100.0, 100.0, 10, 10, 1.5, 0.0, "done")
    assert e.to_dict() == {
        "job_id": "j",
        "status": "Completed",
        "step": "Finished",
        "percent": 100.0,
        "stage_percent": 100.0,
        "bytes_done": 10,
        "bytes_total": 10,
        "speed_bps": 1.5,
        "eta_seconds": 0.0,
        "message": "done",
    }
    assert e.status is Status.COMPLETED  # to_dict leaves the event alone


def test_event_is_frozen() -> None:
    e = Event("j", Status.PENDING, Step.QUEUED, 0.0)
    with pytest.raises(AttributeError):
        e.percent = 5.0  # type: ignore[misc]


def test_estimated_total_from_bytes_and_percent() -> None:
    assert estimated_total(25_000, 25.0) == 100_000  # one file of known size: exact
    assert estimated_total(100_000, 100.0) == 100_000
    assert estimated_total(500, 0.5) is None  # below 1 %: one early block says little
    assert estimated_total(0, 50.0) is None


def test_transfer_rate_speed_and_time_left() -> None:
    assert transfer_rate(4_000, 10_000, 2.0) == (2_000.0, 3.0)
    assert transfer_rate(10_000, 10_000, 2.0) == (5_000.0, 0.0)
    assert transfer_rate(4_000, None, 2.0) == (2_000.0, None)  # size unknown: a speed, no ETA
    assert transfer_rate(0, 10_000, 2.0) == (None, None)
    assert transfer_rate(4_000, 10_000, 0.0) == (None, None)
