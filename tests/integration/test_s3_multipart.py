"""S3 multipart uploads (the sliding window in storage/s3.py) against a real moto server on 127.0.0.1:
the object is the file byte for byte, progress reaches the size, and a refused part, a refused
completion, a stopped server or a cancel leaves no object and no pending multipart upload behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import random_file
from pydantic import SecretStr
from storage_fixtures import BUCKET, PART, S3_REGION

from storage_servers import moto_server
from tornado_engine.errors import UploadError
from tornado_engine.storage import S3Config, StorageTarget

pytestmark = pytest.mark.integration

SIZE = 5 * PART + 2**20  # 26 MiB: six parts of at most 5 MiB


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name=S3_REGION)  # fmt: skip


def _config(endpoint: str, **extra: Any) -> S3Config:
    fields = {"bucket": BUCKET, "region": S3_REGION, "part_size": PART, "concurrency": 2, **extra}
    return S3Config(endpoint_url=endpoint, access_key_id="testing", secret_access_key="testing", **fields)


def _pending(client: Any, full_key: str) -> list[str]:
    uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=full_key).get("Uploads", [])
    return [u["UploadId"] for u in uploads if u["Key"] == full_key]


def _exists(client: Any, full_key: str) -> bool:
    return "Contents" in client.list_objects_v2(Bucket=BUCKET, Prefix=full_key)


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    return random_file(tmp_path_factory.mktemp("multipart"), SIZE)


@pytest.fixture
def s3(s3_endpoint: str) -> Iterator[Any]:
    client = _client(s3_endpoint)
    yield client
    for upload in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):  # never leak
        client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])


def test_object_is_the_file_and_progress_reaches_the_size(
    s3_endpoint: str, s3: Any, payload: tuple[Path, bytes]
) -> None:
    local, data = payload
    target = StorageTarget(_config(s3_endpoint))
    progress: list[tuple[int, int, str]] = []
    stored = target.put(
        local,
        "mp/clip.mp4",
        on_progress=lambda d, t: progress.append((d, t, threading.current_thread().name)),
    )

    body = s3.get_object(Bucket=BUCKET, Key=stored.key)
    assert body["Body"].read() == data
    assert body["ETag"].strip('"').endswith("-6")  # six parts
    assert body["ContentType"] == "video/mp4"  # guessed from the name, as s3fs's put_file does
    head = s3.head_object(Bucket=BUCKET, Key=stored.key, ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32"), head  # created with CRC32: a composite checksum of the parts
    assert progress[-1][:2] == (SIZE, SIZE)
    assert [d for d, _, _ in progress] == sorted({d for d, _, _ in progress})  # growing, no repeats
    assert len(progress) >= 6, progress  # one report per part at least
    assert {name for _, _, name in progress} == {threading.current_thread().name}  # the calling thread
    assert _pending(s3, stored.key) == []
    target.delete(stored.key)


def test_more_parts_than_the_window_in_any_order(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    data = os.urandom(2 * PART + 123)  # three parts, the last one short; window of 4
    local = tmp_path / "odd.bin"
    local.write_bytes(data)
    target = StorageTarget(_config(s3_endpoint, concurrency=4))
    stored = target.put(local, "mp/odd.bin")
    assert s3.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read() == data
    target.delete(stored.key)


def test_parts_are_signed_as_the_server_checks(s3_iam: tuple[str, str, str], tmp_path: Path) -> None:
    endpoint, key_id, secret = s3_iam  # a moto that checks request signatures
    data = os.urandom(2 * PART + 4096)
    local = tmp_path / "signed.bin"
    local.write_bytes(data)
    config = S3Config(endpoint_url=endpoint, access_key_id=key_id, secret_access_key=secret, bucket=BUCKET,
                      region=S3_REGION, part_size=PART)  # fmt: skip
    target = StorageTarget(config)
    stored = target.put(local, "mp/signed.bin")
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret,
                          region_name=S3_REGION)  # fmt: skip
    assert client.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read() == data
    target.delete(stored.key)

    wrong = StorageTarget(config.model_copy(update={"secret_access_key": SecretStr(secret[::-1])}))
    with pytest.raises(UploadError) as caught:
        wrong.put(local, "mp/refused-signature.bin")
    assert caught.value.kind == "storage_denied", caught.value.message
    assert secret[::-1] not in caught.value.message
    assert not client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_small_file_is_one_put(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    local = tmp_path / "small.bin"
    local.write_bytes(b"s" * (2 * PART - 1))  # under two parts: one PutObject, as before
    target = StorageTarget(_config(s3_endpoint))
    progress: list[tuple[int, int]] = []
    stored = target.put(local, "mp/small.bin", on_progress=lambda d, t: progress.append((d, t)))
    assert "-" not in s3.head_object(Bucket=BUCKET, Key=stored.key)["ETag"]
    assert progress[-1] == (2 * PART - 1, 2 * PART - 1)
    target.delete(stored.key)


def test_refused_part_aborts_the_upload(s3_endpoint: str, s3: Any, payload: tuple[Path, bytes]) -> None:
    local, _ = payload
    target = StorageTarget(_config(s3_endpoint, concurrency=1))
    key = "videos/mp/refused.mp4"

    def abort_from_outside(done: int, total: int) -> None:
        # after the first part, the service forgets the upload: the parts still to come are refused
        for upload_id in _pending(s3, key):
            s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)

    with pytest.raises(UploadError) as caught:
        target.put(local, "mp/refused.mp4", on_progress=abort_from_outside)
    # AWS says NoSuchUpload (404); moto 5.2.5 fails with HTTP 500 (a KeyError), retried, then given up
    assert caught.value.kind in ("storage_error", "storage_transient"), caught.value.message
    assert caught.value.message.startswith("S3 storage: upload failed: "), caught.value.message
    assert not _exists(s3, key)
    assert _pending(s3, key) == []


def test_refused_completion_aborts_the_upload(s3_endpoint: str, s3: Any, tmp_path: Path) -> None:
    # parts under S3's 5 MiB minimum: accepted one by one, refused at completion (EntityTooSmall)
    local = tmp_path / "tiny-parts.bin"
    local.write_bytes(os.urandom(3 * 2**20))
    config = _config(s3_endpoint).model_copy(update={"part_size": 2**20})  # skips the >= 5 MiB check
    with pytest.raises(UploadError) as caught:
        StorageTarget(config).put(local, "mp/tiny-parts.bin")
    assert caught.value.kind == "storage_error", caught.value.message
    assert "EntityTooSmall" in caught.value.message, caught.value.message
    key = "videos/mp/tiny-parts.bin"
    assert not _exists(s3, key)
    assert _pending(s3, key) == []


class Stop(BaseException):
    """What a cancel looks like to the uploading thread: not an Exception, so nothing maps it."""


@pytest.mark.parametrize("raised", [Stop, KeyboardInterrupt, RuntimeError])
def test_cancel_aborts_the_upload(
    s3_endpoint: str, s3: Any, payload: tuple[Path, bytes], raised: type[BaseException]
) -> None:
    local, _ = payload
    target = StorageTarget(_config(s3_endpoint))
    key = "videos/mp/cancelled.mp4"
    seen: list[int] = []

    def cancel(done: int, total: int) -> None:
        seen.append(done)
        assert _pending(s3, key), "the upload is under way"
        raise raised("stop")

    expected = UploadError if issubclass(raised, Exception) else raised  # errors are mapped, cancels not
    started = time.monotonic()
    with pytest.raises(expected):
        target.put(local, "mp/cancelled.mp4", on_progress=cancel)
    assert time.monotonic() - started < 20
    assert seen and seen[0] < SIZE
    assert not _exists(s3, key)
    assert _pending(s3, key) == []


def test_cancel_after_the_last_part_leaves_nothing(
    s3_endpoint: str, s3: Any, payload: tuple[Path, bytes]
) -> None:
    local, _ = payload
    target = StorageTarget(_config(s3_endpoint, concurrency=6))
    key = "videos/mp/late-cancel.mp4"

    def cancel_at_the_end(done: int, total: int) -> None:
        if done == total:
            time.sleep(0.5)  # the completion has most likely gone through by now
            raise Stop("stop")

    with pytest.raises(Stop):
        target.put(local, "mp/late-cancel.mp4", on_progress=cancel_at_the_end)
    assert not _exists(s3, key)
    assert _pending(s3, key) == []


def test_stopped_server_is_a_transient_failure(
    s3_endpoint: str, s3: Any, payload: tuple[Path, bytes]
) -> None:
    local, _ = payload
    key = "videos/mp/stopped.mp4"
    # a second in-process moto: it shares its state with s3_endpoint's, so the outcome can be looked at
    context = moto_server()
    endpoint = context.__enter__()
    stopped = threading.Event()

    def stop_server(done: int, total: int) -> None:
        if not stopped.is_set():
            stopped.set()
            context.__exit__(None, None, None)

    started = time.monotonic()
    try:
        with pytest.raises(UploadError) as caught:
            StorageTarget(_config(endpoint)).put(local, "mp/stopped.mp4", on_progress=stop_server)
    finally:
        if not stopped.is_set():
            context.__exit__(None, None, None)
    assert caught.value.kind == "storage_transient", caught.value.message
    assert time.monotonic() - started < 60
    assert not _exists(s3, key)
    # the abort could not reach the stopped server: the upload it began is still pending there (a
    # bucket lifecycle rule, AbortIncompleteMultipartUpload, is what cleans those up)
    assert len(_pending(s3, key)) <= 1


def test_part_checksum_is_botocores_crc32() -> None:
    from botocore.httpchecksum import Crc32Checksum

    from tornado_engine.storage.s3 import crc32_b64

    for data in (b"", b"abc", os.urandom(3 * 2**20 + 7)):
        reference = Crc32Checksum()
        reference.update(data)
        assert crc32_b64(data) == reference.b64digest()
