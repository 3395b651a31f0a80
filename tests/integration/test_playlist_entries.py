"""Feed and playlist entries: each episode job shows its clean URL (yt-dlp's smuggled hints stay in the
request), keeps the item's title in its record, and is named after it, a long title trimmed to fit."""

from __future__ import annotations

import html
from pathlib import Path

from jobkit import local_path

from tornado_engine import Engine
from tornado_engine.states import Status
from tornado_engine.testing import MediaServer, MediaSet

LONG_LATIN = "Épisode très très long — " * 20  # 500 characters, 560 bytes
LONG_CJK = "とても長いエピソードの題名" * 30  # 390 characters, 1170 bytes


def _feed(media_server: MediaServer, media_set: MediaSet, titles: list[str]) -> str:
    items = "".join(
        f'<item><title>{html.escape(title)}</title><guid isPermaLink="false">long-{n}</guid>'
        f'<enclosure url="{media_server.url(rel)}" type="audio/mpeg"/></item>'
        for n, (title, rel) in enumerate(zip(titles, media_set.episodes, strict=False))
    )
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Long</title>{items}</channel></rss>'
    (media_set.root / "feed-long.xml").write_text(feed, encoding="utf-8")
    return media_server.url("feed-long.xml")


async def test_episode_urls_are_clean_and_titles_kept(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    created = await engine.create_playlist({"url": media_server.url(media_set.feed_xml), "format": "mkv"})
    expected = [media_server.url(rel) for rel in media_set.episodes]
    assert [e.url for e in created.episodes] == expected
    for job_id, url in zip(created.episode_jobs, expected, strict=True):
        job = await engine.get_job(job_id)
        assert job.url == url and job.to_api()["url"] == url and "smuggle" not in repr(job)
        assert "__youtubedl_smuggle" in job.request.url  # the extractor's hints, for the resolve
    jobs = [await engine.wait(job_id, timeout=90) for job_id in created.episode_jobs]
    assert all(j.status is Status.COMPLETED for j in jobs), [j.to_api() for j in jobs]
    for n, job in enumerate(jobs, start=1):
        assert job.title == f"Episode {n}"  # the item's, not the resolver's ("ep1")
        assert local_path(job.s3_url).stem == job.title


async def test_long_titles_are_trimmed_not_dropped(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    url = _feed(media_server, media_set, [LONG_LATIN, LONG_CJK, LONG_CJK])
    created = await engine.create_playlist({"url": url, "format": "mkv"})
    assert created.total_episodes == 3
    jobs = [await engine.wait(job_id, timeout=90) for job_id in created.episode_jobs]
    assert all(j.status is Status.COMPLETED for j in jobs), [j.to_api() for j in jobs]
    names = [local_path(j.s3_url).name for j in jobs]
    for job, name, title in zip(jobs, names, [LONG_LATIN, LONG_CJK, LONG_CJK], strict=True):
        assert job.title == title  # the record keeps the whole title (up to 500 characters)
        assert len(name.encode()) <= 255 and not name.startswith("episode-"), name
        stem = Path(name).stem
        assert len(stem.encode()) >= 200  # trimmed to the limit, not to a fraction of it
    assert LONG_LATIN.startswith(Path(names[0]).stem)
    assert Path(names[1]).stem.startswith("とても長いエピソードの題名")
    assert Path(names[2]).stem == Path(names[1]).stem + " (2)"  # one title twice: two files
