"""Azure and GCS upload: the big file to each emulator through the engine's storage vs that service's own SDK.

The same ~150 MB file, the same emulator (its own process, on 127.0.0.1), alternating, each object deleted
after its run; one untimed warm-up per side. Engine: ``StorageTarget(config).put(file, key)`` (what the
Uploader stage calls) with the config's defaults (8 MiB parts, concurrency 4). Baselines:
- Azure (Azurite): azure-storage-blob's ``BlobClient.upload_blob(f, overwrite=True)`` with the SDK's
  defaults (4 MiB blocks above 64 MiB, ``max_concurrency=1``), with ``max_concurrency=4``, and with
  ``validate_content=True`` too (an MD5 per block, as the engine sends: Azurite then checks the MD5
  instead of computing a CRC64 of each block in JavaScript, ~4x less of its CPU).
- GCS (gcp-storage-emulator): google-cloud-storage's ``Blob.upload_from_filename`` (the emulator needs no
  credentials: ``AnonymousCredentials``), its defaults (a resumable upload in 100 MiB chunks above 8 MiB);
  the engine sends a file of 5 MiB or more as one resumable request.
Target: engine throughput >= 1.0x the SDK's default call.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import CACHE, REPO, Report, arguments, big_media, child, free_port, fresh_dir

from tornado_engine.storage import AzureBlobConfig, GCSConfig, StorageTarget

sys.path.insert(0, str(REPO / "tests"))  # the test suite's emulator launchers
from storage_servers.launchers import AZURITE_ACCOUNT, AZURITE_KEY, azurite_dir, azurite_main, gcs_emulator

BUCKET = "bench"
Upload = Callable[[Path, str], None]


def _service_account() -> str:
    """A throwaway key: the engine's GCS config signs URLs with it (data calls to the emulator take none)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "bench", "private_key_id": "k1", "private_key": pem,
            "client_email": "bench@bench.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token"}  # fmt: skip
    return json.dumps(info)


@contextmanager
def azurite_on_disk() -> Iterator[str]:
    """Azurite keeping blobs on disk: the test suite's in-memory one holds 512 MB, a few runs of this file."""
    recorded = azurite_dir() / "node-path"
    node = recorded.read_text().strip() if recorded.is_file() else "node"
    folder = fresh_dir(CACHE / "azurite-data")
    port = free_port()
    argv = [node, str(azurite_main()), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--location", str(folder), "--skipApiVersionCheck", "--disableTelemetry"]  # fmt: skip
    with child(argv, port, CACHE / "azurite.log"):
        yield f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def azure_sides() -> Iterator[tuple[StorageTarget, dict[str, Upload], Callable[[str], int]]]:
    from azure.storage.blob import BlobServiceClient

    with azurite_on_disk() as endpoint:
        conn = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint={endpoint};")  # fmt: skip
        container = BlobServiceClient.from_connection_string(conn).create_container(BUCKET)

        def sdk(concurrency: int, md5: bool = False) -> Upload:
            def upload(path: Path, key: str) -> None:
                with path.open("rb") as f:
                    container.get_blob_client(key).upload_blob(
                        f, overwrite=True, max_concurrency=concurrency, validate_content=md5
                    )

            return upload

        def size(key: str) -> int:
            blob = container.get_blob_client(key)
            length = int(blob.get_blob_properties().size)
            blob.delete_blob()
            return length

        target = StorageTarget(AzureBlobConfig(container=BUCKET, connection_string=conn))
        baselines = {"upload_blob": sdk(1), "upload_blob (max_concurrency 4)": sdk(4),
                     "upload_blob (max_concurrency 4, validate_content)": sdk(4, md5=True)}  # fmt: skip
        yield target, baselines, size


@contextmanager
def gcs_sides() -> Iterator[tuple[StorageTarget, dict[str, Upload], Callable[[str], int]]]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    with gcs_emulator(CACHE, BUCKET) as endpoint:
        client = storage.Client(
            project="bench", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
        )
        bucket = client.bucket(BUCKET)

        def sdk(path: Path, key: str) -> None:
            bucket.blob(key).upload_from_filename(str(path))

        def size(key: str) -> int:
            blob = bucket.get_blob(key)
            length = int(blob.size)
            blob.delete()
            return length

        config = GCSConfig(
            bucket=BUCKET, endpoint_url=endpoint, emulator=True, service_account_json=_service_account()
        )
        yield StorageTarget(config), {"upload_from_filename": sdk}, size


def measure(report: Report, name: str, sides: Any, source: Path, runs: int) -> None:
    size = source.stat().st_size
    with sides() as (target, baselines, remote_size):
        target.delete(target.put(source, "warmup.mp4").key)  # untimed: clients, connections
        for upload in baselines.values():
            upload(source, "warmup.mp4")
            remote_size("warmup.mp4")
        engine: list[float] = []
        times: dict[str, list[float]] = {who: [] for who in baselines}
        for i in range(runs):
            for who, upload in baselines.items():
                started = time.perf_counter()
                upload(source, f"sdk-{i}.mp4")
                times[who].append(time.perf_counter() - started)
                assert remote_size(f"sdk-{i}.mp4") == size
            started = time.perf_counter()
            stored = target.put(source, f"engine-{i}.mp4")
            engine.append(time.perf_counter() - started)
            assert stored.size == size and target.exists(stored.key)
            target.delete(stored.key)
            line = ", ".join(f"{who} {t[-1]:.2f} s" for who, t in times.items())
            print(f"{name} run {i + 1}: {line}, engine {engine[-1]:.2f} s", flush=True)
    mib = size / 2**20
    e = statistics.median(engine)
    for n, (who, baseline) in enumerate(times.items()):
        b = statistics.median(baseline)
        all_times = f"{'/'.join(f'{t:.2f}' for t in engine)} vs {'/'.join(f'{t:.2f}' for t in baseline)} s"
        detail = f"{mib / e:.0f} MiB/s vs {mib / b:.0f} MiB/s (median of {len(engine)}; {all_times})"
        first = n == 0  # the SDK's default call is the target; other variants are for information
        target_text, met = (">= 1.0x", b / e >= 1.0) if first else ("", None)
        measure = f"engine storage (defaults) / {who}, throughput"
        report.value(measure, f"{b / e:.2f}x", target_text, met, detail)


def main() -> None:
    parser = arguments(__doc__ or "", runs=5)
    parser.add_argument("--backends", default="azure,gcs", help="comma-separated: azure, gcs")
    args = parser.parse_args()
    source = big_media(args.quick)
    sides = {"azure": ("azure-upload", azure_sides), "gcs": ("gcs-upload", gcs_sides)}
    reports = []
    for backend in args.backends.split(","):
        name, make = sides[backend]
        report = Report(name)
        measure(report, name, make, source, args.runs)
        load = os.getloadavg()[0]
        mib = source.stat().st_size / 2**20
        report.notes.append(f"{mib:.0f} MiB file; load average at the end {load:.1f}")
        reports.append(report)
    rows, notes = [r for rep in reports for r in rep.rows], [n for rep in reports for n in rep.notes]
    merged = Report("storage-upload", rows, notes)
    merged.emit(args.json)


if __name__ == "__main__":
    main()
