"""Command line for media: the media options of ``run``, and ``metadata URL``.

``metadata`` prints TornadoAPI's POST /metadata JSON on stdout. Exit codes as for ``run``: 0 found;
1 a technical failure (after the engine's retries); 2 bad usage or an invalid URL; 3 a content issue
(private, geo-blocked...); 4 content that cannot be processed (DRM, a live stream); 5 environment.
Failures print ``{"error": ..., "error_type": ...}`` on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cli_hosts import host_options
from .codecs import AUDIO_CONTAINERS
from .engine import Engine, default_data_dir
from .errors import InvalidRequest, StageError
from .models import JobRequest
from .options import MAX_RESOLUTIONS, QUALITY_PRESETS, parse_max_resolution
from .retry import outcome_for
from .sources.settings import SourceSettings
from .states import Status

__all__ = ["add_media_options", "add_metadata_command", "media_fields", "run_metadata", "source_options"]

_EXIT = {Status.FAILED: 1, Status.WARNING: 3, Status.SKIPPED: 4}


def add_media_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("media options")
    group.add_argument("--audio-only", action="store_true", help="store only the audio")
    group.add_argument("--audio-format", choices=AUDIO_CONTAINERS, help="with --audio-only (default m4a)")
    group.add_argument(
        "--max-resolution", type=_resolution, choices=MAX_RESOLUTIONS,
        help="cap on the shorter side; 720 and 720p are the same (default best)",
    )  # fmt: skip
    group.add_argument("--quality-preset", choices=list(QUALITY_PRESETS), help="overrides --video-quality")
    group.add_argument("--clip-start", metavar="TIME", help="HH:MM:SS, MM:SS or seconds")
    group.add_argument("--clip-end", metavar="TIME", help="HH:MM:SS, MM:SS or seconds")
    group.add_argument("--subtitles", action="store_true", help="store subtitles beside the media")
    group.add_argument(
        "--subtitle-language",
        action="append",
        metavar="LANG",
        help="with --subtitles (repeatable; default en)",
    )
    group.add_argument("--thumbnail", action="store_true", help="store the thumbnail beside the media")
    group.add_argument("--live", action="store_true", help="record a live stream")
    group.add_argument("--live-from-start", action="store_true", help="with --live: from its start")
    group.add_argument("--max-duration", type=int, metavar="SECONDS", help="with --live: stop after this")
    group.add_argument(
        "--wait-for-video", type=int, metavar="SECONDS", help="with --live: wait for a scheduled stream"
    )
    group.add_argument(
        "--reuse", action="store_true",
        help="take the stored file of an earlier identical job (same source and output options, within "
        "7 days, file still there) instead of downloading again",
    )  # fmt: skip
    _add_source_options(parser)


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sources")
    group.add_argument(
        "--proxy", metavar="URL", help="upstream proxy: http://, https:// or socks5://[user:pass@]host:port"
    )
    group.add_argument(
        "--cookies", metavar="FILE", type=Path, help="Netscape cookies.txt, sent to matching domains only"
    )
    group.add_argument(
        "--limit-rate", metavar="RATE", help="bytes per second for the download, e.g. 2M or 500K"
    )
    group.add_argument(
        "--impersonate",
        metavar="TARGET",
        help="imitate a browser (chrome, safari-18.0...): needs the [impersonate] extra",
    )


def source_options(args: argparse.Namespace, *, with_request: bool = False) -> dict[str, Any]:
    """``Engine(sources=...)`` from ``--proxy`` and ``--cookies`` (and, unless the request carries them,
    ``--limit-rate`` and ``--impersonate``); {} when none is given."""
    cookies = None
    if args.cookies is not None:
        try:
            cookies = args.cookies.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"--cookies: cannot read {args.cookies}: {exc}", field="cookies") from None
    given: dict[str, Any] = {"proxy": args.proxy, "cookies": cookies, **host_options(args)}
    if not with_request:
        given.update(limit_rate=args.limit_rate, impersonate=args.impersonate)
    given = {k: v for k, v in given.items() if v is not None}
    return {"sources": SourceSettings.build(**given)} if given else {}


def _resolution(text: str) -> str:
    """``720p`` or ``720`` as the API takes them; anything else stays as typed, for argparse to refuse."""
    try:
        return parse_max_resolution(text)
    except ValueError:
        return text


def media_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``JobRequest`` fields the media options set (only those given: defaults stay the model's)."""
    pairs = {
        "audio_only": args.audio_only,
        "audio_format": args.audio_format,
        "max_resolution": args.max_resolution,
        "quality_preset": args.quality_preset,
        "clip_start": args.clip_start,
        "clip_end": args.clip_end,
        "download_subtitles": args.subtitles,
        "subtitle_languages": args.subtitle_language,
        "download_thumbnail": args.thumbnail,
        "live_recording": args.live,
        "live_from_start": args.live_from_start,
        "max_duration": args.max_duration,
        "wait_for_video": args.wait_for_video,
        "limit_rate": args.limit_rate,
        "impersonate": args.impersonate,
        "reuse": args.reuse,
    }
    return {k: v for k, v in pairs.items() if v not in (None, False)}


def add_metadata_command(sub: Any) -> None:
    meta = sub.add_parser(
        "metadata", help="what is behind a URL (title, duration, qualities...), no download"
    )
    meta.add_argument("url")
    meta.add_argument("--json", action="store_true", help="compact JSON on one line")
    meta.add_argument("--data-dir", type=Path, help=f"engine data folder (default {default_data_dir()})")
    meta.add_argument(
        "--allow-network", action="append", metavar="CIDR", dest="allow_networks",
        help="also allow sources in this private network (repeatable; default $TORNADO_ALLOW_NETWORKS)",
    )  # fmt: skip
    _add_source_options(meta)


async def run_metadata(args: argparse.Namespace) -> int:
    request = JobRequest(url=args.url)  # refused before anything is opened
    options: dict[str, Any] = {"run_jobs": False}
    if args.data_dir is not None:
        options["data_dir"] = args.data_dir
    if args.allow_networks is not None:
        options["allow_networks"] = args.allow_networks
    options.update(source_options(args))
    async with Engine.open(**options) as engine:
        try:
            found = await engine.extract_metadata(request.url)
        except StageError as exc:
            outcome = outcome_for(exc.kind)
            print(json.dumps({"error": exc.message, "error_type": outcome.error_type}), file=sys.stderr)
            return _EXIT.get(outcome.status, 1)
    print(json.dumps(found.to_api(), indent=None if args.json else 2))
    return 0
