"""Every storage backend against a real server on 127.0.0.1: configure, verify, upload in parts, fetch
the signed URL with plain HTTP, delete, and refuse a bad credential. No SDK is mocked."""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from binascii import unhexlify
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from storage_fixtures import PART, BackendUnderTest

from storage_servers import OSSServer, free_port
from tornado_engine import InvalidRequest
from tornado_engine.errors import UploadError
from tornado_engine.storage import AzureBlobConfig, OSSConfig, StorageTarget

pytestmark = pytest.mark.integration

SIZE = 2 * PART + 2 * 2**20  # 12 MiB: three parts of at most 5 MiB


def _http_get(url: str) -> bytes:
    if url.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).read_bytes()
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path_factory.mktemp("payload") / "clip.mp4"
    path.write_bytes(data)
    return path, data


def test_upload_in_parts_sign_fetch_delete(backend: BackendUnderTest, payload: tuple[Path, bytes]) -> None:
    local, data = payload
    target = StorageTarget(backend.config)
    target.verify()
    progress: list[tuple[int, int]] = []

    stored = target.put(
        local, "shows/s01/clip.mp4", on_progress=lambda done, total: progress.append((done, total))
    )

    assert stored.key == "videos/shows/s01/clip.mp4"  # base_folder/[folder/]filename.ext
    assert stored.size == SIZE
    assert local.exists()  # put without move leaves the source alone
    assert backend.read(stored.key) == data
    parts = backend.parts(stored.key)
    assert parts in (None, 3), parts
    assert progress[-1] == (SIZE, SIZE)
    assert all(total == SIZE for _, total in progress)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    if backend.kind != "local":
        assert len({done for done, _ in progress if done < SIZE}) >= 2, progress  # reported per part

    assert _http_get(stored.url) == data  # the signed URL, fetched like any HTTP client would
    assert target.exists(stored.key)
    target.delete(stored.key)
    assert not target.exists(stored.key)
    target.delete(stored.key)  # deleting what is gone is fine
    if not stored.url.startswith("file://"):
        assert _http_status(stored.url) in (403, 404)


def test_bad_credential_is_refused_clearly(backend: BackendUnderTest) -> None:
    with pytest.raises(InvalidRequest) as caught:
        StorageTarget(backend.bad_config).verify()
    message = str(caught.value)
    assert caught.value.field == "storage"
    assert message.startswith(f"{backend.name} storage ("), message
    if backend.kind != "local":
        assert "the credentials were refused" in message or "credentials could not be used" in message, (
            message
        )
    assert "Traceback" not in message and "\n" not in message
    for secret in backend.secrets:
        assert secret not in message
    assert len(message) < 500


def test_signed_url_is_the_backends_own(backend: BackendUnderTest, service_account: tuple[str, Any]) -> None:
    target = StorageTarget(backend.config)
    url = target.sign("videos/some/clip.mp4")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    if backend.kind == "s3":
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Expires"] == "86400"
    elif backend.kind == "azure":
        assert query["sp"] == "r" and "sig" in query and "se" in query
    elif backend.kind == "gcs":
        assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256" and query["X-Goog-Expires"] == "86400"
        _verify_gcs_v4(url, service_account[1])  # the emulator does not check: we do
    elif backend.kind == "oss":
        assert {"OSSAccessKeyId", "Expires", "Signature"} <= set(query)
    else:
        assert url.startswith("file:///") and url.endswith("/videos/some/clip.mp4")
    capped = StorageTarget(backend.config.model_copy(update={"url_expiry_seconds": 604800}))
    if backend.kind == "s3":
        assert "X-Amz-Expires=604800" in capped.sign("videos/x.mp4", 10**7)  # capped at 7 days


def _verify_gcs_v4(url: str, public_key: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from cryptography.hazmat.primitives.hashes import SHA256

    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    d = dict(q)

    def enc(s: str) -> str:
        return urllib.parse.quote(s, safe="-_.~")

    canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(q) if k != "X-Goog-Signature")
    request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = d["X-Goog-Credential"].split("/", 1)[1]
    to_sign = "\n".join(["GOOG4-RSA-SHA256", d["X-Goog-Date"], scope, sha256(request.encode()).hexdigest()])
    public_key.verify(unhexlify(d["X-Goog-Signature"]), to_sign.encode(), PKCS1v15(), SHA256())


@pytest.mark.parametrize("backend", ["azure", "oss"], indirect=True)
def test_servers_that_check_signatures_refuse_a_tampered_url(
    backend: BackendUnderTest, tmp_path: Path
) -> None:
    local = tmp_path / "small.bin"
    local.write_bytes(b"x" * 1000)
    target = StorageTarget(backend.config)
    stored = target.put(local, "tamper/small.bin")
    assert _http_get(stored.url) == b"x" * 1000
    tampered = stored.url.replace("small.bin", "other.bin")
    assert _http_status(tampered) == 403
    assert _http_status(stored.url.split("?", 1)[0]) in (401, 403, 404)  # no signature at all
    target.delete(stored.key)


@pytest.mark.parametrize("backend", ["s3", "azure", "oss", "local"], indirect=True)
def test_upload_errors_map_to_kinds(backend: BackendUnderTest, tmp_path: Path) -> None:
    local = tmp_path / "small.bin"
    local.write_bytes(b"y" * 100)
    bad = StorageTarget(backend.bad_config)
    with pytest.raises(UploadError) as caught:
        bad.put(local, "denied/small.bin")
    expected = "storage_error" if backend.kind == "local" else "storage_denied"
    assert caught.value.kind == expected, caught.value.message
    assert caught.value.message.startswith(f"{backend.name} storage: upload failed: ")
    for secret in backend.secrets:
        assert secret not in caught.value.message


def test_unreachable_service_is_transient(tmp_path: Path) -> None:
    local = tmp_path / "small.bin"
    local.write_bytes(b"z")
    config = OSSConfig(endpoint=f"http://127.0.0.1:{free_port()}", bucket="media", access_key_id="a",
                       access_key_secret="b")  # fmt: skip
    with pytest.raises(UploadError) as caught:
        StorageTarget(config).put(local, "x.bin")
    assert caught.value.kind == "storage_transient", caught.value.message
    with pytest.raises(InvalidRequest, match="could not be reached"):
        StorageTarget(config).verify()


def test_missing_bucket_is_named(oss_server: OSSServer) -> None:
    config = OSSConfig(endpoint=oss_server.endpoint, bucket="nope-bucket", access_key_id="test-ak",
                       access_key_secret="test-secret-0123456789")  # fmt: skip
    with pytest.raises(InvalidRequest, match="does not exist"):
        StorageTarget(config).verify()


def test_oss_multipart_calls(oss_server: OSSServer, payload: tuple[Path, bytes]) -> None:
    config = OSSConfig(endpoint=oss_server.endpoint, bucket="media", access_key_id="test-ak",
                       access_key_secret="test-secret-0123456789", part_size=PART)  # fmt: skip
    before = len(oss_server.calls)
    stored = StorageTarget(config).put(payload[0], "calls/clip.mp4")
    calls = oss_server.calls[before:]
    assert calls.count("UploadPart") == 3 and "CompleteMultipartUpload" in calls, calls
    assert not (payload[0].parent / ".oss-resumable").exists() or not any(
        (payload[0].parent / ".oss-resumable").iterdir()
    )  # the checkpoint is gone after success
    StorageTarget(config).delete(stored.key)


def test_azure_account_key_and_sas_token(azure_endpoint: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from storage_servers import AZURITE_ACCOUNT, AZURITE_KEY

    def sas(**allowed: bool) -> str:
        expiry = datetime.now(UTC) + timedelta(hours=1)
        permission = ContainerSasPermissions(**allowed)
        return str(generate_container_sas(AZURITE_ACCOUNT, "media", account_key=AZURITE_KEY,
                                          permission=permission, expiry=expiry))  # fmt: skip

    local = tmp_path / "x.bin"
    local.write_bytes(b"w" * 5000)
    common = {"container": "media", "account_name": AZURITE_ACCOUNT, "endpoint": azure_endpoint}
    full = sas(read=True, write=True, create=True, delete=True)
    for config in (
        AzureBlobConfig(account_key=AZURITE_KEY, **common),
        AzureBlobConfig(sas_token=full, **common),
    ):
        target = StorageTarget(config)
        target.verify()
        stored = target.put(local, "ways/x.bin")
        assert _http_get(stored.url) == b"w" * 5000
        target.delete(stored.key)
    read_only = AzureBlobConfig(sas_token=sas(read=True), **common)
    with pytest.raises(InvalidRequest, match="credentials were refused while writing") as caught:
        StorageTarget(read_only).verify()
    assert read_only.sas_token is not None
    assert read_only.sas_token.get_secret_value().split("sig=")[1][:20] not in str(caught.value)


def test_emulator_that_cannot_start_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage_servers import EmulatorError, azurite

    monkeypatch.setenv("TORNADO_AZURITE_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(EmulatorError, match="install-emulators"), azurite(tmp_path):
        pass
