"""A job's story, told in one place: each event writes its log line and records its metrics and spans.

The engine calls these where the event happens, once: :func:`submitted` after a submit's insert;
an attempt's :class:`AttemptStory` for the claim, each step and stage, each retry and the terminal
write; :func:`webhook_outcome` after each delivery. Log records carry the job's fields
(:mod:`tornado_engine.logfields`); metrics and spans go through :mod:`tornado_engine.telemetry`.

Loggers: ``tornado_engine.job`` (submitted, claimed, retried, finished: a worker shows its INFO lines
by default) and ``tornado_engine.stage`` (each stage's end at INFO, with its duration, so one line tells a
stage; its start at DEBUG). Nothing is formatted for a logger that is not enabled for the level.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from .errors import StageError
from .logfields import batch_fields, bind, job_fields, make_record
from .models import Job
from .pipeline.context import Fetched, Muxed, Resolved, Result, Stored, Strategy
from .safety import redact
from .states import Status
from .telemetry import NoSpan, span, tracing
from .telemetry import instruments as _m

__all__ = ["AttemptStory", "cancelled_before_start", "shown_url", "submitted", "webhook_outcome"]

_log = logging.getLogger("tornado_engine.job")
_stage_log = logging.getLogger("tornado_engine.stage")


# a call site's line, by (id of its code, bytecode offset): ``f_lineno`` decodes the line table and a
# code object's hash covers its bytecode and constants; the story's functions live as long as the process
_lines: dict[tuple[int, int], int] = {}


def _tell(logger: logging.Logger, level: int, msg: str, *args: object, extra: dict[str, Any]) -> None:
    """``logger.log(level, msg, *args, extra=extra)`` for a caller that checked the level: the record
    names the caller's line as ``findCaller`` would, without its walk up the stack (a quarter of a line's
    cost when a worker logs each job)."""
    frame = sys._getframe(1)
    code = frame.f_code
    site = (id(code), frame.f_lasti)
    line = _lines.get(site) or _lines.setdefault(site, frame.f_lineno)
    logger.handle(make_record(logger, level, code.co_filename, line, msg, args, code.co_name, extra))


def shown_url(url: str) -> str:
    """``url`` as logs show it: scheme, host and path; a query (tokens, signatures) only as ``?...``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return redact(f"{parts.scheme}://{host}{parts.path}{'?...' if parts.query else ''}")


def submitted(jobs: Sequence[Job], batch_id: str | None = None) -> None:
    """Jobs a submit stored: a line for each at INFO; for a batch, one INFO line and each job's at DEBUG."""
    _m.submitted.add(len(jobs))
    if batch_id is not None and jobs and _log.isEnabledFor(logging.INFO):
        with batch_fields(batch_id, jobs[0].owner):
            _log.info("submitted a batch of %d job(s)", len(jobs), extra={"jobs": len(jobs)})
    level = logging.INFO if batch_id is None else logging.DEBUG
    if not _log.isEnabledFor(level):
        return
    for job in jobs:
        with job_fields(job):
            url = shown_url(job.url)
            _log.log(level, "submitted %s", url, extra={"url": url})


def cancelled_before_start(job: Job) -> None:
    """A Pending job was cancelled: no attempt tells its end."""
    _m.finished.add(1, {"tornado.job.status": job.status.value, "error.type": ""})
    with job_fields(job):
        _log.info("finished %s before it ran", job.status.value, extra={"status": job.status.value})


def webhook_outcome(outcome: str) -> None:
    """One delivery attempt ended: ``delivered``, ``retry`` (sent again later) or ``failed`` (for good)."""
    _m.webhooks.add(1, {"tornado.webhook.outcome": outcome})


class _Stage:
    """What one stage try found, for its end line and its span."""

    def __init__(self, name: str, current: Any) -> None:
        self.name = name
        self.span = current
        self.fields: dict[str, Any] = {}

    def add(self, **fields: Any) -> None:
        for key, value in fields.items():
            if value is not None:
                self.fields[key] = value
                self.span.set_attribute(f"tornado.{key}", value)


class AttemptStory:
    """The story of one attempt at one job (held by its :class:`~tornado_engine.attempt.Attempt`)."""

    def __init__(self, job: Job, worker: str) -> None:
        self.job = job
        self.worker = worker
        self.stage: _Stage | None = None
        self.error_kind: str | None = None  # the failure's kind, once the attempt fails
        self.span: Any = NoSpan()  # the attempt's, while it runs
        self._span_block: contextlib.AbstractContextManager[Any] | None = None

    def running(self) -> AttemptStory:
        """``with story.running():`` the attempt's span, and its job fields on every record logged in
        the rest of its task (a plain context manager: it is entered for every job)."""
        return self

    def __enter__(self) -> AttemptStory:
        job = self.job
        attempt = job.attempts  # counted by the claim
        bind(job, attempt)
        if tracing():
            attributes: dict[str, str | int] = {
                "tornado.job.id": job.id, "tornado.job.attempt": attempt, "tornado.tenant": job.owner,
                "tornado.batch.id": job.batch_id or "", "tornado.worker": self.worker,
            }  # fmt: skip
            self._span_block = span("tornado.job.attempt", attributes)
            self.span = self._span_block.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        block, self._span_block = self._span_block, None
        return None if block is None else block.__exit__(kind, exc, tb)

    def claimed(self) -> None:
        job = self.job
        wait = (job.queue_wait_ms or 0) / 1000
        if job.attempts == 1:
            _m.queue_wait.record(wait)
        if _log.isEnabledFor(logging.INFO):
            _tell(_log, logging.INFO, "claimed by %s (attempt %d, waited %.3f s)", self.worker,
                  job.attempts, wait, extra={"worker": self.worker, "queue_wait_s": wait})  # fmt: skip

    @contextlib.contextmanager
    def stage_run(self, name: str) -> Iterator[None]:
        """One try at one stage (resolve, download, mux, upload): its span, start and end lines, time."""
        _stage_log.debug("%s started", name, extra={"stage": name})
        started = time.monotonic()
        kind: str | None = None
        with span(f"tornado.{name}", {"tornado.job.id": self.job.id}) as current:
            self.stage = stage = _Stage(name, current)
            try:
                yield
            except StageError as exc:
                kind = exc.kind
                current.set_attribute("error.type", kind)
                raise
            except BaseException as exc:
                kind = type(exc).__name__
                raise
            finally:
                self.stage = None
                self._stage_end(stage, time.monotonic() - started, kind)

    def _stage_end(self, stage: _Stage, seconds: float, kind: str | None) -> None:
        attributes = {"tornado.stage": stage.name, "error.type": kind or ""}
        _m.stage_duration.record(seconds, attributes)
        if not _stage_log.isEnabledFor(logging.INFO):
            return
        found = ", ".join(f"{k} {v}" for k, v in stage.fields.items())
        extra = {"stage": stage.name, "duration_s": round(seconds, 3), "error_kind": kind, **stage.fields}
        if kind is None:
            _tell(_stage_log, logging.INFO, "%s done in %.3f s%s", stage.name, seconds,
                  f" ({found})" if found else "", extra=extra)  # fmt: skip
        else:
            _tell(_stage_log, logging.INFO, "%s failed after %.3f s: %s", stage.name, seconds, kind,
                  extra=extra)  # fmt: skip

    def result(self, result: Result) -> None:
        """A stage's finding: on its end line and span; bytes moved count in tornado.job.io."""
        stage = self.stage
        if stage is None:
            return
        match result:
            case Resolved():
                stage.add(extractor=result.extractor, expected_bytes=result.expected_bytes or None,
                          format=self.job.request.format)  # fmt: skip
            case Strategy():
                stage.add(strategy=result.name)
            case Fetched():
                _m.io.add(result.bytes, {"network.io.direction": "download"})
                stage.add(bytes=result.bytes, strategy=result.strategy,
                          format_ids="+".join(result.format_ids) or None)  # fmt: skip
            case Muxed():
                stage.add(format=self.job.request.format)
            case Stored():
                _m.io.add(result.media.size, {"network.io.direction": "upload"})
                stage.add(bytes=result.media.size)

    def retry(self, exc: StageError, number: int, delay: float) -> None:
        _m.retries.add(1, {"error.type": exc.kind})
        _log.warning("%s (%s); retry %d in %.1f s", exc.message, exc.kind, number, delay,
                     extra={"error_kind": exc.kind, "retry": number, "delay_s": delay})  # fmt: skip

    def failed(self, exc: StageError) -> None:
        """The attempt ends the job with this failure (said by :meth:`finished` once it is written)."""
        self.error_kind = exc.kind

    def finished(self) -> None:
        """The terminal write happened."""
        job = self.job
        status = job.status.value
        kind = self.error_kind if job.status is not Status.COMPLETED else None
        total = (job.total_duration_ms or 0) / 1000
        _m.finished.add(1, {"tornado.job.status": status, "error.type": kind or ""})
        _m.duration.record(total, {"tornado.job.status": status})
        self.span.set_attribute("tornado.job.status", status)
        if kind:
            self.span.set_attribute("error.type", kind)
        if not _log.isEnabledFor(logging.INFO):
            return
        extra = {"status": status, "error_kind": kind, "total_s": total, "size": job.file_size}
        tail = f" ({kind}: {job.error})" if kind else f" ({job.error})" if job.error else ""
        _tell(_log, logging.INFO, "finished %s in %.3f s%s", status, total, tail, extra=extra)
