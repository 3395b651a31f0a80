"""resume: a finished download or mux as a checkpoint, and back to the results an attempt resumes with."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tornado_engine import JobRequest
from tornado_engine.checkpoint import DOWNLOADED, MUXED
from tornado_engine.models import Job
from tornado_engine.pipeline.context import Fetched, Muxed
from tornado_engine.pipeline.sidecar import SideFiles
from tornado_engine.resume import downloaded, fetched_from, muxed, muxed_from, resumable


def _files(folder: Path) -> Fetched:
    for name, size in (("media.1.mp4", 10), ("media.2.m4a", 4), ("side.en.vtt", 3), ("side.jpg", 2)):
        (folder / name).write_bytes(b"x" * size)
    side = SideFiles(subtitles=(("en", folder / "side.en.vtt"),), thumbnail=folder / "side.jpg")
    files = (folder / "media.1.mp4", folder / "media.2.m4a")
    return Fetched(files, ("1", "2"), 14, 1.5, side, duration=4.0, strategy="ytdlp")


def test_a_download_and_a_mux_round_trip_through_their_checkpoints(tmp_path: Path) -> None:
    fetched = _files(tmp_path)
    after_download = downloaded(tmp_path, fetched)
    assert after_download.stage == DOWNLOADED and after_download.download_bytes == 14
    again = fetched_from(tmp_path, after_download)
    assert (again.files, again.format_ids, again.side, again.duration) == (
        fetched.files, fetched.format_ids, fetched.side, 4.0,
    )  # fmt: skip
    assert (again.seconds, again.strategy) == (0.0, None)  # nothing was downloaded by this attempt
    (tmp_path / "output.mkv").write_bytes(b"y" * 7)
    after_mux = muxed(after_download, Muxed(tmp_path / "output.mkv", 0.5, fetched.side))
    assert after_mux.stage == MUXED and after_mux.output is not None and after_mux.output.size == 7
    assert muxed_from(tmp_path, after_mux) == Muxed(tmp_path / "output.mkv", None, fetched.side)


def test_only_a_whole_checkpoint_in_this_folder_resumes(tmp_path: Path) -> None:
    job = Job(id="j1", url="http://x/y", request=JobRequest(url="http://x/y"))
    job.checkpoint = downloaded(tmp_path, _files(tmp_path)).to_data()
    assert asyncio.run(resumable(job, tmp_path, None)) is not None
    (tmp_path / "side.jpg").write_bytes(b"changed")  # a file not as the stage left it
    assert asyncio.run(resumable(job, tmp_path, None)) is None
    assert job.checkpoint is None
