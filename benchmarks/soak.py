"""soak: real small jobs through hostile sources and a failing storage, on 3 PostgreSQL workers, one of them
killed (SIGKILL) and restarted on a timer.

- Source: one ~1.5 MB MP4 under many URLs (``_soak_faults.FaultSource``); each URL's plan, drawn from the
  seed, decides every request: clean, a few transient faults (reset, 5xx, 429 + Retry-After, a stall, a
  short body) then clean, or a permanent 404 / 503 / reset. So each job's terminal status is known upfront.
- Storage: moto's S3 in this process, answering 503 SlowDown to 5% of PUT/POST (``FailingS3``).
- Workers: 3 processes of the shipped worker command (``_soak_worker.py``: S3 storage, socket timeout 3 s,
  short backoffs) on a fresh PostgreSQL database, concurrency 4 each, lease 5 s. Worker 0 is SIGKILLed
  every ``--kill-every`` seconds (30; 10 with ``--quick``) and restarted on the same data dir; workers 1
  and 2 run throughout, so their RSS says whether memory is flat.
- Audit, from the database (triggers record every status transition) and the bucket: each job ended in the
  status (and error kind) its source deserved, reached a terminal status exactly once and never left it;
  every Completed job's object exists with its recorded size, no other object, no open multipart upload
  (one object ffprobed); once the workers' periodic sweep has run (within 40 s of the last job's end), no
  file under the data dirs' ``tmp`` folders but the slot lock files.

``python benchmarks/soak.py [--quick] [--jobs N] [--seed S] [--postgres DSN]``; exit code 1 on any
mismatch. 2,000 jobs take tens of minutes on two cores: not part of ``run_all.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import CACHE, fresh_dir, small_media
from _soak_faults import FailingS3, FaultSource, plan_for
from bench_scheduler import pg_database

from tornado_engine import Engine

HERE = Path(__file__).parent
BUCKET, KEY_ID, SECRET, REGION = "soak", "soak-key", "soak-secret", "eu-west-1"
LEASE = 5.0
TERMINAL_SQL = "SELECT count(*) FROM tornado_jobs WHERE status NOT IN ('Pending', 'Processing')"
_AUDIT = """
CREATE TABLE soak_transitions (seq bigserial PRIMARY KEY, job_id text NOT NULL, old_status text NOT NULL,
    new_status text NOT NULL, worker text, token bigint NOT NULL);
CREATE FUNCTION soak_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO soak_transitions (job_id, old_status, new_status, worker, token)
    VALUES (NEW.id, OLD.status, NEW.status, coalesce(NEW.lease_owner, OLD.lease_owner), NEW.lease_token);
    RETURN NEW;
END $$;
CREATE TRIGGER soak_transition AFTER UPDATE OF status ON tornado_jobs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION soak_transition();
"""


def sql(dsn: str, text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(text.encode(), params)
        return cur.fetchall() if cur.description else []


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Workers:
    """The three worker processes; worker 0 is the one killed and restarted."""

    def __init__(self, dsn: str, root: Path, s3: dict[str, Any]) -> None:
        self.dsn, self.root = dsn, root
        path = os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])
        self.env = {**os.environ, "SOAK_S3": json.dumps(s3), "SOAK_SOCKET_TIMEOUT": "3", "PYTHONPATH": path}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.kills = 0
        # (seconds since the soak started, MB) per worker slot; worker 0's since its last start
        self.rss: list[list[tuple[float, float]]] = [[], [], []]
        self.t0 = time.monotonic()

    def data_dir(self, i: int) -> Path:
        return self.root / f"w{i}"

    def start(self, i: int) -> subprocess.Popen[bytes]:
        args = [sys.executable, str(HERE / "_soak_worker.py"), "--store", self.dsn, "--data-dir",
                str(self.data_dir(i)), "--concurrency", "4", "--lease-seconds", str(LEASE),
                "--poll-interval", "0.2", "--grace", "10"]  # fmt: skip
        with (self.root / f"w{i}.log").open("ab") as log:
            return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env)  # fmt: skip

    def start_all(self) -> None:
        self.procs = [self.start(i) for i in range(3)]
        self.t0 = time.monotonic()

    def kill_and_restart(self) -> None:
        victim = self.procs[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.kills += 1
        self.procs[0] = self.start(0)
        self.rss[0] = []

    def sample(self) -> None:
        for i, proc in enumerate(self.procs):
            value = rss_mb(proc.pid) if proc.poll() is None else None
            if value and value > 10:  # a process just forked (before exec) reads as next to nothing
                self.rss[i].append((time.monotonic() - self.t0, value))

    def stop_all(self) -> list[int | None]:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(60))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes

    def dead(self) -> list[int]:
        return [i for i, p in enumerate(self.procs) if p.poll() is not None]

    def log_errors(self) -> Counter[str]:
        """ERROR lines of the workers' logs, by their message."""
        found: Counter[str] = Counter()
        for log in self.root.glob("w*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if " ERROR " in line:
                    found[line.split(" ERROR ", 1)[1][:120]] += 1
        return found

    def leftovers(self) -> list[str]:
        found = []
        for i in range(3):
            tmp = self.data_dir(i) / "tmp"
            for path in tmp.rglob("*") if tmp.exists() else []:
                if path.is_file() and not (path.parent == tmp and path.name.startswith("engine-")
                                           and path.name.endswith(".lock")):  # fmt: skip
                    found.append(str(path.relative_to(self.root)))
        return found


async def submit(dsn: str, root: Path, urls: list[str]) -> list[str]:
    async with Engine.open(
        store=dsn, data_dir=root / "submit", run_jobs=False, expand_playlists=False
    ) as eng:
        sql(dsn, _AUDIT)
        ids: list[str] = []
        for i in range(0, len(urls), 100):
            ids += (await eng.create_bulk(list(urls[i : i + 100]))).job_ids
        return ids


def run_until_terminal(dsn: str, workers: Workers, count: int, kill_every: float, budget: float) -> bool:
    started = last_kill = time.monotonic()
    last_print = 0.0
    while True:
        now = time.monotonic()
        done = sql(dsn, TERMINAL_SQL)[0][0]
        if done >= count:
            return True
        if now - started > budget:
            return False
        if now - last_kill >= kill_every:
            workers.kill_and_restart()
            last_kill = now
        for i in workers.dead():
            if i != 0 or workers.procs[i].returncode != -signal.SIGKILL:
                print(
                    f"worker {i} exited on its own with {workers.procs[i].returncode}; restarting", flush=True
                )
                workers.procs[i] = workers.start(i)
        workers.sample()
        if now - last_print >= 15:
            print(f"{now - started:6.0f} s: {done}/{count} terminal, {workers.kills} kills", flush=True)
            last_print = now
        time.sleep(2)


def audit_jobs(dsn: str, seed: int, ids: dict[str, int]) -> tuple[Counter[str], Counter[str], list[str]]:
    """Expected vs actual statuses, and every mismatch as a line."""
    expected: Counter[str] = Counter()
    got: Counter[str] = Counter()
    problems: list[str] = []
    rows = sql(dsn, "SELECT id, status, data FROM tornado_jobs")
    for job_id, status, data in rows:
        record = data if isinstance(data, dict) else json.loads(data)
        plan = plan_for(seed, ids[job_id])
        expected[plan.expected] += 1
        got[status] += 1
        if status != plan.expected or not plan.error_matches(record.get("error")):
            problems.append(f"job {job_id} (/soak/{ids[job_id]}.mp4, {plan.category} {plan.faults}): "
                            f"{status}: {record.get('error')}")  # fmt: skip
    transitions = sql(dsn, "SELECT job_id, old_status, new_status, worker FROM soak_transitions ORDER BY seq")
    terminal_writes: Counter[str] = Counter()
    finishers: dict[str, str] = {}
    for job_id, old, new, worker in transitions:
        if old not in ("Pending", "Processing"):
            problems.append(f"job {job_id} left terminal status {old} for {new} (worker {worker})")
        if new not in ("Pending", "Processing"):
            terminal_writes[job_id] += 1
            finishers[job_id] = worker
    for job_id, n in terminal_writes.items():
        if n != 1:
            problems.append(f"job {job_id} reached a terminal status {n} times")
    problems = [f"{p} [ended by {finishers.get(p.split()[1], '?')}]" if p.startswith("job ") else p
                for p in problems]  # fmt: skip
    missing = set(ids) - set(terminal_writes)
    problems += [f"job {j}: no terminal transition recorded" for j in sorted(missing)]
    return expected, got, problems


def audit_bucket(dsn: str, endpoint: str, workdir: Path) -> tuple[list[str], int]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY_ID,
                          aws_secret_access_key=SECRET, region_name=REGION)  # fmt: skip
    objects: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        objects.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    problems: list[str] = []
    wanted: set[str] = set()
    sample = None
    for job_id, status, data in sql(dsn, "SELECT id, status, data FROM tornado_jobs"):
        record = data if isinstance(data, dict) else json.loads(data)
        if status != "Completed":
            continue
        key, size = record.get("storage_key"), record.get("file_size")
        if not isinstance(key, str):
            problems.append(f"job {job_id}: Completed without a storage key")
            continue
        wanted.add(key)
        if key not in objects:
            problems.append(f"job {job_id}: object {key} missing")
        elif objects[key] != size:
            problems.append(f"job {job_id}: object {key} is {objects[key]} bytes, the job says {size}")
        else:
            sample = sample or key
    problems += [f"object {k} belongs to no Completed job" for k in sorted(set(objects) - wanted)]
    uploads = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    problems += [f"multipart upload left open: {u['Key']}" for u in uploads]
    if sample:
        local = workdir / "sample.mp4"
        client.download_file(BUCKET, sample, str(local))
        command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(local)]
        probe = subprocess.run(command, capture_output=True, text=True)
        if probe.returncode != 0 or float(probe.stdout.strip() or 0) < 2.5:
            problems.append(f"object {sample} does not probe as ~3 s media: {probe.stderr.strip()[:200]}")
    return problems, len(objects)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 jobs, a kill every 10 s")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--kill-every", type=float)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--postgres", default=os.environ.get("TORNADO_TEST_POSTGRES")
                        or "postgresql://postgres@127.0.0.1:5432/postgres")  # fmt: skip
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    count = args.jobs or (200 if args.quick else 2000)
    kill_every = args.kill_every or (10.0 if args.quick else 30.0)
    clip = CACHE / small_media(1)[0]
    root = fresh_dir(CACHE / "work" / "soak")
    with FaultSource(clip, args.seed) as source, FailingS3(0.05, args.seed) as s3, \
            pg_database(args.postgres) as dsn:  # fmt: skip
        import boto3

        boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                     region_name=REGION).create_bucket(Bucket=BUCKET,
                     CreateBucketConfiguration={"LocationConstraint": REGION})  # fmt: skip
        s3.armed = True
        config = {"kind": "s3", "bucket": BUCKET, "access_key_id": KEY_ID, "secret_access_key": SECRET,
                  "region": REGION, "endpoint_url": s3.endpoint, "addressing_style": "path"}  # fmt: skip
        urls = [f"{source.base}/{n}.mp4" for n in range(count)]
        ids = dict(zip(asyncio.run(submit(dsn, root, urls)), range(count), strict=True))
        workers = Workers(dsn, root, config)
        started = time.monotonic()
        workers.start_all()
        try:
            finished = run_until_terminal(dsn, workers, count, kill_every, budget=max(600.0, count * 3.0))
            elapsed = time.monotonic() - started
            at_end = workers.leftovers()
            # a killed worker's folders of jobs finished elsewhere go at its next periodic sweep (every
            # 30 s): wait for it, running, then stop
            deadline = time.monotonic() + 40
            while workers.leftovers() and time.monotonic() < deadline:
                time.sleep(1)
        finally:
            codes = workers.stop_all()
        leftovers = workers.leftovers()
        expected, got, problems = audit_jobs(dsn, args.seed, ids)
        bucket_problems, objects = audit_bucket(dsn, s3.endpoint, root)
        problems += bucket_problems + [f"temporary file left: {p}" for p in leftovers]
        if not finished:
            problems.append("not every job reached a terminal status within the time budget")
        takeovers = sql(dsn, "SELECT count(*) FROM tornado_jobs WHERE lease_token > 1")[0][0]
        report(count, expected, got, problems, workers, elapsed, codes, source, s3, objects, at_end,
               takeovers)  # fmt: skip
    return 1 if problems else 0


def warm_sample(samples: list[tuple[float, float]], elapsed: float) -> tuple[float, float]:
    """The first sample past warm-up: 30 s in, or a fifth of the run if that is later."""
    warm_at = max(30.0, elapsed / 5)
    return next((s for s in samples if s[0] >= warm_at), samples[-1])


def report(count: int, expected: Counter[str], got: Counter[str], problems: list[str], workers: Workers,
           elapsed: float, codes: list[int | None], source: FaultSource, s3: FailingS3, objects: int,
           at_end: list[str], takeovers: int) -> None:  # fmt: skip
    print(f"\nsoak: {count} jobs in {elapsed:.0f} s ({count / elapsed:.2f} jobs/s), {workers.kills} SIGKILLs")
    for status in sorted(set(expected) | set(got)):
        print(f"  {status:<10} expected {expected[status]:>5}  got {got[status]:>5}")
    print(f"  source actions: {dict(sorted(source.hits.items()))}")
    print(f"  storage: {s3.writes} writes, {s3.failed} answered 503; {objects} objects in the bucket")
    print(f"  worker exit codes on SIGTERM: {codes}")
    print(
        f"  temporary files when the last job ended: {len(at_end)} {at_end[:3]} (swept after: see mismatches)"
    )
    twice = sorted(k for k, n in s3.stored.items() if n > 1)
    print(f"  objects whose PUT succeeded more than once (a job re-uploaded): {len(twice)} {twice[:5]}")
    print(
        f"  jobs claimed more than once (taken over after a kill or a lost lease, or re-queued): {takeovers}"
    )
    for i, samples in enumerate(workers.rss):
        if not samples:
            continue
        warm = warm_sample(samples, elapsed)
        end, top = samples[-1][1], max(v for _, v in samples)
        since = ", since its last restart" if i == 0 else ""
        print(f"  RSS worker {i}: {warm[1]:.0f} MB at {warm[0]:.0f} s (warm), {end:.0f} MB at the end, "
              f"max {top:.0f} MB ({len(samples)} samples{since})")  # fmt: skip
        if i and elapsed >= 120 and end - warm[1] > 50:
            problems.append(f"worker {i}: RSS grew by {end - warm[1]:.0f} MB after warm-up (> 50 MB)")
    errors = workers.log_errors()
    print(f"  ERROR lines in the worker logs: {sum(errors.values())} {dict(errors.most_common(3))}")
    print(f"  mismatches: {len(problems)}")
    for line in problems[:50]:
        print(f"    {line}")


if __name__ == "__main__":
    sys.exit(main())
