"""A real job's story: its log records (with the job's fields on each), its metrics (an in-memory reader)
and its span tree (an in-memory exporter), for a job that completes and one retried then failed."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from jobkit import run_job
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tornado_engine import Engine, RetryPolicy, Status
from tornado_engine.cli_logs import JsonFormatter
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

_Points = dict[tuple[str, frozenset[tuple[str, Any]]], float]


@functools.cache
def _otel() -> tuple[InMemoryMetricReader, InMemorySpanExporter]:
    """The process's SDK providers (set once: OpenTelemetry refuses to replace a global provider)."""
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return reader, exporter


def _points(reader: InMemoryMetricReader) -> _Points:
    """Every data point now: a counter's value, a histogram's count."""
    out: _Points = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, frozenset(point.attributes.items()))
                    out[key] = getattr(point, "value", None) or getattr(point, "count", 0)
    return out


def _delta(before: _Points, after: _Points, name: str, **attributes: Any) -> float:
    key = (name, frozenset(attributes.items()))
    return after.get(key, 0) - before.get(key, 0)


def _story(caplog: pytest.LogCaptureFixture, job_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "job_id", None) == job_id]


async def test_a_completed_job_tells_its_story(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, caplog: pytest.LogCaptureFixture
) -> None:
    reader, exporter = _otel()
    caplog.set_level(logging.INFO, logger="tornado_engine")
    before = _points(reader)
    async with Engine.open(data_dir=tmp_path / "e", poll_interval=0.1) as engine:
        url = media_server.url(f"{media_set.progressive_mp4}?token=s3cr3tTOKEN")
        job = await run_job(engine, url=url)
    after = _points(reader)
    assert job.status is Status.COMPLETED and job.file_size
    # the job's own timings, where its fixed cost goes (benchmarks/bench_big_progressive.py prints them)
    assert job.probe_duration_ms is None  # a URL naming a media file is not probed for a playlist
    assert job.resolve_duration_ms is not None
    assert job.store_write_ms is not None

    records = _story(caplog, job.id)
    lines = [(r.name, r.getMessage().split(" ")[0 if r.name.endswith("job") else 1]) for r in records]
    # at INFO a stage is one line, its end with its duration (its start is at DEBUG)
    assert lines == [
        ("tornado_engine.job", "submitted"), ("tornado_engine.job", "claimed"),
        *[("tornado_engine.stage", "done")] * 4, ("tornado_engine.job", "finished"),
    ]  # fmt: skip
    assert [r.stage for r in records if r.name.endswith("stage")] == ["resolve", "download", "mux", "upload"]
    assert all(r.tenant == "" and r.batch_id is None for r in records)
    assert [r.attempt for r in records] == [None] + [1] * (len(records) - 1)
    assert "s3cr3tTOKEN" not in caplog.text and records[0].url.endswith("/progressive.mp4?...")
    download = next(r for r in records if getattr(r, "stage", "") == "download" and hasattr(r, "bytes"))
    assert download.bytes > 0 and download.strategy and download.duration_s >= 0
    assert records[-1].status == "Completed" and records[-1].error_kind is None
    for record in records:  # the JSON lines a worker writes: stable keys, the event's own fields after
        line = json.loads(JsonFormatter().format(record))
        assert list(line)[:8] == ["ts", "level", "logger", "message", "job_id", "batch_id", "tenant",
                                  "attempt"]  # fmt: skip
        assert line["job_id"] == job.id

    assert _delta(before, after, "tornado.jobs.submitted") == 1
    assert _delta(before, after, "tornado.jobs.finished", **{"tornado.job.status": "Completed",
                                                             "error.type": ""}) == 1  # fmt: skip
    assert _delta(before, after, "tornado.job.io", **{"network.io.direction": "upload"}) == job.file_size
    assert _delta(before, after, "tornado.job.io", **{"network.io.direction": "download"}) >= job.file_size
    assert _delta(before, after, "tornado.job.queue_wait") == 1
    for stage in ("resolve", "download", "mux", "upload"):
        assert (
            _delta(before, after, "tornado.stage.duration", **{"tornado.stage": stage, "error.type": ""}) == 1
        )
    for step in ("Downloading", "Muxing", "Uploading"):  # in flight during the job, none after
        assert after[("tornado.jobs.active", frozenset({("tornado.job.step", step)}))] == 0
    assert after[("tornado.pool.active", frozenset({("tornado.pool", "io")}))] == 0
    assert _delta(before, after, "tornado.store.duration", **{"tornado.store.backend": "sqlite"}) > 5

    spans = [s for s in exporter.get_finished_spans() if s.attributes.get("tornado.job.id") == job.id]
    (root,) = [s for s in spans if s.name == "tornado.job.attempt"]
    children = sorted((s for s in spans if s is not root), key=lambda s: s.start_time or 0)
    assert [s.name for s in children] == [
        "tornado.resolve",
        "tornado.download",
        "tornado.mux",
        "tornado.upload",
    ]
    assert all(_parent(s) == root.context.span_id for s in children)
    assert (
        root.attributes["tornado.job.status"] == "Completed" and root.attributes["tornado.job.attempt"] == 1
    )
    assert children[0].attributes["tornado.extractor"] == "Generic"
    assert children[1].attributes["tornado.bytes"] > 0 and children[1].attributes["tornado.strategy"]
    assert children[3].attributes["tornado.bytes"] == job.file_size


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


async def test_a_retried_job_says_why_and_how_it_ended(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, caplog: pytest.LogCaptureFixture
) -> None:
    reader, exporter = _otel()
    caplog.set_level(logging.INFO, logger="tornado_engine")
    before = _points(reader)
    retry = RetryPolicy(max_retries=1, base_delay=0.01)
    async with Engine.open(data_dir=tmp_path / "e", poll_interval=0.1, retry=retry) as engine:
        job = await run_job(engine, url=media_server.url(f"drop/{media_set.progressive_mp4}"))
    after = _points(reader)
    assert job.status is Status.FAILED

    records = _story(caplog, job.id)
    (retried,) = [r for r in records if r.levelno == logging.WARNING]
    assert retried.name == "tornado_engine.job" and retried.retry == 1 and retried.delay_s >= 0
    kind = retried.error_kind
    failed_stages = [
        r.stage for r in records if getattr(r, "error_kind", None) == kind and hasattr(r, "stage")
    ]
    assert failed_stages == ["download", "download"]
    assert records[-1].status == "Failed" and records[-1].error_kind == kind
    assert kind in records[-1].getMessage()
    assert _delta(before, after, "tornado.job.retries", **{"error.type": kind}) == 1
    assert _delta(before, after, "tornado.jobs.finished", **{"tornado.job.status": "Failed",
                                                             "error.type": kind}) == 1  # fmt: skip
    spans = [s for s in exporter.get_finished_spans() if s.attributes.get("tornado.job.id") == job.id]
    downloads = [s for s in spans if s.name == "tornado.download"]
    assert len(downloads) == 2 and all(s.attributes["error.type"] == kind for s in downloads)
