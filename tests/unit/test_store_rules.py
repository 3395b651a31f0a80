"""What every store decides (store/rules.py), and the SQL files' loader: pure, no database."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import tornado_engine.store
from tornado_engine import JobRequest, Status
from tornado_engine.models import Job
from tornado_engine.outbox import _payload
from tornado_engine.states import TERMINAL
from tornado_engine.store.base import OutboxMessage
from tornado_engine.store.rules import (
    BATCH_COMPLETED,
    TERMINAL_SQL,
    BatchSummary,
    batch_completed_message,
    batch_counts,
    job_columns,
    job_from_record,
    marks_job,
    outbox_rows,
    released,
    webhook_fields,
)
from tornado_engine.store.sqlfiles import load_migrations, load_queries
from tornado_engine.webhooks import batch_payload

URL = "https://media.example/v.mp4"


def _job(status: Status, **fields: object) -> Job:
    job = Job(id="j1", url=URL, request=JobRequest(url=URL), reserved_bytes=500)
    job.status = status
    for name, value in fields.items():
        setattr(job, name, value)
    return job


@pytest.mark.parametrize(
    ("status", "fields", "stored", "reserved"),
    [
        (Status.PENDING, {}, 0, 500),
        (Status.PROCESSING, {"file_size": 9}, 0, 500),  # a file not yet stored counts as reserved
        (Status.COMPLETED, {"file_size": 1234}, 1234, 0),
        (Status.COMPLETED, {"file_size": 1234, "file_deleted_at": 1}, 0, 0),  # deleted: counts no more
        (Status.COMPLETED, {"file_size": None}, 0, 0),
        (Status.FAILED, {"file_size": 1234}, 0, 0),
    ],
)
def test_job_columns(status: Status, fields: dict[str, object], stored: int, reserved: int) -> None:
    job = _job(status, **fields)
    assert job_columns(job)[:3] == (status.value, stored, reserved)
    data = job_columns(job)[3]
    assert ", " not in data  # compact JSON, without the fields at their defaults (read back as them)
    written = json.loads(data)
    record, request = job.to_record(), written.pop("request")
    assert written.items() <= record.items() and None not in written.values()
    assert request.items() <= record["request"].items() and "format" not in request  # "mp4", the default
    assert Job.from_record({**written, "request": request}) == job


def test_the_status_column_is_the_truth() -> None:
    record = _job(Status.PROCESSING).to_record()
    assert job_from_record("Pending", record).status is Status.PENDING


def test_released_goes_back_to_pending_with_its_reservation() -> None:
    job = _job(Status.COMPLETED, file_size=1234)  # ended in memory, cut before it was saved
    reserved, data = released(job)
    assert job.status is Status.PENDING and reserved == 500
    assert json.loads(data)["status"] == "Pending"


def test_terminal_sql_lists_exactly_the_terminal_statuses() -> None:
    assert sorted(re.findall(r"'(\w+)'", TERMINAL_SQL)) == sorted(s.value for s in TERMINAL)


@pytest.mark.parametrize(
    ("event", "job_id", "marks"),
    [("job_completed", "j1", True), ("job_failed", "j1", True), ("job_skipped", "j1", True),
     ("job_cancelled", "j1", True), ("downloading", "j1", False), ("job_completed", None, False),
     (BATCH_COMPLETED, None, False)],
)  # fmt: skip
def test_which_deliveries_are_noted_in_the_job(event: str, job_id: str | None, marks: bool) -> None:
    assert marks_job(OutboxMessage("m", "", "https://h.example", event, {}, job_id)) is marks
    assert webhook_fields("delivered", 2) == {"webhook_status": "delivered", "webhook_attempts": 2}


def test_outbox_rows_encode_payloads_and_default_created_at() -> None:
    dated = OutboxMessage("m1", "o", "https://h.example", "job_failed", {"a": [1, 2]}, "j1", created_at=5)
    undated = OutboxMessage("m2", "o", "https://h.example", "job_failed", {}, "j1")
    first, second = outbox_rows([dated, undated])
    assert first == ("m1", "o", "j1", "https://h.example", "job_failed", '{"a":[1,2]}', 5)
    assert second[6] > 1_600_000_000_000


def test_batch_counts_every_other_ending_as_failed() -> None:
    counts = {"Completed": 2, "Failed": 1, "Warning": 1, "Cancelled": 1, "Pending": 3, "Processing": 1}
    assert batch_counts(counts) == (2, 3)
    assert batch_counts({}) == (0, 0)


def test_batch_completed_message_carries_a_summary_rendered_by_the_webhook_side() -> None:
    counts = {"Completed": 2, "Failed": 1, "Skipped": 1}
    assert batch_completed_message("b1", "o", {"webhook_url": None}, counts) is None
    message = batch_completed_message("b1", "o", {"webhook_url": "https://h.example/b"}, counts)
    assert message is not None
    assert (message.id, message.owner, message.url, message.event) == (
        "msg_batch_b1", "o", "https://h.example/b", BATCH_COMPLETED,
    )  # fmt: skip
    assert BatchSummary.from_data(message.payload) == BatchSummary("b1", 2, 2, 4)
    assert _payload(message) == batch_payload("b1", 2, 2, 4)  # what receivers get, key order too
    assert list(_payload(message)) == ["event", "batch_id", "completed", "failed", "total"]
    # a row queued by an earlier release holds the rendered payload itself: delivered the same
    earlier = OutboxMessage(message.id, "o", message.url, BATCH_COMPLETED, batch_payload("b1", 2, 2, 4))
    assert _payload(earlier) == batch_payload("b1", 2, 2, 4)
    job_event = OutboxMessage("m", "o", message.url, "job_failed", {"event": "job_failed"}, "j1")
    assert _payload(job_event) is job_event.payload


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_queries_load_by_name_with_the_terminal_statuses_in_place(dialect: str) -> None:
    queries = load_queries(dialect)
    assert {"get_job", "claim", "heartbeat", "release", "insert_outbox", "update_finished"} <= set(queries)
    assert all(sql and "-- name:" not in sql and "{terminal}" not in sql for sql in queries.values())
    assert TERMINAL_SQL in queries["update_finished"]
    assert load_migrations(dialect)[0].version == 1


def test_sqlite_queries_never_mix_numbered_and_bare_parameters() -> None:
    """A bare ``?`` after ``?1`` takes the number after the largest so far, not its position."""
    for name, sql in load_queries("sqlite").items():
        code = "\n".join(line.split("--")[0] for line in sql.splitlines())
        numbered, bare = re.search(r"\?\d", code), re.search(r"\?(?!\d)", code)
        assert not (numbered and bare), name


@pytest.mark.parametrize(
    ("dialect", "modules"),
    [("sqlite", ["sqlite", "sqlite_rows"]), ("postgres", ["postgres", "pg_sql", "pg_saves"])],
)
def test_every_query_named_in_the_code_is_in_the_file_and_every_one_is_used(
    dialect: str, modules: list[str]
) -> None:
    folder = Path(tornado_engine.store.__file__).parent
    used = {
        name
        for module in modules
        for name in re.findall(r'Q\["(\w+)"\]', (folder / f"{module}.py").read_text())
    }
    assert used == set(load_queries(dialect))
