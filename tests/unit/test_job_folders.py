"""Which folders a job that has ended takes with it (sweep.remove_job_folders): its own in any slot of the
data folder and where its checkpoint points on this host; never a path that is not a job folder."""

from __future__ import annotations

from pathlib import Path

from tornado_engine.checkpoint import this_host
from tornado_engine.sweep import remove_job_folders


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "part.mp4").write_bytes(b"x" * 10)
    return path


def _checkpoint(folder: Path, host: str | None = None) -> dict[str, object]:
    return {"stage": "downloaded", "host": host or this_host(), "folder": str(folder),
            "media": [{"name": "part.mp4", "size": 10}]}  # fmt: skip


def test_the_jobs_folders_in_every_slot_and_where_its_checkpoint_points_go(tmp_path: Path) -> None:
    data = tmp_path / "data"
    slots = [_folder(data / "tmp" / f"engine-{n}" / "job-1") for n in (0, 7)]
    elsewhere = _folder(tmp_path / "other-data" / "tmp" / "engine-2" / "job-1")  # another data folder
    neighbour = _folder(data / "tmp" / "engine-0" / "job-2")
    assert remove_job_folders(data, "job-1", _checkpoint(elsewhere)) == 3
    assert not any(p.exists() for p in (*slots, elsewhere)) and neighbour.is_dir()


def test_a_checkpoint_naming_no_job_folder_of_this_host_removes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for folder, host in (
        (_folder(tmp_path / "precious" / "job-1"), None),  # not in an engine's slot
        (_folder(tmp_path / "tmp" / "engine-1" / "other"), None),  # another job's name
        (_folder(tmp_path / "x" / "engine-1" / "job-1"), "another-host"),  # that host's disk, not ours
    ):
        assert remove_job_folders(data, "job-1", _checkpoint(folder, host)) == 0
        assert folder.is_dir()
    assert remove_job_folders(data, "job-1", None) == 0  # no data folder at all: nothing to do
