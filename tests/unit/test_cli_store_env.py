"""Which store a command uses without ``--store`` (issue 14 point 14): pure, no store is opened."""

from __future__ import annotations

import pytest

from tornado_engine.cli_queue import queued_note, store_url


def test_the_option_wins_then_tornado_store_then_a_database_url_we_can_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TORNADO_STORE", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert store_url(None) is None  # the data dir's own jobs.db
    monkeypatch.setenv("DATABASE_URL", "mysql://app@127.0.0.1/app")  # another program's database
    assert store_url(None) is None
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/jobs")
    assert store_url(None) == "postgresql://u@127.0.0.1/jobs"
    monkeypatch.setenv("TORNADO_STORE", "/srv/jobs.db")
    assert store_url(None) == "/srv/jobs.db"
    assert store_url("sqlite:////abs/jobs.db") == "sqlite:////abs/jobs.db"


def test_a_queued_note_names_the_job_and_how_to_follow_it_never_the_store() -> None:
    note = queued_note(["a1", "b2"])
    assert note.startswith("queued 2 jobs; a worker on this store will run it")
    assert note.endswith("jobs wait a1") and "postgresql" not in note
    assert queued_note(["a1"]).startswith("queued as a1; a worker on this store will run it")
