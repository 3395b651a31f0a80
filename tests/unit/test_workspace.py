"""Each engine's slot of DATA_DIR/tmp, the redaction of local paths from job errors, and the restart
backoff of background tasks: pure functions and file locks, no event loop."""

from __future__ import annotations

import os
from pathlib import Path

from tornado_engine.partialfile import holds_partials, keep_partials
from tornado_engine.supervise import restart_delay
from tornado_engine.workspace import Workspace, adopt, hide_local_paths, holder_of


def test_engines_in_one_process_take_separate_slots_and_a_released_one_is_taken_again(
    tmp_path: Path,
) -> None:
    root = tmp_path / "tmp"
    first, second = Workspace.take(root), Workspace.take(root)
    assert (first.path.name, second.path.name) == ("engine-0", "engine-1")
    assert first.path.is_dir() and second.path.is_dir()
    assert holder_of(root / "engine-0.lock").startswith(f"pid {os.getpid()} on ")
    assert " since " in holder_of(root / "engine-1.lock")
    first.release()
    first.release()  # twice is harmless
    again = Workspace.take(root)
    assert again.path.name == "engine-0"  # a restarted engine finds its files where it left them
    again.release()
    second.release()


def test_holder_of_a_missing_lock_file_is_unknown(tmp_path: Path) -> None:
    assert holder_of(tmp_path / "none.lock") == "?"


def test_job_errors_name_files_but_no_local_folder(tmp_path: Path) -> None:
    data = tmp_path / "home" / ".tornado_engine"
    folder = data / "tmp" / "engine-0" / "job1"
    raw = f"Unable to rename file: [Errno 2] No such file or directory: '{folder}/media.mp4.mp4.part'"
    assert hide_local_paths(raw, folder, data) == (
        "Unable to rename file: [Errno 2] No such file or directory: 'media.mp4.mp4.part'"
    )
    elsewhere = f"cannot open {data}/media/x.mp4 (in {folder})"
    assert hide_local_paths(elsewhere, folder, data) == "cannot open DATA_DIR/media/x.mp4 (in .)"
    assert str(tmp_path) not in hide_local_paths(f"{data}", folder, data)
    assert hide_local_paths("HTTP Error 404: Not Found", folder, data) == "HTTP Error 404: Not Found"


def test_job_errors_hide_the_resolved_form_of_a_symlinked_data_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    folder = link / "tmp" / "engine-0" / "job1"
    raw = f"ffmpeg: {real}/tmp/engine-0/job1/output.mp4: No space left on device"
    assert hide_local_paths(raw, folder, link) == "ffmpeg: output.mp4: No space left on device"


def test_restart_delay_doubles_up_to_its_cap() -> None:
    assert [restart_delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert restart_delay(0) == 0.5


def test_a_job_folder_is_adopted_only_from_the_slot_of_an_engine_that_is_gone(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    ours, live, dead = Workspace.take(root), Workspace.take(root), Workspace.take(root)
    for slot in (live, dead):
        (slot.path / "job-1").mkdir()
        (slot.path / "job-1" / "media.mp4").write_bytes(slot.path.name.encode())
    assert adopt(ours.path, "job-1") is None  # both holders still run: their files are their own
    dead.release()  # its process ended (the kernel drops the lock, even after kill -9)
    assert adopt(ours.path, "job-1") == dead.path / "job-1"
    assert (ours.path / "job-1" / "media.mp4").read_bytes() == b"engine-2"
    assert not (dead.path / "job-1").exists()
    assert holder_of(root / "engine-2.lock").startswith(f"pid {os.getpid()} on ")  # a look signs nothing
    (dead.path / "job-1").mkdir()
    (dead.path / "job-1" / "other").write_bytes(b"x")
    assert adopt(ours.path, "job-1") is None  # a folder of our own that holds anything stays
    for slot in (ours, live):
        slot.release()


def test_an_emptied_folder_keeps_only_partial_downloads_with_their_sidecars(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    for name in (
        "media.mp4.mp4",
        "media.mp4.mp4.resume.json",
        "media.f1.mp4.part",
        "side.en.vtt",
        "x.resume.json",
    ):
        (folder / name).write_bytes(b"1")
    (folder / "sub").mkdir()
    assert holds_partials(folder)
    keep_partials(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["media.mp4.mp4", "media.mp4.mp4.resume.json"]
    (folder / "media.mp4.mp4.resume.json").unlink()
    assert not holds_partials(folder) and not holds_partials(tmp_path / "missing")
    keep_partials(tmp_path / "new")
    assert (tmp_path / "new").is_dir()
