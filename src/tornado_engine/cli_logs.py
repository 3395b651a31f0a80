"""The command line's logging: ``--log-level`` and ``--log-format text|json`` (``run``, ``worker``).

Only the CLI configures logging (the library adds a NullHandler and nothing else). Each record carries
its job's fields (:mod:`tornado_engine.logfields`); the text format shows the ones set in brackets, the
JSON format writes one object per line with stable keys: ``ts``, ``level``, ``logger``, ``message``,
``job_id``, ``batch_id``, ``tenant``, ``attempt``, then the event's own fields (``stage``,
``duration_s``, ``bytes`` ...) and ``exc`` (a traceback) when there is one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from .logfields import FIELDS

__all__ = ["JsonFormatter", "TextFormatter", "add_logging_options", "configure_logging"]

_LEVELS = ("debug", "info", "warning", "error")
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
    start and end and its own start and stop (the ``tornado_engine.job`` and ``.worker`` loggers at INFO)."""
    level = getattr(args, "log_level", None) or _verbosity_level(args)
    handler = logging.StreamHandler(sys.stderr)
    json_lines = getattr(args, "log_format", "text") == "json"
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    logging.basicConfig(level=(level or "warning").upper(), handlers=[handler])
    if level is None and worker:
        for name in ("tornado_engine.job", "tornado_engine.worker"):
            logging.getLogger(name).setLevel(logging.INFO)


def _verbosity_level(args: argparse.Namespace) -> str | None:
    """``-q`` / ``-v`` / ``-vv`` when no ``--log-level`` was given (None: the default)."""
    if getattr(args, "quiet", False):
        return "error"
    verbose = getattr(args, "verbose", 0) or 0
    return "debug" if verbose >= 2 else "info" if verbose == 1 else None


# made once: json.dumps with options builds a new encoder per call
_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode
_second: tuple[int, str] = (-1, "")  # the last second formatted: a worker logs many lines in each


def _timestamp(record: logging.LogRecord) -> str:
    global _second
    second, text = _second
    if int(record.created) != second:
        second = int(record.created)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return f"{text}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``TS LEVEL logger [job=... batch=... tenant=... attempt=...]: message`` (fields only when set)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{name.removesuffix('_id')}={value}"
            for name in FIELDS
            if (value := getattr(record, name, None)) not in (None, "")
        )
        head = f"{_timestamp(record)} {record.levelname} {record.name}"
        text = f"{head} [{fields}]: {record.getMessage()}" if fields else f"{head}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": fields.get("job_id"),
            "batch_id": fields.get("batch_id"),
            "tenant": fields.get("tenant"),
            "attempt": fields.get("attempt"),
        }
        for key in [k for k in fields if k not in _STANDARD and k[0] != "_"]:
            out[key] = fields[key]
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _encode(out)
