"""ops overhead: the scheduler benchmark's SQLite burst of no-op jobs, with and without logs + metrics.

One process; segments of jobs (``--segment``, default 10,000: the scheduler benchmark's burst) of three
kinds, one of each per round (``--runs``, default 8), their order rotated from round to round, each on an
engine and store of its own:
- "bare": the engine with its story (log lines, metrics, spans, job fields: ``story.py``) replaced by a
  story that does nothing: what the engine costs without any of it;
- "shipped": the library as shipped: a NullHandler, the OpenTelemetry API without an SDK;
- "consumed": as a worker started with ``--log-format json --metrics-port N`` runs: each job's
  ``claimed`` and ``finished`` line as JSON, formatted where it is logged and written to stderr (here a
  file) by the CLI's writing thread, and the metrics served by prometheus-client, scraped over HTTP at
  the end of each segment. With
  ``--otel-sdk`` an OpenTelemetry SDK meter provider (an in-memory reader) is set for the whole run
  instead, as a host with its own SDK has it ("shipped" then records into the SDK too).
CPU time (all threads) per job of each segment, and its wall time per job (jobs/s); each kind's overhead
is the median, over the rounds, of its segment against the "bare" segment of the same round: segments a
second apart see the same load, where separate processes on a shared machine differed by +-15%.
``--log-format text`` has the consumed segments write a worker's default text lines. Target: "consumed"
at most 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import socket
import statistics
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import CACHE, Report, Tracker, arguments, fresh_dir
from bench_scheduler import submit

import tornado_engine.attempt
import tornado_engine.submit
from tornado_engine.cli_logs import configure_logging
from tornado_engine.cli_ops import serve_metrics
from tornado_engine.testing.noop import noop_engine

KINDS = ("bare", "shipped", "consumed")
_JOB_LOGGERS = ("tornado_engine.job", "tornado_engine.worker")  # what a worker shows by default


class _SilentStory:
    """AttemptStory's interface doing nothing (the "bare" segments)."""

    def __init__(self, job: Any, worker: str) -> None:
        self.job, self.stage, self.error_kind = job, None, None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def stage_run(self, name: str) -> Iterator[None]:
        yield

    def claimed(self) -> None: ...
    def result(self, result: object) -> None: ...
    def retry(self, exc: object, number: int, delay: float) -> None: ...
    def failed(self, exc: object) -> None: ...
    def finished(self) -> None: ...


_STORY = (tornado_engine.attempt.AttemptStory, tornado_engine.submit.submitted)


def _story_for(kind: str) -> None:
    """The story (or none) and the job loggers' level the next segment runs with."""
    bare = kind == "bare"
    tornado_engine.attempt.AttemptStory = _SilentStory if bare else _STORY[0]  # type: ignore[assignment,misc]
    tornado_engine.submit.submitted = (lambda jobs, batch_id=None: None) if bare else _STORY[1]
    for name in _JOB_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if kind == "consumed" else logging.WARNING)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _consumers(otel_sdk: bool) -> tuple[int | None, Any]:
    """The metrics' reader: a Prometheus port (returned) or, with ``otel_sdk``, an SDK meter provider's
    in-memory reader."""
    if not otel_sdk:
        port = _free_port()
        serve_metrics(port)
        return port, None
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return None, reader


def _collect(port: int | None, reader: Any) -> None:
    if port is not None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            if b"tornado_jobs_finished_total" not in response.read():
                raise RuntimeError("the scrape lacks tornado_jobs_finished_total")
    else:
        reader.get_metrics_data()


async def _segment(work: Path, kind: str, count: int, collect: Any) -> tuple[float, float]:
    """CPU seconds and wall seconds per job for ``count`` jobs of ``kind``, their log lines written and
    metrics read; each segment on an engine and store of its own, set up and closed outside the clock,
    so none inherits another's table size or garbage."""
    _story_for(kind)
    async with noop_engine(data_dir=fresh_dir(work / "engine"), poll_interval=0.05) as engine:
        tracker = Tracker(engine)
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        await tracker.wait(await submit(engine, count), timeout=1800, engine=engine)
        wall = time.perf_counter() - wall
        if kind == "consumed":
            await asyncio.to_thread(collect)
        await asyncio.sleep(0.1)  # the log writer's last batch of the segment (idle: no CPU)
        cpu = time.process_time() - cpu
    return cpu / count, wall / count


Runs = dict[str, dict[str, list[float]]]  # kind -> measure ("cpu", "wall") -> seconds per job


async def _rounds(args: argparse.Namespace) -> Runs:
    port, reader = _consumers(args.otel_sdk)
    runs: Runs = {kind: {"cpu": [], "wall": []} for kind in KINDS}
    work = CACHE / "work" / "ops_overhead"
    await _segment(work, "shipped", args.segment, None)  # warm-up, not counted
    for index in range(args.runs):
        for kind in KINDS[index % 3 :] + KINDS[: index % 3]:
            cpu, wall = await _segment(work, kind, args.segment, lambda: _collect(port, reader))
            runs[kind]["cpu"].append(cpu)
            runs[kind]["wall"].append(wall)
        print(f"round {index + 1}: " + ", ".join(f"{k} {runs[k]['cpu'][-1] * 1e6:,.0f}" for k in KINDS)
              + " us CPU per job", flush=True)  # fmt: skip
    return runs


def _compare(report: Report, runs: Runs, kind: str, label: str) -> None:
    for measure, unit, per in (("cpu", "CPU per job", "us CPU per job"), ("wall", "jobs/s", "jobs/s")):
        base, other = runs["bare"][measure], runs[kind][measure]
        ratios = [o / b - 1 for b, o in zip(base, other, strict=True)]
        overhead = statistics.median(ratios)
        shown = {name: statistics.median(runs[name][measure]) for name in ("bare", kind)}
        if measure == "wall":  # seconds per job -> jobs per second
            shown = {name: 1 / value for name, value in shown.items()}
        else:
            shown = {name: value * 1e6 for name, value in shown.items()}
        detail = (f"median of {len(ratios)} rounds ({min(ratios):+.0%} to {max(ratios):+.0%}); medians: "
                  f"bare {shown['bare']:,.0f}, {kind} {shown[kind]:,.0f} {per}")  # fmt: skip
        report.value(f"{label}: {unit} vs none", f"{overhead:+.1%}", "<= 10%", overhead <= 0.10, detail)


def main() -> None:
    parser = arguments(__doc__ or "", runs=8)
    parser.add_argument("--segment", type=int, help="jobs per segment (default 10,000; 2,000 with --quick)")
    parser.add_argument("--otel-sdk", action="store_true",
                        help="an OpenTelemetry SDK meter provider reads the metrics")  # fmt: skip
    parser.add_argument("--log-format", choices=("json", "text"), default="json",
                        help="consumed segments' lines (default json; text: a worker's default)")  # fmt: skip
    args = parser.parse_args()
    args.segment = args.segment or (2000 if args.quick else 10000)
    log = CACHE / "work" / "ops_overhead.stderr"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as lines_file:  # the lines, as a worker's log collector gets them
        with contextlib.redirect_stderr(lines_file):  # the CLI's writer keeps the stream it was given
            configure_logging(argparse.Namespace(log_level=None, log_format=args.log_format), worker=True)
        runs = asyncio.run(_rounds(args))
    lines = sum(1 for line in log.read_text().splitlines() if "tornado_engine.job" in line)
    report = Report("ops_overhead")
    _compare(report, runs, "shipped", "the story as shipped, nobody listening")
    reader = "an OpenTelemetry SDK" if args.otel_sdk else "Prometheus scrapes"
    per_job = lines / (args.segment * args.runs)
    _compare(report, runs, "consumed", f"{args.log_format} logs ({per_job:.1f} lines per job) + {reader}")
    report.notes.append(f"{args.runs} rounds of {args.segment:,} jobs per kind in one process; "
                        f"python {sys.version.split()[0]}")  # fmt: skip
    report.emit(args.json)


if __name__ == "__main__":
    main()
