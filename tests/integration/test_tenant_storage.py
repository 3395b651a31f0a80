"""Per-tenant storage through the engine (TornadoAPI's /user/s3 ...) against moto's S3 server on 127.0.0.1:
verified before it is accepted, encrypted at rest, used by that tenant's jobs only, removable."""

from __future__ import annotations

import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from storage_fixtures import BUCKET, S3_REGION

from tornado_engine import Engine, InvalidRequest, Status
from tornado_engine.safety import BlockedAddress
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration


def _s3(endpoint: str, secret: str = "testing", **extra: Any) -> dict[str, Any]:
    return {"kind": "s3", "bucket": BUCKET, "region": S3_REGION, "endpoint_url": endpoint,
            "access_key_id": "testing", "secret_access_key": secret, **extra}  # fmt: skip


async def test_tenant_storage_end_to_end(
    tmp_path: Path, s3_endpoint: str, s3_iam: tuple[str, str, str], media_server: MediaServer,
    media_set: MediaSet,
) -> None:  # fmt: skip
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1) as engine:
        alice, bob = engine.tenant("alice"), engine.tenant("bob")
        secret = "alice-super-secret-key-123"
        info = await alice.configure_storage(_s3(s3_endpoint, secret, base_folder="alice"))
        assert info["kind"] == "s3" and info["base_folder"] == "alice" and secret not in str(info)

        url = media_server.url(media_set.progressive_mp4)
        mine = await alice.wait((await alice.create_job({"url": url, "filename": "clip"})).job_id, timeout=60)
        assert mine.status is Status.COMPLETED, mine.to_api()
        assert "X-Amz-Signature" in mine.s3_url and secret not in repr(mine.to_api())
        with urllib.request.urlopen(mine.s3_url) as response:  # the signed URL, plain HTTP
            assert response.read() == media_set.path(media_set.progressive_mp4).read_bytes()
        client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=S3_REGION,
                              aws_access_key_id="t", aws_secret_access_key="t")  # fmt: skip
        assert client.head_object(Bucket=BUCKET, Key="alice/clip.mp4")["ContentLength"] == mine.file_size

        assert (await alice.usage()).storage_by_backend == {"s3": mine.file_size}
        theirs = await bob.wait((await bob.create_job({"url": url, "filename": "clip"})).job_id, timeout=60)
        assert theirs.s3_url.startswith("file://")  # bob has none configured: the engine's own storage

        # encrypted at rest: the store never holds the secret in clear
        raw = sqlite3.connect(tmp_path / "engine" / "jobs.db").execute("SELECT data FROM tenants").fetchall()
        assert raw and all(secret not in row[0] for row in raw)

        await alice.delete_file(mine.id)
        with pytest.raises(client.exceptions.ClientError):
            client.head_object(Bucket=BUCKET, Key="alice/clip.mp4")

        assert await alice.remove_storage() is True
        later = await alice.wait(
            (await alice.create_job({"url": url, "filename": "later"})).job_id, timeout=60
        )
        assert later.s3_url.startswith("file://")


async def test_bad_credentials_and_blocked_endpoints_refused(
    tmp_path: Path, s3_iam: tuple[str, str, str]
) -> None:
    endpoint, key, secret = s3_iam  # this moto checks signatures
    async with Engine.open(data_dir=tmp_path / "engine", run_jobs=False) as engine:
        wrong = "definitely-wrong-secret-456"
        with pytest.raises(InvalidRequest) as refused:
            await engine.configure_storage({**_s3(endpoint, wrong), "access_key_id": key, "kind": "bucket"})
        assert "S3" in refused.value.message and wrong not in refused.value.message
        assert await engine.store.get_tenant("") in (None, {})  # nothing kept
    async with Engine.open(data_dir=tmp_path / "strict", run_jobs=False, allow_networks=[]) as strict:
        with pytest.raises(BlockedAddress):  # a tenant's endpoint is judged like any URL we fetch
            await strict.configure_storage({**_s3(endpoint, secret), "access_key_id": key})


async def test_per_request_storage_is_sealed_and_used(
    tmp_path: Path, s3_endpoint: str, media_server: MediaServer, media_set: MediaSet
) -> None:
    secret = "per-request-secret-xyz-789"
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1) as engine:
        request = {"url": media_server.url(media_set.progressive_mp4), "filename": "own",
                   "storage": _s3(s3_endpoint, secret, base_folder="req")}  # fmt: skip
        created = await engine.create_job(request)
        job = await engine.wait(created.job_id, timeout=60)
        assert job.status is Status.COMPLETED, job.to_api()
        assert job.storage_key == "req/own.mp4" and "X-Amz-Signature" in job.s3_url
        with urllib.request.urlopen(job.s3_url) as response:
            assert response.read() == media_set.path(media_set.progressive_mp4).read_bytes()
        await engine.delete_file(job.id)  # found again through the sealed config
    raw = sqlite3.connect(tmp_path / "engine" / "jobs.db").execute("SELECT data FROM jobs").fetchall()
    assert all(secret not in row[0] for row in raw)  # kept encrypted with the job, never in clear
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=S3_REGION,
                          aws_access_key_id="t", aws_secret_access_key="t")  # fmt: skip
    with pytest.raises(client.exceptions.ClientError):
        client.head_object(Bucket=BUCKET, Key="req/own.mp4")
