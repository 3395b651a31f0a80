"""Generate a small, fast set of media fixtures with ffmpeg (lavfi test sources, no network).

``generate_media`` writes the media once per root (a marker file caches it); ``write_pages`` writes the
HTML page and the podcast feed, whose URLs are absolute and so depend on the server's port.
"""

from __future__ import annotations

import concurrent.futures
import html
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import MediaGenerationError

__all__ = ["MediaSet", "generate_media", "write_pages"]

# Bump when the generated set changes, so cached roots are regenerated.
_LAYOUT_VERSION = 1
_MARKER = ".tornado-media.json"
_FPS = 25
_GOP = ["-g", str(2 * _FPS), "-keyint_min", str(2 * _FPS), "-sc_threshold", "0"]  # 2 s segments
_X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
_EPISODES = (("ep1", 300), ("ep2", 500), ("ep3", 700))  # (name, sine Hz)
_EPISODE_SECONDS = 3


@dataclass(frozen=True)
class MediaSet:
    """Paths relative to ``root``; ``/``-separated, so they double as URL paths: ``srv.url(m.dash_mpd)``."""

    root: Path
    duration: int
    progressive_mp4: str = "progressive.mp4"  # h264/aac 640x360, faststart
    webm: str = "video.webm"  # vp9/opus
    opus_h264_mkv: str = "opus_h264.mkv"  # h264 + opus: opus cannot be copied into mov
    dash_mpd: str = "dash/manifest.mpd"  # 640x360 + 426x240 h264, aac, en VTT subtitles
    dash_vtt: str = "dash/subs_en.vtt"
    hls_master: str = "hls/master.m3u8"  # 360p + 240p variants, separate audio rendition
    portrait_master: str = "portrait/master.m3u8"  # 720x1280 / 480x854 / 360x640 + audio
    audio_mp3: str = "audio.mp3"
    thumb_jpg: str = "thumb.jpg"
    page_html: str = "page.html"  # written by write_pages()
    feed_xml: str = "feed.xml"  # written by write_pages()
    episodes: tuple[str, ...] = tuple(f"pod/{name}.mp3" for name, _ in _EPISODES)

    def path(self, rel: str) -> Path:
        return self.root / rel


def _sources(size: str, duration: int, freq: int = 440) -> list[str]:
    return [
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={_FPS}",
        "-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=48000",
        "-t", str(duration),
    ]  # fmt: skip


def _ladder_args(sizes: list[tuple[str, str]]) -> list[str]:
    args = [arg for i in range(len(sizes)) for arg in ("-map", "0:v")] + ["-map", "1:a"]
    args += [*_X264, *_GOP]
    for i, (size, rate) in enumerate(sizes):
        args += [f"-s:v:{i}", size, f"-b:v:{i}", rate]
    return [*args, "-c:a", "aac", "-b:a", "128k"]


def _hls_args(names: list[str], folder: str) -> list[str]:
    streams = [f"v:{i},agroup:aud,name:{n}" for i, n in enumerate(names)]
    streams.append("a:0,agroup:aud,default:yes,language:en,name:audio_en")
    return [
        "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
        "-hls_segment_filename", f"{folder}/%v_%03d.ts", "-master_pl_name", "master.m3u8",
        "-var_stream_map", " ".join(streams), f"{folder}/%v.m3u8",
    ]  # fmt: skip


def _commands(duration: int) -> list[list[str]]:
    """ffmpeg argument lists (without the binary), run with cwd=root; heaviest first."""
    land = _sources("640x360", duration)
    portrait = [
        *_sources("720x1280", duration),
        *_ladder_args([("720x1280", "1500k"), ("480x854", "800k"), ("360x640", "500k")]),
        "-preset", "ultrafast",
        *_hls_args(["720p", "480p", "360p"], "portrait"),
    ]  # fmt: skip
    hls = [
        *land, *_ladder_args([("640x360", "800k"), ("426x240", "400k")]), "-preset", "veryfast",
        *_hls_args(["360p", "240p"], "hls"),
    ]  # fmt: skip
    # Separate adaptation sets, not -single_file (yt-dlp's DASH parser needs per-segment URLs).
    dash = [
        *land, *_ladder_args([("640x360", "800k"), ("426x240", "400k")]), "-preset", "veryfast",
        "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
        "-adaptation_sets", "id=0,streams=v id=1,streams=a", "dash/manifest.mpd",
    ]  # fmt: skip
    webm = [
        *land, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k",
        "-c:a", "libopus", "-b:a", "96k", "video.webm",
    ]  # fmt: skip
    progressive = [
        *land, *_X264, "-preset", "veryfast", "-c:a", "aac", "-b:a", "128k",
        "-movflags", "+faststart", "progressive.mp4",
    ]  # fmt: skip
    mkv = [*land, *_X264, "-preset", "ultrafast", "-c:a", "libopus", "-b:a", "96k", "opus_h264.mkv"]
    mp3 = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(duration)]
    mp3 += ["-c:a", "libmp3lame", "-b:a", "64k", "audio.mp3"]
    thumb = ["-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1", "thumb.jpg"]
    episodes = [
        ["-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=44100", "-t", str(_EPISODE_SECONDS),
         "-c:a", "libmp3lame", "-b:a", "64k", f"pod/{name}.mp3"]
        for name, freq in _EPISODES
    ]  # fmt: skip
    return [portrait, hls, dash, webm, progressive, mkv, mp3, thumb, *episodes]


def _run(ffmpeg: str, args: list[str], cwd: Path) -> None:
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode != 0:
        raise MediaGenerationError(cmd, proc.returncode, proc.stderr)


def _write_vtt(path: Path, duration: int) -> None:
    def ts(sec: int) -> str:
        return f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.000"

    cues = ["WEBVTT", ""]
    for i in range(0, duration, 2):
        cues += [f"{ts(i)} --> {ts(min(i + 2, duration))}", f"Test subtitle {i // 2 + 1}", ""]
    path.write_text("\n".join(cues), encoding="utf-8")


def _add_dash_subtitles(mpd: Path, vtt_name: str) -> None:
    text = mpd.read_text(encoding="utf-8")
    subs = (
        '\t\t<AdaptationSet id="2" contentType="text" mimeType="text/vtt" lang="en">\n'
        '\t\t\t<Representation id="sub_en" bandwidth="256">\n'
        f"\t\t\t\t<BaseURL>{vtt_name}</BaseURL>\n"
        "\t\t\t</Representation>\n"
        "\t\t</AdaptationSet>\n"
    )
    if "</Period>" not in text:
        raise MediaGenerationError(["edit", str(mpd)], 1, "no </Period> in the generated manifest")
    head, sep, tail = text.rpartition("</Period>")
    mpd.write_text(head.rstrip(" \t") + subs + "\t" + sep + tail, encoding="utf-8")


def generate_media(root: Path, *, ffmpeg: str = "ffmpeg", duration: int = 4) -> MediaSet:
    """Generate the fixture set under ``root`` (created if needed); skipped if already generated there.

    Takes a few seconds on two cores. Raises ``MediaGenerationError`` with ffmpeg's stderr tail on failure.
    """
    if duration < 2:
        raise ValueError("duration must be at least 2 seconds (one 2 s segment)")
    root = Path(root).resolve()
    media = MediaSet(root=root, duration=duration)
    marker = root / _MARKER
    wanted = {"version": _LAYOUT_VERSION, "duration": duration}
    try:
        if json.loads(marker.read_text(encoding="utf-8")) == wanted:
            return media
    except (OSError, ValueError):
        pass

    exe = shutil.which(ffmpeg)
    if exe is None:
        raise FileNotFoundError(
            f"ffmpeg not found: {ffmpeg!r} (install ffmpeg or pass ffmpeg=/path/to/ffmpeg)"
        )
    root.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for sub in ("dash", "hls", "portrait", "pod"):  # no stale segments from another duration
        shutil.rmtree(root / sub, ignore_errors=True)
        (root / sub).mkdir()

    # Two workers: each libx264 run is already multi-threaded; more only thrashes two cores.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="gen-media") as pool:
        futures = [pool.submit(_run, exe, args, root) for args in _commands(duration)]
        try:
            for fut in concurrent.futures.as_completed(futures):
                fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    _write_vtt(media.path(media.dash_vtt), duration)
    _add_dash_subtitles(media.path(media.dash_mpd), Path(media.dash_vtt).name)
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    return media


def write_pages(root: Path, base_url: str) -> None:
    """Write ``page.html`` and ``feed.xml`` with absolute URLs under ``base_url`` (e.g. ``srv.base_url``).

    Run after ``generate_media`` (the feed lists the episodes' sizes).
    """
    root = Path(root)
    media = MediaSet(root=root, duration=0)
    base = base_url.rstrip("/")

    def url(rel: str) -> str:
        return html.escape(f"{base}/{rel}", quote=True)

    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tornado test video</title>
<meta property="og:title" content="Tornado test video">
<meta property="og:description" content="A generated test pattern with a sine tone.">
<meta property="og:image" content="{url(media.thumb_jpg)}">
<meta property="og:type" content="video.other">
</head>
<body>
<h1>Tornado test video</h1>
<video src="{url(media.progressive_mp4)}" poster="{url(media.thumb_jpg)}" controls></video>
</body>
</html>
"""
    (root / media.page_html).write_text(page, encoding="utf-8")

    items = []
    for n, rel in enumerate(media.episodes, start=1):
        size = (root / rel).stat().st_size
        items.append(f"""    <item>
      <title>Episode {n}</title>
      <description>Test episode {n}.</description>
      <guid isPermaLink="false">ep-{n}</guid>
      <pubDate>Mon, 0{n} Jan 2024 12:00:00 +0000</pubDate>
      <enclosure url="{url(rel)}" length="{size}" type="audio/mpeg"/>
      <itunes:duration>{_EPISODE_SECONDS}</itunes:duration>
      <itunes:image href="{url(media.thumb_jpg)}"/>
    </item>""")
    nl = "\n"
    feed = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
  <channel>
    <title>Tornado Test Podcast</title>
    <link>{url(media.page_html)}</link>
    <description>Generated episodes for tests.</description>
    <language>en</language>
    <itunes:image href="{url(media.thumb_jpg)}"/>
{nl.join(items)}
  </channel>
</rss>
"""
    (root / media.feed_xml).write_text(feed, encoding="utf-8")
