"""The status / step enums and the transition table (pure)."""

from __future__ import annotations

import itertools

import pytest

from tornado_engine.errors import InvalidState
from tornado_engine.states import TERMINAL, Status, Step, advance, check_transition

ALLOWED = {
    (Status.PENDING, Status.PROCESSING),
    (Status.PROCESSING, Status.PENDING),
    (Status.PROCESSING, Status.COMPLETED),
    (Status.PROCESSING, Status.FAILED),
    (Status.PROCESSING, Status.WARNING),
    (Status.PROCESSING, Status.SKIPPED),
    (Status.PENDING, Status.CANCELLED),
    (Status.PROCESSING, Status.CANCELLED),
}


def test_status_values_are_tornadoapi_strings() -> None:
    assert [s.value for s in Status] == [
        "Pending", "Processing", "Completed", "Failed", "Warning", "Skipped", "Cancelled",
    ]  # fmt: skip
    assert Status("Completed") is Status.COMPLETED
    assert Status.FAILED == "Failed"  # StrEnum: compares and formats as the plain string
    assert f"{Status.WARNING}" == "Warning"


def test_step_values_are_tornadoapi_strings() -> None:
    assert [s.value for s in Step] == ["Queued", "Downloading", "Muxing", "Uploading", "Finished"]
    assert str(Step.MUXING) == "Muxing"


def test_terminal_set() -> None:
    want = {Status.COMPLETED, Status.FAILED, Status.WARNING, Status.SKIPPED, Status.CANCELLED}
    assert frozenset(want) == TERMINAL
    assert Status.PENDING not in TERMINAL
    assert Status.PROCESSING not in TERMINAL


@pytest.mark.parametrize(
    ("current", "new"),
    sorted(ALLOWED),
    ids=[f"{a.value}->{b.value}" for a, b in sorted(ALLOWED)],
)
def test_allowed_transition(current: Status, new: Status) -> None:
    check_transition(current, new)  # does not raise


_REFUSED = sorted(set(itertools.product(Status, Status)) - ALLOWED)


@pytest.mark.parametrize(
    ("current", "new"),
    _REFUSED,
    ids=[f"{a.value}->{b.value}" for a, b in _REFUSED],
)
def test_refused_transition(current: Status, new: Status) -> None:
    with pytest.raises(InvalidState, match=f"a {current.value} job cannot become {new.value}"):
        check_transition(current, new)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_is_never_left(terminal: Status) -> None:
    for new in Status:
        with pytest.raises(InvalidState):
            check_transition(terminal, new)


def test_pending_cannot_finish_without_processing() -> None:
    for new in TERMINAL - {Status.CANCELLED}:
        with pytest.raises(InvalidState):
            check_transition(Status.PENDING, new)


def test_self_transitions_refused() -> None:
    for status in Status:
        with pytest.raises(InvalidState):
            check_transition(status, status)


# every status change the engine makes, by who makes it
_CHANGES_THE_CODE_MAKES = [
    ("a worker claims a queued job (store.claim)", Status.PENDING, Status.PROCESSING),
    ("a queued job is cancelled (Engine.cancel_job)", Status.PENDING, Status.CANCELLED),
    ("shutdown or an expired lease re-queues it (store.release, reaper)", Status.PROCESSING, Status.PENDING),
    ("the runner finishes it", Status.PROCESSING, Status.COMPLETED),
    ("a stage fails (retry.OUTCOMES)", Status.PROCESSING, Status.FAILED),
    ("a content issue", Status.PROCESSING, Status.WARNING),
    ("content that cannot be processed", Status.PROCESSING, Status.SKIPPED),
    ("a running job is cancelled", Status.PROCESSING, Status.CANCELLED),
]


@pytest.mark.parametrize(
    ("who", "current", "new"), _CHANGES_THE_CODE_MAKES, ids=[c[0] for c in _CHANGES_THE_CODE_MAKES]
)
def test_advance_returns_the_new_status(who: str, current: Status, new: Status) -> None:
    assert advance(current, new) is new


def test_the_table_is_exactly_what_the_code_does() -> None:
    assert {(current, new) for _, current, new in _CHANGES_THE_CODE_MAKES} == ALLOWED


@pytest.mark.parametrize(("current", "new"), _REFUSED, ids=[f"{a.value}->{b.value}" for a, b in _REFUSED])
def test_advance_refuses(current: Status, new: Status) -> None:
    with pytest.raises(InvalidState, match=f"^a {current.value} job cannot become {new.value}$"):
        advance(current, new)
