"""The shipped test kit: generated media resolve with the real yt-dlp; Range and fault routes behave."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yt_dlp

from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration


class _Silent:
    def debug(self, msg: str) -> None:
        pass

    info = warning = error = debug


def _resolve(url: str, **opts: Any) -> dict[str, Any]:
    params = {
        "quiet": True,
        "no_warnings": True,
        "logger": _Silent(),
        "cachedir": False,
        "socket_timeout": 10,
    }
    with yt_dlp.YoutubeDL({**params, **opts}) as ydl:
        info: dict[str, Any] = ydl.extract_info(url, download=False)
    return info


@contextmanager
def _conn(srv: MediaServer) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def _get(
    srv: MediaServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[http.client.HTTPResponse, bytes]:
    with _conn(srv) as conn:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()


# --- yt-dlp resolves every fixture -------------------------------------------------------------------


def test_progressive_mp4(media_server: MediaServer, media_set: MediaSet, probe: Any) -> None:
    info = _resolve(media_server.url(media_set.progressive_mp4))
    assert info["ext"] == "mp4"
    assert info["url"] == media_server.url(media_set.progressive_mp4)
    streams = {s["codec_type"]: s for s in probe(media_set.path(media_set.progressive_mp4))["streams"]}
    assert (streams["video"]["codec_name"], streams["video"]["width"], streams["video"]["height"]) == (
        "h264",
        640,
        360,
    )
    assert streams["audio"]["codec_name"] == "aac"


def test_dash_manifest(media_server: MediaServer, media_set: MediaSet) -> None:
    info = _resolve(media_server.url(media_set.dash_mpd))
    video = sorted(f["height"] for f in info["formats"] if f.get("vcodec") not in (None, "none"))
    audio = [f for f in info["formats"] if f.get("vcodec") == "none" and f.get("acodec") != "none"]
    assert video == [240, 360]
    assert len(audio) == 1
    assert info["subtitles"]["en"][0]["ext"] == "vtt"
    assert info["subtitles"]["en"][0]["url"] == media_server.url(media_set.dash_vtt)


def test_hls_master_with_audio_rendition(media_server: MediaServer, media_set: MediaSet) -> None:
    info = _resolve(media_server.url(media_set.hls_master))
    video = sorted(f["height"] for f in info["formats"] if f.get("vcodec") not in (None, "none"))
    audio = [f["format_id"] for f in info["formats"] if f.get("vcodec") == "none"]
    assert video == [240, 360]
    assert len(audio) == 1
    assert audio[0].startswith("group_aud")


def test_portrait_ladder(media_server: MediaServer, media_set: MediaSet) -> None:
    info = _resolve(media_server.url(media_set.portrait_master))
    sizes = sorted(
        (f["width"], f["height"]) for f in info["formats"] if f.get("vcodec") not in (None, "none")
    )
    assert sizes == [(360, 640), (480, 854), (720, 1280)]


def test_html_page_thumbnail(media_server: MediaServer, media_set: MediaSet) -> None:
    info = _resolve(media_server.url(media_set.page_html))
    assert info["thumbnail"] == media_server.url(media_set.thumb_jpg)
    assert info["title"].startswith("Tornado test video")
    assert info["formats"][0]["url"] == media_server.url(media_set.progressive_mp4)


def test_rss_feed_flat_playlist(media_server: MediaServer, media_set: MediaSet) -> None:
    before = media_server.hits.copy()
    info = _resolve(media_server.url(media_set.feed_xml), extract_flat="in_playlist")
    assert info["_type"] == "playlist"
    entries = list(info["entries"])
    assert [e["title"] for e in entries] == ["Episode 1", "Episode 2", "Episode 3"]
    assert [e["url"].split("#")[0] for e in entries] == [media_server.url(p) for p in media_set.episodes]
    assert all(e["duration"] == 3 for e in entries)
    # Flat listing reads only the feed.
    new = media_server.hits - before
    assert new == {"/" + media_set.feed_xml: 1}


# --- Range, HEAD, mimetypes ---------------------------------------------------------------------------


def test_range_requests(media_server: MediaServer, media_set: MediaSet) -> None:
    path = "/" + media_set.progressive_mp4
    data = media_set.path(media_set.progressive_mp4).read_bytes()
    size = len(data)

    resp, body = _get(media_server, path)
    assert (resp.status, resp.getheader("Accept-Ranges"), body) == (200, "bytes", data)

    resp, body = _get(media_server, path, {"Range": "bytes=10-109"})
    assert (resp.status, resp.getheader("Content-Range"), body) == (206, f"bytes 10-109/{size}", data[10:110])

    # yt-dlp's http_chunk_size asks past the end: the end is clamped.
    resp, body = _get(media_server, path, {"Range": "bytes=100-99999999"})
    assert (resp.status, resp.getheader("Content-Range"), body) == (
        206,
        f"bytes 100-{size - 1}/{size}",
        data[100:],
    )

    resp, body = _get(media_server, path, {"Range": "bytes=-100"})
    assert (resp.status, body) == (206, data[-100:])

    resp, body = _get(media_server, path, {"Range": f"bytes={size}-"})
    assert (resp.status, resp.getheader("Content-Range"), body) == (416, f"bytes */{size}", b"")


def test_head(media_server: MediaServer, media_set: MediaSet) -> None:
    size = media_set.path(media_set.webm).stat().st_size
    resp, body = _get(media_server, "/" + media_set.webm, method="HEAD")
    assert (resp.status, resp.getheader("Content-Length"), body) == (200, str(size), b"")
    assert resp.getheader("Content-Type") == "video/webm"


@pytest.mark.parametrize(
    ("attr", "ctype"),
    [
        ("hls_master", "application/vnd.apple.mpegurl"),
        ("dash_mpd", "application/dash+xml"),
        ("dash_vtt", "text/vtt"),
        ("progressive_mp4", "video/mp4"),
        ("audio_mp3", "audio/mpeg"),
        ("thumb_jpg", "image/jpeg"),
        ("page_html", "text/html; charset=utf-8"),
        ("feed_xml", "application/xml"),
    ],
)
def test_content_types(media_server: MediaServer, media_set: MediaSet, attr: str, ctype: str) -> None:
    resp, _ = _get(media_server, "/" + getattr(media_set, attr), method="HEAD")
    assert resp.getheader("Content-Type") == ctype


def test_segment_content_types(media_server: MediaServer) -> None:
    assert _get(media_server, "/hls/360p_000.ts", method="HEAD")[0].getheader("Content-Type") == "video/mp2t"
    m4s = "/dash/init-stream0.m4s"
    assert _get(media_server, m4s, method="HEAD")[0].getheader("Content-Type") == "video/iso.segment"


@pytest.mark.parametrize(
    "path", ["/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/dash/../../x", "/nope.mp4", "/dash"]
)
def test_outside_root_or_missing_is_404(media_server: MediaServer, path: str) -> None:
    assert _get(media_server, path)[0].status == 404


# --- fault routes -------------------------------------------------------------------------------------


def test_status_route(media_server: MediaServer) -> None:
    resp, body = _get(media_server, "/status/503/whatever.mp4")
    assert (resp.status, body, resp.getheader("Retry-After")) == (503, b"", None)
    resp, _ = _get(media_server, "/status/429/x")
    assert (resp.status, resp.getheader("Retry-After")) == (429, "1")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(media_server.url("/status/404/video.mp4"), timeout=10)
    assert err.value.code == 404


def test_drop_route_resets(media_server: MediaServer, media_set: MediaSet) -> None:
    size = media_set.path(media_set.progressive_mp4).stat().st_size
    with _conn(media_server) as conn:
        conn.request("GET", "/drop/" + media_set.progressive_mp4)
        resp = conn.getresponse()
        assert (resp.status, resp.getheader("Content-Length")) == (200, str(size))
        got = 0
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
            while chunk := resp.read(4096):
                got += len(chunk)
            resp.read()
        assert got <= size // 2


def test_short_route_fin(media_server: MediaServer, media_set: MediaSet) -> None:
    data = media_set.path(media_set.audio_mp3).read_bytes()
    with _conn(media_server) as conn:
        conn.request("GET", "/short/" + media_set.audio_mp3)
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == str(len(data) + 1000)
        with pytest.raises(http.client.IncompleteRead) as err:
            resp.read()
    assert err.value.partial == data  # the whole file, then a clean close
    assert err.value.expected == 1000


def test_slow_route(media_root: Path, media_set: MediaSet) -> None:
    # Its own server so the rate is explicit; 64 KiB at 128 KiB/s ~ 0.5 s.
    with MediaServer(media_root, slow_bytes_per_sec=128 * 1024) as srv:
        start = time.monotonic()
        resp, body = _get(srv, "/slow/" + media_set.progressive_mp4, {"Range": "bytes=0-65535"})
        elapsed = time.monotonic() - start
    assert (resp.status, len(body)) == (206, 65536)
    assert 0.4 <= elapsed < 2.0


def test_default_slow_rate(media_server: MediaServer, media_set: MediaSet) -> None:
    start = time.monotonic()
    resp, body = _get(media_server, "/slow/" + media_set.progressive_mp4, {"Range": "bytes=0-131071"})
    elapsed = time.monotonic() - start
    assert (resp.status, len(body)) == (206, 131072)
    assert 0.4 <= elapsed < 2.0  # ~256 KiB/s


def test_hits_lifecycle_and_urls(media_root: Path, media_set: MediaSet) -> None:
    srv = MediaServer(media_root)
    with pytest.raises(RuntimeError):
        _ = srv.port
    with srv:
        assert srv.base_url == f"http://127.0.0.1:{srv.port}"
        assert srv.url("/a/b") == srv.url("a/b") == f"{srv.base_url}/a/b"
        for _ in range(2):
            urllib.request.urlopen(srv.url(media_set.thumb_jpg), timeout=10).read()
        _get(srv, "/status/500/x?q=1")
        assert srv.hits["/" + media_set.thumb_jpg] == 2
        assert srv.hits["/status/500/x"] == 1
    with pytest.raises(OSError):
        urllib.request.urlopen(srv.url(media_set.thumb_jpg), timeout=2)
