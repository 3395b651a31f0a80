"""``python -m tornado_engine demo``: the whole pipeline on media made and served on this machine.

It generates short clips with ffmpeg, serves them on 127.0.0.1, runs a progressive MP4, a DASH stream
with separate audio and video, an HLS stream and a transcode through the engine, and checks every
output with ffprobe. No internet needed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .engine import Engine
from .ffmpeg import locate_ffmpeg
from .models import JobRequest
from .pipeline.muxer import probe
from .states import Status
from .testing import MediaServer, generate_media, write_pages

__all__ = ["run_demo"]


def _demo_requests(server: MediaServer, media: Any) -> list[tuple[str, JobRequest]]:
    return [
        (
            "progressive MP4, stream copy",
            JobRequest(url=server.url(media.progressive_mp4), filename="progressive"),
        ),
        (
            "DASH video+audio -> MKV",
            JobRequest(url=server.url(media.dash_mpd), format="mkv", filename="dash"),
        ),
        ("HLS -> MP4", JobRequest(url=server.url(media.hls_master), filename="hls")),
        (
            "transcode to WebM (VP9/Opus)",
            JobRequest(
                url=server.url(media.progressive_mp4),
                format="webm",
                video_codec="vp9",
                audio_codec="opus",
                filename="transcoded",
            ),
        ),
    ]


async def run_demo(data_dir: Path | None = None, as_json: bool = False) -> int:
    """Run the demo jobs and print one line (or, ``as_json``, one record) each; 0 when all are good."""
    paths = locate_ffmpeg()
    scratch = Path(tempfile.mkdtemp(prefix="tornado-demo-"))
    home = data_dir or scratch / "engine"
    try:
        media = await asyncio.to_thread(generate_media, scratch / "media", ffmpeg=paths.ffmpeg)
        with MediaServer(media.root) as server:
            write_pages(media.root, server.base_url)
            # the demo's media server is on 127.0.0.1, which the default network policy refuses
            local = ["127.0.0.0/8", "::1/128"]
            async with Engine.open(data_dir=home, concurrency=4, allow_networks=local) as engine:
                requests = _demo_requests(server, media)
                ids = []
                for _, req in requests:
                    created = await engine.create_job(req)
                    ids.append(created.job_id)
                jobs = [await engine.wait(job_id, timeout=300) for job_id in ids]
        ok = True
        records = []
        for (label, _), job in zip(requests, jobs, strict=True):
            summary = ""
            if job.status is Status.COMPLETED and job.s3_url:
                info = await probe(Path(job.s3_url.removeprefix("file://")), paths.ffprobe)
                codecs = "+".join(f"{s.codec}" for s in info.streams if s.kind in ("video", "audio"))
                summary = f"{codecs}, {info.duration:.2f}s"
                ok = ok and len([s for s in info.streams if s.kind in ("video", "audio")]) == 2
            else:
                ok = False
            records.append(job.to_api())
            if not as_json:
                print(f"{job.status.value:<10} {label:<32} {summary:<24} {job.s3_url or job.error}")
        if as_json:
            print(json.dumps(records, indent=2))
        elif ok:
            print(f"\nAll {len(jobs)} jobs Completed; files are in {home / 'media'}")
        return 0 if ok else 1
    finally:
        # the generated sources go; the engine folder (store + finished files) stays for a look
        shutil.rmtree(scratch / "media", ignore_errors=True)
