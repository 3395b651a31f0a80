"""Resolve bounds (pure): a manifest judged on its bytes, counting segments without expanding them."""

from __future__ import annotations

import os

import pytest

from tornado_engine.bounds import ResolveBounds, info_problem, iso_duration, manifest_problem, size_problem
from tornado_engine.retry import outcome_for
from tornado_engine.scheduler import PoolLimits
from tornado_engine.states import Status

SMALL = ResolveBounds(max_manifest_bytes=1 << 20, max_segments=100, max_duration_seconds=3600)


def _hls(segments: int, seconds: float = 2.0, *, endlist: bool = True) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2"]
    for i in range(segments):
        lines += [f"#EXTINF:{seconds:.3f},", f"seg_{i}.ts"]
    return ("\n".join(lines + (["#EXT-X-ENDLIST"] if endlist else [])) + "\n").encode()


def _mpd(body: str, *, duration: str = "PT10S", kind: str = "static") -> bytes:
    return (
        '<?xml version="1.0"?>\n'
        f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="{kind}" mediaPresentationDuration="{duration}">'
        f'<Period><AdaptationSet><Representation id="v" bandwidth="1000">{body}</Representation>'
        "</AdaptationSet></Period></MPD>"
    ).encode()


def test_defaults_and_the_outcome() -> None:
    bounds = ResolveBounds()
    assert (bounds.max_manifest_bytes, bounds.max_segments, bounds.max_duration_seconds) == (
        16 * 2**20, 100_000, 86400.0,
    )  # fmt: skip
    outcome = outcome_for("too_large")
    assert outcome.status is Status.FAILED and not outcome.transient
    with pytest.raises(ValueError):
        ResolveBounds(max_segments=0)


def test_size_is_judged_before_anything_else() -> None:
    assert size_problem(1 << 20, SMALL) is None
    problem = size_problem((1 << 20) + 1, SMALL)
    assert problem is not None and problem.kind == "too_large" and "max_manifest_bytes" in problem.message
    assert manifest_problem(b"#EXTM3U\n" + b"#" * (1 << 20), SMALL) == problem


def test_hls_segment_count_and_declared_duration() -> None:
    assert manifest_problem(_hls(100), SMALL) is None
    problem = manifest_problem(_hls(101), SMALL)
    assert problem is not None and problem.kind == "too_large"
    assert "101 segments" in problem.message and "max_segments" in problem.message
    long = manifest_problem(_hls(50, seconds=100.0), SMALL)  # 5000 s declared, over an hour
    assert long is not None and "5000 s" in long.message and "max_duration_seconds" in long.message
    assert manifest_problem(_hls(50, seconds=100.0, endlist=False), SMALL) is None  # live: no end yet


def test_dash_timeline_repeats_are_counted_not_expanded() -> None:
    timeline = (
        '<SegmentTemplate timescale="1000" media="s$Number$.m4s">'
        "<SegmentTimeline>{}</SegmentTimeline></SegmentTemplate>"
    )
    assert manifest_problem(_mpd(timeline.format('<S t="0" d="2000" r="4"/>')), SMALL) is None
    huge = _mpd(timeline.format('<S t="0" d="2000" r="9999999"/>'), duration="PT50M")
    assert len(huge) < 1000
    problem = manifest_problem(huge, SMALL)
    assert problem is not None and "10,000,000 segments" in problem.message


def test_dash_template_duration_and_declared_months() -> None:
    template = '<SegmentTemplate timescale="1" duration="2" media="s$Number$.m4s"/>'
    assert manifest_problem(_mpd(template, duration="PT100S"), SMALL) is None
    many = manifest_problem(_mpd(template, duration="PT300S"), SMALL)  # 150 segments of 2 s
    assert many is not None and "150 segments" in many.message
    months = manifest_problem(_mpd(template, duration="P3M"), ResolveBounds())
    assert months is not None and "max_duration_seconds" in months.message
    assert manifest_problem(_mpd(template, duration="P3M", kind="dynamic"), ResolveBounds()) is not None
    assert manifest_problem(_mpd(template, duration="PT1H"), ResolveBounds()) is None


def test_a_tenant_quota_takes_the_duration_cap() -> None:
    bounds = ResolveBounds().with_quota(60)
    problem = manifest_problem(_hls(40, seconds=2.0), bounds)
    assert problem is not None and problem.kind == "quota_exceeded" and "at most 60 s" in problem.message
    assert ResolveBounds().with_quota(None) == ResolveBounds()


def test_iso_durations() -> None:
    assert iso_duration(b"PT1H2M3.5S") == 3723.5
    assert iso_duration(b"P1DT1S") == 86401
    assert iso_duration(b"nonsense") is None and iso_duration(b"P") is None


def test_other_bodies_pass() -> None:
    assert manifest_problem(b"<html><body>hello</body></html>", SMALL) is None


def test_resolved_info_second_line() -> None:
    fragments = [{"path": f"s{i}.m4s"} for i in range(101)]
    problem = info_problem({"duration": 10, "formats": [{"fragments": fragments}]}, SMALL)
    assert problem is not None and "101 segments" in problem.message
    assert info_problem({"duration": 7200, "formats": []}, SMALL) is not None
    assert info_problem({"duration": 7200, "is_live": True, "formats": []}, SMALL) is None
    assert info_problem({"duration": 10, "formats": [{"fragments": fragments[:5]}]}, SMALL) is None


def test_resolves_have_a_cpu_sized_pool_of_their_own() -> None:
    limits = PoolLimits()
    assert limits.resolve == max(1, os.cpu_count() or 2)
    assert PoolLimits(io=500).resolve == limits.resolve  # separate from the I/O waits
