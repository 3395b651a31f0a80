"""Engine options checked when the engine opens (issue 14, points 3 and 4): a storage whose package is
missing is refused naming the extra, before a job is stored; a str of webhook secrets is one secret and
its deliveries are signed; a malformed secret is refused naming the option.

A missing extra is real here: a subprocess blocks the import (``sys.modules['s3fs'] = None``), so the
import raises ImportError exactly as in an install without the extra."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import webhook_receiver
from standardwebhooks import Webhook

from tornado_engine import Engine, InvalidRequest, JobRequest, SetupError
from tornado_engine.testing.noop import noop_engine
from tornado_engine.webhooks import generate_secret

pytestmark = pytest.mark.integration

_NOOP_URL = "http://127.0.0.1:9/noop"
_BLOCKED = """
import asyncio, json, sys
sys.modules["s3fs"] = None  # as if tornado-engine[s3] was not installed
from tornado_engine import Engine, MissingBackend
from tornado_engine.storage import S3Config
from tornado_engine.testing.noop import noop_engine

async def main(data_dir):
    out = {}
    try:
        Engine(data_dir=data_dir, storage="s3://bucket/x")
    except MissingBackend as exc:
        out["engine"] = str(exc)
    config = S3Config(bucket="media", access_key_id="k", secret_access_key="s", endpoint_url="http://127.0.0.1:9")
    async with noop_engine(data_dir=data_dir, allow_networks=["127.0.0.0/8"]) as engine:
        for name, call in (
            ("tenant", lambda: engine.tenant("t").configure_storage(config, verify=False)),
            ("job", lambda: engine.create_job({"url": "http://127.0.0.1:9/noop", "storage": config})),
        ):
            try:
                await call()
            except MissingBackend as exc:
                out[name] = str(exc)
        out["jobs"] = len(await engine.list_jobs())
    print(json.dumps(out))

asyncio.run(main(sys.argv[1]))
"""


def test_a_missing_extra_is_refused_at_open_at_configure_and_at_submit(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCKED, str(tmp_path)], capture_output=True, text=True, timeout=60,
        env=os.environ, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    hint = "pip install 'tornado-engine[s3]'"
    assert hint in out["engine"] and hint in out["tenant"] and hint in out["job"]
    assert out["jobs"] == 0  # the job with its own storage was refused before it was stored


def test_unusable_storage_and_data_dir_are_refused_when_the_engine_is_made(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SetupError, match="data dir is a file"):
        Engine(data_dir=tmp_path / "afile")
    with pytest.raises(SetupError, match="local storage folder cannot be written"):
        Engine(data_dir=tmp_path / "d", storage=str(tmp_path / "afile" / "media"))
    with pytest.raises(InvalidRequest, match="'ftp' is not supported") as info:
        Engine(data_dir=tmp_path / "d", storage="ftp://x/y")
    assert info.value.field == "storage"


@pytest.mark.parametrize("secrets", ["whsec_not base64!", ["not-a-secret"], [""]])
def test_a_malformed_webhook_secret_is_refused_at_open(tmp_path: Path, secrets: Any) -> None:
    with pytest.raises(InvalidRequest, match=r"^webhook_secrets: secret 1: ") as info:
        Engine(data_dir=tmp_path, webhook_secrets=secrets)
    assert info.value.field == "webhook_secrets"


def test_a_malformed_secret_in_the_environment_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORNADO_WEBHOOK_SECRETS", "plain-text")
    with pytest.raises(InvalidRequest, match=r"^TORNADO_WEBHOOK_SECRETS: secret 1: .*whsec_"):
        Engine(data_dir=tmp_path)


@pytest.fixture
def signed_receiver() -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    calls: list[tuple[bytes, dict[str, str]]] = []
    with webhook_receiver(lambda body, headers: calls.append((body, headers))) as base:
        yield f"{base}/hook", calls


async def test_a_str_is_one_secret_and_deliveries_are_signed_with_it(
    tmp_path: Path, signed_receiver: tuple[str, list[tuple[bytes, dict[str, str]]]]
) -> None:
    hook, calls = signed_receiver
    secret = generate_secret()
    async with noop_engine(data_dir=tmp_path, poll_interval=0.1, webhook_secrets=secret,
                           allow_networks=["127.0.0.0/8"]) as engine:  # fmt: skip
        created = await engine.create_job(JobRequest(url=_NOOP_URL, webhook_url=hook))
        await engine.wait(created.job_id, timeout=20)
        for _ in range(200):
            if (await engine.get_job(created.job_id)).webhook_status == "delivered":
                break
            await asyncio.sleep(0.05)
        assert (await engine.get_job(created.job_id)).webhook_status == "delivered"
    [(body, headers)] = calls
    assert headers["webhook-signature"].count("v1,") == 1
    assert Webhook(secret).verify(body, headers)["event"] == "job_completed"  # raises on a bad signature
