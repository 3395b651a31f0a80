"""S3 upload: the big file to moto's S3 server through the engine's storage vs a plain boto3 ``upload_file``.

Both write the same ~150 MB file to the same moto server (its own process, on 127.0.0.1), alternating,
and each object is deleted after its run. Engine: ``StorageTarget(S3Config(...)).put(file, key)``, what
the Uploader stage calls (a multipart upload through a botocore client, the config's ``concurrency``
threads each sending one part of ``part_size`` at a time, then a signed URL), with the config's defaults
(8 MiB, 10 threads: boto3's) and with concurrency 4 (the default before issue 15). Baseline:
boto3's ``upload_file`` with its default TransferConfig (8 MiB parts, 10 threads). Target: engine
throughput >= 1.0x boto3's (issue 15; 0.9x in issue 8).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from _common import CACHE, VENV_BIN, Report, arguments, big_media, child, free_port

from tornado_engine.storage import S3Config, StorageTarget

KEY_ID, SECRET, BUCKET, REGION = "testing", "testing", "bench", "us-east-1"


def boto3_client(endpoint: str) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def main() -> None:
    args = arguments(__doc__ or "", runs=5).parse_args()
    source = big_media(args.quick)
    size = source.stat().st_size
    report = Report("s3-upload")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    boto: list[float] = []
    engine: list[float] = []
    engine4: list[float] = []
    moto = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with child(moto, port, CACHE / "moto.log"):
        client = boto3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)

        def config(**extra: Any) -> S3Config:
            fields = {"bucket": BUCKET, "access_key_id": KEY_ID, "secret_access_key": SECRET}
            return S3Config.model_validate({**fields, "endpoint_url": endpoint, "region": REGION, **extra})

        default, narrow = StorageTarget(config()), StorageTarget(config(concurrency=4))
        for target in (default, narrow):  # warm-up, untimed: clients, connections, credentials
            target.delete(target.put(source, "warmup.mp4").key)
        client.upload_file(str(source), BUCKET, "warmup.mp4")
        client.delete_object(Bucket=BUCKET, Key="warmup.mp4")

        for i in range(args.runs):
            started = time.perf_counter()
            client.upload_file(str(source), BUCKET, f"boto3-{i}.mp4")
            boto.append(time.perf_counter() - started)
            assert client.head_object(Bucket=BUCKET, Key=f"boto3-{i}.mp4")["ContentLength"] == size
            client.delete_object(Bucket=BUCKET, Key=f"boto3-{i}.mp4")
            for target, times in ((default, engine), (narrow, engine4)):
                started = time.perf_counter()
                stored = target.put(Path(source), f"engine-{i}.mp4")
                times.append(time.perf_counter() - started)
                assert stored.size == size and target.exists(stored.key)
                target.delete(stored.key)
            line = f"boto3 {boto[-1]:.2f} s, engine {engine[-1]:.2f} s, concurrency 4 {engine4[-1]:.2f} s"
            print(f"run {i + 1}: {line}", flush=True)
    mib = size / 2**20
    for name, times in (("defaults", engine), ("concurrency 4", engine4)):
        e, b = statistics.median(times), statistics.median(boto)
        ratio = b / e  # throughput ratio: the same bytes in less time is more
        all_times = f"{'/'.join(f'{t:.2f}' for t in times)} vs {'/'.join(f'{t:.2f}' for t in boto)} s"
        detail = f"{mib / e:.0f} MiB/s vs boto3 {mib / b:.0f} MiB/s (median of {len(times)}; {all_times})"
        measure = f"engine storage ({name}) / boto3 upload_file, throughput"
        report.value(measure, f"{ratio:.2f}x", ">= 1.0x", ratio >= 1.0, detail)
    load = os.getloadavg()[0]
    report.notes.append(f"{mib:.0f} MiB file; moto {endpoint}; load average at the end {load:.1f}")
    report.emit(args.json)


if __name__ == "__main__":
    main()
