"""The compact JSON writer gives json.dumps's text (compact separators) for every kind of value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tornado_engine.jsontext import dumps
from tornado_engine.states import Status


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, None, True, False], "c": {"d": 'é\u0000"\\/'}, "e": 10**20, "f": -0.0},
        [],
        "text",
        None,
        {"status": Status.PROCESSING, "n": float("inf")},  # a StrEnum is its value
    ],
)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert dumps(value) == json.dumps(value, separators=(",", ":"))


def test_what_json_cannot_encode_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"a": object()})
