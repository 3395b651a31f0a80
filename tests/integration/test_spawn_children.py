"""Children started off the event loop (pipeline/spawn.py): outputs, exit status, death with the engine."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tornado_engine.pipeline import spawn as spawn_module
from tornado_engine.pipeline.spawn import spawn

pytestmark = pytest.mark.integration

SLEEP = shutil.which("sleep") or "/bin/sleep"
# A stand-in for the engine: starts `sleep 60` through spawn(), prints its pid, then waits to be killed.
ENGINE = """
import asyncio, importlib.util, sys
# spawn.py alone (stdlib only), not the whole package: the test waits on this start
spec = importlib.util.spec_from_file_location("spawn", sys.argv[3])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
spawn = module.spawn

async def main() -> None:
    child = await spawn(sys.argv[1], "60", die_with_parent=sys.argv[2] == "1")
    print(child.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not running(pid)


async def test_outputs_and_exit_status() -> None:
    child = await spawn("sh", "-c", "echo out; echo err >&2; exit 3", die_with_parent=True)
    try:
        assert await child.communicate() == (b"out\n", b"err\n")
        assert child.returncode == 3 and await child.wait() == 3
    finally:
        await child.close()


async def test_missing_program_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        await spawn(str(tmp_path / "no-such-program"))
    assert info.value.errno == errno.ENOENT


async def test_kill_ends_the_wait() -> None:
    child = await spawn(SLEEP, "60")
    child.kill()
    assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    await child.close()
    assert not running(child.pid)


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signals are Linux's")
@pytest.mark.parametrize("die_with_parent", [True, False])
def test_child_dies_with_a_killed_engine(die_with_parent: bool) -> None:
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE, SLEEP, "1" if die_with_parent else "0", spawn_module.__file__],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert engine.stdout is not None
    pid = int(engine.stdout.readline())
    try:
        assert running(pid)
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
        # without the pact the child outlives the engine: the check below would see that
        assert gone_within(pid, 5 if die_with_parent else 0.3) is die_with_parent
    finally:
        if running(pid):
            os.kill(pid, signal.SIGKILL)
        engine.stdout.close()


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signals are Linux's")
def test_child_outlives_the_thread_that_asked() -> None:
    # The kernel's parent-death signal follows the spawning *thread*: the child of a short-lived caller
    # thread must not die with it (one long-lived thread spawns them all).
    pids: list[int] = []

    async def start() -> None:
        pids.append((await spawn(SLEEP, "60")).pid)

    caller = threading.Thread(target=asyncio.run, args=(start(),))
    caller.start()
    caller.join()
    try:
        assert not gone_within(pids[0], 0.3)  # the caller thread has ended; the child runs on
    finally:
        os.kill(pids[0], signal.SIGKILL)
        os.waitpid(pids[0], 0)
