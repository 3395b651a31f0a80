"""Byte-level resume of a download: when the bytes on disk may be kept, and which are still missing (pure).

A partial download's file is kept with a small record of it (its *sidecar*): the source's validators as
the transfer that wrote the bytes saw them, and the byte spans written so far. A later transfer (a retry
after a reset, or a new process after a crash) asks only for what is missing when the source still is
the same entity: it supports ranges and its validators are unchanged. A strong ``ETag`` or a
``Last-Modified`` date must be there to compare (a length alone proves nothing), the length must be the
same, and a weak ``ETag`` never vouches for bytes. Anything else starts over from byte 0, which is always
correct, only slower. The request carries ``If-Range`` too, so a source that changes between the look
and the transfer sends the whole new file instead of a mix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Partial", "Span", "Validators", "add_span", "done_bytes", "missing", "should_resume"]

Span = tuple[int, int]  # [start, end): bytes written


@dataclass(frozen=True)
class Validators:
    """What identifies one version of the source: ``ETag``, ``Last-Modified`` and its length in bytes."""

    etag: str | None = None
    last_modified: str | None = None
    length: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], length: int | None) -> Validators:
        """From a response's headers (names in any case); ``length``: the whole entity's size, if known."""
        lowered = {k.lower(): v.strip() for k, v in headers.items()}
        return cls(lowered.get("etag") or None, lowered.get("last-modified") or None, length)

    @property
    def strong_etag(self) -> str | None:
        return self.etag if self.etag and not self.etag.startswith("W/") else None

    def if_range(self) -> str | None:
        """The ``If-Range`` value that asks the source for the rest only if it is still this version."""
        return self.strong_etag or self.last_modified

    def to_data(self) -> dict[str, Any]:
        return {"etag": self.etag, "last_modified": self.last_modified, "length": self.length}

    @classmethod
    def from_data(cls, data: Any) -> Validators:
        etag, modified, length = data.get("etag"), data.get("last_modified"), data.get("length")
        if not all(v is None or isinstance(v, str) for v in (etag, modified)):
            raise ValueError("bad validators")
        if length is not None and (not isinstance(length, int) or length < 0):
            raise ValueError("bad length")
        return cls(etag, modified, length)


def should_resume(saved: Validators, current: Validators, on_disk: int) -> bool:
    """True when ``on_disk`` bytes written under ``saved`` may be kept for a source that now says
    ``current``; False: throw them away and start from byte 0."""
    if on_disk <= 0 or saved.length is None or saved.length != current.length or on_disk > saved.length:
        return False
    if saved.if_range() is None:  # nothing but a length: the same size proves nothing
        return False
    if (saved.etag or current.etag) and saved.etag != current.etag:
        return False
    return saved.last_modified == current.last_modified


def add_span(spans: tuple[Span, ...], start: int, end: int) -> tuple[Span, ...]:
    """``spans`` with ``[start, end)`` added, merged and in order."""
    if end <= start:
        return spans
    merged: list[Span] = []
    for s, e in sorted((*spans, (start, end))):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return tuple(merged)


def missing(spans: tuple[Span, ...], total: int) -> list[Span]:
    """The holes of ``[0, total)`` that ``spans`` leave, in order."""
    holes: list[Span] = []
    at = 0
    for s, e in spans:
        if s > at:
            holes.append((at, min(s, total)))
        at = max(at, e)
    if at < total:
        holes.append((at, total))
    return [h for h in holes if h[0] < h[1]]


def done_bytes(spans: tuple[Span, ...]) -> int:
    return sum(e - s for s, e in spans)


@dataclass(frozen=True)
class Partial:
    """The sidecar of one partial file: which format it is, the source's validators, the spans written."""

    format_id: str
    validators: Validators
    spans: tuple[Span, ...] = ()

    def to_data(self) -> dict[str, Any]:
        return {
            "format_id": self.format_id,
            "validators": self.validators.to_data(),
            "spans": [list(span) for span in self.spans],
        }

    @classmethod
    def from_data(cls, data: Any) -> Partial | None:
        """The sidecar's contents, or None when it is not one we wrote (then the file starts over)."""
        try:
            format_id = data["format_id"]
            if not isinstance(format_id, str):
                return None
            spans: tuple[Span, ...] = ()
            for start, end in data.get("spans", []):
                if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end):
                    return None
                spans = add_span(spans, start, end)
            return cls(format_id, Validators.from_data(data["validators"]), spans)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
