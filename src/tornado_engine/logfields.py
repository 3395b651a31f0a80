"""The job a log record belongs to, on every record: ``job_id``, ``batch_id``, ``tenant``, ``attempt``.

They come from a context variable set while a job's attempt runs (its own asyncio task, and the stage
threads it starts: :class:`ContextExecutor`) or while a submit logs it, and a LogRecord factory copies
them onto every record made in this process (None outside a job), so a host's formatter can use
``%(job_id)s`` with any logger's records. The factory wraps whichever one was installed before.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, ParamSpec, TypeVar

from .models import Job

__all__ = ["FIELDS", "ContextExecutor", "JobFields", "batch_fields", "bind", "current", "job_fields"]

FIELDS = ("job_id", "batch_id", "tenant", "attempt")

_P = ParamSpec("_P")
_T = TypeVar("_T")


class JobFields(NamedTuple):  # made per attempt: a tuple is cheaper than a frozen dataclass
    job_id: str | None  # None: a batch as a whole
    batch_id: str | None
    tenant: str
    attempt: int | None


_OUTSIDE = (None, None, None, None)  # a record made outside any job
_current: contextvars.ContextVar[JobFields | None] = contextvars.ContextVar("tornado_job", default=None)


def current() -> JobFields | None:
    """The job the running code works for, if any."""
    return _current.get()


def bind(job: Job, attempt: int | None = None) -> None:
    """Mark the rest of the current task (an attempt's own task) as working for ``job``."""
    _current.set(JobFields(job.id, job.batch_id, job.owner, attempt))


@contextlib.contextmanager
def job_fields(job: Job) -> Iterator[None]:
    """Mark what runs inside as working for ``job`` (a submit logging each job it stored)."""
    token = _current.set(JobFields(job.id, job.batch_id, job.owner, None))
    try:
        yield
    finally:
        _current.reset(token)


@contextlib.contextmanager
def batch_fields(batch_id: str, tenant: str) -> Iterator[None]:
    """Mark what runs inside as working for a whole batch (its submit's line)."""
    token = _current.set(JobFields(None, batch_id, tenant, None))
    try:
        yield
    finally:
        _current.reset(token)


class ContextExecutor(ThreadPoolExecutor):
    """Runs each call in the submitter's context: a stage thread's log records name its job."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]


def _install() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_tornado_fields", False):
        return  # imported again (a reload): one layer is enough

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.job_id, record.batch_id, record.tenant, record.attempt = _current.get() or _OUTSIDE
        return record

    factory._tornado_fields = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install()
