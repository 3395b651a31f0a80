"""When a checkpoint lets an attempt resume (pure: sizes come from a dict, not a disk)."""

from __future__ import annotations

from typing import Any

import pytest

from tornado_engine.checkpoint import DOWNLOADED, MUXED, Checkpoint, FileMark

MEDIA = (FileMark("media.f1.mp4", 1000), FileMark("media.f2.m4a", 200))


def _checkpoint(**changes: Any) -> Checkpoint:
    values: dict[str, Any] = {
        "stage": DOWNLOADED, "host": "h1", "folder": "/data/tmp/j1", "media": MEDIA,
        "format_ids": ("1", "2"), "download_bytes": 1200, "duration": 4.0,
        "subtitles": (("en", FileMark("side.en.vtt", 50)),), "thumbnail": FileMark("side.jpg", 30),
    }  # fmt: skip
    values.update(changes)
    return Checkpoint(**values)


def _sizes(checkpoint: Checkpoint) -> dict[str, int]:
    return {mark.name: mark.size for mark in checkpoint.files()}


def test_round_trip_through_a_job_record() -> None:
    for checkpoint in (_checkpoint(), _checkpoint(stage=MUXED, output=FileMark("output.mkv", 900))):
        assert Checkpoint.from_data(checkpoint.to_data()) == checkpoint


def test_usable_on_the_same_host_and_folder_with_whole_files() -> None:
    checkpoint = _checkpoint()
    assert checkpoint.usable("h1", "/data/tmp/j1", _sizes(checkpoint).get)


@pytest.mark.parametrize(
    ("host", "folder", "damage"),
    [
        ("h2", "/data/tmp/j1", None),  # another machine: the files are not there
        ("h1", "/other/tmp/j1", None),  # another worker's data dir
        ("h1", "/data/tmp/j1", ("media.f2.m4a", None)),  # a file gone
        ("h1", "/data/tmp/j1", ("media.f1.mp4", 999)),  # cut short
        ("h1", "/data/tmp/j1", ("side.en.vtt", None)),  # a side file gone
    ],
)
def test_not_usable(host: str, folder: str, damage: tuple[str, int | None] | None) -> None:
    checkpoint = _checkpoint()
    sizes: dict[str, int | None] = dict(_sizes(checkpoint))
    if damage:
        sizes[damage[0]] = damage[1]
    assert not checkpoint.usable(host, folder, sizes.get)


def test_muxed_needs_its_output_and_the_output_is_checked() -> None:
    muxed = _checkpoint(stage=MUXED, output=FileMark("output.mkv", 900))
    sizes = _sizes(muxed)
    assert muxed.usable("h1", "/data/tmp/j1", sizes.get)
    assert not muxed.usable("h1", "/data/tmp/j1", {**sizes, "output.mkv": 10}.get)
    assert not _checkpoint(stage=MUXED).usable("h1", "/data/tmp/j1", sizes.get)


def test_output_that_is_the_download_itself_is_listed_once() -> None:
    muxed = _checkpoint(stage=MUXED, output=MEDIA[0])  # the remux was skipped
    assert [m.name for m in muxed.files()].count("media.f1.mp4") == 1


@pytest.mark.parametrize(
    "data",
    [
        None,
        "downloaded",
        {},
        {"stage": "uploaded"},
        {"stage": DOWNLOADED, "host": "h1"},  # fields missing
        {**_checkpoint().to_data(), "media": [{"name": "../../etc/passwd", "size": 1}]},
        {**_checkpoint().to_data(), "media": [{"name": "/abs/file", "size": 1}]},
        {**_checkpoint().to_data(), "media": [{"name": "a.mp4", "size": -1}]},
        {**_checkpoint().to_data(), "media": [{"name": "a.mp4", "size": "12"}]},
        {**_checkpoint().to_data(), "host": 7},
    ],
)
def test_records_we_did_not_write_are_ignored(data: object) -> None:
    assert Checkpoint.from_data(data) is None


def test_no_media_is_never_usable() -> None:
    empty = _checkpoint(media=(), subtitles=(), thumbnail=None)
    assert not empty.usable("h1", "/data/tmp/j1", {}.get)
