"""The filtering proxy with the real yt-dlp: redirects and media URLs inside pages are judged too."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yt_dlp

from tornado_engine.netguard import NetGuard
from tornado_engine.safety import NetworkPolicy
from tornado_engine.testing import MediaServer, MediaSet
from tornado_engine.ytdlp import SilentLogger

pytestmark = pytest.mark.integration


@pytest.fixture
def front(media_server: MediaServer) -> Iterator[str]:
    """A server on 127.0.0.2 that redirects to, or embeds, the media server on 127.0.0.1."""
    target = media_server.url("progressive.mp4")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = f'<html><head><title>p</title></head><body><video src="{target}"></video></body></html>'
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()


def _download(url: str, proxy: str, home: Path) -> Path:
    params = {
        "logger": SilentLogger(), "quiet": True, "proxy": proxy, "cachedir": False,
        "paths": {"home": str(home)}, "outtmpl": {"default": "media.%(ext)s"}, "retries": 0,
    }  # fmt: skip
    with yt_dlp.YoutubeDL(params) as ydl:
        info = ydl.extract_info(url, download=True)
    return Path(info["requested_downloads"][0]["filepath"])


def test_allowed_download_goes_through(
    media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    guard = NetGuard(NetworkPolicy.build(["127.0.0.1/32"]))
    proxy = guard.start()
    try:
        path = _download(media_server.url(media_set.progressive_mp4), proxy, tmp_path)
        assert path.read_bytes() == media_set.path(media_set.progressive_mp4).read_bytes()
    finally:
        guard.stop()


@pytest.mark.parametrize("route", ["/redirect", "/page.html"])
def test_redirect_or_embedded_media_to_blocked_host_refused(front: str, route: str, tmp_path: Path) -> None:
    guard = NetGuard(NetworkPolicy.build(["127.0.0.2/32"]))  # the front is allowed, 127.0.0.1 is not
    proxy = guard.start()
    try:
        with pytest.raises(yt_dlp.utils.DownloadError, match="Blocked by network policy"):
            _download(front + route, proxy, tmp_path)
        assert guard.blocked >= 1
        assert not any(tmp_path.glob("media.*"))
    finally:
        guard.stop()


def test_connect_tunnel_to_blocked_host_refused(media_server: MediaServer) -> None:
    guard = NetGuard(NetworkPolicy.build([]))
    proxy = guard.start()
    try:
        port = int(proxy.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"CONNECT 127.0.0.1:{media_server.port} HTTP/1.1\r\n\r\n".encode())
            assert sock.recv(200).startswith(b"HTTP/1.1 403 Blocked by network policy")
    finally:
        guard.stop()


def test_plain_http_responses_tell_the_client_to_close(
    media_server: MediaServer, media_set: MediaSet
) -> None:
    """One request per proxied connection: a client must not keep it for the next request (yt-dlp's
    live check on a manifest reused it, got no answer, and took a live stream for a finished one)."""
    guard = NetGuard(NetworkPolicy.build(["127.0.0.1/32"]))
    host, port = guard.start().removeprefix("http://").split(":")
    try:
        for _ in range(3):
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", media_server.url(media_set.progressive_mp4), headers={"Range": "bytes=0-99"})
            response = conn.getresponse()
            assert response.status == 206
            assert response.getheader("Connection") == "close"
            assert response.will_close
            assert len(response.read()) == 100
            conn.close()
    finally:
        guard.stop()
