"""Bounds (pure policy): what a hostile or broken source may cost the engine before a job ends.

    resolve   ResolveBounds: a manifest's size, its segment count, the declared duration (kind too_large)
    stall     StallPolicy / StallMeter: a minimum transfer rate over a window (kind stalled); WriteWatch:
              the same for an upload, one SDK report per part

Each is enforced where the bytes flow (the resolver's manifest guard, the fast path, the network guard,
the upload stage).
"""

from .resolve import Exceeded, ResolveBounds, info_problem, iso_duration, manifest_problem, size_problem
from .stall import StallMeter, StallPolicy, WriteWatch

__all__ = [
    "Exceeded", "ResolveBounds", "StallMeter", "StallPolicy", "WriteWatch", "info_problem", "iso_duration",
    "manifest_problem", "size_problem",
]  # fmt: skip
