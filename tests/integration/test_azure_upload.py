"""Azure Blob uploads (storage/azure.py: the SDK's own client from the calling thread, MD5 per block)
against Azurite on 127.0.0.1: the blob is the file byte for byte with a content type, progress comes per
block and ends on the size, a block corrupted on the way is refused by its MD5, and a cancel or a failure
leaves no blob."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import random_file
from storage_fixtures import BUCKET, PART, azure_connection_string
from tamperkit import TamperingProxy

from tornado_engine.errors import UploadError
from tornado_engine.storage import AzureBlobConfig, StorageTarget

pytestmark = pytest.mark.integration

SIZE = 2 * PART + 2**20  # 11 MiB: three blocks of at most 5 MiB


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    return random_file(tmp_path_factory.mktemp("azure"), SIZE)


def _target(endpoint: str) -> StorageTarget:
    config = AzureBlobConfig(
        container=BUCKET, connection_string=azure_connection_string(endpoint), part_size=PART
    )
    return StorageTarget(config)


@pytest.fixture
def container(azure_endpoint: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(
        azure_connection_string(azure_endpoint)
    ).get_container_client(BUCKET)


def _exists(container: Any, key: str) -> bool:
    return bool(container.get_blob_client(key).exists())


def test_blocks_byte_for_byte(azure_endpoint: str, container: Any, payload: tuple[Path, bytes]) -> None:
    local, data = payload
    progress: list[int] = []
    stored = _target(azure_endpoint).put(
        local, "az/clip.mp4", on_progress=lambda done, total: progress.append(done)
    )
    assert len(progress) >= 2 and progress[-1] == SIZE  # per block, then the total once it is committed
    blob = container.get_blob_client(stored.key)
    assert len(blob.get_block_list("committed")[0]) == 3
    properties = blob.get_blob_properties()
    assert properties.content_settings.content_type == "video/mp4"  # guessed from the name, as s3fs does
    assert properties.metadata == {"is_directory": "false"}  # what adlfs writes
    assert blob.download_blob().readall() == data
    blob.delete_blob()


class Stop(BaseException):
    """What a cancel looks like to the uploading thread: not an Exception, so nothing maps it."""


@pytest.mark.parametrize("raised", [Stop, RuntimeError])
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("single", [False, True])  # one Put Blob (under two parts), or blocks
def test_raised_from_a_report_leaves_no_blob(
    azure_endpoint: str,
    container: Any,
    payload: tuple[Path, bytes],
    tmp_path: Path,
    raised: type[BaseException],
    last: bool,
    single: bool,
) -> None:
    local, data = payload
    if single:
        local = tmp_path / "small.mp4"
        local.write_bytes(data[:PART])

    def stop(done: int, total: int) -> None:
        if done == total or not last:  # at the first block, or once the blob is committed
            raise raised("stop")

    expected = UploadError if issubclass(raised, Exception) else raised  # errors are mapped, cancels not
    with pytest.raises(expected):
        _target(azure_endpoint).put(local, "az/stopped.mp4", on_progress=stop)
    assert not _exists(container, "videos/az/stopped.mp4")


@pytest.fixture
def proxy(azure_endpoint: str) -> Iterator[TamperingProxy]:
    flipping = TamperingProxy(azure_endpoint.removeprefix("http://"), 2**20, "flip")
    yield flipping
    flipping.close()


def test_a_block_corrupted_on_the_way_is_refused(
    proxy: TamperingProxy, azure_endpoint: str, container: Any, payload: tuple[Path, bytes]
) -> None:
    local, _ = payload
    account = azure_endpoint.rsplit("/", 1)[1]
    with pytest.raises(UploadError) as caught:
        _target(f"{proxy.url}/{account}").put(local, "az/corrupted.mp4")
    assert proxy.spoiled == 1
    assert "Md5Mismatch" in caught.value.message, caught.value.message
    assert caught.value.kind == "storage_transient"  # spoiled on the way: retried like a reset
    assert not _exists(container, "videos/az/corrupted.mp4")
