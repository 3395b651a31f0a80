"""Command line: ``python -m tornado_engine run URL``, ``metadata URL``, ``demo``.

Exit codes: 0 every job Completed; 1 a job Failed; 2 bad usage, an invalid request, an unknown id or an
operation the job's state does not allow (``{"error": ...}`` on stderr); 3 a job ended
Warning (content issue); 4 a job was Skipped; 5 the environment is not ready (ffmpeg missing, store
unusable or missing for a read-only command, a storage extra not installed, a data dir or storage folder
that cannot be used), found before any job starts; 6 a job was cancelled; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cli_admin import ADMIN_COMMANDS, STORAGE_HELP, STORE_HELP, add_admin_commands, run_admin
from .cli_media import add_media_options, add_metadata_command, media_fields, run_metadata
from .cli_worker import add_worker_command, run_worker
from .codecs import AUDIO_BITRATES, AUDIO_CHOICES, VIDEO_CHOICES, VIDEO_CONTAINERS
from .engine import Engine, default_data_dir
from .errors import (
    FFmpegNotFound,
    InvalidRequest,
    InvalidState,
    NotFound,
    QuotaExceeded,
    SetupError,
    StoreError,
)
from .models import Job, JobRequest
from .results import BatchCreated
from .states import Status

__all__ = ["EXIT_CODES", "EXIT_ENVIRONMENT", "EXIT_INTERRUPTED", "EXIT_USAGE", "main"]

EXIT_CODES = {
    Status.COMPLETED: 0,
    Status.FAILED: 1,
    Status.WARNING: 3,
    Status.SKIPPED: 4,
    Status.CANCELLED: 6,
}
EXIT_USAGE, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 2, 5, 130


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help=f"engine data folder (default {default_data_dir()})")
    parser.add_argument("--store", help=STORE_HELP)
    parser.add_argument("--storage", help=STORAGE_HELP)
    parser.add_argument(
        "--allow-network", action="append", metavar="CIDR", dest="allow_networks",
        help="also allow sources in this private network (repeatable; default $TORNADO_ALLOW_NETWORKS)",
    )  # fmt: skip


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url")
    parser.add_argument("--format", choices=VIDEO_CONTAINERS, default="mp4")
    parser.add_argument("--video-codec", choices=VIDEO_CHOICES, default="copy")
    parser.add_argument("--audio-codec", choices=AUDIO_CHOICES, default="copy")
    parser.add_argument("--audio-bitrate", choices=AUDIO_BITRATES, default="192k")
    parser.add_argument("--video-quality", type=int, default=23, help="CRF 0-51 when transcoding")
    parser.add_argument("--filename", help="file name without extension (default: the title)")
    parser.add_argument("--folder", help="folder prefix in storage")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tornado_engine", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log engine activity to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one job to the end and print its record as JSON")
    _add_job_options(run)
    add_media_options(run)
    _add_engine_options(run)
    run.add_argument("--json", action="store_true", help="print only the JSON record, no progress bar")

    demo = sub.add_parser("demo", help="serve generated media on 127.0.0.1 and run jobs through it")
    demo.add_argument("--data-dir", type=Path, help="keep the demo's store and files here")
    demo.add_argument("--json", action="store_true", help="print the job records as JSON")
    add_admin_commands(sub)
    add_worker_command(sub)
    add_metadata_command(sub)
    return parser


def _request_from(args: argparse.Namespace) -> JobRequest:
    fields: dict[str, Any] = {
        "url": args.url,
        "format": args.format,
        "video_codec": args.video_codec,
        "audio_codec": args.audio_codec,
        "audio_bitrate": args.audio_bitrate,
        "video_quality": args.video_quality,
    }
    if args.filename is not None:
        fields["filename"] = args.filename
    if args.folder is not None:
        fields["folder"] = args.folder
    fields.update(media_fields(args))
    return JobRequest(**fields)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"concurrency": 8}
    for name in ("data_dir", "store", "storage", "allow_networks"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    return options


async def _follow(engine: Engine, job_id: str, show_progress: bool) -> Job:
    if not show_progress:
        return await engine.wait(job_id)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.description:<11}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True, console=_stderr_console()) as bar:
        task = bar.add_task("Queued", total=100)
        async for event in engine.events(job_id):
            bar.update(task, completed=event.percent, description=event.step.value)
    return await engine.wait(job_id)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


async def _run(args: argparse.Namespace) -> int:
    request = _request_from(args)
    async with Engine.open(**_engine_options(args)) as engine:
        created = await engine.submit(request)  # a job, or a batch for a playlist URL
        if isinstance(created, BatchCreated):  # a playlist or show: one job per entry
            jobs = [await engine.wait(job_id) for job_id in created.episode_jobs]
            batch = await engine.get_batch(created.batch_id)
            out: Any = {
                **batch.model_dump(mode="json", exclude_none=True),
                "jobs": [j.to_api() for j in jobs],
            }
        else:
            jobs = [await _follow(engine, created.job_id, not args.json and sys.stderr.isatty())]
            out = jobs[0].to_api()
    print(json.dumps(out, indent=None if args.json else 2))
    return max(EXIT_CODES.get(job.status, 1) for job in jobs)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "run":
            return asyncio.run(_run(args))
        if args.command == "worker":
            return asyncio.run(run_worker(args))
        if args.command in ADMIN_COMMANDS:
            return asyncio.run(run_admin(args))
        if args.command == "metadata":
            return asyncio.run(run_metadata(args))
        from .demo import run_demo

        return asyncio.run(run_demo(data_dir=args.data_dir, as_json=args.json))
    except InvalidRequest as exc:
        print(json.dumps({"error": exc.message}), file=sys.stderr)
        return EXIT_USAGE
    except (NotFound, InvalidState, QuotaExceeded) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return EXIT_USAGE
    except (FFmpegNotFound, StoreError, SetupError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
