"""One progressive file (a plain http(s) URL): ``Range`` chunks over a few connections, each written at
its offset with ``pwrite``; the first ranged request is the probe that may still fall back.

Byte-level resume: the spans written so far and the source's validators are kept next to the file
(:mod:`tornado_engine.partialfile`, saved every :data:`_SAVE_SECONDS` and when the transfer ends). A later
try asks only for the missing spans, with ``If-Range``, when :func:`tornado_engine.partial.should_resume`
says the source is still the same; otherwise the file starts over from byte 0."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

from ... import partialfile
from ...errors import StageError
from ...partial import Partial, Span, Validators, add_span, done_bytes, missing, should_resume
from ...progress import ProgressCallback
from ._signals import Fallback, NetError, Stopped
from .connection import Response, Session
from .eligibility import FastSource
from .tuning import CREATE, FastPathTuning, start_extra

__all__ = ["fetch_file"]

_FLUSH_SECONDS = 0.2  # at most this long between progress reports while bytes arrive
_SAVE_SECONDS = 0.5  # at most this long between sidecar saves: what a crash may cost to fetch again
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


class _Restart(Exception):
    """The bytes on disk are of another version of the source (or unusable): start over from byte 0."""


class _Transfer:
    """One file: the missing spans, progress, what is written, and the connections working on it."""

    def __init__(self, session: Session, source: FastSource, path: Path, fd: int, partial: Partial,
                 tuning: FastPathTuning, on_progress: ProgressCallback) -> None:  # fmt: skip
        assert partial.validators.length is not None
        self.session = session
        self.url = source.url
        self.path = path
        self.fd = fd
        self.partial = partial  # its spans grow as bytes are written; saved as the file's sidecar
        self.resumable = partial.validators.if_range() is not None  # else no sidecar: a retry starts over
        self.total = partial.validators.length
        self.tuning = tuning
        self.on_progress = on_progress
        self.lock = threading.Lock()
        self.holes = missing(partial.spans, self.total)
        self.chunk = tuning.chunk_size
        self.resumed = self.done = done_bytes(partial.spans)
        self.started = time.monotonic()
        self.last_report = 0.0
        self.last_save = self.started
        self.error: BaseException | None = None

    def take(self) -> Span | None:
        """The next chunk to ask for, as (first byte, last byte)."""
        with self.lock:
            if not self.holes:
                return None
            start, end = self.holes[0]
            stop = min(end, start + self.chunk)
            if stop == end:
                self.holes.pop(0)
            else:
                self.holes[0] = (stop, end)
            return start, stop - 1

    def wrote(self, offset: int, n: int) -> None:
        """``n`` bytes are in the file at ``offset``: count them, report progress, now and then save."""
        with self.lock:  # reported under the lock, so the callback sees the counts in order
            self.done += n
            spans = add_span(self.partial.spans, offset, offset + n)
            self.partial = Partial(self.partial.format_id, self.partial.validators, spans)
            now = time.monotonic()
            due = self.resumable and now - self.last_save >= _SAVE_SECONDS
            snapshot = self.partial if due else None
            if snapshot is not None:
                self.last_save = now
            if self.done >= self.total or now - self.last_report >= 0.05:
                self.last_report = now
                elapsed = now - self.started
                speed = (self.done - self.resumed) / elapsed if elapsed > 0 else None
                eta = (self.total - self.done) / speed if speed else None
                self.on_progress(100.0 * self.done / self.total, self.done, speed, eta)
        # out of the lock: the flush may take a moment; an older snapshot than another's claims less
        if snapshot is not None:
            partialfile.save(self.path, snapshot, flush_fd=self.fd)

    def keep(self, data: memoryview, offset: int) -> None:
        if data:
            os.pwrite(self.fd, data, offset)
            self.wrote(offset, len(data))

    def body(self, sock: socket.socket, buf: memoryview, first: bytes, start: int, end: int) -> None:
        """Read bytes ``start..end`` (the response's body) into the file at their offset."""
        left = end - start + 1
        if len(first) > left:
            raise Fallback("more body than Content-Length")
        offset, fill, size = start, 0, len(buf)
        if first:  # what came in with the head
            os.pwrite(self.fd, first, offset)
            self.wrote(offset, len(first))
            offset += len(first)
            left -= len(first)
        flushed = time.monotonic()
        while left > 0:
            try:
                n = self.session.recv_into(sock, buf[fill : fill + min(left, size - fill)])
            except (NetError, StageError):  # a reset, a stall: what did arrive is kept for the next try
                self.keep(buf[:fill], offset)
                raise
            if n == 0:
                self.keep(buf[:fill], offset)
                raise NetError(f"Downloaded {self.done} bytes, expected {self.total} bytes")
            fill += n
            left -= n
            # a full buffer goes out in one write; a slow source's bytes still show up as progress
            if fill == size or (left and time.monotonic() - flushed >= _FLUSH_SECONDS):
                os.pwrite(self.fd, buf[:fill], offset)
                self.wrote(offset, fill)
                offset += fill
                fill = 0
                flushed = time.monotonic()
        if fill:
            os.pwrite(self.fd, buf[:fill], offset)
            self.wrote(offset, fill)

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


def _saved(source: FastSource, path: Path) -> Partial | None:
    """What an earlier try left of this file, if it may be worth resuming."""
    partial = partialfile.load(path)
    if partial is None or partial.format_id != source.format_id or not partial.spans:
        return None
    length = partial.validators.length
    if length is None or partial.validators.if_range() is None or not missing(partial.spans, length):
        return None
    if not path.is_file():
        return None
    return partial


def _probe(
    source: FastSource, session: Session, tuning: FastPathTuning, saved: Partial | None
) -> tuple[socket.socket, Response, Span, Partial]:
    """The first ranged request: at byte 0, or (resuming ``saved``) at the first missing byte, sent
    with ``If-Range``. -> (its connection, its response, its span, what the file holds of this version)"""
    try:
        sock = session.connect()
    except NetError as exc:  # yt-dlp meets (and words) it as it always did
        raise Fallback(str(exc)) from None
    try:
        start, stop = 0, tuning.chunk_size
        if saved is not None:  # the first hole, up to a chunk of it
            start, stop = missing(saved.spans, saved.validators.length or 0)[0]
            stop = min(stop, start + tuning.chunk_size)
        session.if_range = saved.validators.if_range() if saved else None
        try:
            response = session.ask(sock, source.url, (start, stop - 1))
        except NetError as exc:
            raise Fallback(str(exc)) from None
        if saved is not None and response.status in (200, 416):
            raise _Restart  # If-Range sent the whole new version, or the file is shorter now
        end, total = _check_partial(session, response, start, stop - 1, None, probe=True)
        if source.expected_size and source.expected_size != total:
            raise Fallback("the server's size differs from the resolved one")
        current = Validators.from_headers(response.headers, total)
        if saved is not None and not should_resume(saved.validators, current, done_bytes(saved.spans)):
            raise _Restart
        session.if_range = current.if_range()
        partial = saved or Partial(source.format_id, current)
        return sock, response, (start, end), partial
    except BaseException:
        sock.close()
        raise


def _open(path: Path, partial: Partial) -> int:
    """The file's descriptor: a fresh one of the whole size, or (resuming) the one already there."""
    total = partial.validators.length or 0
    if partial.spans:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        if os.fstat(fd).st_size != total:
            os.close(fd)
            raise _Restart
        return fd
    fd = os.open(path, CREATE, 0o666)
    try:
        os.ftruncate(fd, total)
        if partial.validators.if_range():  # before any byte: the version this transfer writes
            partialfile.save(path, partial)
    except BaseException:
        os.close(fd)
        raise
    return fd


def fetch_file(
    source: FastSource,
    path: Path,
    session: Session,
    tuning: FastPathTuning,
    on_progress: ProgressCallback,
) -> int:
    """Download ``source`` into ``path``, resuming what an earlier try left when the source is still the
    same; returns its size. Raises Fallback before any byte is kept."""
    try:
        return _fetch(source, path, session, tuning, on_progress, _saved(source, path))
    except _Restart:
        partialfile.discard(path)
        return _fetch(source, path, session, tuning, on_progress, None)


def _fetch(source: FastSource, path: Path, session: Session, tuning: FastPathTuning,
           on_progress: ProgressCallback, saved: Partial | None) -> int:  # fmt: skip
    sock, response, (start, end), partial = _probe(source, session, tuning, saved)
    try:
        fd = _open(path, partial)
    except BaseException:
        sock.close()
        raise
    transfer = _Transfer(session, source, path, fd, partial, tuning, on_progress)
    total = transfer.total
    transfer.holes = missing(add_span(partial.spans, start, end + 1), total)
    # chunks after the first: enough of them that every connection stays busy to the end
    left = sum(e - s for s, e in transfer.holes)
    transfer.chunk = max(tuning.min_chunk_size, min(tuning.chunk_size, left // (tuning.connections * 4)))
    threads: list[threading.Thread] = []
    try:
        wanted = min(tuning.connections - 1, -(-left // transfer.chunk))
        start_extra(threads, wanted, functools.partial(transfer.work, None))
        transfer.work((sock, start, end, response))
    finally:
        if transfer.error is not None or sys.exc_info()[0] is not None:
            session.stop.set()
        for thread in threads:
            thread.join()
        try:
            if transfer.resumable and transfer.done != total:  # what this try got is kept for the next
                with contextlib.suppress(OSError):  # then the last save stands: it claims no more
                    partialfile.save(path, transfer.partial, flush_fd=fd)
        finally:
            os.close(fd)
    if transfer.error is not None:
        raise transfer.error
    if transfer.done != total:
        raise NetError(f"Downloaded {transfer.done} bytes, expected {total} bytes")
    partialfile.sidecar_of(path).unlink(missing_ok=True)
    return total
