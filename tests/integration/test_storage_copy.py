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
