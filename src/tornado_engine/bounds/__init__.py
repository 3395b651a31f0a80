"""Bounds (pure policy): what a hostile or broken source may cost the engine before a job ends.

    resolve   ResolveBounds: a manifest's size, its segment count, the declared duration (kind too_large)
    stall     StallPolicy / StallMeter: a minimum transfer rate over a window (kind stalled)

Each is enforced where the bytes flow (the resolver's manifest guard, the fast path, the network guard).
"""

from .resolve import Exceeded, ResolveBounds, info_problem, iso_duration, manifest_problem, size_problem
from .stall import StallMeter, StallPolicy

__all__ = [
    "Exceeded", "ResolveBounds", "StallMeter", "StallPolicy", "info_problem", "iso_duration",
    "manifest_problem", "size_problem",
]  # fmt: skip
