"""The stall policy (bounds.py): a sliding window of byte counts fed with timestamps, no clock, no loop."""

from __future__ import annotations

import pytest

from tornado_engine.bounds import StallPolicy, WriteWatch
from tornado_engine.retry import OUTCOMES

POLICY = StallPolicy(min_bytes_per_second=1024, window_seconds=30)


def test_defaults_are_under_1_kib_per_second_for_30_seconds() -> None:
    assert StallPolicy() == POLICY
    assert POLICY.message == "The source stopped sending data (under 1 KiB/s for 30 s)"
    assert StallPolicy(500, 2.5).message == "The source stopped sending data (under 500 B/s for 2.5 s)"


def test_a_new_transfer_gets_one_whole_window_first() -> None:
    meter = POLICY.meter(100.0)
    assert not meter.stalled(100.0)
    assert not meter.stalled(129.9)  # nothing yet, but the window is not over
    assert meter.stalled(130.0)


def test_a_drip_of_a_byte_a_second_is_a_stall() -> None:
    meter = POLICY.meter(0.0)
    for t in range(60):
        meter.feed(1, float(t))
        assert meter.stalled(float(t)) == (t >= 30)


def test_a_steady_source_at_the_minimum_rate_is_no_stall() -> None:
    meter = POLICY.meter(0.0)
    for tenth in range(1200):  # 120 s at 1100 B/s, fed ten times a second
        meter.feed(110, tenth / 10)
        assert not meter.stalled(tenth / 10)


def test_a_burst_then_silence_stalls_once_the_burst_leaves_the_window() -> None:
    meter = POLICY.meter(0.0)
    meter.feed(10 * 1024 * 1024, 1.0)
    assert not meter.stalled(30.0)
    assert not meter.stalled(31.0)  # the burst's bucket is still (partly) inside the window
    assert meter.stalled(33.0)


def test_restart_gives_a_fresh_window() -> None:
    meter = POLICY.meter(0.0)
    assert meter.stalled(40.0)
    meter.restart(40.0)
    assert not meter.stalled(69.0)
    assert meter.stalled(70.0)


def test_memory_stays_bounded_at_any_rate() -> None:
    meter = POLICY.meter(0.0)
    for i in range(100_000):
        meter.feed(1500, i / 1000)
    assert len(meter._buckets) <= 34


def test_zero_minimum_never_stalls_and_bad_numbers_are_refused() -> None:
    assert not StallPolicy(min_bytes_per_second=0).meter(0.0).stalled(1e6)
    with pytest.raises(ValueError):
        StallPolicy(window_seconds=0)
    with pytest.raises(ValueError):
        StallPolicy(min_bytes_per_second=-1)


def test_a_stall_is_retried_like_a_timeout() -> None:
    assert OUTCOMES["stalled"].transient == OUTCOMES["timeout"].transient is True
    assert OUTCOMES["stalled"].status == OUTCOMES["timeout"].status


def test_a_write_may_take_a_part_at_the_minimum_rate_plus_a_window() -> None:
    """Pure: an SDK reports once per part; a slow but moving upload is not a stall."""
    policy = StallPolicy(min_bytes_per_second=1000, window_seconds=10)
    watch = WriteWatch(policy, unit=50_000, total=120_000, now=0.0)
    assert not watch.stalled(60.0)  # 10 s + 50 kB at 1 kB/s
    assert watch.stalled(60.1)
    watch.report(50_000, now=60.0)
    watch.report(50_000, now=65.0)  # no new bytes: no sign of life
    assert watch.stalled(120.1)
    watch.report(100_000, now=100.0)
    assert not watch.stalled(130.0) and watch.stalled(130.1)  # the last 20 kB: 10 s + 20 s
    assert not WriteWatch(StallPolicy(min_bytes_per_second=0), 1, 1, 0.0).stalled(1e9)
