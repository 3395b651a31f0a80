"""Start child processes (ffmpeg, ffprobe) without blocking the event loop.

``asyncio.create_subprocess_exec`` forks and execs on the loop's thread and, with Python 3.11's default
child watcher, starts a thread per child whose start the loop waits for: on a loaded machine each spawn
held the loop for tens of milliseconds, late heartbeats followed (benchmarks/README.md, "Scale-out and
width"). Here:

- one long-lived thread of this process (``tornado-spawn``) runs every ``subprocess.Popen``; without a
  ``preexec_fn`` Python uses vfork and releases the GIL meanwhile, so the loop runs on while the kernel
  schedules the child;
- ``die_with_parent`` children get SIGKILL when the engine process dies, even by kill -9 (ffmpeg ignores
  its closed pipes and would transcode on): on Linux, through ``setpriv --pdeathsig KILL`` exec'd in
  front of the program (no pre-exec code, so vfork stays), else a ``preexec_fn`` calling ``prctl``. The
  kernel sends that signal when the *thread* that spawned the child ends, which is why one thread that
  lives as long as the process spawns them all, never a pool thread that may come and go;
- the pipes are read on the loop (``connect_read_pipe``) and the exit is watched through a pidfd
  (``os.pidfd_open`` + ``add_reader``); where pidfds are missing, a thread waits instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO

__all__ = ["Child", "spawn"]

_PR_SET_PDEATHSIG = 1
_LIMIT = 2**16  # a line longer than this is an error, as with asyncio's subprocess streams

_lock = threading.Lock()
_spawner: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
_setpriv: tuple[str, ...] | None = None  # ("setpriv", "--pdeathsig", "KILL", "--") once checked, or ()


def _thread() -> concurrent.futures.ThreadPoolExecutor:
    """This process's one spawning thread (a forked child makes its own: threads do not survive fork)."""
    global _spawner
    with _lock:
        if _spawner is None or _spawner[0] != os.getpid():
            pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tornado-spawn")
            _spawner = (os.getpid(), pool)
        return _spawner[1]


def _die_with_parent() -> None:
    """In the forked child (fallback without setpriv): SIGKILL when the spawning thread ends."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _death_prefix() -> tuple[str, ...]:
    """``setpriv --pdeathsig KILL --`` where it works (util-linux >= 2.33), checked once; else ()."""
    global _setpriv
    if _setpriv is None:
        found = shutil.which("setpriv") if sys.platform == "linux" else None
        prefix: tuple[str, ...] = ()
        if found is not None:
            prefix = (found, "--pdeathsig", "KILL", "--")
            check = subprocess.run([*prefix, found, "--version"], capture_output=True, check=False)
            prefix = prefix if check.returncode == 0 else ()
        _setpriv = prefix
    return _setpriv


def _executable(name: str) -> str:
    # checked here because behind setpriv a missing program is an exit status, not an OSError
    found = shutil.which(name)
    if found is None:
        code = errno.EACCES if os.path.exists(name) else errno.ENOENT
        raise OSError(code, os.strerror(code), name)
    return found


def _popen(argv: Sequence[str], die_with_parent: bool) -> subprocess.Popen[bytes]:
    """In the spawning thread: start the child with its stdin closed and both outputs piped."""
    program = _executable(argv[0])
    prefix = _death_prefix() if die_with_parent else ()
    preexec: Callable[[], None] | None = None
    if die_with_parent and not prefix and sys.platform == "linux":
        preexec = _die_with_parent  # forks instead of vfork, but still off the loop
    return subprocess.Popen(
        [*prefix, program, *argv[1:]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=preexec,
    )


def _discard(done: concurrent.futures.Future[subprocess.Popen[bytes]]) -> None:
    """A child whose spawn was abandoned (the awaiting task cancelled): kill it and reap it."""
    if done.cancelled() or done.exception() is not None:
        return
    popen = done.result()
    popen.kill()
    popen.communicate()  # closes the pipes and reaps (SIGKILL cannot be ignored: this is quick)


class Child:
    """A running child: ``stdout``/``stderr`` read on the loop, ``wait()`` for its exit status."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdout = asyncio.StreamReader(limit=_LIMIT)
        self.stderr = asyncio.StreamReader(limit=_LIMIT)
        self._transports: list[asyncio.BaseTransport] = []
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pidfd = -1
        self._waiting: asyncio.Future[int] | None = None

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        try:  # the exit is watched first: close() can always wait for it
            self._pidfd = os.pidfd_open(self.pid)
            loop.add_reader(self._pidfd, self._exited)
        except (AttributeError, OSError):  # not Linux, or a kernel before 5.3: a thread waits
            self._waiting = asyncio.ensure_future(asyncio.to_thread(self._popen.wait))
            self._waiting.add_done_callback(lambda _: self._exited())
        assert self._popen.stdout is not None and self._popen.stderr is not None
        for reader, pipe in ((self.stdout, self._popen.stdout), (self.stderr, self._popen.stderr)):
            await self._connect(loop, reader, pipe)

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader, pipe: IO[bytes]
    ) -> None:
        try:
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        except BaseException:
            pipe.close()
            raise
        self._transports.append(transport)

    def _exited(self) -> None:
        """The pidfd is readable (or the waiting thread returned): reap the child, wake ``wait()``."""
        if self._popen.poll() is None:
            return
        if self._pidfd >= 0:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        if not self._exit.done():
            self._exit.set_result(self._popen.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def kill(self) -> None:
        """SIGKILL, at once (synchronous: the child dies even if a later await is interrupted)."""
        self._popen.kill()  # Popen checks the child is not reaped yet, so never a reused pid

    async def communicate(self) -> tuple[bytes, bytes]:
        """Both outputs to their end, then the exit."""
        out, err = await asyncio.gather(self.stdout.read(), self.stderr.read())
        await self.wait()
        return out, err

    async def close(self) -> None:
        """Kill the child if it still runs, wait for it, release its pipes and pidfd."""
        if self._popen.returncode is None:
            self.kill()
            await self.wait()
        for transport in self._transports:
            transport.close()
        for pipe in (self._popen.stdout, self._popen.stderr):
            if pipe is not None:
                pipe.close()


async def spawn(*argv: str, die_with_parent: bool = True) -> Child:
    """Start ``argv`` from the spawning thread; OSError if it cannot run (missing, not executable)."""
    started = _thread().submit(_popen, argv, die_with_parent)
    try:
        popen = await asyncio.wrap_future(started)
    except asyncio.CancelledError:
        started.add_done_callback(_discard)
        raise
    child = Child(popen)
    try:
        await child._start()
    except BaseException:
        await asyncio.shield(child.close())
        raise
    return child
