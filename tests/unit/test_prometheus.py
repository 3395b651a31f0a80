"""The worker's Prometheus exposition, made from the process's aggregates: the OpenTelemetry exporter's
names, labels and types (the README's queries use them), without ``_created`` samples."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest

from tornado_engine.prometheus import EngineCollector, label_name, metric_name, unit_word
from tornado_engine.telemetry import Attributes, Instruments, track

_SCOPE = 'otel_scope_name="tornado_engine",otel_scope_schema_url="",otel_scope_version=""'


def test_names_follow_the_opentelemetry_exporter() -> None:
    assert metric_name("tornado.job.io", "By", counter=True) == "tornado_job_io_bytes_total"
    assert metric_name("tornado.jobs.finished", "{job}", counter=True) == "tornado_jobs_finished_total"
    assert metric_name("tornado.job.duration", "s") == "tornado_job_duration_seconds"
    assert metric_name("tornado.jobs.active", "{job}") == "tornado_jobs_active"
    assert metric_name("x.latency_seconds", "s") == "x_latency_seconds"  # no unit twice
    assert metric_name("9lives", "1") == "_lives"
    assert unit_word("{slot}") == "" and unit_word("ms") == "milliseconds" and unit_word("m/s") == "m_s"
    assert label_name("tornado.job.status") == "tornado_job_status"
    assert label_name("network.io.direction") == "network_io_direction"


class _Pools:
    def __init__(self, held: int) -> None:
        self.held = held

    def gauges(self) -> Iterator[tuple[str, int, Attributes]]:
        yield "tornado.pool.active", self.held, {"tornado.pool": "prometheus-test"}


def _exposition(made: Instruments) -> list[str]:
    registry = CollectorRegistry()
    registry.register(EngineCollector(made))
    return generate_latest(registry).decode().splitlines()


def test_counters_histograms_and_gauges_are_exposed_as_the_exporter_did() -> None:
    made = Instruments(None)
    made.finished.add(2, {"tornado.job.status": "Completed", "error.type": ""})
    made.io.add(900, {"network.io.direction": "upload"})
    made.duration.record(0.005, {"tornado.job.status": "Completed"})
    made.duration.record(4000.0, {"tornado.job.status": "Completed"})
    pools = [_Pools(1), _Pools(2)]  # two engines in one process add up
    for source in pools:
        track(source)
    lines = _exposition(made)
    labels = f'{_SCOPE},tornado_job_status="Completed"'
    assert "# TYPE tornado_jobs_finished_total counter" in lines
    assert f'tornado_jobs_finished_total{{error_type="",{labels}}} 2.0' in lines
    assert f'tornado_job_io_bytes_total{{network_io_direction="upload",{_SCOPE}}} 900.0' in lines
    assert "# TYPE tornado_job_duration_seconds histogram" in lines
    assert f'tornado_job_duration_seconds_bucket{{le="0.001",{labels}}} 0.0' in lines
    assert f'tornado_job_duration_seconds_bucket{{le="0.005",{labels}}} 1.0' in lines
    assert f'tornado_job_duration_seconds_bucket{{le="3600.0",{labels}}} 1.0' in lines
    assert f'tornado_job_duration_seconds_bucket{{le="+Inf",{labels}}} 2.0' in lines
    assert f"tornado_job_duration_seconds_count{{{labels}}} 2.0" in lines
    assert f"tornado_job_duration_seconds_sum{{{labels}}} 4000.005" in lines
    assert "# TYPE tornado_pool_active gauge" in lines
    assert f'tornado_pool_active{{{_SCOPE},tornado_pool="prometheus-test"}} 3.0' in lines
    assert not [line for line in lines if "_created" in line]


def test_an_instrument_nothing_was_recorded_on_is_left_out() -> None:
    made = Instruments(None)
    made.submitted.add(1)
    families = {family.name: family for family in EngineCollector(made).collect()}
    assert "tornado_job_retries" not in families and "tornado_job_queue_wait_seconds" not in families
    (sample,) = families["tornado_jobs_submitted"].samples
    scope = {"otel_scope_name": "tornado_engine", "otel_scope_schema_url": "", "otel_scope_version": ""}
    assert (sample.name, sample.labels, sample.value) == ("tornado_jobs_submitted_total", scope, 1)
