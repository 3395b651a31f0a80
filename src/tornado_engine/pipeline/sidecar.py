"""Side files: subtitles and the thumbnail, fetched by yt-dlp in a call of their own (blocking).

They are stored beside the media under the same key stem (``clip.en.vtt``, ``clip.jpg``). Media without
subtitles in the requested languages, or without a thumbnail, is not an error: the job simply has no
``subtitle_url`` / ``thumbnail_url``. A failed fetch is, and is classified like any download failure.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..options import MediaOptions
from ..ytdlp import SIDE_STEM, map_error, side_params
from ..ytdlp_loader import load_ytdlp

__all__ = ["SideFiles", "fetch_side_files", "side_keys"]

_EXT = re.compile(r"^[a-z0-9]{1,5}$")
_IMAGE_EXTS = frozenset({"jpg", "jpeg", "png", "webp", "gif"})


@dataclass(frozen=True)
class SideFiles:
    subtitles: tuple[tuple[str, Path], ...] = ()  # (language, file), in the requested order
    thumbnail: Path | None = None

    @property
    def paths(self) -> list[Path]:
        return [p for _, p in self.subtitles] + ([self.thumbnail] if self.thumbnail else [])


def _found(job_dir: Path, options: MediaOptions) -> SideFiles:
    # List the folder rather than trust the info dict's paths (recipe section 8).
    names = {p.name: p for p in job_dir.iterdir() if p.is_file() and p.name.startswith(f"{SIDE_STEM}.")}
    subtitles: list[tuple[str, Path]] = []
    for lang in options.subtitle_languages:
        for name, path in sorted(names.items()):
            ext = name.removeprefix(f"{SIDE_STEM}.{lang}.")
            if ext != name and _EXT.match(ext):
                subtitles.append((lang, path))
                break
    thumbnail = None
    if options.thumbnail:
        thumbnail = next(
            (p for n, p in sorted(names.items()) if n.removeprefix(f"{SIDE_STEM}.") in _IMAGE_EXTS), None
        )
    return SideFiles(tuple(subtitles), thumbnail)


def fetch_side_files(
    info: dict[str, Any], job_dir: Path, download_params: dict[str, Any], options: MediaOptions
) -> SideFiles:
    """Write the requested subtitles and thumbnail into ``job_dir``; blocking (run it in a thread).

    ``download_params`` are the media download's yt-dlp parameters (same folder, network settings).
    """
    if not options.subtitle_languages and not options.thumbnail:
        return SideFiles()
    load_ytdlp()  # on first use, not with the package (see ytdlp_loader)
    from yt_dlp.utils import YoutubeDLError

    from ..ytdlp_registry import new_ydl

    params = side_params(download_params, options)
    try:
        with new_ydl(params) as ydl:
            ydl.process_ie_result(copy.deepcopy(info), download=True)
    except YoutubeDLError as exc:
        raise map_error(exc, resolving=False) from exc
    return _found(job_dir, options)


def side_keys(media_key: str, files: SideFiles) -> list[tuple[str, Path, str]]:
    """(kind, local file, storage key): the media key's stem plus ``.<lang>.<ext>`` or ``.<ext>`` (pure)."""
    stem = media_key.rsplit(".", 1)[0]
    out = [("subtitle", path, f"{stem}.{lang}{path.suffix.lower()}") for lang, path in files.subtitles]
    if files.thumbnail is not None:
        out.append(("thumbnail", files.thumbnail, f"{stem}{files.thumbnail.suffix.lower()}"))
    return out
