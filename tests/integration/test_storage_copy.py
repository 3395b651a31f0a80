"""StorageTarget.copy and .size on every backend's real server: the copy is made by the service where it
can (reuse takes a finished job's file this way, see tests/integration/test_reuse.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_fixtures import BackendUnderTest

from storage_servers import OSSServer
from tornado_engine.errors import UploadError
from tornado_engine.storage import OSSConfig, StorageTarget, object_key

pytestmark = pytest.mark.integration


def test_copy_and_size(backend: BackendUnderTest, tmp_path: Path) -> None:
    target = StorageTarget(backend.config)
    local = tmp_path / "clip.mp4"
    data = b"tornado reuse " * 4096
    local.write_bytes(data)
    stored = target.put(local, object_key("reuse", f"{backend.kind}-source", "mp4"))
    try:
        copied = target.copy(stored.key, object_key("reuse/other", f"{backend.kind}-copy", "mp4"))
        assert copied.key == target.full_key(f"reuse/other/{backend.kind}-copy.mp4")
        assert (copied.size, target.size(copied.key)) == (len(data), len(data))
        assert backend.read(copied.key) == data
        assert copied.url and copied.url != stored.url
        same = target.copy(stored.key, object_key("reuse", f"{backend.kind}-source", "mp4"))
        assert (same.key, same.size) == (stored.key, len(data))  # the same key: nothing copied
        target.delete(stored.key)
        assert target.size(stored.key) is None
        assert backend.read(copied.key) == data  # the copy is an object of its own
        with pytest.raises(UploadError, match="copy failed"):
            target.copy(stored.key, object_key("reuse", f"{backend.kind}-gone", "mp4"))
    finally:
        for key in (stored.key, target.full_key(f"reuse/other/{backend.kind}-copy.mp4")):
            target.delete(key)


def test_oss_copies_on_the_service(oss_server: OSSServer, tmp_path: Path) -> None:
    target = StorageTarget(OSSConfig(endpoint=oss_server.endpoint, bucket="media", access_key_id="test-ak",
                                     access_key_secret="test-secret-0123456789"))  # fmt: skip
    local = tmp_path / "a.mp4"
    local.write_bytes(b"x" * 1000)
    stored = target.put(local, "oss-copy/a.mp4")
    oss_server.calls.clear()
    target.copy(stored.key, "oss-copy/b.mp4")
    assert "CopyObject" in oss_server.calls
    assert not {"PutObject", "GetObject", "UploadPart"} & set(oss_server.calls)


def test_a_filesystem_without_a_copy_goes_through_a_local_file(tmp_path: Path) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    from tornado_engine.storage.base import FsspecBackend

    class NoCopy(MemoryFileSystem):  # type: ignore[misc]  # fsspec ships no types
        def cp_file(self, path1: str, path2: str, **kwargs: object) -> None:
            raise NotImplementedError

    fs = NoCopy(skip_instance_cache=True)
    fs.store, fs.pseudo_dirs = {}, [""]  # its own objects, not the class-wide memory
    backend = FsspecBackend(fs, "bucket")
    backend.write_bytes("a/clip.mp4", b"bytes of the clip")
    backend.copy("a/clip.mp4", "b/clip.mp4")
    assert fs.cat_file("bucket/b/clip.mp4") == b"bytes of the clip"
    assert (backend.size("b/clip.mp4"), backend.size("b/none.mp4")) == (17, None)
