"""Command line: ``python -m tornado_engine run URL``, ``metadata URL``, ``demo`` (or ``tornado-engine ...``).

Exit codes: 0 every job Completed; 1 a job Failed; 2 bad usage, an invalid request, an unknown id or an
operation the job's state does not allow (``{"error": ...}`` on stderr); 3 a job ended
Warning (content issue); 4 a job was Skipped; 5 the environment is not ready (ffmpeg missing, store
unusable or missing for a read-only command, a storage extra not installed, a data dir or storage folder
that cannot be used), found before any job starts; 6 a job was cancelled; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from .cli_admin import ADMIN_COMMANDS, STORAGE_HELP, STORE_HELP, add_admin_commands, run_admin
from .cli_codes import EXIT_CODES, EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_USAGE, exit_code
from .cli_errors import flag_message
from .cli_hosts import add_host_options
from .cli_logs import add_logging_options, configure_logging
from .cli_media import add_media_options, add_metadata_command, media_fields, run_metadata, source_options
from .cli_ops import add_health_command, run_health
from .cli_progress import follow
from .cli_queue import queued_note, say, store_url
from .cli_top import add_top_command, run_top
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
from .models import Job, JobCreated, JobRequest
from .results import BatchCreated

__all__ = ["EXIT_CODES", "EXIT_ENVIRONMENT", "EXIT_INTERRUPTED", "EXIT_USAGE", "main"]

_T = TypeVar("_T")
_CANCEL_WAIT = 30.0  # seconds Ctrl-C waits for its jobs to stop (a running stage stops within ~2 s)


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
    parser.add_argument(
        "--paused", action="store_true",
        help="a playlist's batch is created paused: rename its jobs (batch rename), then batch start",
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_prog(), description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one job to the end and print its record as JSON")
    _add_job_options(run)
    add_media_options(run)
    _add_engine_options(run)
    run.add_argument("--json", action="store_true", help="print only the JSON record, no progress bar")
    run.add_argument(
        "--no-progress", action="store_true", help="no progress bar (on by default on a terminal)"
    )
    run.add_argument("--detach", action="store_true",
                     help="on Ctrl-C leave the job queued for workers (default: cancel it)")  # fmt: skip
    add_host_options(run)

    submit = sub.add_parser("submit", help="queue a job for the workers and print its id (runs nothing)")
    _add_job_options(submit)
    add_media_options(submit)
    _add_engine_options(submit)
    submit.add_argument("--json", action="store_true", help="print the ids as one line of JSON")
    add_logging_options(run)

    demo = sub.add_parser("demo", help="serve generated media on 127.0.0.1 and run jobs through it")
    demo.add_argument("--data-dir", type=Path, help="keep the demo's store and files here")
    demo.add_argument("--json", action="store_true", help="print the job records as JSON")
    add_admin_commands(sub)
    add_worker_command(sub)
    add_metadata_command(sub)
    add_top_command(sub)
    add_health_command(sub)
    _everywhere(parser, _add_verbosity, top=True)
    return parser


_DESCRIPTION = "Turn media URLs into finished files: run jobs, queue and manage them, run workers."
_EPILOG = (
    "Exit codes: 0 every job Completed; 1 a job Failed; 2 bad usage, an invalid request, an unknown id or "
    "an operation the job's state does not allow; 3 a job ended Warning; 4 a job was Skipped; 5 the "
    "environment is not ready (ffmpeg, store, storage, data dir); 6 a job was cancelled; 130 interrupted. "
    "-v/-q work before or after the command."
)


def _prog() -> str:
    """How the user ran us: ``python -m tornado_engine``, or the console script (``tornado-engine``)."""
    script = Path(sys.argv[0]).name
    return "python -m tornado_engine" if script in ("__main__.py", "-c", "") else script


def _version() -> str:
    try:
        return version("tornado-engine")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _add_verbosity(parser: argparse.ArgumentParser, top: bool) -> None:
    # below the top level the default is SUPPRESS, so a subcommand that was not given -v keeps the top's
    default: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("-v", "--verbose", action="count", help="log engine activity to stderr (-vv: debug)",
                        **({"default": 0} if top else default))  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar; log only errors",
                        **default)  # fmt: skip


def _everywhere(
    parser: argparse.ArgumentParser, add: Callable[[argparse.ArgumentParser, bool], None], top: bool = False
) -> None:
    """``add`` options to ``parser`` and every (sub)command under it, so they are accepted anywhere."""
    add(parser, top)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _everywhere(child, add)


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
    if args.paused:
        fields["paused"] = True
    fields.update(media_fields(args))
    return JobRequest(**fields)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"concurrency": 8}
    for name in ("data_dir", "storage", "allow_networks"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if (store := store_url(args.store)) is not None:
        options["store"] = store
    options.update(source_options(args, with_request=True))  # --proxy, --cookies
    return options


async def _finish(engine: Engine, created: JobCreated | BatchCreated, args: argparse.Namespace) -> Any:
    """Wait for the created job(s) to end -> (the JSON to print, the jobs)."""
    show = not (args.json or args.quiet or args.no_progress)
    jobs = await follow(engine, _job_ids(created), show=show)  # a playlist: one job per entry
    return await _records(engine, created, jobs), jobs


async def _records(engine: Engine, created: JobCreated | BatchCreated, jobs: list[Job]) -> Any:
    if isinstance(created, BatchCreated):
        batch = await engine.get_batch(created.batch_id)
        return {**batch.model_dump(mode="json", exclude_none=True), "jobs": [j.to_api() for j in jobs]}
    return jobs[0].to_api()


def _job_ids(created: JobCreated | BatchCreated) -> list[str]:
    return created.episode_jobs if isinstance(created, BatchCreated) else [created.job_id]


def _tell_paused(created: JobCreated | BatchCreated, args: argparse.Namespace, then: str) -> None:
    if not args.paused:
        return
    if not isinstance(created, BatchCreated):
        say("--paused applies to a playlist's batch; a single job is never paused")
        return
    batch = created.batch_id
    say(f"batch {batch} is paused ({created.total_episodes} jobs): rename them with "
        f"`python -m tornado_engine batch rename {batch} JOB_ID=NAME...`, then "
        f"`python -m tornado_engine batch start {batch}`; {then}")  # fmt: skip


@contextlib.contextmanager
def _interrupts() -> Iterator[asyncio.Event]:
    """The first Ctrl-C (SIGINT) sets the event instead of ending the process; a second ends it at once."""
    loop = asyncio.get_running_loop()
    hit = asyncio.Event()

    def first() -> None:
        hit.set()
        loop.remove_signal_handler(signal.SIGINT)  # the default again: KeyboardInterrupt, exit 130

    loop.add_signal_handler(signal.SIGINT, first)
    try:
        yield hit
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _unless(interrupted: asyncio.Event, work: Awaitable[_T]) -> _T | None:
    """``work``'s result, or None when Ctrl-C came first (``work`` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(interrupted.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return None if task.cancelled() else task.result()


async def _cancel_own(engine: Engine, created: JobCreated | BatchCreated) -> Any:
    """Ctrl-C without --detach: cancel the jobs this run created (their temporary files go) -> records."""
    say("interrupted: cancelling this run's job(s); Ctrl-C again quits at once")
    ids = _job_ids(created)
    for job_id in ids:
        with contextlib.suppress(InvalidState):  # it ended meanwhile
            await engine.cancel_job(job_id)
    for job_id in ids:
        with contextlib.suppress(TimeoutError):
            await engine.wait(job_id, timeout=_CANCEL_WAIT)
    return await _records(engine, created, [await engine.get_job(job_id) for job_id in ids])


async def _run(args: argparse.Namespace) -> int:
    request = _request_from(args)
    # own_jobs_only: this process runs the job(s) it creates, and leaves the rest of the queue to workers
    async with Engine.open(**_engine_options(args), own_jobs_only=True) as engine:
        with _interrupts() as interrupted:
            created = await _unless(interrupted, engine.submit(request))
            if created is None:  # interrupted while the URL was looked at: nothing was stored
                return EXIT_INTERRUPTED
            _tell_paused(created, args, "this run waits, and runs it once started (Ctrl-C cancels it)")
            finished = await _unless(interrupted, _finish(engine, created, args))
        if finished is None and args.detach:
            # closing the engine gives a running job back to the queue, where a worker picks it up
            say(f"interrupted (--detach): {queued_note(_job_ids(created))}")
            return EXIT_INTERRUPTED
        out, jobs = finished if finished is not None else (await _cancel_own(engine, created), None)
    print(json.dumps(out, indent=None if args.json else 2))
    return EXIT_INTERRUPTED if jobs is None else exit_code(jobs)


async def _submit(args: argparse.Namespace) -> int:
    request = _request_from(args)
    async with Engine.open(**_engine_options(args), run_jobs=False) as engine:
        created = await engine.submit(request)
    print(json.dumps(created.model_dump(mode="json", exclude_none=True), indent=None if args.json else 2))
    say(queued_note(_job_ids(created)))
    _tell_paused(created, args, "the workers run it once started")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args, worker=args.command == "worker")
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # here, not at exit: a reader that went away (| head) is handled below
        return code
    except BrokenPipeError:
        # Python's recipe: stdout goes to devnull so the flush at exit does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except InvalidRequest as exc:
        print(json.dumps({"error": flag_message(exc.message, exc.field)}), file=sys.stderr)
        return EXIT_USAGE
    except (NotFound, InvalidState, QuotaExceeded) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return EXIT_USAGE
    except (FFmpegNotFound, StoreError, SetupError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return asyncio.run(_run(args))
    if args.command == "submit":
        return asyncio.run(_submit(args))
    if args.command == "worker":
        return asyncio.run(run_worker(args))
    if args.command in ADMIN_COMMANDS:
        return asyncio.run(run_admin(args))
    if args.command == "metadata":
        return asyncio.run(run_metadata(args))
    if args.command == "top":
        return asyncio.run(run_top(args))
    if args.command == "health":
        return run_health(args)
    from .demo import run_demo

    return asyncio.run(run_demo(data_dir=args.data_dir, as_json=args.json))
