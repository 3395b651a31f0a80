"""Episode names and URLs (pure): a long title trimmed at a character boundary, the smuggled hints dropped."""

from __future__ import annotations

from tornado_engine.submit import _episode_filename
from tornado_engine.ytdlp import public_url


def test_a_long_title_is_trimmed_to_the_byte_limit_at_a_character_boundary() -> None:
    title = "題" * 100 + "x"  # 301 bytes
    name = _episode_filename(title, 2, set())
    assert name == "題" * 80 and len(name.encode()) == 240  # 240 bytes: 80 whole characters


def test_repeats_and_missing_titles() -> None:
    taken: set[str] = set()
    assert _episode_filename("Intro", 0, taken) == "Intro"
    assert _episode_filename("intro", 1, taken) == "intro (2)"
    assert _episode_filename(None, 2, taken) == "episode-3"
    assert _episode_filename("../..", 3, taken) == "episode-4"


def test_public_url_drops_the_smuggled_fragment_only() -> None:
    smuggled = "https://media.example/ep2.mp3#__youtubedl_smuggle=%7B%22force_videoid%22%3A+%22ep-2%22%7D"
    assert public_url(smuggled) == "https://media.example/ep2.mp3"
    assert public_url("https://media.example/a.mp4#t=10") == "https://media.example/a.mp4#t=10"
