"""A filtering HTTP proxy on 127.0.0.1 that every yt-dlp request goes through (SSRF guard).

yt-dlp follows redirects and finds media URLs inside pages and manifests; checking only the submitted URL
would miss those. So the downloader talks to this proxy, which resolves each target host, refuses it when
any address is outside the :class:`NetworkPolicy`, and then connects to the **address it checked** (no DNS
rebinding between check and connect). ``CONNECT`` tunnels serve HTTPS; plain HTTP is forwarded one request
per connection, so a kept-alive client connection can never be reused for another host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from .errors import InvalidRequest
from .safety import NetworkPolicy

__all__ = ["BLOCKED_REASON", "NetGuard"]

_log = logging.getLogger("tornado_engine.netguard")

BLOCKED_REASON = "Blocked by network policy"
_HOP_HEADERS = {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "upgrade"}
_BUFFER = 1 << 18


class NetGuard:
    """Start with ``start()`` (returns the proxy URL); ``stop()`` ends it. Runs its own loop thread."""

    def __init__(self, policy: NetworkPolicy, connect_timeout: float = 20.0) -> None:
        self.policy = policy
        self.connect_timeout = connect_timeout
        self.url = ""
        self.blocked = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    def start(self) -> str:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            port = self._server.sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=serve, name="tornado-netguard", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.close()
            # let each connection handler run its cleanup before the loop goes away; rounds, because a
            # connection accepted just before close() gets its handler task only on the next loop turn
            for _ in range(5):
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    break
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            await self._dispatch(head, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): asyncio's stream callback would log a cancelled handler as an error
        except Exception:  # one bad client must never take the proxy down
            _log.exception("netguard: request failed")
        finally:
            writer.close()  # no await here: a handler closed at loop shutdown must not suspend again

    async def _dispatch(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = [*request_line.split(" ", 2), "", ""][:3]
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            upstream = await self._open(host.strip("[]"), int(port_text or 443), writer)
            if upstream is None:
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _pipe_both(reader, writer, *upstream)
            return
        if not target.lower().startswith("http://"):
            await _refuse(writer, 400, "Bad Request", "absolute http:// URL or CONNECT expected")
            return
        rest = target[len("http://") :]
        authority, _, path = rest.partition("/")
        host, _, port_text = authority.rpartition(":") if authority.count(":") == 1 else (authority, "", "")
        upstream = await self._open(host.strip("[]"), int(port_text or 80), writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        headers = [h for h in header_lines if h and h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
        out = f"{method} /{path} {version}\r\n" + "".join(f"{h}\r\n" for h in headers)
        up_writer.write((out + "Connection: close\r\n\r\n").encode("latin-1"))
        length = next(
            (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0
        )
        if length:
            up_writer.write(await reader.readexactly(length))
        await up_writer.drain()
        try:
            response_head = await up_reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            up_writer.close()
            await _refuse(writer, 502, "Bad Gateway (bad response head)", f"bad response from {authority}")
            return
        writer.write(_closing(response_head))
        await _copy(up_reader, writer)
        up_writer.close()

    async def _open(
        self, host: str, port: int, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        loop = asyncio.get_running_loop()
        try:
            addresses = await loop.run_in_executor(None, self.policy.resolve, host, port)
        except InvalidRequest as exc:
            self.blocked += 1
            _log.warning("netguard: %s", exc.message)
            await _refuse(writer, 403, BLOCKED_REASON, exc.message)
            return None
        cause = "no address"
        for address in addresses:  # connect to what was checked, not to a fresh lookup
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(str(address), port, limit=_BUFFER), self.connect_timeout
                )
            except TimeoutError:
                cause = "Connection timed out"
            except OSError as exc:
                cause = exc.strerror or type(exc).__name__
        # the cause goes in the reason phrase, so the downloader's error says what really happened
        await _refuse(writer, 502, f"Bad Gateway ({cause})", f"cannot connect to {host}:{port}: {cause}")
        return None


def _closing(response_head: bytes) -> bytes:
    """The upstream response head with ``Connection: close``: this proxy serves one request per client
    connection, and a client that kept the connection for its next request would see it dropped unanswered
    (yt-dlp's live-stream check on a manifest is such a request, and it fails silently)."""
    status_line, *header_lines = response_head[:-4].split(b"\r\n")
    kept = [
        h for h in header_lines if h.split(b":", 1)[0].strip().lower().decode("latin-1") not in _HOP_HEADERS
    ]
    return b"\r\n".join([status_line, *kept, b"Connection: close"]) + b"\r\n\r\n"


async def _refuse(writer: asyncio.StreamWriter, code: int, reason: str, body: str) -> None:
    data = body.encode()
    writer.write(
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
        f"Connection: close\r\n\r\n".encode()
        + data
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_BUFFER):
            dst.write(data)
            await dst.drain()
    except ConnectionError:
        pass
    finally:
        if dst.can_write_eof():
            with contextlib.suppress(OSError):
                dst.write_eof()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
    up_writer.close()
