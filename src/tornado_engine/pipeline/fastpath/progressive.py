"""One progressive file (a plain http(s) URL): ``Range`` chunks over a few connections, each written at
its offset with ``pwrite``; the first ranged request is the probe that may still fall back."""

from __future__ import annotations

import functools
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

from ...progress import ProgressCallback
from ._signals import Fallback, NetError, Stopped
from .connection import Response, Session
from .eligibility import FastSource
from .tuning import CREATE, FastPathTuning, start_extra

__all__ = ["fetch_file"]

_FLUSH_SECONDS = 0.2  # at most this long between progress reports while bytes arrive
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def _check_partial(
    session: Session, response: Response, start: int, end: int, total: int | None, *, probe: bool
) -> tuple[int, int]:
    """(last byte, total) of a 206 that is exactly what was asked for; else fall back or fail.

    On the first request any surprise falls back, so yt-dlp meets (and words) errors as it always did.
    """
    status = response.status
    if status != 206 and (probe or status in (200, 416) or 300 <= status < 400):
        raise Fallback(f"HTTP {status} to a range request")
    if status != 206:
        raise session.http_error(response)
    h = response.headers
    if h.get("content-encoding", "identity").lower() not in ("identity", "") or "transfer-encoding" in h:
        raise Fallback("encoded or chunked body")
    match = _CONTENT_RANGE.match(h.get("content-range", "").strip())
    length = h.get("content-length", "")
    if match is None or not length.isdigit():
        raise Fallback("no usable Content-Range / Content-Length")
    first, last, size = (int(g) for g in match.groups())
    if first != start or last != min(end, size - 1) or int(length) != last - first + 1:
        raise Fallback("the server answered another range than asked for")
    if total is not None and size != total:
        raise Fallback("the file changed size during the download")
    return last, size


class _Transfer:
    """One file: the chunk queue, progress, and the connections working on it."""

    def __init__(self, session: Session, url: str, fd: int, total: int, tuning: FastPathTuning,
                 on_progress: ProgressCallback) -> None:  # fmt: skip
        self.session = session
        self.url = url
        self.fd = fd
        self.total = total
        self.tuning = tuning
        self.on_progress = on_progress
        self.lock = threading.Lock()
        self.next_offset = 0
        self.chunk = tuning.chunk_size
        self.done = 0
        self.started = time.monotonic()
        self.last_report = 0.0
        self.error: BaseException | None = None

    def take(self) -> tuple[int, int] | None:
        with self.lock:
            if self.next_offset >= self.total:
                return None
            start = self.next_offset
            self.next_offset = min(self.total, start + self.chunk)
            return start, self.next_offset - 1

    def progress(self, n: int) -> None:
        with self.lock:  # reported under the lock, so the callback sees the counts in order
            self.done += n
            now = time.monotonic()
            if self.done < self.total and now - self.last_report < 0.05:
                return
            self.last_report = now
            elapsed = now - self.started
            speed = self.done / elapsed if elapsed > 0 else None
            eta = (self.total - self.done) / speed if speed else None
            self.on_progress(100.0 * self.done / self.total, self.done, speed, eta)

    def body(self, sock: socket.socket, buf: memoryview, first: bytes, start: int, end: int) -> None:
        """Read bytes ``start..end`` (the response's body) into the file at their offset."""
        left = end - start + 1
        if len(first) > left:
            raise Fallback("more body than Content-Length")
        offset, fill, size = start, 0, len(buf)
        if first:  # what came in with the head
            os.pwrite(self.fd, first, offset)
            offset += len(first)
            left -= len(first)
            self.progress(len(first))
        flushed = time.monotonic()
        while left > 0:
            n = self.session.recv_into(sock, buf[fill : fill + min(left, size - fill)])
            if n == 0:
                got = self.done + fill
                raise NetError(f"Downloaded {got} bytes, expected {self.total} bytes")
            fill += n
            left -= n
            # a full buffer goes out in one write; a slow source's bytes still show up as progress
            if fill == size or (left and time.monotonic() - flushed >= _FLUSH_SECONDS):
                os.pwrite(self.fd, buf[:fill], offset)
                offset += fill
                self.progress(fill)
                fill = 0
                flushed = time.monotonic()
        if fill:
            os.pwrite(self.fd, buf[:fill], offset)
            self.progress(fill)

    def _next(self, sock: socket.socket | None) -> tuple[socket.socket, int, int, Response] | None:
        """Ask for the next chunk; a kept-alive connection the server has closed gets one fresh retry."""
        chunk = self.take()
        if chunk is None:
            if sock is not None:
                sock.close()
            return None
        start, end = chunk
        while True:
            fresh = sock is None
            if sock is None:
                sock = self.session.connect()
            try:
                response = self.session.ask(sock, self.url, (start, end))
                _check_partial(self.session, response, start, end, self.total, probe=False)
                return sock, start, end, response
            except NetError:
                sock.close()
                sock = None
                if fresh:
                    raise
            except BaseException:
                sock.close()
                raise

    def work(self, first: tuple[socket.socket, int, int, Response] | None) -> None:
        """One connection's loop: take a chunk, ask for it, write it; reconnect when the server closes."""
        buf = memoryview(bytearray(self.tuning.buffer_size))
        sock: socket.socket | None = None
        try:
            current = first or self._next(None)
            while current is not None:
                sock, start, end, response = current
                self.body(sock, buf, response.body_start, start, end)
                if response.headers.get("connection", "").lower() == "close":
                    sock.close()
                    sock = None
                current = self._next(sock)
                sock = None  # owned by current now (or closed)
        except Stopped:
            pass
        except BaseException as exc:
            with self.lock:
                if self.error is None:
                    self.error = exc
            self.session.stop.set()
        finally:
            if sock is not None:
                sock.close()


def fetch_file(
    source: FastSource,
    path: Path,
    session: Session,
    tuning: FastPathTuning,
    on_progress: ProgressCallback,
) -> int:
    """Download ``source`` into ``path``; returns its size. Raises Fallback before any byte is kept."""
    try:
        sock = session.connect()
    except NetError as exc:  # yt-dlp meets (and words) it as it always did
        raise Fallback(str(exc)) from None
    fd = -1
    try:
        try:
            response = session.ask(sock, source.url, (0, tuning.chunk_size - 1))
        except NetError as exc:
            raise Fallback(str(exc)) from None
        end, total = _check_partial(session, response, 0, tuning.chunk_size - 1, None, probe=True)
        if source.expected_size and source.expected_size != total:
            raise Fallback("the server's size differs from the resolved one")
        fd = os.open(path, CREATE, 0o666)
        os.ftruncate(fd, total)
    except BaseException:
        sock.close()
        if fd >= 0:
            os.close(fd)
        raise
    transfer = _Transfer(session, source.url, fd, total, tuning, on_progress)
    transfer.next_offset = end + 1
    # chunks after the first: enough of them that every connection stays busy to the end
    transfer.chunk = max(tuning.min_chunk_size, min(tuning.chunk_size, total // (tuning.connections * 4)))
    threads: list[threading.Thread] = []
    try:
        wanted = min(tuning.connections - 1, -(-(total - end - 1) // transfer.chunk))
        start_extra(threads, wanted, functools.partial(transfer.work, None))
        transfer.work((sock, 0, end, response))
    finally:
        if transfer.error is not None or sys.exc_info()[0] is not None:
            session.stop.set()
        for thread in threads:
            thread.join()
        os.close(fd)
    if transfer.error is not None:
        raise transfer.error
    if transfer.done != total:
        raise NetError(f"Downloaded {transfer.done} bytes, expected {total} bytes")
    return total
