"""Fixtures for the storage tests: one real server per backend on 127.0.0.1, started once per session.

``backend`` is parametrized over every kind (s3, azure, gcs, oss, local) and gives a working config, a
config with a bad credential, and ways to look at the stored object with the service's own SDK (or plain
HTTP), independent of the code under test. Only the servers a selected test needs are started.
A server that cannot start fails the test run (``pytest.fail``), it never skips.
"""

from __future__ import annotations

import os

# before anything imports gcsfs / google-auth (recipe pitfalls 1 and 14)
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
os.environ["NO_GCE_CHECK"] = "true"

import contextlib
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from storage_servers import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    EmulatorError,
    OSSServer,
    moto_iam_server,
    moto_server,
)
from storage_servers import azurite as start_azurite
from storage_servers import gcs_emulator as start_gcs
from tornado_engine.storage import (
    AzureBlobConfig,
    GCSConfig,
    LocalStorageConfig,
    OSSConfig,
    S3Config,
    StorageConfig,
)

__all__ = [
    "BUCKET",
    "KINDS",
    "PART",
    "BackendUnderTest",
    "azure_endpoint",
    "backend",
    "gcs_endpoint",
    "oss_server",
    "s3_endpoint",
    "s3_iam",
    "service_account",
    "storage_workdir",
]

BUCKET = "media"
PART = 5 * 2**20  # the smallest part S3 allows: a 12 MiB file goes up in 3 parts
KINDS = ["s3", "azure", "gcs", "oss", "local"]
OSS_KEYS = {"test-ak": "test-secret-0123456789"}
S3_REGION = "eu-west-1"  # not us-east-1 (recipe pitfall 2)


@dataclass
class BackendUnderTest:
    kind: str
    name: str  # how errors name the backend
    config: StorageConfig
    bad_config: StorageConfig
    read: Callable[[str], bytes]  # the stored object's bytes, by full key, not through tornado_engine
    parts: Callable[[str], int | None]  # how many parts it was uploaded in, when the server can tell
    checks_signatures: bool
    secrets: list[str] = field(default_factory=list)


def _started(context: Any) -> Any:
    try:
        return context.__enter__()
    except EmulatorError as exc:
        pytest.fail(f"storage emulator could not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def storage_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage-servers")


def _boto(endpoint: str, key: str = "testing", secret: str = "testing", service: str = "s3") -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name=S3_REGION)  # fmt: skip


def _ensure_bucket(client: Any) -> None:
    # moto's in-process server keeps one state per process: another test may have made the bucket
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": S3_REGION})


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    context = moto_server()
    endpoint = _started(context)
    _ensure_bucket(_boto(endpoint))
    yield endpoint
    context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def s3_iam(storage_workdir: Path) -> Iterator[tuple[str, str, str]]:
    """A moto that checks signatures: (endpoint, access key id, secret) of a user allowed everything."""
    context = moto_iam_server(storage_workdir)
    endpoint = _started(context)
    iam = _boto(endpoint, service="iam")  # the 3 unauthenticated calls moto allows
    iam.create_user(UserName="engine")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="engine", PolicyName="all", PolicyDocument=json.dumps(policy))
    access = iam.create_access_key(UserName="engine")["AccessKey"]
    key, secret = access["AccessKeyId"], access["SecretAccessKey"]
    _boto(endpoint, key, secret).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": S3_REGION}
    )
    yield endpoint, key, secret
    context.__exit__(None, None, None)


def azure_connection_string(endpoint: str, key: str = AZURITE_KEY) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={endpoint};")  # fmt: skip


@pytest.fixture(scope="session")
def azure_endpoint(storage_workdir: Path) -> Iterator[str]:
    from azure.storage.blob import BlobServiceClient

    context = start_azurite(storage_workdir)
    endpoint = _started(context)
    BlobServiceClient.from_connection_string(azure_connection_string(endpoint)).create_container(BUCKET)
    yield endpoint
    context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def gcs_endpoint(storage_workdir: Path) -> Iterator[str]:
    context = start_gcs(storage_workdir, BUCKET)
    yield _started(context)
    context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def service_account() -> tuple[str, Any]:
    """A throwaway service-account key made here (no network): (JSON text, public key)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "engine@test-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return json.dumps(info), key.public_key()


@pytest.fixture(scope="session")
def oss_server() -> Iterator[OSSServer]:
    server = OSSServer(OSS_KEYS, [BUCKET]).start()
    yield server
    server.stop()


def _s3(request: pytest.FixtureRequest) -> BackendUnderTest:
    endpoint = request.getfixturevalue("s3_endpoint")
    iam_endpoint, key, secret = request.getfixturevalue("s3_iam")
    client = _boto(endpoint)
    common = {"bucket": BUCKET, "region": S3_REGION, "part_size": PART}

    def parts(full_key: str) -> int | None:
        etag = str(client.head_object(Bucket=BUCKET, Key=full_key)["ETag"]).strip('"')
        return int(etag.rsplit("-", 1)[1]) if "-" in etag else 1

    return BackendUnderTest(
        "s3", "S3",
        S3Config(endpoint_url=endpoint, access_key_id="testing", secret_access_key="testing", **common),
        S3Config(endpoint_url=iam_endpoint, access_key_id=key, secret_access_key=secret[::-1], **common),
        lambda k: bytes(client.get_object(Bucket=BUCKET, Key=k)["Body"].read()), parts, False,
        [secret[::-1]],
    )  # fmt: skip


def _azure(request: pytest.FixtureRequest) -> BackendUnderTest:
    from azure.storage.blob import BlobServiceClient

    endpoint = request.getfixturevalue("azure_endpoint")
    connection_string = azure_connection_string(endpoint)
    container = BlobServiceClient.from_connection_string(connection_string).get_container_client(BUCKET)
    wrong_key = AZURITE_KEY[:-12] + "AAAAAAAAAA=="
    bad = {"account_name": AZURITE_ACCOUNT, "account_key": wrong_key, "endpoint": endpoint}
    return BackendUnderTest(
        "azure", "Azure Blob",
        AzureBlobConfig(container=BUCKET, connection_string=connection_string, part_size=PART),
        AzureBlobConfig(container=BUCKET, **bad),
        lambda k: bytes(container.download_blob(k).readall()),
        lambda k: len(container.get_blob_client(k).get_block_list("committed")[0]) or 1,
        True, [wrong_key],
    )  # fmt: skip


def _gcs(request: pytest.FixtureRequest) -> BackendUnderTest:
    endpoint = request.getfixturevalue("gcs_endpoint")
    key_json, _ = request.getfixturevalue("service_account")
    broken = json.loads(key_json)
    broken["private_key"] = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"

    def read(full_key: str) -> bytes:
        quoted = urllib.parse.quote(full_key, safe="")
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b/{BUCKET}/o/{quoted}?alt=media") as response:
            return bytes(response.read())

    common = {"bucket": BUCKET, "endpoint_url": endpoint, "emulator": True, "part_size": PART}
    return BackendUnderTest(
        "gcs", "GCS",
        GCSConfig(service_account_json=key_json, **common),
        GCSConfig(service_account_json=json.dumps(broken), **common),
        read, lambda k: None, False, [broken["private_key"]],
    )  # fmt: skip


def _oss(request: pytest.FixtureRequest) -> BackendUnderTest:
    server: OSSServer = request.getfixturevalue("oss_server")
    ak, secret = next(iter(OSS_KEYS.items()))
    # 2 threads for 3 parts: oss2 reports progress when a part starts, so the third start shows 5 MiB done
    common = {
        "endpoint": server.endpoint,
        "bucket": BUCKET,
        "access_key_id": ak,
        "part_size": PART,
        "concurrency": 2,
    }

    def parts(full_key: str) -> int | None:
        etag = server.buckets[BUCKET][full_key]["etag"]
        return int(etag.rsplit("-", 1)[1]) if "-" in etag else 1

    wrong = secret[::-1]
    return BackendUnderTest(
        "oss", "OSS",
        OSSConfig(access_key_secret=secret, **common), OSSConfig(access_key_secret=wrong, **common),
        lambda k: bytes(server.buckets[BUCKET][k]["data"]), parts, True, [wrong],
    )  # fmt: skip


def _local(request: pytest.FixtureRequest) -> BackendUnderTest:
    root: Path = request.getfixturevalue("tmp_path") / "local-storage"
    blocker = root.parent / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    return BackendUnderTest(
        "local", "local",
        LocalStorageConfig(path=str(root)), LocalStorageConfig(path=str(blocker / "media")),
        lambda k: (root / k).read_bytes(), lambda k: None, False,
    )  # fmt: skip


_MAKERS = {"s3": _s3, "azure": _azure, "gcs": _gcs, "oss": _oss, "local": _local}


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest) -> BackendUnderTest:
    return _MAKERS[request.param](request)
