"""What the CLI draws while it waits (tornado_engine.cli_progress), from real jobs on the local server,
rendered into a terminal-like rich Console and read back."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from tornado_engine import Engine, JobCreated
from tornado_engine.cli_progress import follow
from tornado_engine.states import Status
from tornado_engine.testing import MediaServer, MediaSet


def _terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, color_system=None, width=120), screen


async def test_one_job_shows_bytes_speed_and_eta_per_stage(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    console, screen = _terminal()
    async with Engine.open(data_dir=tmp_path) as engine:
        # the /slow/ route (256 KiB/s) makes the download last long enough for several events
        created = await engine.create_job({"url": media_server.url("slow/" + media_set.progressive_mp4)})
        assert isinstance(created, JobCreated)
        [job] = await follow(engine, [created.job_id], console=console)
        assert job.status is Status.COMPLETED, job.error
        quiet, nothing = _terminal()
        again = await follow(engine, [created.job_id], show=False, console=quiet)
    drawn = screen.getvalue()
    # as yt-dlp says it: "45.3% of 397.1KiB at 270.4KiB/s ETA 00:01"
    assert re.search(r"Downloading .*\d+\.\d% of \d+\.\dKiB at \d+\.\d[KM]iB/s ETA 00:0\d", drawn), drawn
    assert re.search(r"Downloaded +\d+\.\dKiB in 00:0\d at \d+\.\dKiB/s", drawn), drawn
    assert re.search(r"Uploaded +\d+\.\dKiB in 00:0\d", drawn), drawn
    assert "bytes" not in drawn and "/100" not in drawn  # no percent fed to a byte counter
    assert [j.id for j in again] == [job.id] and nothing.getvalue() == ""


async def test_a_playlist_shows_an_overall_bar_and_a_line_per_episode(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    console, screen = _terminal()
    async with Engine.open(data_dir=tmp_path) as engine:
        created = await engine.create_playlist({"url": media_server.url(media_set.feed_xml)})
        jobs = await follow(engine, created.episode_jobs, console=console)
    drawn = screen.getvalue()
    assert [j.status for j in jobs] == [Status.COMPLETED] * 3
    assert "All episodes" in drawn and "3/3 done" in drawn
    for job in jobs:  # each episode's line, by its title from the feed, left behind once it ends
        assert re.search(rf"{re.escape(str(job.title))} +Completed", drawn), drawn
