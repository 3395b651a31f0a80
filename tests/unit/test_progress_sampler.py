"""What of a running job's progress is stored, and how it reads back (pure: no store, no loop)."""

from __future__ import annotations

import json

from tornado_engine.models import Job, JobRequest
from tornado_engine.progress import Event, LiveProgress
from tornado_engine.progress_sampler import ProgressSampler
from tornado_engine.states import Status, Step
from tornado_engine.store.rules import job_columns, job_from_record


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def tick(job: str, pct: float, step: Step = Step.DOWNLOADING) -> Event:
    return Event(job, Status.PROCESSING, step, pct / 3, pct, bytes_done=int(pct * 1000), bytes_total=100_000,
                 speed_bps=2e6, eta_seconds=(100 - pct) / 10)  # fmt: skip


def test_each_job_is_due_at_most_once_a_second_and_only_when_it_changed() -> None:
    clock = Clock()
    sampler = ProgressSampler(clock=clock)
    writes: dict[str, int] = {"a": 0, "b": 0}
    for step in range(100):  # 10 s of events, 10 a second for each of two jobs; a heartbeat every 0.3 s
        clock.now = 100.0 + step / 10
        sampler.note(tick("a", step))
        if step < 30:
            sampler.note(tick("b", step))  # b stops changing after 3 s
        if step % 3 == 0:
            for job_id in sampler.take(["a", "b"]):
                writes[job_id] += 1
    assert 9 <= writes["a"] <= 11  # ~1/s over 10 s
    assert 3 <= writes["b"] <= 4  # and nothing once it no longer changes


def test_what_is_due_is_the_latest_event_as_json() -> None:
    clock = Clock()
    sampler = ProgressSampler(clock=clock)
    sampler.note(tick("a", 10))
    sampler.note(tick("a", 20))
    due = sampler.take(["a", "not-ours"])
    stored = json.loads(due["a"])
    assert (
        stored["stage_percent"] == 20 and stored["bytes_done"] == 20_000 and stored["step"] == "Downloading"
    )
    assert set(due) == {"a"}
    assert sampler.take(["a"]) == {}  # nothing new


def test_ended_or_released_jobs_are_forgotten() -> None:
    sampler = ProgressSampler(clock=Clock())
    sampler.note(tick("a", 10))
    sampler.note(Event("a", Status.COMPLETED, Step.FINISHED, 100.0, 100.0))
    sampler.note(tick("b", 10))
    assert sampler.take(["a", "b"]).keys() == {"b"}
    sampler.take([])  # b's attempt ended here (released): its bookkeeping goes
    assert sampler._written == {} and sampler._latest == {}


def _stored(status: Status, step: Step) -> Job:
    job = Job(
        id="j1", url="https://u:p@media.example/v.mp4", request=JobRequest(url="https://media.example/v")
    )
    job.status, job.step = status, step
    return job


def test_a_stored_progress_shows_while_running_in_its_own_step_only() -> None:
    live = LiveProgress.from_event(tick("j1", 40), now_ms=1_700_000_000_000)
    progress = json.loads(json.dumps(live.to_dict()))
    record = json.loads(job_columns(_stored(Status.PROCESSING, Step.DOWNLOADING))[3])
    job = job_from_record("Processing", record, progress)
    assert job.live == live
    api = job.to_api()
    assert api["progress"] == {"percent": live.percent, "stage_percent": 40, "bytes_done": 40_000,
                               "bytes_total": 100_000, "speed_bps": 2e6, "eta_seconds": 6.0,
                               "updated_at": 1_700_000_000_000}  # fmt: skip
    assert api["step"] == "Downloading" and "live" not in record  # never part of the record
    muxing = json.loads(job_columns(_stored(Status.PROCESSING, Step.MUXING))[3])
    assert job_from_record("Processing", muxing, progress).live is None  # a step entered since
    ended = json.loads(job_columns(_stored(Status.COMPLETED, Step.FINISHED))[3])
    assert "progress" not in job_from_record("Completed", ended, progress).to_api()
