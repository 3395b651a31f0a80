"""ops overhead: the scheduler benchmark's SQLite burst of no-op jobs, with and without logs + metrics.

Three kinds of run, each its own process (a global meter provider is set once per process), alternating:
- "bare": the engine with its story (log lines, metrics, spans, job fields: ``story.py``) replaced by a
  story that does nothing: what the engine costs without any of it;
- "shipped": the library as shipped: a NullHandler, the OpenTelemetry API without an SDK (no-ops);
- "consumed": logging set up as ``worker --log-level info --log-format json`` does (every record at INFO
  as a JSON line with the job's fields, written to stderr, here a file, by the CLI's writing thread) and
  an OpenTelemetry SDK meter provider (an in-memory reader, collected before the clock stops) recording
  every metric.
Ratios are taken run by run (each "shipped" against the "bare" and "consumed" runs beside it), then their
median: on a shared machine a pair's runs see the same load. Target: at most 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import CACHE, Report, Tracker, arguments, fresh_dir
from bench_scheduler import submit

from tornado_engine.testing.noop import noop_engine

KINDS = ("bare", "shipped", "consumed")


def _consume(log_format: str) -> Any:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from tornado_engine.cli_logs import configure_logging

    configure_logging(argparse.Namespace(log_level="info", log_format=log_format), worker=True)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


class _SilentStory:
    """AttemptStory's interface doing nothing (the "bare" runs)."""

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


def _strip() -> None:
    import tornado_engine.attempt
    import tornado_engine.submit

    tornado_engine.attempt.AttemptStory = _SilentStory  # type: ignore[assignment,misc]
    tornado_engine.submit.submitted = lambda jobs, batch_id=None: None


async def _child(kind: str, count: int, work: Path, log_format: str) -> None:
    reader = _consume(log_format) if kind == "consumed" else None
    if kind == "bare":
        _strip()
    async with noop_engine(data_dir=work / "engine", poll_interval=0.05) as engine:
        tracker = Tracker(engine)
        started, cpu = time.perf_counter(), time.process_time()
        ids = await submit(engine, count)
        await tracker.wait(ids, timeout=1800, engine=engine)
        if reader is not None:
            reader.get_metrics_data()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"rate": count / elapsed, "cpu_us": cpu / count * 1e6}), flush=True)


def _run(kind: str, count: int, index: int, log_format: str) -> dict[str, float]:
    work = fresh_dir(CACHE / "work" / "ops_overhead" / f"{kind}{index}")
    log = work / "stderr.log"
    with open(log, "w") as stderr:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--jobs", str(count), "--work", str(work),
             "--log-format", log_format],
            stdout=subprocess.PIPE, stderr=stderr, text=True, check=True, timeout=3600,
        )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["log_lines"] = sum(1 for line in log.read_text().splitlines() if line.startswith("{"))
    return result


def _compare(
    report: Report, runs: dict[str, list[dict[str, float]]], base: str, other: str, label: str
) -> None:
    for measure, key in (("CPU per job", "cpu_us"), ("jobs/s", "rate")):
        ratios = [
            (o[key] / b[key] if key == "cpu_us" else b[key] / o[key]) - 1
            for b, o in zip(runs[base], runs[other], strict=True)
        ]
        overhead = statistics.median(ratios)
        base_med = statistics.median(r[key] for r in runs[base])
        other_med = statistics.median(r[key] for r in runs[other])
        detail = (f"median of {len(ratios)} paired runs ({', '.join(f'{r:+.0%}' for r in ratios)}); "
                  f"medians: {base} {base_med:,.0f}, {other} {other_med:,.0f} "
                  f"({'us CPU per job' if key == 'cpu_us' else 'jobs/s'})")  # fmt: skip
        report.value(f"{label}: overhead, {measure}", f"{overhead:+.1%}", "<= 10%", overhead <= 0.10, detail)


def main() -> None:
    parser = arguments(__doc__ or "", runs=5)
    parser.add_argument("--jobs", type=int, help="jobs per run (default 5,000; 2,000 with --quick)")
    parser.add_argument("--log-format", choices=["json", "text"], default="json",
                        help="consumed runs' lines (default json; text: a worker's default)")  # fmt: skip
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = args.jobs or (2000 if args.quick else 5000)
    if args.child:
        asyncio.run(_child(args.child, count, args.work, args.log_format))
        return
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    for index in range(args.runs):
        for kind in KINDS:
            result = _run(kind, count, index, args.log_format)
            runs[kind].append(result)
            print(f"run {index + 1} {kind}: {result['rate']:,.0f} jobs/s, {result['cpu_us']:,.0f} us CPU/job",
                  flush=True)  # fmt: skip
    report = Report("ops_overhead")
    _compare(report, runs, "bare", "shipped", "the story as shipped, nobody listening (vs none)")
    lines = max(int(r["log_lines"]) for r in runs["consumed"])
    label = f"logs ({args.log_format}, {lines / count:.1f} lines per job) + SDK metrics consumed"
    _compare(report, runs, "shipped", "consumed", label)
    report.notes.append("CPU per job is the steadier figure on a shared machine; each ratio is one run "
                        "against the run of the other kind right beside it")  # fmt: skip
    report.emit(args.json)


if __name__ == "__main__":
    main()
