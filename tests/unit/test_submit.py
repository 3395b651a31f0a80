"""How a playlist's entries are named when the request names no file (pure: no engine, no loop)."""

from __future__ import annotations

from tornado_engine.submit import _episode_filename


def _names(titles: list[str | None]) -> list[str]:
    taken: set[str] = set()
    return [_episode_filename(title, index, taken) for index, title in enumerate(titles)]


def test_episodes_are_named_after_their_titles_made_safe() -> None:
    assert _names(["Intro", "Part: two", "a/b"]) == ["Intro", "Part: two", "a b"]


def test_episodes_without_a_usable_title_are_numbered() -> None:
    assert _names([None, "", "..", "Outro"]) == ["episode-1", "episode-2", "episode-3", "Outro"]


def test_a_repeated_title_gets_a_number_and_never_overwrites() -> None:
    assert _names(["Pilot", "pilot", "PILOT", "Pilot (2)"]) == [
        "Pilot",
        "pilot (2)",
        "PILOT (3)",
        "Pilot (2) (2)",
    ]
