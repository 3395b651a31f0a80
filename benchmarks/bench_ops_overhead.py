"""ops overhead: the scheduler benchmark's SQLite burst with and without logging + metrics.

"plain": the library as shipped (a NullHandler, the OpenTelemetry API without an SDK: no-ops).
"ops": every ``tornado_engine`` record at INFO to a file (the CLI's JSON format, job fields on each) and an
OpenTelemetry SDK meter provider (an in-memory reader, collected once at the end) recording every metric.
Each run is its own process (a global meter provider is set once per process); the two kinds alternate,
and the result is the ratio of their median jobs/s. Target: ops at most 10% slower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import CACHE, Report, Tracker, arguments, fresh_dir
from bench_scheduler import submit

from tornado_engine.testing.noop import noop_engine


def _instrument(log_file: Path) -> object:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from tornado_engine.cli_logs import JsonFormatter

    handler = logging.FileHandler(log_file)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tornado_engine")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


async def _child(kind: str, count: int, work: Path) -> None:
    reader = _instrument(work / "engine.log") if kind == "ops" else None
    async with noop_engine(data_dir=work / "engine", poll_interval=0.05) as engine:
        tracker = Tracker(engine)
        started = time.perf_counter()
        ids = await submit(engine, count)
        await tracker.wait(ids, timeout=1800)
        elapsed = time.perf_counter() - started
    lines = 0
    if reader is not None:
        reader.get_metrics_data()  # type: ignore[attr-defined]
        lines = sum(1 for _ in open(work / "engine.log"))  # noqa: SIM115
    print(json.dumps({"rate": count / elapsed, "log_lines": lines}), flush=True)


def _run(kind: str, count: int, index: int) -> dict[str, float]:
    work = fresh_dir(CACHE / "work" / "ops_overhead" / f"{kind}{index}")
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--jobs", str(count), "--work", str(work)],
        capture_output=True, text=True, check=True, timeout=3600,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = arguments(__doc__ or "", runs=3)
    parser.add_argument("--jobs", type=int, help="jobs per run (default 10,000; 2,000 with --quick)")
    parser.add_argument("--child", choices=["plain", "ops"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = args.jobs or (2000 if args.quick else 10_000)
    if args.child:
        asyncio.run(_child(args.child, count, args.work))
        return
    rates: dict[str, list[float]] = {"plain": [], "ops": []}
    lines = 0
    for index in range(args.runs):
        for kind in ("plain", "ops"):
            result = _run(kind, count, index)
            rates[kind].append(result["rate"])
            lines = max(lines, int(result["log_lines"]))
            print(f"run {index + 1} {kind}: {result['rate']:,.0f} jobs/s", flush=True)
    plain, ops = statistics.median(rates["plain"]), statistics.median(rates["ops"])
    overhead = 1 - ops / plain
    report = Report("ops_overhead")
    detail = (
        f"median of {args.runs} runs of {count} jobs each: plain {plain:,.0f} jobs/s, logs + metrics "
        f"{ops:,.0f} jobs/s ({lines:,} log lines per run)"
    )
    report.value("logs (INFO, file) + metrics (SDK): overhead", f"{overhead:.1%}", "<= 10%", overhead <= 0.10,
                 detail)  # fmt: skip
    report.emit(args.json)


if __name__ == "__main__":
    main()
