"""Shared by the benchmark scripts: media fixtures (generated once, cached), servers in child processes,
timing, resource sampling and the results table.

Every benchmark runs its baseline and the engine side by side in the same process run, alternating, and
reports the median of several runs as a ratio: the machine is shared, so absolute times mean little.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("TORNADO_BENCH_CACHE") or REPO / ".cache" / "bench")
os.environ.setdefault("TORNADO_ALLOW_NETWORKS", "127.0.0.0/8")  # every server here is on loopback

# SIGTERM unwinds like Ctrl-C, so the servers started here (child processes) are stopped on the way out.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

# The scheduler's heartbeat reports jobs that finished between its snapshot and its write as "lease lost"
# (harmless here, and noted in the README); hundreds of those lines would bury the results.
logging.getLogger("tornado_engine.scheduler").addFilter(
    lambda record: "lease lost; stopping this attempt" not in record.getMessage()
)


# -- results ------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    measure: str
    value: str  # as printed: "0.41x", "2,350 jobs/s"
    target: str
    met: bool | None  # None: informational, no target
    detail: str = ""


@dataclass
class Report:
    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ratio(
        self, measure: str, engine: list[float], baseline: list[float], limit: float, who: str
    ) -> float:
        """Add a row: median(engine) / median(baseline) against ``<= limit``."""
        e, b = statistics.median(engine), statistics.median(baseline)
        r = e / b if b else float("inf")
        self.rows.append(
            Row(self.name, measure, f"{r:.2f}x", f"<= {limit}x", r <= limit,
                f"engine {e:.2f} s vs {who} {b:.2f} s (median of {len(engine)}; all: "
                f"engine {_fmt(engine)}, {who} {_fmt(baseline)})")
        )  # fmt: skip
        return r

    def value(
        self, measure: str, value: str, target: str = "", met: bool | None = None, detail: str = ""
    ) -> None:
        self.rows.append(Row(self.name, measure, value, target, met, detail))

    def emit(self, json_path: str | None) -> None:
        print_table(self.rows)
        for note in self.notes:
            print(f"  note: {note}")
        if json_path:
            rows = [asdict(r) for r in self.rows]
            Path(json_path).write_text(json.dumps({"rows": rows, "notes": self.notes}))


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def print_table(rows: list[Row]) -> None:
    print()
    print("| scenario | measure | value | target | met | detail |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        print(f"| {r.scenario} | {r.measure} | {r.value} | {r.target} | {met} | {r.detail} |")
    print()


def arguments(description: str, runs: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--runs", type=int, default=runs, help=f"runs per side (median; default {runs})")
    parser.add_argument("--json", help="also write the rows to this file (run_all.py uses it)")
    return parser


# -- timing and resources --------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_command(args: list[str], cwd: Path | None = None) -> float:
    """Wall time of a command that must succeed (its output is discarded unless it fails)."""
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} ... exited {proc.returncode}: {proc.stderr[-800:]}")
    return elapsed


def rss_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Sampler:
    """Samples RSS, open fds and threads of this process every ``interval`` seconds, in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.peak_fds = 0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bench-sampler")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, rss_bytes()[0])
        self.peak_fds = max(self.peak_fds, open_fds())
        self.peak_threads = max(self.peak_threads, threading.active_count())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def clear_dir(path: Path) -> None:
    """Empty a folder between runs (untimed), so disk usage does not pile up."""
    if path.exists():
        for child in path.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


# -- media fixtures (ffmpeg; generated once into the cache) ----------------------------------------------


def _ffmpeg(*args: str) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}\n{proc.stderr[-1500:]}")


def _cached(path: Path, make: Callable[[Path], None]) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.unlink(missing_ok=True)
        make(tmp)
        tmp.rename(path)
    return path


def big_media(quick: bool) -> Path:
    """A progressive MP4 (h264 + aac, faststart, 1 s GOPs): ~150 MB (12 s of noisy 720p at ~100 Mbit/s);
    ~50 MB with ``quick``. Noise keeps x264 at the asked bitrate; ultrafast keeps generation short."""
    seconds = 4 if quick else 12
    name = f"big_{seconds}s.mp4"

    def make(out: Path) -> None:
        _ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25,noise=alls=40:allf=t",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-b:v", "100M", "-maxrate", "100M", "-bufsize", "50M",
            "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
            "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4", str(out),
        )  # fmt: skip

    return _cached(CACHE / name, make)


def dash_of(source: Path) -> Path:
    """The same content as DASH, video and audio apart (stream copy, 1 s segments); returns the manifest."""
    folder = CACHE / f"dash_{source.stem}"

    def make(out: Path) -> None:
        out.mkdir()
        _ffmpeg(
            "-i", str(source), "-map", "0:v", "-map", "0:a", "-c", "copy",
            "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "1",
            "-adaptation_sets", "id=0,streams=v id=1,streams=a", str(out / "manifest.mpd"),
        )  # fmt: skip

    return _cached(folder, make) / "manifest.mpd"


def small_media(count: int) -> list[str]:
    """``count`` distinct URLs paths (hard links) of one ~1.5 MB progressive MP4 (3 s of 360p)."""
    clip = _cached(
        CACHE / "small" / "clip.mp4",
        lambda out: _ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25,noise=alls=30:allf=t",
            "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000", "-t", "3",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "4M",
            "-maxrate", "4M", "-bufsize", "2M", "-c:a", "aac", "-b:a", "128k",
            "-movflags", "+faststart", "-f", "mp4", str(out),
        ),
    )  # fmt: skip
    names = []
    for i in range(count):
        link = CACHE / "small" / f"clip_{i:04d}.mp4"
        if not link.exists():
            os.link(clip, link)
        names.append(f"small/{link.name}")
    return names


# -- servers in child processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextlib.contextmanager
def child(args: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process (stopped by its own PID on exit) once its port accepts connections."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def media_server(root: Path, slow_bytes_per_sec: int | None = None) -> Iterator[str]:
    """The package's MediaServer (Range support, /slow/ route) in its own process: the engine under
    test and the server do not share a GIL, as they would not in production. Yields its base URL."""
    port = free_port()
    args = [sys.executable, str(Path(__file__).with_name("serve.py")), str(root), str(port)]
    if slow_bytes_per_sec:
        args.append(str(slow_bytes_per_sec))
    with child(args, port, CACHE / f"server-{port}.log"):
        yield f"http://127.0.0.1:{port}"


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)


# -- the engine side --------------------------------------------------------------------------------------


class Tracker:
    """Counts jobs reaching a terminal status as the engine publishes them: waiting for thousands of jobs
    this way costs nothing, where ``engine.wait`` per job would poll the store."""

    def __init__(self, engine: Any) -> None:
        from tornado_engine.states import TERMINAL

        self._terminal = TERMINAL
        self.finished: dict[str, Any] = {}  # job id -> terminal Event
        self.finished_wall: dict[str, float] = {}  # job id -> time.time() when its terminal event came
        self.first_event: dict[str, float] = {}
        self._changed = asyncio.Event()
        self.hooks: list[Callable[[Any], None]] = []
        publish = engine.hub.publish

        def counting(event: Any) -> None:
            publish(event)
            for hook in self.hooks:
                hook(event)
            if event.status in self._terminal and event.job_id not in self.finished:
                self.finished[event.job_id] = event
                self.finished_wall[event.job_id] = time.time()
                self._changed.set()

        engine.hub.publish = counting

    async def wait(self, job_ids: list[str], timeout: float, engine: Any = None) -> None:
        """Until every job in ``job_ids`` has ended. With ``engine``, a quiet second also asks the store for
        the jobs still missing: a terminal event published from a worker thread sets the asyncio.Event
        without waking the loop (seen as a benchmark idle forever with every job Completed)."""
        wanted = set(job_ids)
        async with asyncio.timeout(timeout):
            while not wanted <= self.finished.keys():
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), 1.0)
                except TimeoutError:
                    if engine is not None:
                        await self._ask_store(engine, wanted - self.finished.keys())

    async def _ask_store(self, engine: Any, missing: set[str]) -> None:
        for job_id in list(missing)[:100]:
            job = await engine.get_job(job_id)
            if job.status in self._terminal:
                self.finished.setdefault(job_id, job)


async def check_completed(engine: Any, job_ids: list[str]) -> list[Any]:
    """Every job Completed (else raise with the first failure's record); returns the jobs."""
    jobs = [await engine.get_job(i) for i in job_ids]
    bad = [j for j in jobs if j.status.value != "Completed"]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(jobs)} jobs did not complete; first: {dump(bad[0].to_api())}")
    return jobs
