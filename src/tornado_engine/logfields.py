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
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, ParamSpec, TypeVar

from .models import Job

__all__ = [
    "FIELDS",
    "ContextExecutor",
    "JobFields",
    "batch_fields",
    "bind",
    "current",
    "job_fields",
    "make_record",
]

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
    # tuple.__new__ makes the named tuple without its generated Python ``__new__`` (once per job)
    _current.set(tuple.__new__(JobFields, (job.id, job.batch_id, job.owner, attempt)))


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


# What LogRecord.__init__ sets, in its order (CPython 3.11). Another layout (3.12 adds taskName) makes
# every record through logging's own path.
_STDLIB_KEYS = ("name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
                "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated",
                "thread", "threadName", "processName", "process")  # fmt: skip
_SAME_LAYOUT = tuple(vars(logging.LogRecord("", 0, "", 0, "", None, None))) == _STDLIB_KEYS
_RESERVED = frozenset((*_STDLIB_KEYS, *FIELDS, "message", "asctime"))  # what ``extra`` may not set
# per call site (logger, level, file, line, function): the record attributes that stay the same
_sites: dict[tuple[str, int, str, int, str], dict[str, Any]] = {}
_factory: Callable[..., logging.LogRecord] | None = None  # ours, once installed
_base: Callable[..., logging.LogRecord] | None = None  # the factory ours wraps


def _install() -> None:
    global _factory, _base
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_tornado_fields", False):
        return  # imported again (a reload): one layer is enough

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.job_id, record.batch_id, record.tenant, record.attempt = _current.get() or _OUTSIDE
        return record

    factory._tornado_fields = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    _factory, _base = factory, previous


_install()


def make_record(
    logger: logging.Logger, level: int, pathname: str, lineno: int, msg: str, args: tuple[object, ...],
    func: str, extra: Mapping[str, Any],
) -> logging.LogRecord:  # fmt: skip
    """``logger.makeRecord(...)`` for a record without exception or stack, with the job's fields and
    ``extra``. While records are the stdlib's LogRecord under this module's factory and the logger's
    class makes them as logging does, the record is made in one step: its attributes as one dict (a
    record made attribute by attribute, then its fields and ``extra`` added, costs a third of a worker's
    log line); otherwise through ``logger.makeRecord``, so a host's factory or logger class still apply."""
    if not (_SAME_LAYOUT and _base is logging.LogRecord and logging.getLogRecordFactory() is _factory
            and type(logger).makeRecord is logging.Logger.makeRecord):  # fmt: skip
        return logger.makeRecord(logger.name, level, pathname, lineno, msg, args, None, func, dict(extra))
    if not _RESERVED.isdisjoint(extra):
        raise KeyError(f"Attempt to overwrite {sorted(_RESERVED.intersection(extra))} in LogRecord")
    if args and len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        args = args[0]  # type: ignore[assignment]  # as LogRecord takes a single mapping
    site = (logger.name, level, pathname, lineno, func)
    fields = (_sites.get(site) or _sites.setdefault(site, _site_fields(*site))).copy()
    now = time.time()
    fields["msg"], fields["args"], fields["created"] = msg, args, now
    fields["msecs"] = int((now - int(now)) * 1000) + 0.0
    fields["relativeCreated"] = (now - logging._startTime) * 1000  # type: ignore[attr-defined]
    if logging.logThreads or logging.logProcesses or logging.logMultiprocessing:
        fields.update(_thread_and_process())
    fields["job_id"], fields["batch_id"], fields["tenant"], fields["attempt"] = _current.get() or _OUTSIDE
    fields.update(extra)
    record: logging.LogRecord = object.__new__(logging.LogRecord)
    record.__dict__ = fields
    return record


def _site_fields(name: str, level: int, pathname: str, lineno: int, func: str) -> dict[str, Any]:
    """A call site's record attributes, in LogRecord's order: those that vary per record as None."""
    filename = os.path.basename(pathname)
    return {
        "name": name, "msg": None, "args": None, "levelname": logging.getLevelName(level), "levelno": level,
        "pathname": pathname, "filename": filename, "module": os.path.splitext(filename)[0],
        "exc_info": None, "exc_text": None, "stack_info": None, "lineno": lineno, "funcName": func,
        "created": None, "msecs": None, "relativeCreated": None, **_NO_IDS, **dict.fromkeys(FIELDS),
    }  # fmt: skip


_NO_IDS: dict[str, Any] = {"thread": None, "threadName": None, "processName": None, "process": None}


def _thread_and_process() -> dict[str, Any]:
    """A record's thread and process attributes, as LogRecord sets them under logging's switches."""
    process_name: str | None = None
    if logging.logMultiprocessing:
        process_name = "MainProcess"
        multiprocessing = sys.modules.get("multiprocessing")
        if multiprocessing is not None:
            with contextlib.suppress(Exception):
                process_name = multiprocessing.current_process().name
    threads = logging.logThreads
    return {
        "thread": threading.get_ident() if threads else None,
        "threadName": threading.current_thread().name if threads else None,
        "processName": process_name,
        "process": os.getpid() if logging.logProcesses else None,
    }
