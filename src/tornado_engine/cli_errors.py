"""A refused job request, said in the command line's words (pure).

``JobRequest`` names API fields (``Audio format applies only with audio_only``); on the command line the
same rule reads ``--audio-format needs --audio-only``. One table maps each request field to its flag; the
rewrite swaps the field names and labels the API's messages use for those flags.
"""

from __future__ import annotations

import re

__all__ = ["REQUEST_FLAGS", "flag_message"]

# JobRequest field -> the flag (or argument) that sets it, and the words its messages use for it besides
# its own name (``audio_format`` is also ``Audio format``); either is matched in any case.
REQUEST_FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "url": ("URL", ()),
    "format": ("--format", ()),
    "video_codec": ("--video-codec", ("video codec",)),
    "audio_codec": ("--audio-codec", ("audio codec",)),
    "audio_bitrate": ("--audio-bitrate", ("audio bitrate",)),
    "video_quality": ("--video-quality", ("video quality",)),
    "filename": ("--filename", ()),
    "folder": ("--folder", ("folder name",)),
    "audio_only": ("--audio-only", ("audio only",)),
    "audio_format": ("--audio-format", ("audio format",)),
    "max_resolution": ("--max-resolution", ("max resolution",)),
    "quality_preset": ("--quality-preset", ("quality preset",)),
    "clip_start": ("--clip-start", ("clip start",)),
    "clip_end": ("--clip-end", ("clip end",)),
    "download_subtitles": ("--subtitles", ("download subtitles",)),
    "subtitle_languages": ("--subtitle-language", ("subtitle languages",)),
    "download_thumbnail": ("--thumbnail", ("download thumbnail",)),
    "live_recording": ("--live", ("live recording", "live recordings")),
    "live_from_start": ("--live-from-start", ("live from start",)),
    "max_duration": ("--max-duration", ("max duration",)),
    "wait_for_video": ("--wait-for-video", ("wait for video",)),
    "reuse": ("--reuse", ()),
}

# Phrases of the whole-request rules that read better with flags in them; swapped before the names.
_PHRASES = (
    (re.compile(r"\bappl(?:y|ies) only with\b"), "needs"),
    (re.compile(r"\bneeds a video codec to encode with\b"), "needs video_codec"),
    (re.compile(r"^Clips do\b"), "clip_start/clip_end do"),
    (re.compile(r"\bchoose mkv\b"), "format mkv"),
)
_WORDS: dict[str, str] = {
    word: flag for field, (flag, labels) in REQUEST_FLAGS.items() for word in (field, *labels)
}
# longest first, so "audio format" wins over "format"; never inside a longer word or a flag already there
_NAMES = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(w) for w in sorted(_WORDS, key=len, reverse=True)) + r")(?![\w-])",
    re.IGNORECASE,
)


def flag_message(message: str, field: str | None) -> str:
    """``message`` about request field ``field`` with flags for field names. Messages about anything
    else (not a request field) come back as they are."""
    if field not in REQUEST_FLAGS:
        return message
    for phrase, replacement in _PHRASES:
        message = phrase.sub(replacement, message)
    message = _NAMES.sub(lambda m: _WORDS[m[1].lower()], message)
    flag = REQUEST_FLAGS[field][0]
    if flag.startswith("--") and flag not in message:  # e.g. "webm cannot hold h264 video; ..."
        message = f"{flag}: {message}"
    return message
