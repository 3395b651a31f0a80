"""Byte-level resume policy (pure): when the bytes on disk may be kept, which are missing, the sidecar."""

from __future__ import annotations

import pytest

from tornado_engine.partial import Partial, Validators, add_span, done_bytes, missing, should_resume

LM = "Sat, 05 Dec 2026 07:00:00 GMT"
SAVED = Validators(etag='"abc"', last_modified=LM, length=1000)


def test_unchanged_validators_resume() -> None:
    assert should_resume(SAVED, Validators('"abc"', LM, 1000), on_disk=600)
    # either validator alone is enough when it is all the source sends
    assert should_resume(Validators('"abc"', None, 1000), Validators('"abc"', None, 1000), 1)
    assert should_resume(Validators(None, LM, 1000), Validators(None, LM, 1000), 999)


@pytest.mark.parametrize(
    ("current", "on_disk"),
    [
        (Validators('"abd"', LM, 1000), 600),  # another ETag
        (Validators('"abc"', "Sun, 06 Dec 2026 07:00:00 GMT", 1000), 600),  # modified since
        (Validators('"abc"', LM, 1001), 600),  # another length
        (Validators(None, LM, 1000), 600),  # the ETag went away
        (Validators('"abc"', LM, None), 600),  # no length to compare
        (Validators('"abc"', LM, 1000), 0),  # nothing on disk
        (Validators('"abc"', LM, 1000), 1001),  # more on disk than the source has
    ],
)
def test_any_change_starts_over(current: Validators, on_disk: int) -> None:
    assert not should_resume(SAVED, current, on_disk)


def test_a_length_or_a_weak_etag_alone_proves_nothing() -> None:
    assert not should_resume(Validators(None, None, 1000), Validators(None, None, 1000), 500)
    weak = Validators('W/"abc"', None, 1000)
    assert not should_resume(weak, weak, 500)
    assert weak.if_range() is None
    assert Validators('W/"abc"', LM, 1000).if_range() == LM  # a weak ETag never goes in If-Range
    assert SAVED.if_range() == '"abc"'


def test_validators_from_headers_in_any_case() -> None:
    found = Validators.from_headers({"ETag": ' "x" ', "last-modified": LM, "Other": "y"}, 42)
    assert found == Validators('"x"', LM, 42)
    assert Validators.from_headers({}, None) == Validators()


def test_spans_merge_and_leave_holes() -> None:
    spans = add_span((), 100, 200)
    spans = add_span(spans, 0, 50)
    spans = add_span(spans, 150, 300)  # overlaps
    spans = add_span(spans, 50, 60)  # touches
    assert spans == ((0, 60), (100, 300))
    assert add_span(spans, 5, 5) == spans  # empty
    assert missing(spans, 400) == [(60, 100), (300, 400)]
    assert missing((), 10) == [(0, 10)]
    assert missing(((0, 10),), 10) == []
    assert done_bytes(spans) == 260


def test_sidecar_round_trip_and_refusals() -> None:
    partial = Partial("mp4", SAVED, ((0, 60), (100, 300)))
    assert Partial.from_data(partial.to_data()) == partial
    for bad in (
        None,
        {},
        {"format_id": 3, "validators": {}},
        {"format_id": "mp4", "validators": {"length": -1}},
        {"format_id": "mp4", "validators": {"etag": 5}},
        {"format_id": "mp4", "validators": {}, "spans": [[5, 2]]},
        {"format_id": "mp4", "validators": {}, "spans": [["0", 2]]},
    ):
        assert Partial.from_data(bad) is None, bad
