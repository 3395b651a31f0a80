"""The job fields on every log record, the CLI's text and JSON formats, and the ``health`` verdict."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tornado_engine.cli_logs import JsonFormatter, TextFormatter, _off_the_loop
from tornado_engine.cli_ops import run_health
from tornado_engine.logfields import ContextExecutor, job_fields, make_record
from tornado_engine.models import Job, JobRequest
from tornado_engine.story import shown_url

JOB = Job(id="j-1", url="http://x/y", request=JobRequest(url="http://x/y"), owner="acme", batch_id="b-9")


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    caught: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = caught.append  # type: ignore[method-assign]
    logger = logging.getLogger("tornado_engine.test_cli_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield caught
    logger.removeHandler(handler)


def _log(message: str, **extra: object) -> None:
    logging.getLogger("tornado_engine.test_cli_logs").info(message, extra=extra)


def test_records_carry_the_jobs_fields_inside_a_job_and_none_outside(
    records: list[logging.LogRecord],
) -> None:
    _log("outside")
    with job_fields(JOB):
        _log("inside")
    with ContextExecutor(max_workers=1) as pool, job_fields(JOB):  # a stage thread's records too
        pool.submit(_log, "in a thread").result()
    fields = [(r.job_id, r.batch_id, r.tenant, r.attempt) for r in records]  # type: ignore[attr-defined]
    assert fields == [(None, None, None, None), ("j-1", "b-9", "acme", None), ("j-1", "b-9", "acme", None)]
    # a host's plain formatter can name them on any record
    assert logging.Formatter("%(job_id)s %(message)s").format(records[0]) == "None outside"


def test_json_lines_have_stable_keys_then_the_events_fields(records: list[logging.LogRecord]) -> None:
    with job_fields(JOB):
        _log("download done", stage="download", bytes=1234)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("tornado_engine.test_cli_logs").exception("internal fault")
    first, second = (json.loads(JsonFormatter().format(r)) for r in records)
    assert list(first) == ["ts", "level", "logger", "message", "job_id", "batch_id", "tenant", "attempt",
                           "stage", "bytes"]  # fmt: skip
    assert first["job_id"] == "j-1" and first["bytes"] == 1234 and first["ts"].endswith("Z")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc"]


def test_text_lines_show_the_fields_that_are_set(records: list[logging.LogRecord]) -> None:
    _log("plain")
    with job_fields(JOB):
        _log("claimed")
    plain, claimed = (TextFormatter().format(r) for r in records)
    assert plain.endswith(" INFO tornado_engine.test_cli_logs: plain")
    assert claimed.endswith(" [job=j-1 batch=b-9 tenant=acme]: claimed")


def test_logged_urls_keep_no_query_and_no_credentials() -> None:
    assert (
        shown_url("https://u:pw@cdn.example:8443/a/b.mp4?sig=XYZ&t=1")
        == "https://cdn.example:8443/a/b.mp4?..."
    )
    assert shown_url("http://example.com/v") == "http://example.com/v"


def test_health_is_the_age_of_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "health"

    def verdict(max_age: float) -> tuple[int, dict[str, object]]:
        code = run_health(argparse.Namespace(health_file=path, max_age=max_age))
        return code, json.loads(capsys.readouterr().out)

    code, out = verdict(10)
    assert code == 1 and out["healthy"] is False and "No such file" in str(out["error"])
    path.touch()
    assert verdict(10)[0] == 0
    stale = time.time() - 60
    os.utime(path, (stale, stale))  # the lease loop stopped touching it a minute ago
    code, out = verdict(10)
    assert code == 1 and out["healthy"] is False and float(str(out["age_s"])) >= 59


class _Gate(io.StringIO):
    """A stderr stuck until the gate opens (a full pipe, a paused log collector)."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()

    def write(self, text: str) -> int:
        self.open.wait(30)
        return super().write(text)


def test_the_cli_writes_off_the_callers_thread_and_keeps_tracebacks() -> None:
    stream = _Gate()
    handler = _off_the_loop(stream, JsonFormatter())
    logger = logging.getLogger("tornado_engine.test_cli_logs.off_loop")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("first %s", "line")  # returns although the writer is stuck
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("internal fault")
        logger.warning("bad %d format", "x")  # reported by logging; the caller goes on
        assert stream.getvalue() == ""
        stream.open.set()
        for _ in range(300):
            if stream.getvalue().count("\n") == 2:
                break
            time.sleep(0.01)
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "first line"
    assert second["message"] == "internal fault" and "ValueError: boom" in second["exc"]


def _made_both_ways(logger: logging.Logger) -> tuple[dict[str, object], dict[str, object]]:
    args = ("w1", 2, 0.25)
    extra = {"worker": "w1", "queue_wait_s": 0.25}
    with job_fields(JOB):
        fast = make_record(logger, logging.INFO, "/src/story.py", 7, "claimed by %s (%d, %.2f)", args,
                           "claimed", extra)  # fmt: skip
        made = logger.makeRecord(logger.name, logging.INFO, "/src/story.py", 7, "claimed by %s (%d, %.2f)",
                                 args, None, "claimed", extra)  # fmt: skip
    times = ("created", "msecs", "relativeCreated")
    return (
        {k: v for k, v in vars(fast).items() if k not in times},
        {k: v for k, v in vars(made).items() if k not in times},
    )


def test_a_record_made_in_one_step_is_the_one_logging_makes() -> None:
    fast, made = _made_both_ways(logging.getLogger("tornado_engine.test_cli_logs"))
    assert list(fast) == list(made)  # same attributes in the same order (the JSON lines' order)
    assert fast == made and fast["job_id"] == "j-1" and fast["worker"] == "w1"
    with pytest.raises(KeyError, match="message"):  # as logging refuses an extra that overwrites
        make_record(logging.getLogger("x"), logging.INFO, "/a.py", 1, "m", (), "f", {"message": "no"})


def test_a_host_record_factory_still_makes_the_records() -> None:
    previous = logging.getLogRecordFactory()

    def host_factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.host_field = "set"
        return record

    logging.setLogRecordFactory(host_factory)
    try:
        fast, made = _made_both_ways(logging.getLogger("tornado_engine.test_cli_logs"))
    finally:
        logging.setLogRecordFactory(previous)
    assert fast == made and fast["host_field"] == "set" and fast["job_id"] == "j-1"
