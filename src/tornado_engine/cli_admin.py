"""Command line for jobs already submitted: ``jobs list|get|cancel|retry|delete-file``,
``batch get|rename|start`` and ``usage``; a tenant's sources: ``tenant sources|set-cookies|set-proxies|
remove-cookies|remove-proxies``. They open the store without running jobs, so they work beside a
running worker (a cancel reaches it through the store)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .cli_codes import exit_code
from .cli_queue import queued_note, say, store_url, wait_job
from .cli_table import print_job_table
from .datadir import check_data_dir
from .engine import Engine, default_data_dir
from .errors import InvalidRequest
from .models import Job
from .states import Status
from .store import open_store
from .tenant_view import TenantView

__all__ = ["ADMIN_COMMANDS", "STORAGE_HELP", "STORE_HELP", "add_admin_commands", "run_admin"]

ADMIN_COMMANDS = ("jobs", "batch", "usage", "tenant")
STORE_HELP = (
    "job store: postgresql://user@host/db, a path to a .db file, or sqlite:////abs/path/jobs.db "
    "(four slashes: sqlite:///x.db is relative to the current folder); default $TORNADO_STORE, else "
    "$DATABASE_URL (a postgresql:// or sqlite:/// one), else DATA_DIR/jobs.db"
)
STORAGE_HELP = (
    "where finished files go: a folder (path or file:///abs/path), s3://, gs://, az://, oss:// "
    "(each needs its extra, e.g. pip install 'tornado-engine[s3]'); default DATA_DIR/media"
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help=f"engine data folder (default {default_data_dir()})")
    parser.add_argument("--store", help=f"{STORE_HELP}; must exist (these commands create no store)")
    parser.add_argument("--storage", help=STORAGE_HELP)
    parser.add_argument("--tenant", help="act for this tenant (default: the default tenant)")
    parser.add_argument("--json", action="store_true", help="print JSON only")


def add_admin_commands(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="list and manage jobs").add_subparsers(dest="action", required=True)
    listing = jobs.add_parser("list", help="newest first")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument(
        "--status",
        type=_status,
        choices=[s.value for s in Status],
        help="only jobs of this status (any case)",
    )
    _common(listing)
    for action, text in (
        ("get", "show one job"),
        ("cancel", "cancel a pending or running job"),
        ("retry", "run a failed job again as a new job"),
        ("delete-file", "remove a job's stored file"),
    ):
        parser = jobs.add_parser(action, help=text)
        parser.add_argument("job_id")
        _common(parser)
    wait = jobs.add_parser("wait", help="follow a job (run anywhere) to its end; exit code as for run")
    wait.add_argument("job_id")
    _common(wait)

    batch = sub.add_parser("batch", help="batches of jobs").add_subparsers(dest="action", required=True)
    for action, text in (("get", "batch status"), ("start", "start a paused batch")):
        parser = batch.add_parser(action, help=text)
        parser.add_argument("batch_id")
        _common(parser)
    rename = batch.add_parser("rename", help="rename jobs of a paused batch")
    rename.add_argument("batch_id")
    rename.add_argument("renames", nargs="+", metavar="JOB_ID=FILENAME")
    _common(rename)

    _common(sub.add_parser("usage", help="job counts and storage used"))
    _add_tenant_commands(sub)


def _add_tenant_commands(sub: Any) -> None:
    tenant = sub.add_parser("tenant", help="a tenant's cookie jar and proxy pool (kept encrypted)")
    actions = tenant.add_subparsers(dest="action", required=True)
    _common(actions.add_parser("sources", help="what the tenant stored (no secret shown)"))
    cookies = actions.add_parser("set-cookies", help="store a Netscape cookies.txt for the tenant's jobs")
    cookies.add_argument("file", type=Path)
    _common(cookies)
    # a file, not arguments: proxy passwords must not show in the process list
    proxies = actions.add_parser("set-proxies", help="store upstream proxies (a file, one URL a line)")
    proxies.add_argument("file", type=Path)
    proxies.add_argument("--rule", choices=["round_robin", "sticky_job", "per_host"], default="round_robin")
    _common(proxies)
    for kind in ("cookies", "proxies"):
        _common(actions.add_parser(f"remove-{kind}", help=f"forget the tenant's {kind}"))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {path}: {exc}", field="file") from None


async def _tenant_action(engine: TenantView, args: argparse.Namespace) -> Any:
    if args.action == "set-cookies":
        return await engine.set_cookies(_read(args.file))
    if args.action == "set-proxies":
        urls = [line.strip() for line in _read(args.file).splitlines()]
        return await engine.set_proxies([u for u in urls if u and not u.startswith("#")], args.rule)
    if args.action in ("remove-cookies", "remove-proxies"):
        return {"removed": await engine.remove_sources(args.action.removeprefix("remove-"))}
    return await engine.sources()


def _status(text: str) -> str:
    """A status named in any case (``completed``); anything else stays as typed, for argparse to refuse."""
    return next((s.value for s in Status if s.value.lower() == text.lower()), text)


def _print(value: Any, as_json: bool) -> None:
    if isinstance(value, Job):
        value = value.to_api()
    elif isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    elif isinstance(value, list):
        value = [v.to_api() for v in value]
    print(json.dumps(value, indent=None if as_json else 2))


async def _job_action(engine: TenantView, args: argparse.Namespace) -> Any:
    if args.action == "list":
        return await engine.list_jobs(limit=args.limit, offset=args.offset, status=args.status)
    if args.action == "cancel":
        return await engine.cancel_job(args.job_id)
    if args.action == "retry":
        return await engine.retry_job(args.job_id)
    if args.action == "delete-file":
        return await engine.delete_file(args.job_id)
    return await engine.get_job(args.job_id)


async def run_admin(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"run_jobs": False, "expand_playlists": False}
    for name in ("data_dir", "storage"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    data_dir = Path(args.data_dir) if args.data_dir is not None else default_data_dir()
    check_data_dir(data_dir)
    # these commands read or change existing jobs: a store that is not there is an error, never a new one
    options["store"] = open_store(store_url(args.store) or str(data_dir / "jobs.db"), create=False)
    async with Engine.open(**options) as root:
        engine = root.tenant(args.tenant) if args.tenant else root
        result: Any
        if args.command == "jobs" and args.action == "wait":
            job = await wait_job(engine, args.job_id, quiet=args.json or args.quiet)
            _print(job, args.json)
            return exit_code([job])
        if args.command == "usage":
            result = await engine.usage()
        elif args.command == "jobs":
            result = await _job_action(engine, args)
        elif args.command == "tenant":
            result = await _tenant_action(engine, args)
        elif args.action == "rename":
            pairs = [item.partition("=") for item in args.renames]
            result = await engine.rename_batch_jobs(
                args.batch_id, [{"job_id": job_id, "filename": name} for job_id, _, name in pairs]
            )
        elif args.action == "start":
            result = await engine.start_batch(args.batch_id)
        else:
            result = await engine.get_batch(args.batch_id)
    if args.command == "jobs" and args.action == "list" and not args.json and sys.stdout.isatty():
        print_job_table(result)
    else:
        _print(result, args.json)
    if args.command == "jobs" and args.action == "retry":
        say(queued_note([result.job_id]))
    return 0
