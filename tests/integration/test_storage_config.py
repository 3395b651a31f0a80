"""Storage configs, secrets and error mapping, without servers: repr and errors never show a secret,
configs seal and open through SecretBox, and real SDK exceptions map to the engine's error kinds."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from tornado_engine.errors import InvalidRequest, UploadError
from tornado_engine.secrets import KEY_ENV, SecretBox, SecretBoxError
from tornado_engine.storage import (
    AzureBlobConfig,
    GCSConfig,
    LocalStorageConfig,
    OSSConfig,
    S3Config,
    StorageTarget,
    classify,
    open_config,
    parse_storage_config,
    seal_config,
)
from tornado_engine.storage.errors import MissingBackend, redact, require

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def _configs() -> list[object]:
    return [
        S3Config(bucket="media", access_key_id="AKIAEXAMPLE", secret_access_key=SECRET),
        AzureBlobConfig(container="media", account_name="acct", account_key=SECRET),
        AzureBlobConfig(container="media", account_name="acct", sas_token=f"sv=2024&sig={SECRET}"),
        AzureBlobConfig(
            container="media",
            connection_string=f"AccountName=acct;AccountKey={SECRET};BlobEndpoint=http://127.0.0.1:1/acct",
        ),
        OSSConfig(
            endpoint="https://oss-cn-hangzhou.aliyuncs.com",
            bucket="media",
            access_key_id="ak",
            access_key_secret=SECRET,
        ),
    ]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: type(c).__name__)
def test_secrets_never_show(config: object) -> None:
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert SECRET not in repr(StorageTarget(config))  # type: ignore[arg-type]
    assert SECRET not in config.model_dump_json()  # type: ignore[attr-defined]
    assert "base_folder='videos'" in repr(config)


def test_validation_errors_do_not_echo_input() -> None:
    with pytest.raises(ValidationError) as caught:
        AzureBlobConfig(container="media", account_name="acct", account_key=SECRET, sas_token=SECRET)
    assert "exactly one of" in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        GCSConfig(bucket="media", service_account_json="{" + SECRET)
    assert "not valid JSON" in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(ValidationError, match="service_account"):
        GCSConfig(bucket="media", service_account_json=json.dumps({"type": "authorized_user"}))


@pytest.mark.parametrize("folder", ["../up", "a/../b", "a//b", "a\\b"])
def test_base_folder_is_a_safe_relative_path(folder: str) -> None:
    with pytest.raises(ValidationError):
        LocalStorageConfig(path="/tmp/x", base_folder=folder)


def test_defaults_layout_and_expiry_cap(tmp_path: Path) -> None:
    config = LocalStorageConfig(path=str(tmp_path), base_folder="/media/")
    assert config.base_folder == "media"
    assert LocalStorageConfig(path=str(tmp_path)).url_expiry_seconds == 24 * 3600
    assert LocalStorageConfig(path=str(tmp_path), url_expiry_seconds=30 * 86400).url_expiry_seconds == 604800
    target = StorageTarget(config)
    assert target.full_key("a/clip.mp4") == "media/a/clip.mp4"
    assert StorageTarget(str(tmp_path)).full_key("a/clip.mp4") == "a/clip.mp4"  # URL targets: no base
    for bad in ("../x.mp4", "/abs.mp4", "a/./b.mp4", "", "a//b.mp4", "a\\b.mp4"):
        with pytest.raises(InvalidRequest):
            target.full_key(bad)


def test_local_config_put_move_and_url(tmp_path: Path) -> None:
    target = StorageTarget(LocalStorageConfig(path=str(tmp_path / "store")))
    target.verify()
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"data")
    seen: list[tuple[int, int]] = []
    stored = target.put(src, "f/clip.mp4", move=True, on_progress=lambda d, t: seen.append((d, t)))
    assert stored.key == "videos/f/clip.mp4" and not src.exists()
    assert stored.url == (tmp_path / "store" / "videos" / "f" / "clip.mp4").as_uri()
    assert seen[-1] == (4, 4)
    assert not list((tmp_path / "store" / "videos").glob(".tornado-probe-*"))


def test_seal_and_open_round_trip(tmp_path: Path) -> None:
    box = SecretBox.from_env(tmp_path, env={})
    for config in _configs():
        sealed = seal_config(box, config)  # type: ignore[arg-type]
        assert SECRET not in sealed
        assert open_config(box, sealed) == config
    assert parse_storage_config({"kind": "local", "path": "/srv"}) == LocalStorageConfig(path="/srv")


def test_secret_box_key_file_and_env(tmp_path: Path) -> None:
    box = SecretBox.from_env(tmp_path, env={})
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = box.encrypt("s3cr3t")
    assert SecretBox.from_env(tmp_path, env={}).decrypt(token) == "s3cr3t"  # the same key, kept
    assert repr(box) == "SecretBox(key=***)"
    os.chmod(key_file, 0o644)
    SecretBox.from_env(tmp_path, env={})
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # tightened again

    from cryptography.fernet import Fernet

    new, old = Fernet.generate_key().decode(), key_file.read_text().strip()
    rotated = SecretBox.from_env(tmp_path / "elsewhere", env={KEY_ENV: f"{new},{old}"})
    assert rotated.decrypt(token) == "s3cr3t"  # old tokens still open after a rotation
    with pytest.raises(SecretBoxError, match="not the one it was encrypted with"):
        SecretBox(new).decrypt(token)
    with pytest.raises(InvalidRequest, match="not a valid Fernet key") as caught:
        SecretBox("not-a-key-" + SECRET)
    assert SECRET not in str(caught.value)


def test_missing_backend_says_what_to_install() -> None:
    with pytest.raises(MissingBackend, match=r"pip install 'tornado-engine\[oss\]'"):
        require("tornado_engine_no_such_module", "oss", "OSS")


def test_classify_real_sdk_errors() -> None:
    import oss2.exceptions
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
    from botocore.exceptions import ClientError, EndpointConnectionError
    from gcsfs.retry import HttpError

    def boto(code: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
        )

    def wrapped(inner: BaseException, outer: BaseException) -> BaseException:
        outer.__cause__ = inner  # how s3fs / ossfs hand errors on
        return outer

    azure_forbidden = HttpResponseError(message="denied")
    azure_forbidden.status_code, azure_forbidden.error_code = 403, "AuthorizationFailure"
    azure_busy = HttpResponseError(message="busy")
    azure_busy.status_code = 503
    cases = {
        "storage_denied": [
            wrapped(boto("SignatureDoesNotMatch", 403), PermissionError("denied")),
            wrapped(boto("InvalidAccessKeyId", 403), OSError(errno.EIO, "x")),
            azure_forbidden,
            ClientAuthenticationError(message="no"),
            wrapped(
                oss2.exceptions.ServerError(403, {}, b"", {"Code": "SignatureDoesNotMatch"}), OSError(5, "x")
            ),
            OSError("Forbidden: https://storage/b/o\nno access"),
        ],
        "storage_transient": [
            wrapped(boto("SlowDown", 503), OSError(errno.EBUSY, "slow")),
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            azure_busy,
            ServiceRequestError(message="connection reset"),
            oss2.exceptions.RequestError(ConnectionError("refused")),
            HttpError({"code": 503, "message": "backend error"}),
            ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
            TimeoutError("timed out"),
        ],
        "storage_error": [
            wrapped(boto("NoSuchBucket", 404), FileNotFoundError("media")),
            HttpError({"code": 400, "message": "bad"}),
            ValueError("odd"),
        ],
    }
    for kind, errors in cases.items():
        for err in errors:
            assert classify(err).kind == kind, (kind, repr(err))
    assert classify(wrapped(boto("NoSuchBucket", 404), FileNotFoundError("media"))).not_found


def test_redact_drops_signatures_and_keys() -> None:
    text = (
        f"GET https://acct.blob.core.windows.net/c/b?sv=1&sig={SECRET} failed; AccountKey={SECRET}; {SECRET}"
    )
    out = redact(text, [SECRET])
    assert SECRET not in out and "https://acct.blob.core.windows.net/c/b?…" in out


def test_unknown_url_backend_is_an_upload_error(tmp_path: Path) -> None:
    src = tmp_path / "x.bin"
    src.write_bytes(b"x")
    with pytest.raises(UploadError, match=r"not installed|Protocol not known"):
        StorageTarget("nosuchproto://bucket/x").put(src, "x.bin")
    memory = StorageTarget("memory://tornado-tests")
    stored = memory.put(src, "a/x.bin")
    assert stored.key == "a/x.bin" and memory.exists("a/x.bin") and stored.url.startswith("memory://")
    memory.delete("a/x.bin")
