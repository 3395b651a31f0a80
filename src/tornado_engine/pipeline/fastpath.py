"""Fast path for plain HTTP(S) progressive media: parallel ranged requests written straight into the file.

yt-dlp's HTTP downloader reads one stream in small blocks through the network guard's proxy (an extra copy
of every byte in this process). For the common case of one plain file this module does the same job with a
few keep-alive connections, each fetching ``Range`` chunks into a large buffer and ``pwrite``-ing them at
their offsets (both syscalls release the GIL, so connections really run in parallel).

It is taken only when it is safe to: the resolver picked exactly one format, its URL is plain http(s) (no
manifest, fragments, cookies or live stream), and the server answers the first ranged request with ``206``
and a ``Content-Range`` total. Anything else (no Range support, a redirect, an encoded body, a refused or
failed first request, odd headers) returns ``None`` before a byte is kept, and the caller runs yt-dlp.
Failures after that (a reset, a timeout, a body cut short, an HTTP error on a later chunk) raise
:class:`~tornado_engine.errors.DownloadError` with the kinds yt-dlp's would get, so retries work alike.

Network policy: the host is resolved and judged once by :class:`~tornado_engine.safety.NetworkPolicy`
and every connection goes to an address it allowed (never a fresh lookup: no DNS rebinding); without a
policy, connections go through the network guard's ``CONNECT`` tunnel, which judges them itself. A refused
address raises ``DownloadError`` ("Blocked by network policy ...") and nothing is sent to it.

Cancel (a ``threading.Event``) is checked at least every :data:`TICK` seconds by every connection, also
while a socket is silent; progress goes to the same callback as yt-dlp's path, in order, never backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import os
import re
import select
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DownloadError, InvalidRequest, JobCancelled
from ..options import MediaOptions
from ..safety import BlockedAddress, NetworkPolicy, is_media_extension
from ..ytdlp import MEDIA_STEM, download_params, is_live, map_error
from .downloader import DownloadResult, requested_formats
from .sidecar import SideFiles, fetch_side_files

__all__ = ["TICK", "FastPathTuning", "FastSource", "download", "download_sync", "eligible"]

ProgressCallback = Callable[[float, int, float | None, float | None], None]

TICK = 0.25  # seconds: how often a waiting connection looks at the cancel flag
_MIB = 1 << 20
_MAX_HEAD = 64 * 1024
_FLUSH_SECONDS = 0.2  # at most this long between progress reports while bytes arrive
# headers of the format we never forward: ours, hop-by-hop, or ones that change the body's shape
_SKIP_HEADERS = frozenset(
    {
        "host", "range", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
        "upgrade", "accept-encoding", "content-length", "transfer-encoding", "if-range",
    }
)  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class FastPathTuning:
    """How hard one download pushes; the engine-wide cap on extra connections is :data:`EXTRA_CONNECTIONS`."""

    connections: int = 4  # per download, the first one included
    chunk_size: int = 8 * _MIB  # one ranged request
    min_chunk_size: int = 1 * _MIB
    buffer_size: int = 1 * _MIB  # read buffer per connection; written with one pwrite when full


# Connections beyond each download's first come from one budget, so 500 jobs at once stay at 500 + this
# many sockets and threads (no fd exhaustion), while a lone big download gets all the parallelism it wants.
EXTRA_CONNECTIONS = threading.BoundedSemaphore(48)


@dataclass(frozen=True)
class FastSource:
    """What the fast path fetches: one plain http(s) URL, its request headers and the local name."""

    url: str
    headers: tuple[tuple[str, str], ...]
    format_id: str
    filename: str
    expected_size: int | None


class _Fallback(Exception):
    """Not for the fast path after all: let yt-dlp do it (nothing kept so far)."""


def eligible(info: dict[str, Any], options: MediaOptions | None = None) -> FastSource | None:
    """The single plain http(s) file to fetch, or None when yt-dlp must do the download (pure)."""
    if is_live(info) or (options is not None and options.live_recording):
        return None
    formats = requested_formats(info)
    if len(formats) != 1:
        return None
    fmt = formats[0]
    url = fmt.get("url")
    if not isinstance(url, str) or fmt.get("protocol") not in ("http", "https"):
        return None
    if any(fmt.get(k) for k in ("fragments", "fragment_base_url", "cookies", "manifest_url")):
        return None
    if fmt.get("downloader_options", {}).get("http_chunk_size") or fmt.get("is_live"):
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != fmt["protocol"] or not parts.hostname or parts.username or parts.password:
        return None
    ext = str(fmt.get("ext") or info.get("ext") or "")
    format_id = _SAFE_ID.sub("_", str(fmt.get("format_id") or info.get("format_id") or "0"))[:64]
    filename = f"{MEDIA_STEM}.{format_id}.{ext}"
    if not is_media_extension(filename):
        return None  # yt-dlp refuses odd extensions with its own message
    headers: list[tuple[str, str]] = []
    for name, value in (fmt.get("http_headers") or info.get("http_headers") or {}).items():
        name, value = str(name), str(value)
        if name.lower() in _SKIP_HEADERS:
            continue
        if not _TOKEN.match(name) or any(c in value for c in "\r\n\0"):
            return None
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return None
        headers.append((name, value))
    size = fmt.get("filesize")
    return FastSource(url, tuple(headers), format_id, filename, int(size) if size else None)


# -- one connection ------------------------------------------------------------------------------------


class _NetError(Exception):
    """A transport failure, worded like yt-dlp's so that classification and messages match."""


_tls_lock = threading.Lock()
_tls_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """One verifying context per process (loading the CA store costs ~0.1 s; never per download)."""
    global _tls_context
    with _tls_lock:
        if _tls_context is None:
            context = ssl.create_default_context()
            with contextlib.suppress(ImportError, OSError):
                import certifi  # what yt-dlp trusts too, when it is installed

                context.load_verify_locations(cafile=certifi.where())
            _tls_context = context
        return _tls_context


@dataclass
class _Response:
    status: int
    reason: str
    headers: dict[str, str]
    body_start: bytes


class _Session:
    """Shared by a download's connections: where to connect, what to send, when to stop."""

    def __init__(
        self,
        source: FastSource,
        policy: NetworkPolicy | None,
        proxy: str | None,
        cancel: threading.Event,
        socket_timeout: float,
    ) -> None:
        parts = urllib.parse.urlsplit(source.url)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = f"{host}:{self.port}"
        default_port = self.port == (443 if self.https else 80)
        self.host_header = host if default_port else self.authority
        self.headers = source.headers
        self.cancel = cancel
        self.stop = threading.Event()  # another connection failed: wind down
        self.timeout = socket_timeout
        self.proxy = proxy
        self.addresses: list[str] = []
        if policy is not None:
            try:
                self.addresses = [str(a) for a in policy.resolve(self.host, self.port)]
            except BlockedAddress as exc:
                raise DownloadError(exc.message, kind="http_error") from None
            except InvalidRequest as exc:  # unresolvable: yt-dlp words that failure
                raise _Fallback(exc.message) from None
        elif not proxy:
            raise _Fallback("neither a network policy nor the guard's proxy: nothing to enforce it with")

    def check(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled("cancelled during download")
        if self.stop.is_set():
            raise _Stopped

    def recv_into(self, sock: socket.socket, view: memoryview) -> int:
        """``sock.recv_into`` that looks at cancel every tick and gives up after ``socket_timeout``."""
        idle = 0.0
        while True:
            self.check()
            try:
                return sock.recv_into(view)
            except TimeoutError:
                idle += TICK
                if idle >= self.timeout:
                    raise _NetError("The read operation timed out") from None
            except OSError as exc:
                raise _NetError(_os_text(exc)) from None

    def connect(self) -> socket.socket:
        # to an address the policy judged, or through the guard, which judges it itself
        sock = self._tcp([(a, self.port) for a in self.addresses]) if self.addresses else self._tunnel()
        if self.https:
            try:
                sock.settimeout(self.timeout)
                sock = _tls().wrap_socket(sock, server_hostname=self.host)
            except OSError as exc:  # ssl.SSLError is an OSError
                sock.close()
                raise _NetError(f"TLS handshake failed: {exc}") from None
        sock.settimeout(TICK)
        return sock

    def _tcp(self, targets: list[tuple[str, int]]) -> socket.socket:
        last = "no address to connect to"
        for address, port in targets:
            family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                err = sock.connect_ex((address, port))
                waited = 0.0
                while err in _IN_PROGRESS:  # wait for the handshake, looking at cancel every tick
                    self.check()
                    if select.select([], [sock], [], TICK)[1]:
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        break
                    waited += TICK
                    if waited >= self.timeout:
                        raise _NetError("timed out")
                if err:
                    raise OSError(err, os.strerror(err))
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except OSError as exc:
                sock.close()
                last = _os_text(exc)
            except BaseException:
                sock.close()
                raise
        raise _NetError(last)

    def _tunnel(self) -> socket.socket:
        """A CONNECT tunnel through the network guard, which judges the target like any yt-dlp request."""
        proxy = urllib.parse.urlsplit(self.proxy or "")
        sock = self._tcp([(proxy.hostname or "127.0.0.1", proxy.port or 80)])
        try:
            sock.settimeout(TICK)
            sock.sendall(f"CONNECT {self.authority} HTTP/1.1\r\nHost: {self.authority}\r\n\r\n".encode())
            response = self.read_head(sock)
            if response.status == 403:
                raise DownloadError(
                    f"Blocked by network policy: {self.host} is not an allowed address", kind="http_error"
                )
            if response.status != 200 or response.body_start:
                raise _NetError(f"the network guard answered {response.status} {response.reason}")
            return sock
        except BaseException:
            sock.close()
            raise

    def read_head(self, sock: socket.socket) -> _Response:
        data = bytearray()
        buf = memoryview(bytearray(16384))
        while (end := data.find(b"\r\n\r\n")) < 0:
            if len(data) > _MAX_HEAD:
                raise _Fallback("response headers too large")
            n = self.recv_into(sock, buf)
            if not n:
                raise _NetError("Remote end closed connection without response")
            data += buf[:n]
        lines = bytes(data[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise _Fallback(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _Fallback("malformed response header")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        return _Response(int(code), reason, headers, bytes(data[end + 4 :]))

    def ask(self, sock: socket.socket, start: int, end: int) -> _Response:
        """Send a ranged GET on ``sock`` and read the response's head."""
        lines = [f"GET {self.target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines += [f"Range: bytes={start}-{end}", "Accept-Encoding: identity", "Connection: keep-alive"]
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        except OSError as exc:
            raise _NetError(_os_text(exc)) from None
        return self.read_head(sock)


_IN_PROGRESS = {
    0,
    *(getattr(errno, n) for n in ("EINPROGRESS", "EWOULDBLOCK", "EAGAIN") if hasattr(errno, n)),
}
_IN_PROGRESS.discard(0)


def _os_text(exc: OSError) -> str:
    """``[Errno 104] Connection reset by peer``: the wording yt-dlp's messages and our classifier use."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"[Errno {exc.errno}] {exc.strerror}" if exc.errno else str(exc) or type(exc).__name__


class _Stopped(Exception):
    """Another connection of the same download failed; this one just stops."""


def _check_partial(
    response: _Response, start: int, end: int, total: int | None, *, probe: bool
) -> tuple[int, int]:
    """(last byte, total) of a 206 that is exactly what was asked for; else fall back or fail.

    On the first request any surprise falls back, so yt-dlp meets (and words) errors as it always did.
    """
    status = response.status
    if status != 206 and (probe or status in (200, 416) or 300 <= status < 400):
        raise _Fallback(f"HTTP {status} to a range request")
    if status != 206:
        raise map_error(Exception(f"HTTP Error {status}: {response.reason or 'Error'}"), resolving=False)
    h = response.headers
    if h.get("content-encoding", "identity").lower() not in ("identity", "") or "transfer-encoding" in h:
        raise _Fallback("encoded or chunked body")
    match = _CONTENT_RANGE.match(h.get("content-range", "").strip())
    length = h.get("content-length", "")
    if match is None or not length.isdigit():
        raise _Fallback("no usable Content-Range / Content-Length")
    first, last, size = (int(g) for g in match.groups())
    if first != start or last != min(end, size - 1) or int(length) != last - first + 1:
        raise _Fallback("the server answered another range than asked for")
    if total is not None and size != total:
        raise _Fallback("the file changed size during the download")
    return last, size


# -- the download ----------------------------------------------------------------------------------------


class _Transfer:
    """One file: the chunk queue, progress, and the connections working on it."""

    def __init__(self, session: _Session, fd: int, total: int, tuning: FastPathTuning,
                 on_progress: ProgressCallback) -> None:  # fmt: skip
        self.session = session
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
            raise _Fallback("more body than Content-Length")
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
                raise _NetError(f"Downloaded {got} bytes, expected {self.total} bytes")
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

    def _next(self, sock: socket.socket | None) -> tuple[socket.socket, int, int, _Response] | None:
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
                response = self.session.ask(sock, start, end)
                _check_partial(response, start, end, self.total, probe=False)
                return sock, start, end, response
            except _NetError:
                sock.close()
                sock = None
                if fresh:
                    raise
            except BaseException:
                sock.close()
                raise

    def work(self, first: tuple[socket.socket, int, int, _Response] | None) -> None:
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
        except _Stopped:
            pass
        except BaseException as exc:
            with self.lock:
                if self.error is None:
                    self.error = exc
            self.session.stop.set()
        finally:
            if sock is not None:
                sock.close()


def _extra_worker(transfer: _Transfer) -> None:
    try:
        transfer.work(None)
    finally:
        EXTRA_CONNECTIONS.release()


def _fetch(
    source: FastSource,
    path: Path,
    session: _Session,
    tuning: FastPathTuning,
    on_progress: ProgressCallback,
) -> int:
    """Download ``source`` into ``path``; returns its size. Raises _Fallback before any byte is kept."""
    sock = session.connect()
    fd = -1
    try:
        response = session.ask(sock, 0, tuning.chunk_size - 1)
        end, total = _check_partial(response, 0, tuning.chunk_size - 1, None, probe=True)
        if source.expected_size and source.expected_size != total:
            raise _Fallback("the server's size differs from the resolved one")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        os.ftruncate(fd, total)
    except BaseException:
        sock.close()
        if fd >= 0:
            os.close(fd)
        raise
    transfer = _Transfer(session, fd, total, tuning, on_progress)
    transfer.next_offset = end + 1
    # chunks after the first: enough of them that every connection stays busy to the end
    transfer.chunk = max(tuning.min_chunk_size, min(tuning.chunk_size, total // (tuning.connections * 4)))
    threads: list[threading.Thread] = []
    try:
        wanted = min(tuning.connections - 1, -(-(total - end - 1) // transfer.chunk))
        for _ in range(max(0, wanted)):
            if not EXTRA_CONNECTIONS.acquire(blocking=False):
                break  # the engine-wide budget is used up: this download makes do with fewer
            thread = threading.Thread(target=_extra_worker, args=(transfer,), daemon=True, name="fastpath")
            try:
                thread.start()
            except BaseException:
                EXTRA_CONNECTIONS.release()
                raise
            threads.append(thread)
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
        raise _NetError(f"Downloaded {transfer.done} bytes, expected {total} bytes")
    return total


def download_sync(
    info: dict[str, Any],
    job_dir: Path,
    *,
    on_progress: ProgressCallback,
    cancel: threading.Event,
    socket_timeout: float = 20.0,
    policy: NetworkPolicy | None = None,
    proxy: str | None = None,
    options: MediaOptions | None = None,
    ffmpeg_dir: str | None = None,
    tuning: FastPathTuning | None = None,
) -> DownloadResult | None:
    """Blocking. The download, or None when yt-dlp should do it (then nothing is left in ``job_dir``).

    ``policy``: judge and pin the host's addresses here; without it, connect through ``proxy`` (the
    network guard). With neither, returns None.
    """
    source = eligible(info, options)
    if source is None:
        return None
    tuning = tuning or FastPathTuning()
    path = job_dir / source.filename
    started = time.monotonic()
    try:
        session = _Session(source, policy, proxy, cancel, socket_timeout)
        size = _fetch(source, path, session, tuning, on_progress)
    except _Fallback:
        path.unlink(missing_ok=True)
        if cancel.is_set():
            raise JobCancelled("cancelled during download") from None
        return None
    except _NetError as exc:
        path.unlink(missing_ok=True)
        if cancel.is_set():
            raise JobCancelled("cancelled during download") from None
        raise map_error(Exception(f"Got error: {exc}"), resolving=False) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - started
    side = SideFiles()
    if options is not None and (options.subtitle_languages or options.thumbnail):
        params = download_params(
            job_dir, ffmpeg_dir, lambda d: None, socket_timeout=socket_timeout, options=options
        )
        if proxy:
            params["proxy"] = proxy
        side = fetch_side_files(info, job_dir, params, options)
    return DownloadResult([path], [source.format_id], size, seconds, side)


async def download(
    info: dict[str, Any],
    job_dir: Path,
    *,
    on_progress: ProgressCallback,
    cancel: threading.Event,
    socket_timeout: float = 20.0,
    executor: Executor | None = None,
    policy: NetworkPolicy | None = None,
    proxy: str | None = None,
    options: MediaOptions | None = None,
    ffmpeg_dir: str | None = None,
    tuning: FastPathTuning | None = None,
) -> DownloadResult | None:
    """:func:`download_sync` in ``executor``; None when the caller should use yt-dlp."""
    if eligible(info, options) is None:
        return None
    call = functools.partial(
        download_sync, info, job_dir, on_progress=on_progress, cancel=cancel, socket_timeout=socket_timeout,
        policy=policy, proxy=proxy, options=options, ffmpeg_dir=ffmpeg_dir, tuning=tuning,
    )  # fmt: skip
    return await asyncio.get_running_loop().run_in_executor(executor, call)
