"""The command line's logging: ``--log-level`` and ``--log-format text|json`` (``run``, ``worker``).

Only the CLI configures logging (the library adds a NullHandler and nothing else). Each record carries
its job's fields (:mod:`tornado_engine.logfields`); the text format shows the ones set in brackets, the
JSON format writes one object per line with stable keys: ``ts``, ``level``, ``logger``, ``message``,
``job_id``, ``batch_id``, ``tenant``, ``attempt``, then the event's own fields (``stage``,
``duration_s``, ``bytes`` ...) and ``exc`` (a traceback) when there is one.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import itertools
import logging
import queue
import sys
import threading
import time
from typing import Any, TextIO

from .jsontext import encoder
from .logfields import FIELDS

__all__ = ["JsonFormatter", "TextFormatter", "add_logging_options", "configure_logging"]

_LEVELS = ("debug", "info", "warning", "error")
_BATCH = 1000  # records written together at most
# the writing thread waits this long after a wake-up for more records: a busy worker's lines are then
# written a few dozen times a second in batches, not one wake-up (and GIL hand-over) per line
_GATHER = 0.05
_EXIT_WAIT = 5.0  # seconds the process waits at exit for its last lines
# what every LogRecord has: the rest of its attributes are an event's ``extra`` fields
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", *FIELDS}


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=_LEVELS, type=str.lower,
                        help="log to stderr from this level (default warning; a worker also shows each "
                             "job's start and end)")  # fmt: skip
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="text lines, or one JSON object per line (default text)")  # fmt: skip


def configure_logging(args: argparse.Namespace, *, worker: bool = False) -> None:
    """Send records to stderr as ``args`` say; a ``worker`` without ``--log-level`` still says each job's
    start and end and its own start and stop (the ``tornado_engine.job`` and ``.worker`` loggers at INFO).
    Nothing changes when the root logger already has handlers (a host configured logging)."""
    level = getattr(args, "log_level", None) or _verbosity_level(args)
    root = logging.getLogger()
    if root.handlers:
        return
    json_lines = getattr(args, "log_format", "text") == "json"
    root.addHandler(_off_the_loop(sys.stderr, JsonFormatter() if json_lines else TextFormatter()))
    # neither format shows a record's thread or process: not looking them up saves a share of each record
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root.setLevel((level or "warning").upper())
    # the package's NullHandler only stands in for a configuration: with the root's handler it is one
    # more handler call on every record
    package = logging.getLogger("tornado_engine")
    for handler in [h for h in package.handlers if isinstance(h, logging.NullHandler)]:
        package.removeHandler(handler)
    if level is None and worker:
        for name in ("tornado_engine.job", "tornado_engine.worker"):
            logging.getLogger(name).setLevel(logging.INFO)


def _verbosity_level(args: argparse.Namespace) -> str | None:
    """``-q`` / ``-v`` / ``-vv`` when no ``--log-level`` was given (None: the default)."""
    if getattr(args, "quiet", False):
        return "error"
    verbose = getattr(args, "verbose", 0) or 0
    return "debug" if verbose >= 2 else "info" if verbose == 1 else None


class _Enqueue(logging.Handler):
    """Formats each record where it is made and hands the line to the writing thread: the record dies
    young on its own thread (formatting it in the writer cost a third more, the record's memory crossing
    to the other core and surviving the collector's young generations); only the write waits."""

    def __init__(self, lines: queue.SimpleQueue[str | None], formatter: logging.Formatter) -> None:
        super().__init__()
        self._lines = lines
        self.setFormatter(formatter)
        self._format = formatter.format

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: the queue is thread-safe
        if self.filters and not self.filter(record):
            return False
        try:
            line = self._format(record)
        except Exception:  # a bad format string or field: said on stderr as logging says it
            self.handleError(record)
            return False
        self._lines.put(line)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


def _write(lines: queue.SimpleQueue[str | None], stream: TextIO) -> None:
    """The writing thread: whatever is queued when it wakes is written at once, flushed once."""
    while True:
        batch = [lines.get()]
        time.sleep(_GATHER)
        with contextlib.suppress(queue.Empty):
            while len(batch) < _BATCH:
                batch.append(lines.get_nowait())
        text = [line for line in batch if line is not None]
        if text:
            with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing is left to tell
                stream.write("\n".join(text) + "\n")
                stream.flush()
        if len(text) < len(batch):  # the process is ending
            return


def _off_the_loop(stream: TextIO, formatter: logging.Formatter) -> logging.Handler:
    """Writing in a thread of its own: a slow or blocked stderr (a full pipe, a paused log collector)
    must not stall the event loop, whose heartbeats keep the worker's leases."""
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    writer = threading.Thread(target=_write, args=(lines, stream), name="tornado-log", daemon=True)
    writer.start()

    def finish() -> None:  # what is queued is written before the process ends (unless stderr is stuck)
        lines.put(None)
        writer.join(_EXIT_WAIT)

    atexit.register(finish)
    return _Enqueue(lines, formatter)


def _traceback(record: logging.LogRecord) -> str:
    if record.exc_text:
        return record.exc_text
    return logging.Formatter().formatException(record.exc_info) if record.exc_info else ""


# as json.dumps(default=str, ensure_ascii=False) writes, its encoder made once (half a line's JSON time)
_encode = encoder(default=str, ensure_ascii=False, separators=(", ", ": "))
# a record's own attributes come first: the event's ``extra`` fields (and a host factory's) follow them
_OWN = len(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_second: tuple[int, str] = (-1, "")  # the last second formatted: a worker logs many lines in each


def _timestamp(record: logging.LogRecord) -> str:
    global _second
    second, text = _second
    if int(record.created) != second:
        second = int(record.created)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return f"{text}.{int(record.msecs):03d}Z"


_LABELS = tuple((name, name.removesuffix("_id")) for name in FIELDS)  # job_id -> job=...


class TextFormatter(logging.Formatter):
    """``TS LEVEL logger [job=... batch=... tenant=... attempt=...]: message`` (fields only when set)."""

    def format(self, record: logging.LogRecord) -> str:
        known = record.__dict__
        fields = " ".join(
            [
                f"{label}={value}"
                for name, label in _LABELS
                if (value := known.get(name)) is not None and value != ""
            ]
        )
        head = f"{_timestamp(record)} {record.levelname} {record.name}"
        text = f"{head} [{fields}]: {record.getMessage()}" if fields else f"{head}: {record.getMessage()}"
        if record.exc_info or record.exc_text:
            text += "\n" + _traceback(record)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self) -> None:
        super().__init__()
        # '"level": ..., "logger": ..., ' per level and logger: encoded once, not on every line
        self._heads: dict[tuple[str, str], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        key = (record.levelname, record.name)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = _encode({"level": key[0], "logger": key[1]})[1:-1] + ", "
        out: dict[str, Any] = {
            "message": record.getMessage(),
            "job_id": fields.get("job_id"),
            "batch_id": fields.get("batch_id"),
            "tenant": fields.get("tenant"),
            "attempt": fields.get("attempt"),
        }
        for name in itertools.islice(fields, _OWN, None):
            if name not in _STANDARD and name[0] != "_":
                out[name] = fields[name]
        if record.exc_info or record.exc_text:
            out["exc"] = _traceback(record)
        return f'{{"ts": "{_timestamp(record)}", {head}{_encode(out)[1:]}'
