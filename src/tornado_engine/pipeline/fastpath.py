"""Fast path for plain HTTP(S) media: parallel requests on kept-alive connections, straight into the files.

yt-dlp's downloaders fetch through the network guard's proxy (an extra copy of every byte in this
process, a new connection per request) in small blocks. For the two common shapes this module does the
same job with a few keep-alive connections whose reads (``recv_into`` a large buffer) and writes
(``pwrite``) release the GIL, so they really run in parallel:

- a progressive file (one format, one plain URL): ``Range`` chunks written at their offsets;
- DASH (the picked representations, fragments listed by plain URLs on one origin): fragments fetched
  ahead on all connections and appended to each representation's file in order, as yt-dlp's own DASH
  downloader concatenates them (the muxer then copies them into the container, as before).

It is taken only when it is safe to: not live, no cookies, byte-range fragments or DRM, safe request
headers and a media extension; a progressive server must answer the first ranged request with ``206``
and a ``Content-Range`` total. Anything unusual (no Range support, a redirect, an encoded or chunked
body, a failed first request) returns ``None``, nothing is kept, and the caller runs yt-dlp, which then
meets (and words) errors as it always did. Failures past the first request (a reset, a timeout, a body
cut short, an HTTP error) raise :class:`~tornado_engine.errors.DownloadError` with the kinds yt-dlp's
would get (fragments are retried like its ``fragment_retries``), so the runner's retries work alike.

Network policy: the host is resolved and judged once by :class:`~tornado_engine.safety.NetworkPolicy`
and every connection goes to an address it allowed (never a fresh lookup: no DNS rebinding); without a
policy, connections are ``CONNECT`` tunnels through the network guard, which judges them itself. A
refused address raises ``DownloadError`` ("Blocked by network policy ...") and nothing is sent to it.
Redirects are never followed here (they fall back).

Cancel (a ``threading.Event``) is checked at least every :data:`TICK` seconds by every connection, also
while a socket is silent; progress goes to the same callback as yt-dlp's path, in order, never backwards.
Connections beyond each download's first come from an engine-wide budget (:data:`EXTRA_CONNECTIONS`).
"""

from __future__ import annotations

import asyncio
import collections
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

from ..errors import DownloadError, InvalidRequest, JobCancelled, StageError
from ..options import MediaOptions
from ..progress import expected_bytes
from ..safety import BlockedAddress, NetworkPolicy, is_media_extension
from ..ytdlp import MEDIA_STEM, download_params, is_live, map_error
from .downloader import DownloadResult, requested_formats
from .sidecar import SideFiles, fetch_side_files

__all__ = [
    "EXTRA_CONNECTIONS", "TICK", "FastDash", "FastPathTuning", "FastSource", "FastStream", "download",
    "download_sync", "eligible",
]  # fmt: skip

ProgressCallback = Callable[[float, int, float | None, float | None], None]

TICK = 0.25  # seconds: how often a waiting connection looks at the cancel flag
_MIB = 1 << 20
_MAX_HEAD = 64 * 1024
_FLUSH_SECONDS = 0.2  # at most this long between progress reports while bytes arrive
_FRAGMENT_RETRIES = 2  # as yt-dlp's fragment_retries in ytdlp.base_params
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)  # mode 0o666: umask decides
_MAX_FRAGMENT = 256 * _MIB  # held in memory until written: bigger ones are not for this path
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
    buffer_size: int = 256 * 1024  # read buffer per connection; written with one pwrite when full


# Connections beyond each download's first come from one budget, so 500 jobs at once stay at 500 + this
# many sockets and threads (no fd exhaustion), while a lone big download gets all the parallelism it wants.
EXTRA_CONNECTIONS = threading.BoundedSemaphore(48)


@dataclass(frozen=True)
class FastSource:
    """A progressive file: one plain http(s) URL, fetched in ranged chunks."""

    url: str
    headers: tuple[tuple[str, str], ...]
    format_id: str
    filename: str
    expected_size: int | None


@dataclass(frozen=True)
class FastStream:
    """One DASH representation: its fragments' absolute URLs, init segment first, in order."""

    format_id: str
    filename: str
    fragments: tuple[str, ...]
    weight: float  # its expected share of the bytes, for one job-level percent


@dataclass(frozen=True)
class FastDash:
    """The picked DASH representations (video and audio apart), fetched fragment by fragment."""

    streams: tuple[FastStream, ...]
    headers: tuple[tuple[str, str], ...]

    @property
    def url(self) -> str:
        return self.streams[0].fragments[0]


class _Fallback(Exception):
    """Not for the fast path after all: let yt-dlp do it (what was fetched is thrown away)."""


def _request_headers(fmt: dict[str, Any], info: dict[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """The format's own request headers, minus ours and hop-by-hop ones; None if any looks unsafe."""
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
    return tuple(headers)


def _local_name(fmt: dict[str, Any], info: dict[str, Any]) -> tuple[str, str] | None:
    """(format id, file name) as yt-dlp would write it (``media.<id>.<ext>``, one safe component)."""
    ext = str(fmt.get("ext") or info.get("ext") or "")
    format_id = _SAFE_ID.sub("_", str(fmt.get("format_id") or info.get("format_id") or "0"))[:64]
    filename = f"{MEDIA_STEM}.{format_id}.{ext}"
    return (format_id, filename) if is_media_extension(filename) else None  # odd ones: yt-dlp refuses


def _origin(url: str) -> tuple[str, str, int] | None:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    try:
        return scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None


def _dash_stream(fmt: dict[str, Any], info: dict[str, Any]) -> FastStream | None:
    if fmt.get("protocol") != "http_dash_segments" or fmt.get("has_drm"):
        return None
    if any(fmt.get(k) for k in ("extra_param_to_segment_url", "cookies", "is_live", "is_from_start")):
        return None
    fragments = fmt.get("fragments")
    base = fmt.get("fragment_base_url") or ""
    if not isinstance(fragments, list) or not fragments:
        return None
    urls = []
    for fragment in fragments:
        if not isinstance(fragment, dict) or fragment.get("range") or fragment.get("byte_range"):
            return None  # byte ranges inside one file: yt-dlp's business
        url = fragment.get("url") or (
            urllib.parse.urljoin(base, fragment["path"]) if fragment.get("path") else None
        )
        if not isinstance(url, str):
            return None
        urls.append(url)
    named = _local_name(fmt, info)
    if named is None:
        return None
    weight = expected_bytes(fmt, info.get("duration")) or 0.0
    return FastStream(named[0], named[1], tuple(urls), weight)


def eligible(info: dict[str, Any], options: MediaOptions | None = None) -> FastSource | FastDash | None:
    """What the fast path would fetch, or None when yt-dlp must do the download (pure).

    One plain http(s) file, or DASH representations whose fragments are plain URLs on one origin.
    """
    if is_live(info) or (options is not None and options.live_recording):
        return None
    formats = requested_formats(info)
    if not formats or any(f.get("cookies") or f.get("is_live") for f in formats):
        return None
    if formats[0].get("protocol") == "http_dash_segments":
        streams = [_dash_stream(f, info) for f in formats]
        headers = _request_headers(formats[0], info)
        if any(st is None for st in streams) or headers is None:
            return None
        ready = [st for st in streams if st is not None]
        if (
            len({_origin(u) for st in ready for u in st.fragments}) != 1
            or _origin(ready[0].fragments[0]) is None
        ):
            return None  # one origin: one pinned set of addresses, one connection pool
        if len({st.filename for st in ready}) != len(ready):
            return None
        known = [st.weight for st in ready if st.weight]
        fill = sum(known) / len(known) if known else 1.0
        ready = [FastStream(st.format_id, st.filename, st.fragments, st.weight or fill) for st in ready]
        return FastDash(tuple(ready), headers)
    if len(formats) != 1:
        return None
    fmt = formats[0]
    url = fmt.get("url")
    if not isinstance(url, str) or fmt.get("protocol") not in ("http", "https"):
        return None
    if any(fmt.get(k) for k in ("fragments", "fragment_base_url", "manifest_url")):
        return None
    if fmt.get("downloader_options", {}).get("http_chunk_size"):
        return None
    origin = _origin(url)
    named = _local_name(fmt, info)
    headers = _request_headers(fmt, info)
    if origin is None or origin[0] != fmt["protocol"] or named is None or headers is None:
        return None
    size = fmt.get("filesize")
    return FastSource(url, headers, named[0], named[1], int(size) if size else None)


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
        source: FastSource | FastDash,
        policy: NetworkPolicy | None,
        proxy: str | None,
        cancel: threading.Event,
        socket_timeout: float,
    ) -> None:
        parts = urllib.parse.urlsplit(source.url)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
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
                    if _writable(sock, TICK):
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

    def ask(self, sock: socket.socket, url: str, span: tuple[int, int] | None = None) -> _Response:
        """Send a GET of ``url`` (on this origin; bytes ``span`` of it) and read the response's head."""
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if span is not None:
            lines.append(f"Range: bytes={span[0]}-{span[1]}")
        lines += ["Accept-Encoding: identity", "Connection: keep-alive"]
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


def _writable(sock: socket.socket, timeout: float) -> bool:
    """Connected yet? ``poll``, not ``select``: with hundreds of jobs, descriptors pass FD_SETSIZE (1024)."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(timeout * 1000))


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

    def __init__(self, session: _Session, url: str, fd: int, total: int, tuning: FastPathTuning,
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
                response = self.session.ask(sock, self.url, (start, end))
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
    try:
        sock = session.connect()
    except _NetError as exc:  # yt-dlp meets (and words) it as it always did
        raise _Fallback(str(exc)) from None
    fd = -1
    try:
        try:
            response = session.ask(sock, source.url, (0, tuning.chunk_size - 1))
        except _NetError as exc:
            raise _Fallback(str(exc)) from None
        end, total = _check_partial(response, 0, tuning.chunk_size - 1, None, probe=True)
        if source.expected_size and source.expected_size != total:
            raise _Fallback("the server's size differs from the resolved one")
        fd = os.open(path, _CREATE, 0o666)
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


# -- DASH: fragments over a few connections, appended in order --------------------------------------------


class _Fragments:
    """The fragments of every picked representation, fetched over a few connections and appended to
    each representation's file in order (a completed fragment waits in memory for the ones before it;
    no connection runs more than ``window`` fragments ahead of its file)."""

    def __init__(self, session: _Session, dash: FastDash, fds: list[int], tuning: FastPathTuning,
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
            except _NetError as exc:
                if probe:
                    raise _Fallback(str(exc)) from None
                raise
            sock = None
            try:
                response = self.session.ask(conn, url)
                data = self._body(conn, response, probe=probe)
                if response.headers.get("connection", "").lower() == "close":
                    conn.close()
                    return data, None
                return data, conn
            except (_NetError, _Retry) as exc:
                conn.close()
                if probe:
                    raise _Fallback(str(exc)) from None
                if not fresh and failures == 0 and isinstance(exc, _NetError):
                    continue  # a kept-alive connection the server had closed: not a failure yet
                failures += 1
                if failures > _FRAGMENT_RETRIES:
                    if isinstance(exc, _Retry):
                        raise exc.error from None
                    raise
            except BaseException:
                conn.close()
                raise

    def _body(self, sock: socket.socket, response: _Response, *, probe: bool) -> bytearray:
        status, h = response.status, response.headers
        if status != 200:
            if probe or 300 <= status < 400 or status == 206:
                raise _Fallback(f"HTTP {status} for a fragment")
            error = map_error(
                Exception(f"HTTP Error {status}: {response.reason or 'Error'}"), resolving=False
            )
            if status >= 500 or status == 429:
                raise _Retry(error)
            raise error
        length = h.get("content-length", "")
        if (
            not length.isdigit()
            or "transfer-encoding" in h
            or h.get("content-encoding", "identity") != "identity"
        ):
            raise _Fallback("a fragment without a plain Content-Length body")
        size = int(length)
        if size > _MAX_FRAGMENT or len(response.body_start) > size:
            raise _Fallback("fragment too large, or more body than Content-Length")
        data = bytearray(size)
        view = memoryview(data)
        got = len(response.body_start)
        view[:got] = response.body_start
        while got < size:
            n = self.session.recv_into(sock, view[got:])
            if n == 0:
                raise _NetError(f"Downloaded {got} bytes, expected {size} bytes")
            got += n
        return data

    def work_loop(self, sock: socket.socket | None) -> None:
        try:
            while (item := self.take()) is not None:
                data, sock = self.fetch(sock, *item, probe=False)
                self.finish(*item, data)
        except _Stopped:
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


class _Retry(Exception):
    """A fragment answered with a transient HTTP error: try it again (then raise ``error``)."""

    def __init__(self, error: StageError) -> None:
        super().__init__(error.message)
        self.error = error


def _extra_dash_worker(fragments: _Fragments) -> None:
    try:
        fragments.work_loop(None)
    finally:
        EXTRA_CONNECTIONS.release()


def _fetch_dash(dash: FastDash, paths: list[Path], session: _Session, tuning: FastPathTuning,
                on_progress: ProgressCallback) -> int:  # fmt: skip
    """Download every representation into ``paths``; returns the bytes. The first fragment is the probe:
    anything unusual about it falls back before more is asked for."""
    fds: list[int] = []
    threads: list[threading.Thread] = []
    fragments: _Fragments | None = None
    try:
        for path in paths:
            fds.append(os.open(path, _CREATE, 0o666))
        fragments = _Fragments(session, dash, fds, tuning, on_progress)
        first = fragments.take()
        assert first is not None
        data, sock = fragments.fetch(None, *first, probe=True)
        fragments.finish(*first, data)
        for _ in range(min(tuning.connections - 1, len(fragments.work))):
            if not EXTRA_CONNECTIONS.acquire(blocking=False):
                break
            thread = threading.Thread(
                target=_extra_dash_worker, args=(fragments,), daemon=True, name="fastpath"
            )
            try:
                thread.start()
            except BaseException:
                EXTRA_CONNECTIONS.release()
                raise
            threads.append(thread)
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
        raise _NetError("the download stopped before every fragment was written")
    return fragments.bytes


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
    if isinstance(source, FastDash):
        paths = [job_dir / st.filename for st in source.streams]
        ids = [st.format_id for st in source.streams]
    else:
        paths, ids = [job_dir / source.filename], [source.format_id]
    started = time.monotonic()
    try:
        session = _Session(source, policy, proxy, cancel, socket_timeout)
        if isinstance(source, FastDash):
            size = _fetch_dash(source, paths, session, tuning, on_progress)
        else:
            size = _fetch(source, paths[0], session, tuning, on_progress)
    except _Fallback:
        _remove(paths)
        if cancel.is_set():
            raise JobCancelled("cancelled during download") from None
        return None
    except _NetError as exc:
        _remove(paths)
        if cancel.is_set():
            raise JobCancelled("cancelled during download") from None
        raise map_error(Exception(f"Got error: {exc}"), resolving=False) from None
    except BaseException:
        _remove(paths)
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
    return DownloadResult(paths, ids, size, seconds, side)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


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
