"""Per-tenant quota checks against what the resolver found (pure)."""

from __future__ import annotations

from .results import Quota

__all__ = ["quota_problem"]


def quota_problem(
    quota: Quota, *, duration: float | None, short_side: int | None = None, expected: int = 0
) -> str | None:
    """A clear refusal for the first limit the media breaks, or None when it fits.

    ``short_side``: the video's short side in pixels; ``expected``: its expected size in bytes."""
    if quota.max_duration_seconds is not None and duration and duration > quota.max_duration_seconds:
        return (
            f"Video is {duration:.0f} s long; this account allows at most {quota.max_duration_seconds:.0f} s"
        )
    if quota.max_resolution is not None and short_side and short_side > quota.max_resolution:
        return f"Video resolution {short_side}p is above this account's limit of {quota.max_resolution}p"
    if quota.max_file_size_bytes is not None and expected > quota.max_file_size_bytes:
        return (
            f"Expected file size {expected / 1e6:.1f} MB is above this account's limit of "
            f"{quota.max_file_size_bytes / 1e6:.1f} MB"
        )
    return None
