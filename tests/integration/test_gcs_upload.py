"""GCS resumable uploads (the one-request sender in storage/gcs_upload.py) against gcp-storage-emulator on
127.0.0.1: the object is the file byte for byte with gcsfs's content type, progress comes every
``part_size`` bytes and ends on the size, a request cut mid-way is resumed from what the session holds,
a cancel or a failure leaves no object, and a refused or unreachable session maps to the right kind
without the session URI in the text."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import random_file
from proxykit import self_signed
from storage_fixtures import BUCKET, PART
from tamperkit import TamperingProxy

from storage_servers import free_port
from tornado_engine.errors import UploadError
from tornado_engine.storage import GCSConfig, StorageTarget, classify, gcs_upload
from tornado_engine.storage.gcs_upload import ResumableUpload, crc32c_b64

pytestmark = pytest.mark.integration

SIZE = 2 * PART + 2**20  # 11 MiB: over gcsfs's 5 MiB switch, three progress slices of 5 MiB


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    return random_file(tmp_path_factory.mktemp("gcs"), SIZE)


@pytest.fixture
def target(gcs_endpoint: str, service_account: tuple[str, Any]) -> StorageTarget:
    config = GCSConfig(bucket=BUCKET, endpoint_url=gcs_endpoint, emulator=True, part_size=PART,
                       service_account_json=service_account[0])  # fmt: skip
    return StorageTarget(config)


def _resource(endpoint: str, full_key: str) -> dict[str, Any] | None:
    quoted = urllib.parse.quote(full_key, safe="")
    try:
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b/{BUCKET}/o/{quoted}", timeout=10) as response:
            found: dict[str, Any] = json.loads(response.read())
            return found
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            return None
        raise


def test_one_request_byte_for_byte(
    target: StorageTarget, gcs_endpoint: str, payload: tuple[Path, bytes]
) -> None:
    local, data = payload
    progress: list[int] = []
    stored = target.put(local, "gcs/clip.mp4", on_progress=lambda done, total: progress.append(done))
    assert progress == [PART, 2 * PART, SIZE]  # every part_size bytes, the last once GCS has it all
    resource = _resource(gcs_endpoint, stored.key)
    assert resource is not None and int(resource["size"]) == SIZE
    assert resource["contentType"] == "video/mp4"  # guessed from the file name, as gcsfs does
    assert resource["crc32c"] == crc32c_b64(local)  # what the upload checked
    quoted = urllib.parse.quote(stored.key, safe="")
    with urllib.request.urlopen(f"{gcs_endpoint}/storage/v1/b/{BUCKET}/o/{quoted}?alt=media") as response:
        assert response.read() == data
    target.delete(stored.key)


class Stop(BaseException):
    """What a cancel looks like to the uploading thread: not an Exception, so nothing maps it."""


@pytest.mark.parametrize("raised", [Stop, RuntimeError])
@pytest.mark.parametrize("at", [PART, SIZE])
def test_raised_from_a_report_leaves_no_object(
    target: StorageTarget,
    gcs_endpoint: str,
    payload: tuple[Path, bytes],
    raised: type[BaseException],
    at: int,
) -> None:
    local, _ = payload

    def stop(done: int, total: int) -> None:
        if done == at:  # mid-way (the session is deleted) or at the end (the object exists by then)
            raise raised("stop")

    expected = UploadError if issubclass(raised, Exception) else raised  # errors are mapped, cancels not
    with pytest.raises(expected):
        target.put(local, "gcs/stopped.mp4", on_progress=stop)
    assert _resource(gcs_endpoint, "videos/gcs/stopped.mp4") is None


def test_refused_session_is_mapped_without_its_uri(gcs_endpoint: str, payload: tuple[Path, bytes]) -> None:
    local, _ = payload
    session = f"{gcs_endpoint}/upload/storage/v1/b/{BUCKET}/o?uploadType=resumable&upload_id=secret-id"
    with pytest.raises(OSError) as caught:
        ResumableUpload(session, local, SIZE, PART).run(None, forget=lambda: None)
    info = classify(caught.value)
    assert (info.status, info.kind, info.not_found) == (404, "storage_error", True)
    assert "secret-id" not in str(caught.value)


def test_unreachable_session_is_transient(
    payload: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, _ = payload
    monkeypatch.setattr(gcs_upload, "_BACKOFF", 0.0)  # each resume finds the port closed too
    session = f"http://127.0.0.1:{free_port()}/upload/storage/v1/b/{BUCKET}/o?upload_id=secret-id"
    with pytest.raises(OSError) as caught:
        ResumableUpload(session, local, SIZE, PART).run(None, forget=lambda: None)
    assert classify(caught.value).kind == "storage_transient"
    assert "secret-id" not in str(caught.value)


@pytest.fixture
def proxy(request: pytest.FixtureRequest, gcs_endpoint: str) -> Iterator[TamperingProxy]:
    tampering = TamperingProxy(gcs_endpoint, 3 * 2**20, request.param)
    yield tampering
    tampering.close()


@pytest.mark.parametrize("proxy", ["cut"], indirect=True)
def test_a_cut_request_is_resumed_where_the_session_stopped(
    proxy: TamperingProxy, gcs_endpoint: str, service_account: tuple[str, Any], payload: tuple[Path, bytes]
) -> None:
    local, data = payload
    config = GCSConfig(bucket=BUCKET, endpoint_url=proxy.url, emulator=True, part_size=PART,
                       service_account_json=service_account[0])  # fmt: skip
    target = StorageTarget(config)
    stored = target.put(local, "gcs/resumed.mp4")
    assert proxy.spoiled == 1
    assert proxy.forwarded < SIZE + 2**20  # the rest was sent, not the whole file again
    quoted = urllib.parse.quote(stored.key, safe="")
    with urllib.request.urlopen(f"{gcs_endpoint}/storage/v1/b/{BUCKET}/o/{quoted}?alt=media") as response:
        assert response.read() == data
    target.delete(stored.key)


@pytest.mark.parametrize("proxy", ["flip"], indirect=True)
def test_bytes_changed_on_the_way_are_refused(
    proxy: TamperingProxy, gcs_endpoint: str, service_account: tuple[str, Any], payload: tuple[Path, bytes]
) -> None:
    """The emulator checks nothing: the CRC32C it reports differs from the file's, so the upload fails
    and the object it made is deleted."""
    local, _ = payload
    config = GCSConfig(bucket=BUCKET, endpoint_url=proxy.url, emulator=True, part_size=PART,
                       service_account_json=service_account[0])  # fmt: skip
    with pytest.raises(UploadError) as caught:
        StorageTarget(config).put(local, "gcs/corrupted.mp4")
    assert proxy.spoiled == 1
    assert "CRC32C mismatch" in caught.value.message, caught.value.message
    assert _resource(gcs_endpoint, "videos/gcs/corrupted.mp4") is None


def _session(endpoint: str, full_key: str) -> str:
    """A resumable session opened straight on the emulator (what gcsfs does for the backend)."""
    query = urllib.parse.urlencode({"uploadType": "resumable", "name": full_key})
    request = urllib.request.Request(f"{endpoint}/upload/storage/v1/b/{BUCKET}/o?{query}", data=b"{}",
                                     headers={"Content-Type": "application/json"}, method="POST")  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Location"])


def test_over_tls(
    gcs_endpoint: str, payload: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An https session (real GCS): the bytes go through Python to be encrypted, 1 MiB at a time."""
    local, data = payload
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    proxy = TamperingProxy(gcs_endpoint, 0, "none", tls=context)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # ssl.create_default_context() trusts it then
    try:
        secure = _session(gcs_endpoint, "videos/gcs/tls.mp4").replace(gcs_endpoint, f"https{proxy.url[4:]}")
        assert secure.startswith("https://127.0.0.1:")
        progress: list[int] = []
        resource = ResumableUpload(secure, local, SIZE, PART).run(
            lambda d, t: progress.append(d), lambda: None
        )
    finally:
        proxy.close()
    assert int(resource["size"]) == SIZE and progress == [PART, 2 * PART, SIZE]
    assert proxy.forwarded >= SIZE
    quoted = urllib.parse.quote("videos/gcs/tls.mp4", safe="")
    with urllib.request.urlopen(f"{gcs_endpoint}/storage/v1/b/{BUCKET}/o/{quoted}?alt=media") as response:
        assert response.read() == data
