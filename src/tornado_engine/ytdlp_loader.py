"""yt-dlp, imported on first use, one thread at a time.

``import tornado_engine`` does not load yt-dlp (~0.3 s of imports, ~0.5 s more for its extractor list):
the engine preloads it in a stage thread when it opens (:func:`tornado_engine.ytdlp_registry.warm_up`),
and every module that drives yt-dlp imports it inside the function that needs it, after
:func:`load_ytdlp`. Why a lock: yt-dlp's modules import each other in cycles, and a thread importing it
while another is half-way gets a half-made module ("cannot import name 'Popen' from partially
initialized module 'yt_dlp.utils._utils'").
"""

from __future__ import annotations

import threading

__all__ = ["load_ytdlp"]

_lock = threading.Lock()
_loaded = threading.Event()


def load_ytdlp() -> None:
    """Import yt-dlp and the engine's bindings to it, once per process; later calls return at once."""
    if _loaded.is_set():
        return
    with _lock:
        if not _loaded.is_set():
            import yt_dlp  # noqa: F401  (the package: its modules are complete once this returns)

            from . import ytdlp_registry  # noqa: F401  (reads yt-dlp's internals at import)
            from .pipeline import manifest_guard  # noqa: F401  (subclasses a yt-dlp error)

            _loaded.set()
