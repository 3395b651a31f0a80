"""The process's own metric aggregates (what a worker's Prometheus port reads), their hand-off to an
OpenTelemetry SDK a host sets, and when spans are made."""

from __future__ import annotations

import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from tornado_engine.telemetry import Histogram, Instruments, Tally, TracingSwitch


def _counts(histogram: Histogram, **attributes: str) -> list[float]:
    (counts,) = [c for key, c, _ in histogram.read() if key == frozenset(attributes.items())]
    return counts


def test_a_value_on_a_bound_counts_in_that_bound_bucket_and_above_the_last_in_inf() -> None:
    histogram = Histogram("t.h", "text")
    bounds = Histogram.bounds
    for value in (0.0, bounds[0], 0.0011, bounds[-1], bounds[-1] + 0.5, 1e9):
        histogram.record(value)
    counts = _counts(histogram)
    assert len(counts) == len(bounds) + 1
    assert counts[0] == 2  # 0 and exactly 0.001 (Prometheus' le is inclusive)
    assert counts[1] == 1  # 0.0011 in (0.001, 0.005]
    assert counts[len(bounds) - 1] == 1  # exactly 3600
    assert counts[-1] == 2  # +Inf
    assert sum(counts) == 6


def test_each_attribute_set_has_its_own_buckets_sum_and_count() -> None:
    histogram = Histogram("t.h", "text")
    histogram.record(0.375, {"tornado.stage": "mux", "error.type": ""})
    histogram.record(0.5, {"error.type": "", "tornado.stage": "mux"})  # the same set in another order
    histogram.record(7.0, {"tornado.stage": "upload", "error.type": "network"})
    histogram.record(0.01)
    histogram.record(0.02, {})
    rows = {key: (sum(counts), total) for key, counts, total in histogram.read()}
    assert rows == {
        frozenset({("tornado.stage", "mux"), ("error.type", "")}): (2, 0.875),
        frozenset({("tornado.stage", "upload"), ("error.type", "network")}): (1, 7.0),
        frozenset(): (2, 0.03),
    }
    assert _counts(histogram, **{"tornado.stage": "mux", "error.type": ""})[7] == 2  # both in (0.25, 0.5]


def test_counters_add_up_per_attribute_set() -> None:
    tally = Tally("t.c", "By", "text")
    tally.add(10, {"network.io.direction": "upload"})
    tally.add(5, {"network.io.direction": "upload"})
    tally.add(1)
    assert dict(tally.read()) == {frozenset({("network.io.direction", "upload")}): 15, frozenset(): 1}


def test_a_host_sdk_gets_the_same_counts_through_opentelemetry() -> None:
    reader = InMemoryMetricReader()
    made = Instruments(MeterProvider(metric_readers=[reader]).get_meter("tornado_engine"))
    made.stage_duration.record(0.001, {"tornado.stage": "mux"})
    made.stage_duration.record(4000.0, {"tornado.stage": "mux"})
    made.finished.add(2, {"tornado.job.status": "Completed"})
    data = reader.get_metrics_data()
    assert data is not None
    points = {m.name: m.data.data_points[0] for m in data.resource_metrics[0].scope_metrics[0].metrics}
    stage = points["tornado.stage.duration"]
    assert isinstance(stage, HistogramDataPoint)
    local = _counts(made.stage_duration, **{"tornado.stage": "mux"})
    assert list(stage.bucket_counts) == [int(c) for c in local] and local[0] == local[-1] == 1
    assert (stage.count, stage.sum) == (2, 4000.001)
    assert getattr(points["tornado.jobs.finished"], "value", None) == 2


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_tracing_is_asked_for_at_most_once_an_interval_until_on_then_stays_on() -> None:
    clock, provider, asked = _Clock(), [False], []

    def provider_set() -> bool:
        asked.append(clock.now)
        return provider[0]

    switch = TracingSwitch(provider_set, clock, interval=1.0)
    assert not switch.on()
    provider[0] = True  # the host sets a provider
    clock.now += 0.5
    assert not switch.on()  # not asked again yet
    clock.now += 0.5
    assert switch.on()
    clock.now += 10.0
    assert switch.on() and switch.on()
    assert asked == [100.0, 101.0]


def test_a_recheck_asks_again_at_the_next_span() -> None:
    clock, provider = _Clock(), [False]
    switch = TracingSwitch(lambda: provider[0], clock, interval=1.0)
    assert not switch.on()
    provider[0] = True
    switch.recheck()  # an engine starting right after the host set its provider
    assert switch.on()


def test_values_added_from_several_threads_are_all_counted_whenever_they_are_read() -> None:
    tally = Tally("tornado.jobs.finished", "{job}", "")
    histogram = Histogram("tornado.stage.duration", "")
    seen: list[list[float]] = [[] for _ in range(4)]

    def add(reads: list[float]) -> None:
        for number in range(1000):
            tally.add(1, {"tornado.job.status": "Completed"})
            histogram.record(0.002, {"tornado.stage": "mux"})
            if number % 20 == 0:  # reads fold while others keep adding
                reads.append(sum(value for _, value in tally.read()))

    threads = [threading.Thread(target=add, args=(reads,)) for reads in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert dict(tally.read()) == {frozenset({("tornado.job.status", "Completed")}): 4000}
    assert _counts(histogram, **{"tornado.stage": "mux"})[1] == 4000  # the (0.001, 0.005] bucket
    assert all(reads == sorted(reads) for reads in seen)  # a read never loses what an earlier one counted
