"""Per-tenant quota checks against what the resolver found (pure)."""

from __future__ import annotations

from typing import Any

from .results import Quota

__all__ = ["quota_problem"]


def _short_side(formats: list[dict[str, Any]]) -> int | None:
    sides = [min(f["width"], f["height"]) for f in formats if f.get("width") and f.get("height")]
    sides += [f["height"] for f in formats if f.get("height") and not f.get("width")]
    return max(sides) if sides else None


def quota_problem(
    quota: Quota, info: dict[str, Any], formats: list[dict[str, Any]], expected: int
) -> str | None:
    """A clear refusal for the first limit the media breaks, or None when it fits."""
    duration = info.get("duration")
    if quota.max_duration_seconds is not None and duration and duration > quota.max_duration_seconds:
        return (
            f"Video is {duration:.0f} s long; this account allows at most {quota.max_duration_seconds:.0f} s"
        )
    side = _short_side(formats)
    if quota.max_resolution is not None and side and side > quota.max_resolution:
        return f"Video resolution {side}p is above this account's limit of {quota.max_resolution}p"
    if quota.max_file_size_bytes is not None and expected > quota.max_file_size_bytes:
        return (
            f"Expected file size {expected / 1e6:.1f} MB is above this account's limit of "
            f"{quota.max_file_size_bytes / 1e6:.1f} MB"
        )
    return None
