"""DASH: the picked representations' fragments fetched ahead over a few connections and appended to each
representation's file in order, retried like yt-dlp's ``fragment_retries``."""

from __future__ import annotations

import collections
import functools
import os
import socket
import sys
import threading
import time
from pathlib import Path

from ...errors import StageError
from ...progress import ProgressCallback
from ._signals import Fallback, NetError, Stopped
from .connection import Response, Session
from .eligibility import FastDash
from .tuning import CREATE, MIB, TICK, FastPathTuning, start_extra

__all__ = ["fetch_dash"]

_FRAGMENT_RETRIES = 2  # as yt-dlp's fragment_retries in ytdlp.base_params
_MAX_FRAGMENT = 256 * MIB  # held in memory until written: bigger ones are not for this path


class _Retry(Exception):
    """A fragment answered with a transient HTTP error: try it again (then raise ``error``)."""

    def __init__(self, error: StageError) -> None:
        super().__init__(error.message)
        self.error = error


class _Fragments:
    """The fragments of every picked representation, fetched over a few connections and appended to
    each representation's file in order (a completed fragment waits in memory for the ones before it;
    no connection runs more than ``window`` fragments ahead of its file)."""

    def __init__(self, session: Session, dash: FastDash, fds: list[int], tuning: FastPathTuning,
                 on_progress: ProgressCallback) -> None:  # fmt: skip
        self.session = session
        self.streams = dash.streams
        self.fds = fds
        self.on_progress = on_progress
        self.window = 2 * tuning.connections
        # by position in time, so video and audio advance together
        self.work = collections.deque(
            sorted(((s, i) for s, st in enumerate(dash.streams) for i in range(len(st.fragments))),
                   key=lambda item: (item[1] / len(dash.streams[item[0]].fragments), item[0]))
        )  # fmt: skip
        self.count = len(self.work)
        self.finished = 0
        self.next = [0] * len(dash.streams)
        self.waiting: list[dict[int, bytearray]] = [{} for _ in dash.streams]
        self.total_weight = sum(st.weight for st in dash.streams)
        self.done_weight = 0.0
        self.bytes = 0
        self.started = time.monotonic()
        self.last_report = 0.0
        self.cond = threading.Condition()
        self.error: BaseException | None = None

    def take(self) -> tuple[int, int] | None:
        with self.cond:
            while True:
                self.session.check()
                if not self.work:
                    return None
                s, i = self.work[0]
                if i < self.next[s] + self.window:
                    return self.work.popleft()
                self.cond.wait(TICK)

    def finish(self, s: int, i: int, data: bytearray) -> None:
        with self.cond:
            self.waiting[s][i] = data
            while self.next[s] in self.waiting[s]:
                view = memoryview(self.waiting[s].pop(self.next[s]))
                while view:
                    view = view[os.write(self.fds[s], view) :]
                self.next[s] += 1
            self.cond.notify_all()
            self.bytes += len(data)
            self.done_weight += self.streams[s].weight / len(self.streams[s].fragments)
            self.finished += 1
            now = time.monotonic()
            if self.finished == self.count or now - self.last_report >= 0.05:
                self.last_report = now
                speed = self.bytes / (now - self.started) if now > self.started else None
                percent = min(100.0, 100.0 * self.done_weight / self.total_weight)
                if self.finished == self.count:
                    percent = 100.0  # exactly, whatever the float sums say
                eta = (100 - percent) / percent * (now - self.started) if percent else None
                self.on_progress(percent, self.bytes, speed, eta)

    def fetch(
        self, sock: socket.socket | None, s: int, i: int, *, probe: bool
    ) -> tuple[bytearray, socket.socket | None]:
        """One fragment's bytes, retried like yt-dlp's ``fragment_retries`` on transient failures."""
        url = self.streams[s].fragments[i]
        failures = 0
        while True:
            fresh = sock is None
            try:
                conn = sock or self.session.connect()
            except NetError as exc:
                if probe:
                    raise Fallback(str(exc)) from None
                raise
            sock = None
            try:
                response = self.session.ask(conn, url)
                data = self._body(conn, response, probe=probe)
                if response.headers.get("connection", "").lower() == "close":
                    conn.close()
                    return data, None
                return data, conn
            except (NetError, _Retry) as exc:
                conn.close()
                if probe:
                    raise Fallback(str(exc)) from None
                if not fresh and failures == 0 and isinstance(exc, NetError):
                    continue  # a kept-alive connection the server had closed: not a failure yet
                failures += 1
                if failures > _FRAGMENT_RETRIES:
                    if isinstance(exc, _Retry):
                        raise exc.error from None
                    raise
            except BaseException:
                conn.close()
                raise

    def _body(self, sock: socket.socket, response: Response, *, probe: bool) -> bytearray:
        status, h = response.status, response.headers
        if status != 200:
            if probe or 300 <= status < 400 or status == 206:
                raise Fallback(f"HTTP {status} for a fragment")
            error = self.session.http_error(response)
            if status >= 500 or status == 429:
                raise _Retry(error)
            raise error
        length = h.get("content-length", "")
        if (
            not length.isdigit()
            or "transfer-encoding" in h
            or h.get("content-encoding", "identity") != "identity"
        ):
            raise Fallback("a fragment without a plain Content-Length body")
        size = int(length)
        if size > _MAX_FRAGMENT or len(response.body_start) > size:
            raise Fallback("fragment too large, or more body than Content-Length")
        data = bytearray(size)
        view = memoryview(data)
        got = len(response.body_start)
        view[:got] = response.body_start
        while got < size:
            n = self.session.recv_into(sock, view[got:])
            if n == 0:
                raise NetError(f"Downloaded {got} bytes, expected {size} bytes")
            got += n
        return data

    def work_loop(self, sock: socket.socket | None) -> None:
        try:
            while (item := self.take()) is not None:
                data, sock = self.fetch(sock, *item, probe=False)
                self.finish(*item, data)
        except Stopped:
            pass
        except BaseException as exc:
            with self.cond:
                if self.error is None:
                    self.error = exc
                self.cond.notify_all()
            self.session.stop.set()
        finally:
            if sock is not None:
                sock.close()


def fetch_dash(dash: FastDash, paths: list[Path], session: Session, tuning: FastPathTuning,
               on_progress: ProgressCallback) -> int:  # fmt: skip
    """Download every representation into ``paths``; returns the bytes. The first fragment is the probe:
    anything unusual about it falls back before more is asked for."""
    fds: list[int] = []
    threads: list[threading.Thread] = []
    fragments: _Fragments | None = None
    try:
        for path in paths:
            fds.append(os.open(path, CREATE, 0o666))
        fragments = _Fragments(session, dash, fds, tuning, on_progress)
        first = fragments.take()
        assert first is not None
        data, sock = fragments.fetch(None, *first, probe=True)
        fragments.finish(*first, data)
        start_extra(
            threads,
            min(tuning.connections - 1, len(fragments.work)),
            functools.partial(fragments.work_loop, None),
        )
        fragments.work_loop(sock)
    finally:
        if threads and (sys.exc_info()[0] is not None or (fragments and fragments.error)):
            session.stop.set()
        for thread in threads:
            thread.join()
        for fd in fds:
            os.close(fd)
    assert fragments is not None
    if fragments.error is not None:
        raise fragments.error
    if any(n != len(st.fragments) for n, st in zip(fragments.next, dash.streams, strict=True)):
        raise NetError("the download stopped before every fragment was written")
    return fragments.bytes
