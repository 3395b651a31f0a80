"""Engine operations after submit: cancel, retry, delete a file, bulk submits, batches, usage, quotas.

A mixin of :class:`tornado_engine.engine.Engine`, kept apart so each file stays about one thing. Every
operation is scoped to the engine view's tenant: another tenant's id is NotFound, never revealed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

from .errors import InvalidRequest, InvalidState, NotFound, QuotaExceeded
from .models import Job, JobCreated, JobRequest, name_from_title, now_ms, sanitize_filename
from .outbox import job_messages
from .results import (
    BatchCreated,
    BatchStatus,
    BulkCreated,
    BulkError,
    EpisodeRef,
    Quota,
    RenameResult,
    Usage,
    batch_status,
)
from .states import Status
from .storage import StorageTarget
from .store.base import BatchRecord, JobStore

if TYPE_CHECKING:
    from .pipeline.playlist import Playlist
    from .runner import JobRunner

__all__ = ["LifecycleMixin"]

MAX_BULK = 100


def _episode_filename(title: str | None, index: int, taken: set[str]) -> str:
    base = name_from_title(title) or f"episode-{index + 1}"
    name, n = base, 2
    while name.casefold() in taken:  # two episodes with one title must not overwrite each other
        name, n = f"{base} ({n})", n + 1
    taken.add(name.casefold())
    return name


class LifecycleMixin:
    store: JobStore
    storage: StorageTarget
    _owner: str
    _runner: JobRunner | None

    if TYPE_CHECKING:  # provided by Engine and StorageMixin

        def _new_job(
            self, request: JobRequest, batch_id: str | None = None, title: str | None = None
        ) -> Job: ...

        def _wake(self) -> None: ...

        async def _check_urls(self, request: JobRequest) -> None: ...

        async def _storage_of_job(self, job: Job) -> StorageTarget: ...

    async def _job(self, job_id: str) -> Job:
        job = await self.store.get_job(job_id, self._owner)
        if job is None:
            raise NotFound(f"Job not found: {job_id}")
        return job

    # -- batches ------------------------------------------------------------------------------------

    async def _create_playlist_batch(self, request: JobRequest, playlist: Playlist) -> BatchCreated:
        if not playlist.entries:
            raise InvalidRequest("The playlist has no entries that can be downloaded", field="url")
        folder = request.folder or name_from_title(playlist.title)
        batch_id = _new_id()
        taken: set[str] = set()
        jobs = []
        for index, entry in enumerate(playlist.entries):
            fields = {**request.model_dump(exclude_none=True), "storage": request.storage}
            fields.update(url=entry.url, folder=folder, paused=False)
            if request.filename is None:
                fields["filename"] = _episode_filename(entry.title, index, taken)
            jobs.append(self._new_job(JobRequest(**fields), batch_id, entry.title))
        record = BatchRecord(
            batch_id, self._owner, now_ms(), request.paused, playlist.url, folder, [j.id for j in jobs],
            webhook_url=request.webhook_url,
        )  # fmt: skip
        await self.store.insert_jobs(jobs, record)
        self._wake()
        return BatchCreated(
            batch_id=batch_id,
            total_episodes=len(jobs),
            episode_jobs=record.job_ids,
            episodes=[EpisodeRef(job_id=j.id, url=j.url, title=j.title) for j in jobs],
            paused=request.paused,
        )

    async def create_bulk(self, items: list[str | dict[str, Any]], **shared: Any) -> BulkCreated:
        """Up to 100 URLs (or ``{"url", "filename", ...}`` dicts) with shared options, one batch.

        Entries that fail validation are listed in ``errors``; the good ones are still created."""
        if not isinstance(items, list) or not items:
            raise InvalidRequest("urls must be a non-empty list", field="urls")
        if len(items) > MAX_BULK:
            raise InvalidRequest(f"Too many URLs (max {MAX_BULK})", field="urls")
        if "url" in shared:
            raise InvalidRequest("shared options must not contain 'url'", field="url")
        await self._check_storage_quota()
        batch_id = _new_id()
        jobs, errors = [], []
        for index, item in enumerate(items):
            fields = {**shared, **(item if isinstance(item, dict) else {"url": item})}
            try:
                request = JobRequest(**fields)
                await self._check_urls(request)
                jobs.append(self._new_job(request, batch_id))
            except InvalidRequest as exc:
                url = fields.get("url") if isinstance(fields.get("url"), str) else None
                errors.append(BulkError(index=index, url=url, error=exc.message))
        if jobs:
            paused = bool(jobs[0].request.paused)
            record = BatchRecord(batch_id, self._owner, now_ms(), paused, None, shared.get("folder"),
                                 [j.id for j in jobs], webhook_url=jobs[0].request.webhook_url)  # fmt: skip
            await self.store.insert_jobs(jobs, record)
            self._wake()
        return BulkCreated(
            batch_id=batch_id if jobs else None,
            total_jobs=len(jobs),
            job_ids=[j.id for j in jobs],
            errors=errors,
        )

    async def _batch(self, batch_id: str) -> BatchRecord:
        batch = await self.store.get_batch(batch_id, self._owner)
        if batch is None:
            raise NotFound(f"Batch not found: {batch_id}")
        return batch

    async def get_batch(self, batch_id: str) -> BatchStatus:
        batch = await self._batch(batch_id)
        return BatchStatus(
            id=batch.id,
            show_url=batch.show_url,
            status=batch_status(len(batch.job_ids), batch.completed, batch.failed),
            folder=batch.folder,
            total_episodes=len(batch.job_ids),
            completed_episodes=batch.completed,
            failed_episodes=batch.failed,
            episode_jobs=batch.job_ids,
            paused=batch.paused,
        )

    async def rename_batch_jobs(self, batch_id: str, renames: list[dict[str, Any]]) -> RenameResult:
        """Rename jobs of a paused batch: ``[{"job_id", "filename"}]`` -> ``{updated, errors}``."""
        batch = await self._batch(batch_id)
        if not batch.paused:
            raise InvalidState("Jobs can only be renamed while the batch is paused")
        members = set(batch.job_ids)
        updated, errors = 0, []
        for rename in renames:
            job_id = rename.get("job_id") if isinstance(rename, dict) else None
            if not isinstance(job_id, str) or job_id not in members:
                errors.append(f"{job_id}: not a job of this batch")
                continue
            try:
                filename = sanitize_filename(str(rename.get("filename") or ""))
            except ValueError as exc:
                errors.append(f"{job_id}: {exc}")
                continue
            job = await self._job(job_id)
            renamed = dataclasses.replace(job, request=job.request.model_copy(update={"filename": filename}))
            if await self.store.update_pending(renamed):
                updated += 1
            else:
                errors.append(f"{job_id}: the job is no longer pending")
        return RenameResult(updated=updated, errors=errors)

    async def start_batch(self, batch_id: str) -> BatchStatus:
        await self._batch(batch_id)
        await self.store.set_batch_paused(batch_id, False)
        self._wake()
        return await self.get_batch(batch_id)

    # -- one job ------------------------------------------------------------------------------------

    async def cancel_job(self, job_id: str) -> Job:
        """Cancel a Pending job, or stop a Processing one (its download or ffmpeg stops, temporary
        files and any uploaded object are removed). Cancelling twice is harmless; a finished job
        cannot be cancelled."""
        job = await self._job(job_id)
        if job.status is Status.CANCELLED:
            return job
        if job.is_terminal:
            raise InvalidState(f"Job already finished ({job.status.value}); nothing to cancel")
        finished = dataclasses.replace(
            job, status=Status.CANCELLED, error="Cancelled by request", finished_at=now_ms()
        )
        after = await self.store.request_cancel(job_id, self._owner, finished, job_messages(finished))
        if after is None:
            raise NotFound(f"Job not found: {job_id}")
        if after.status is Status.PROCESSING and self._runner is not None:
            self._runner.cancel(job_id)  # running here: stop now; elsewhere its heartbeat sees the flag
        elif after.status.value in ("Completed", "Failed", "Warning", "Skipped"):
            raise InvalidState(f"Job already finished ({after.status.value}); nothing to cancel")
        return after

    async def retry_job(self, job_id: str) -> JobCreated:
        """A Failed job runs again as a new job with the same parameters; the old one stays as it is."""
        job = await self._job(job_id)
        if job.status is not Status.FAILED:
            raise InvalidState(f"Only Failed jobs can be retried (this one is {job.status.value})")
        await self._check_storage_quota()
        new = self._new_job(job.request)  # not in the old batch: its counts stay as they were
        new.storage_sealed = job.storage_sealed  # the request's own storage, if it had one
        await self.store.insert_jobs([new])
        self._wake()
        return JobCreated(job_id=new.id)

    async def delete_file(self, job_id: str) -> Job:
        """Remove the stored media; the job then says the file is gone (``file_deleted_at``)."""
        job = await self._job(job_id)
        if job.file_deleted_at is not None:
            return job
        if job.status is not Status.COMPLETED or not job.storage_key:
            raise InvalidState(f"Job has no stored file ({job.status.value})")
        target = await self._storage_of_job(job)
        for key in (job.storage_key, *job.side_keys):  # the media, then its subtitles and thumbnail
            await asyncio.get_running_loop().run_in_executor(None, target.delete, key)
        job.file_deleted_at = now_ms()
        job.s3_url = None
        job.subtitle_url = None
        job.thumbnail_url = None
        await self.store.update_finished(job)
        return job

    # -- usage and quotas -----------------------------------------------------------------------------

    async def _quota_of(self, owner: str) -> Quota | None:
        data = await self.store.get_tenant(owner)
        quota = (data or {}).get("quota")
        return Quota(**quota) if isinstance(quota, dict) else None

    async def set_quota(self, quota: Quota | None) -> None:
        """Set (or clear, with None) this tenant's limits."""
        data = dict(await self.store.get_tenant(self._owner) or {})
        data["quota"] = quota.model_dump(exclude_none=True) if quota else None
        await self.store.put_tenant(self._owner, data)

    async def usage(self) -> Usage:
        totals = await self.store.usage(self._owner)
        return Usage.build(totals.counts, totals.stored_bytes, totals.reserved_bytes,
                           await self._quota_of(self._owner), totals.by_backend)  # fmt: skip

    async def _check_storage_quota(self) -> None:
        quota = await self._quota_of(self._owner)
        if quota is None or quota.storage_bytes is None:
            return
        totals = await self.store.usage(self._owner)
        if totals.stored_bytes + totals.reserved_bytes >= quota.storage_bytes:
            raise QuotaExceeded("Storage quota exceeded")


def _new_id() -> str:
    return str(uuid.uuid4())
