"""A tenant's jobs after submit: look them up, wait for or follow them, cancel, delete a stored file;
batches (status, renames while paused, start); usage and quotas.

Every operation takes the tenant (``owner``) it acts for: another tenant's id is NotFound, never revealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from .errors import InvalidRequest, InvalidState, NotFound, QuotaExceeded
from .models import Job, now_ms, sanitize_filename
from .outbox import job_messages
from .progress import Event, job_percent
from .results import BatchStatus, Quota, RenameResult, Usage, batch_status
from .runtime import Runtime
from .scheduler import is_dead_local_owner
from .states import TERMINAL, Status
from .store.base import BatchRecord, JobStore
from .story import cancelled_before_start
from .sweep import remove_job_folders
from .tenant_storage import TenantStorage

__all__ = ["Lifecycle"]

_MAX_LIST = 100


class Lifecycle:
    """Job and batch operations after submit, for any tenant; :class:`TenantView` supplies the tenant."""

    def __init__(self, store: JobStore, storage: TenantStorage, runtime: Runtime) -> None:
        self._store = store
        self._storage = storage
        self._runtime = runtime

    # -- reading and following ------------------------------------------------------------------------

    async def get_job(self, owner: str, job_id: str) -> Job:
        """``owner``'s job ``job_id``, else NotFound."""
        job = await self._store.get_job(job_id, owner)
        if job is None:
            raise NotFound(f"Job not found: {job_id}")
        return job

    async def list_jobs(self, owner: str, limit: int, offset: int, status: str | Status | None) -> list[Job]:
        """A page of ``owner``'s jobs, optionally of one status."""
        if not 1 <= limit <= _MAX_LIST:
            raise InvalidRequest(f"limit must be between 1 and {_MAX_LIST}", field="limit")
        if offset < 0:
            raise InvalidRequest("offset must not be negative", field="offset")
        wanted = None
        if status is not None:
            try:
                wanted = Status(status)
            except ValueError:
                choices = ", ".join(s.value for s in Status)
                raise InvalidRequest(f"status must be one of: {choices}", field="status") from None
        return await self._store.list_jobs(owner, limit, offset, wanted)

    async def wait(self, owner: str, job_id: str, timeout: float | None) -> Job:
        """The job once it is terminal: woken by this process's events, polling for other processes'."""
        with self._runtime.hub.watch(job_id) as done:
            async with asyncio.timeout(timeout):
                while True:
                    job = await self.get_job(owner, job_id)
                    if job.is_terminal:
                        return job
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), self._runtime.options.poll_interval)

    async def events(self, owner: str, job_id: str) -> AsyncIterator[Event]:
        """The job's events from its stored state on, until a terminal one. It listens before it reads the
        store, so an event published meanwhile is not lost; after a quiet ``poll_interval`` it reads the
        store again, so a job another process runs (or one whose end was missed here) moves and ends too."""
        hub = self._runtime.hub
        with hub.listen(job_id) as queue:
            job = await self.get_job(owner, job_id)
            event = (None if job.is_terminal else hub.latest(job_id)) or _stored_state(job)
            while True:
                yield event
                if event.status in TERMINAL:
                    return
                event = await self._next_event(owner, job_id, queue, event)

    async def _next_event(self, owner: str, job_id: str, queue: asyncio.Queue[Event], shown: Event) -> Event:
        """The next event published here, or the stored state once it differs from what was ``shown``."""
        while True:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(queue.get(), self._runtime.options.poll_interval)
            stored = _stored_state(await self.get_job(owner, job_id))
            if (stored.status, stored.step, stored.percent) != (shown.status, shown.step, shown.percent):
                return stored

    def stream(self, owner: str | None, batch_id: str | None, buffer: int) -> AsyncIterator[Event]:
        """Every job's events from now on (``owner``'s only, unless None; one batch's, if given), as
        this engine runs them, until it closes; at most ``buffer`` unread progress events are kept."""
        if buffer < 1:
            raise InvalidRequest("buffer must be at least 1", field="buffer")

        def accept(event: Event) -> bool:
            return (owner is None or event.owner == owner) and (
                batch_id is None or event.batch_id == batch_id
            )

        return self._runtime.hub.stream(accept, buffer)

    # -- batches --------------------------------------------------------------------------------------

    async def _batch(self, owner: str, batch_id: str) -> BatchRecord:
        batch = await self._store.get_batch(batch_id, owner)
        if batch is None:
            raise NotFound(f"Batch not found: {batch_id}")
        return batch

    async def get_batch(self, owner: str, batch_id: str) -> BatchStatus:
        """The batch's progress, counted from its jobs."""
        batch = await self._batch(owner, batch_id)
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

    async def rename_batch_jobs(
        self, owner: str, batch_id: str, renames: list[dict[str, Any]]
    ) -> RenameResult:
        """Rename jobs of a paused batch: ``[{"job_id", "filename"}]`` -> ``{updated, errors}``."""
        batch = await self._batch(owner, batch_id)
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
            job = await self.get_job(owner, job_id)
            renamed = dataclasses.replace(job, request=job.request.model_copy(update={"filename": filename}))
            if await self._store.update_pending(renamed):
                updated += 1
            else:
                errors.append(f"{job_id}: the job is no longer pending")
        return RenameResult(updated=updated, errors=errors)

    async def start_batch(self, owner: str, batch_id: str) -> BatchStatus:
        """Un-pause a batch: its jobs become claimable."""
        await self._batch(owner, batch_id)
        await self._store.set_batch_paused(batch_id, False)
        self._runtime.wake()
        return await self.get_batch(owner, batch_id)

    # -- one job --------------------------------------------------------------------------------------

    async def cancel_job(self, owner: str, job_id: str) -> Job:
        """Cancel a Pending job or stop a Processing one; twice is harmless; a finished one is refused."""
        job = await self.get_job(owner, job_id)
        if job.status is Status.CANCELLED:
            return job
        if job.is_terminal:
            raise InvalidState(f"Job already finished ({job.status.value}); nothing to cancel")
        after = await self._request_cancel(owner, job)
        # running here: stop now; elsewhere its heartbeat sees the flag, unless its engine is provably
        # gone (a process on this host that no longer runs): then it is re-queued and cancelled at once
        if (
            after.status is Status.PROCESSING
            and not self._runtime.cancel(job_id)
            and job_id in await self._store.requeue_expired(is_dead_local_owner)
        ):
            after = await self._request_cancel(owner, job)
        if after.status.value in ("Completed", "Failed", "Warning", "Skipped"):
            raise InvalidState(f"Job already finished ({after.status.value}); nothing to cancel")
        if after.status is Status.CANCELLED:  # no attempt runs it: its folders go, in whatever slot
            cancelled_before_start(after)
            data_dir = self._runtime.options.data_dir
            await asyncio.get_running_loop().run_in_executor(
                None, remove_job_folders, data_dir, job.id, job.checkpoint
            )
        return after

    async def _request_cancel(self, owner: str, job: Job) -> Job:
        finished = dataclasses.replace(
            job, status=Status.CANCELLED, error="Cancelled by request", finished_at=now_ms()
        )
        after = await self._store.request_cancel(job.id, owner, finished, job_messages(finished))
        if after is None:
            raise NotFound(f"Job not found: {job.id}")
        return after

    async def delete_file(self, owner: str, job_id: str) -> Job:
        """Remove the stored media (and side files); the job then records ``file_deleted_at``."""
        job = await self.get_job(owner, job_id)
        if job.file_deleted_at is not None:
            return job
        if job.status is not Status.COMPLETED or not job.storage_key:
            raise InvalidState(f"Job has no stored file ({job.status.value})")
        target = await self._storage.of_stored_file(job)
        for key in (job.storage_key, *job.side_keys):  # the media, then its subtitles and thumbnail
            await asyncio.get_running_loop().run_in_executor(None, target.delete, key)
        job.file_deleted_at = now_ms()
        job.s3_url = None
        job.subtitle_url = None
        job.thumbnail_url = None
        await self._store.update_finished(job)
        return job

    # -- usage and quotas -----------------------------------------------------------------------------

    async def quota_of(self, owner: str) -> Quota | None:
        """``owner``'s limits, if any were set."""
        data = await self._store.get_tenant(owner)
        quota = (data or {}).get("quota")
        return Quota(**quota) if isinstance(quota, dict) else None

    async def set_quota(self, owner: str, quota: Quota | None) -> None:
        """Set (or clear, with None) ``owner``'s limits."""
        data = dict(await self._store.get_tenant(owner) or {})
        data["quota"] = quota.model_dump(exclude_none=True) if quota else None
        await self._store.put_tenant(owner, data)

    async def usage(self, owner: str) -> Usage:
        """``owner``'s job counts, stored and reserved bytes, what remains of its quota, and the temporary
        space its jobs running in this process take."""
        totals = await self._store.usage(owner)
        return Usage.build(totals.counts, totals.stored_bytes, totals.reserved_bytes,
                           await self.quota_of(owner), totals.by_backend,
                           temp=await self._runtime.temp_bytes(owner),
                           host_waits=totals.host_waits)  # fmt: skip

    async def check_storage_quota(self, owner: str) -> None:
        """Refuse a submit (QuotaExceeded) once ``owner``'s stored and reserved bytes reach its quota."""
        quota = await self.quota_of(owner)
        if quota is None or quota.storage_bytes is None:
            return
        totals = await self._store.usage(owner)
        if totals.stored_bytes + totals.reserved_bytes >= quota.storage_bytes:
            raise QuotaExceeded("Storage quota exceeded")


def _stored_state(job: Job) -> Event:
    """The job as the store has it, as an event (with its worker's stored progress while it runs)."""
    live = job.live if job.live is not None and job.live.step is job.step and not job.is_terminal else None
    if live is None:
        percent = 100.0 if job.is_terminal else job_percent(job.step, 0)
        return Event(job.id, job.status, job.step, percent, message=job.error, batch_id=job.batch_id,
                     owner=job.owner)  # fmt: skip
    return Event(job.id, job.status, job.step, live.percent, live.stage_percent, live.bytes_done,
                 live.bytes_total, live.speed_bps, live.eta_seconds, batch_id=job.batch_id,
                 owner=job.owner)  # fmt: skip
