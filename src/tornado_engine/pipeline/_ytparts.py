"""yt-dlp's ``.part`` files resumed only when the source is still the same version (byte-level resume).

yt-dlp resumes a ``.part`` file by its size alone (``continuedl``): it would glue the rest of a changed
source onto the old bytes. So a ``.part`` is kept only with a sidecar (:mod:`tornado_engine.partialfile`)
naming its format and the validators of the response its bytes came from, written when that transfer's
first bytes land. Before a download, a ``.part`` without one (or of a format not asked for now, or not a
plain http(s) one) is thrown away; a resumed format's requests carry ``If-Range``, and the first response
to one is compared with the sidecar (:func:`tornado_engine.partial.should_resume`): a changed source raises
:class:`Changed` and the caller starts over from byte 0.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from .. import partialfile
from ..partial import Partial, Validators, should_resume

__all__ = ["Changed", "Parts"]

_CONTENT_RANGE = re.compile(r"^bytes \d+-\d+/(\d+)$")
_PLAIN = ("http", "https")


class Changed(Exception):
    """A resumed ``.part``'s source answered as another version: its bytes must go."""


def _key(url: str) -> str:
    from yt_dlp.networking import Request  # loaded by then: only a yt-dlp download gets here

    return str(Request(url).url)  # as yt-dlp's own requests spell it


def _length(status: int, headers: dict[str, str]) -> int | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    if status == 206:
        match = _CONTENT_RANGE.match(lowered.get("content-range", "").strip())
        return int(match[1]) if match else None
    length = lowered.get("content-length", "")
    return int(length) if status == 200 and length.isdigit() else None


class Parts:
    """One yt-dlp download's ``.part`` files: which are resumed, and the sidecars of the others."""

    def __init__(self, job_dir: Path, formats: list[dict[str, Any]]) -> None:
        self.job_dir = job_dir
        plain = [f for f in formats if f.get("protocol") in _PLAIN and f.get("url")]
        self.plain = {str(f.get("format_id")): f for f in plain}
        self.resuming: dict[str, tuple[Validators, int]] = {}  # url -> (saved validators, bytes on disk)
        self.latest: dict[str, Validators] = {}  # url -> what its last response said
        self.recorded: set[str] = set()  # .part files whose sidecar this run wrote
        self.lock = threading.Lock()

    def prepare(self, info: dict[str, Any]) -> None:
        """Blocking: throw away what cannot be resumed; ``info``'s resumed formats get ``If-Range``."""
        for entry in sorted(self.job_dir.iterdir()):
            name = entry.name
            if name.endswith(partialfile.SUFFIX) or not entry.is_file():
                continue
            partial = partialfile.load(entry)
            fmt = self.plain.get(partial.format_id) if partial else None
            usable = partial is not None and fmt is not None and name.endswith(".part")
            if usable and partial is not None and fmt is not None:
                size = entry.stat().st_size
                if size and partial.validators.if_range() and size < (partial.validators.length or 0):
                    self.resuming[_key(fmt["url"])] = (partial.validators, size)
                    self._if_range(info, partial.format_id, partial.validators.if_range() or "")
                    continue
            if partial is not None or name.endswith((".part", ".ytdl")) or ".part-Frag" in name:
                partialfile.discard(entry)

    def _if_range(self, info: dict[str, Any], format_id: str, value: str) -> None:
        for fmt in info.get("formats") or [info]:
            if str(fmt.get("format_id")) == format_id:
                headers = dict(fmt.get("http_headers") or info.get("http_headers") or {})
                fmt["http_headers"] = {**headers, "If-Range": value}

    def response(self, request: Any, response: Any) -> None:
        """Every response yt-dlp's download gets: a resumed source's first one must be the same version."""
        url = getattr(request, "url", None)
        if not isinstance(url, str):
            return
        headers = dict(response.headers.items())
        current = Validators.from_headers(headers, _length(response.status, headers))
        with self.lock:
            self.latest[url] = current
            saved = self.resuming.pop(url, None)
        # a 200 is If-Range's answer for a changed source: yt-dlp then starts the file over itself
        if saved is not None and response.status == 206 and not should_resume(saved[0], current, saved[1]):
            raise Changed("the source changed since the partial download")

    def progress(self, d: dict[str, Any]) -> None:
        """yt-dlp's progress hook: the first bytes of a ``.part`` in this run get its sidecar."""
        tmp, fmt = d.get("tmpfilename"), d.get("info_dict") or {}
        if d.get("status") != "downloading" or not isinstance(tmp, str) or not tmp.endswith(".part"):
            return
        format_id = str(fmt.get("format_id"))
        if tmp in self.recorded or format_id not in self.plain:
            return
        self.recorded.add(tmp)
        with self.lock:
            validators = self.latest.get(_key(str(fmt.get("url"))))
        if validators is not None and validators.if_range():
            partialfile.save(Path(tmp), Partial(format_id, validators))

    def finished(self, files: list[Path]) -> None:
        """The download is whole: its sidecars go."""
        for path in files:
            partialfile.sidecar_of(path.with_name(path.name + ".part")).unlink(missing_ok=True)
