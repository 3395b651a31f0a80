"""spawn: the event loop's lag while child processes start, asyncio's way (before) against pipeline/spawn.py.

``--tasks`` (20) tasks each start ``ffmpeg -version`` again and again for ``--seconds`` (3), reading its
outputs and waiting for its exit, in a process holding ``--ballast-mb`` (150) of memory (the engine's size
in bench_width: a fork copies its page tables). Sides, alternating within each run:
- before: ``asyncio.create_subprocess_exec`` with the ``preexec_fn`` that set the parent-death signal
  (the muxer's old ``_spawn``): Python forks on the loop's thread, and asyncio's default child watcher
  (3.11) starts a thread per child, whose start the loop waits for;
- now: :func:`tornado_engine.pipeline.spawn.spawn` (one spawning thread, vfork with the GIL released,
  ``setpriv --pdeathsig``, a pidfd for the exit).
Measured: how late a 10 ms sleep wakes meanwhile (p50/p99/max), and children started per second.
``--burn N`` runs N busy processes beside both sides alike (a loaded machine, as in bench_width's runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

from _common import Report, arguments
from bench_scheduler import percentile

from tornado_engine.ffmpeg import find_ffmpeg
from tornado_engine.pipeline.spawn import spawn


def _die_with_parent() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def before(program: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        program, "-version", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent,
    )  # fmt: skip
    await proc.communicate()


async def now(program: str) -> None:
    child = await spawn(program, "-version", die_with_parent=True)
    try:
        await child.communicate()
    finally:
        await child.close()


async def one_side(
    start: Callable[[str], Awaitable[None]], program: str, tasks: int, seconds: float
) -> tuple[list[float], int]:
    """Lags (s) of a 10 ms sleep while ``tasks`` tasks start children for ``seconds``; children started."""
    deadline = time.monotonic() + seconds
    started = [0]

    async def spawner() -> None:
        while time.monotonic() < deadline:
            await start(program)
            started[0] += 1

    workers = [asyncio.create_task(spawner()) for _ in range(tasks)]
    lags: list[float] = []
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - t0 - 0.01)
    await asyncio.gather(*workers)
    return lags, started[0]


@contextlib.contextmanager
def burning(count: int) -> Iterator[None]:
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


async def main() -> None:
    parser = arguments(__doc__ or "", runs=3)
    parser.add_argument("--tasks", type=int, default=20, help="tasks starting children at once")
    parser.add_argument("--seconds", type=float, help="per side and run (3; 1 with --quick)")
    parser.add_argument("--ballast-mb", type=int, default=150, help="memory the process holds")
    parser.add_argument("--burn", type=int, default=0, help="N busy processes beside (both sides)")
    args = parser.parse_args()
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    ballast = [bytearray(os.urandom(1) * 2**20) for _ in range(args.ballast_mb)]  # touched pages
    program = find_ffmpeg().ffmpeg
    sides: dict[str, Callable[[str], Awaitable[None]]] = {"before": before, "now": now}
    p99: dict[str, list[float]] = {name: [] for name in sides}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    worst: dict[str, float] = {name: 0.0 for name in sides}
    p50: dict[str, list[float]] = {name: [] for name in sides}
    with burning(args.burn):
        for _ in range(args.runs):
            for name, start in sides.items():
                lags, count = await one_side(start, program, args.tasks, seconds)
                p50[name].append(percentile(lags, 50) * 1000)
                p99[name].append(percentile(lags, 99) * 1000)
                worst[name] = max(worst[name], max(lags) * 1000)
                rates[name].append(count / seconds)
        load = os.getloadavg()[0]
    del ballast
    report = Report("spawn")
    for name in sides:
        report.value(
            f"loop lag while {args.tasks} tasks start ffmpeg, {name}",
            f"p50 {statistics.median(p50[name]):.1f} ms / p99 {statistics.median(p99[name]):.1f} ms",
            "p99 <= 50 ms" if name == "now" else "",
            statistics.median(p99[name]) <= 50 if name == "now" else None,
            f"median of {args.runs} runs of {seconds:g} s; max {worst[name]:.0f} ms; "
            f"{statistics.median(rates[name]):.0f} children/s; {args.ballast_mb} MB held; load average "
            f"{load:.1f}" + (f" ({args.burn} busy processes beside)" if args.burn else ""),
        )
    report.emit(args.json)


if __name__ == "__main__":
    asyncio.run(main())
