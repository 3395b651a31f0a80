"""The public job API, scoped to one tenant: what ``engine.tenant(key)`` returns, and what an ``Engine``
is for the default tenant ("").

A view holds only the engine's shared services and its tenant key, so making one costs nothing; it
shares the engine's store, scheduler and in-flight state, and it has no open, start or close of its own:
only the engine runs and stops. Every call is scoped to the view's tenant (another tenant's ids are
NotFound, never revealed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest
from .events import DEFAULT_STREAM_BUFFER
from .lifecycle import Lifecycle
from .metadata import MediaMetadata
from .models import Job, JobCreated, JobRequest, has_control_chars
from .progress import Event
from .results import BatchCreated, BatchStatus, BulkCreated, Quota, RenameResult, Usage
from .sources.book import SourceBook, SourceKind
from .sources.proxies import ProxyRule
from .states import Status
from .storage import StorageConfig
from .submit import Submitter
from .tenant_storage import TenantStorage

__all__ = ["Services", "TenantView"]


@dataclass(frozen=True, slots=True)
class Services:
    """The parts every view of one engine shares; the engine builds them once."""

    submitter: Submitter
    jobs: Lifecycle
    storage: TenantStorage
    label: str  # how the engine describes itself (no secrets): "store=..., storage=..."
    sources: SourceBook  # each tenant's cookie jar and proxy pool (sealed in the store)


class TenantView:
    """Jobs, batches, storage, usage and quota of one tenant. Get one with ``engine.tenant(key)``."""

    __slots__ = ("_owner", "_services")

    def __init__(self, services: Services, owner: str) -> None:
        self._services = services
        self._owner = owner

    def __repr__(self) -> str:
        return f"TenantView({self._services.label})"  # the key may be an API key: never shown

    @property
    def owner(self) -> str:
        """The tenant key this view acts for ("" is the default tenant)."""
        return self._owner

    def tenant(self, key: str) -> TenantView:
        """A view of the same engine scoped to tenant ``key`` (1-200 printable characters): its jobs,
        batches, usage and quota only.

        Another tenant's ids are simply not found (NotFound), never revealed."""
        if not isinstance(key, str) or not key or len(key) > 200 or has_control_chars(key):
            raise InvalidRequest("tenant key must be 1-200 printable characters", field="tenant")
        return TenantView(self._services, key)

    # -- submit ---------------------------------------------------------------------------------------

    async def create_job(
        self, request: JobRequest | dict[str, Any], *, idempotency_key: str | None = None
    ) -> JobCreated:
        """Validate and durably store one job; returns once the job is committed.

        Args:
            request: a :class:`JobRequest`, or its fields as a dict (TornadoAPI's POST /jobs body).
            idempotency_key: the same key (per tenant) returns the first call's job instead of a second.

        A playlist, channel or show URL (a podcast feed, say) raises :class:`InvalidRequest` naming
        :meth:`create_playlist`; :meth:`submit` takes either kind. Invalid fields raise ``InvalidRequest``
        naming the field, before anything is stored."""
        return await self._services.submitter.create_job(self._owner, request, idempotency_key)

    async def create_playlist(self, request: JobRequest | dict[str, Any]) -> BatchCreated:
        """A playlist, channel or show URL as a batch of one job per entry (``episode_jobs``).

        Args:
            request: the playlist's URL and the options every entry's job gets; ``paused=True`` creates
                the batch paused (rename its jobs, then :meth:`start_batch`).

        Resolved flat (one request for the feed) and capped at the engine's ``max_playlist_entries``. A
        URL that is not a playlist raises :class:`InvalidRequest` naming :meth:`create_job`."""
        return await self._services.submitter.create_playlist(self._owner, request)

    async def submit(
        self, request: JobRequest | dict[str, Any], *, idempotency_key: str | None = None
    ) -> JobCreated | BatchCreated:
        """TornadoAPI's POST /jobs: :meth:`create_playlist` for a playlist URL, else :meth:`create_job`.

        Args:
            request: as for :meth:`create_job`.
            idempotency_key: as for :meth:`create_job` (the URL is then never expanded into a batch).
        """
        return await self._services.submitter.submit(self._owner, request, idempotency_key)

    async def create_bulk(self, items: list[str | dict[str, Any]], **shared: Any) -> BulkCreated:
        """TornadoAPI's POST /jobs/bulk: up to 100 ``items`` (URLs, or ``{"url", "filename", ...}`` dicts)
        as one batch, each with the ``shared`` keyword options (JobRequest fields, e.g. ``format="mkv"``).

        Entries that fail validation are listed in ``errors``; the good ones are still created."""
        return await self._services.submitter.create_bulk(self._owner, items, shared)

    async def retry_job(self, job_id: str) -> JobCreated:
        """The Failed job ``job_id`` runs again as a new job with the same parameters (and the storage
        configured now); the old one stays as it is. Another status raises ``InvalidState``."""
        return await self._services.submitter.retry_job(self._owner, job_id)

    async def extract_metadata(self, url: str) -> MediaMetadata:
        """TornadoAPI's POST /metadata: what is behind ``url`` (title, duration, size, qualities...),
        without downloading it. Same URL rules and network policy as a job; transient failures are
        retried with the engine's RetryPolicy; others raise ``ResolveError`` whose ``kind`` says how a
        job would have ended (``retry.outcome_for``)."""
        return await self._services.submitter.extract_metadata(url)

    # -- jobs -----------------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        """The job ``job_id`` of this tenant (``job.to_api()`` is TornadoAPI's JSON), or NotFound."""
        return await self._services.jobs.get_job(self._owner, job_id)

    async def list_jobs(
        self, *, limit: int = 20, offset: int = 0, status: str | Status | None = None
    ) -> list[Job]:
        """A page of this tenant's jobs, newest first: ``limit`` (1-100) jobs after skipping ``offset``,
        only those whose ``status`` is given (a :class:`Status` or its value, e.g. ``"Completed"``)."""
        return await self._services.jobs.list_jobs(self._owner, limit, offset, status)

    async def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        """The job ``job_id`` once it reaches a terminal status; ``timeout`` seconds at most (None: no
        limit; then ``TimeoutError``). Polls the store for jobs that run in other processes."""
        return await self._services.jobs.wait(self._owner, job_id, timeout)

    def events(
        self, job_id: str | None = None, *, batch_id: str | None = None, buffer: int = DEFAULT_STREAM_BUFFER
    ) -> AsyncIterator[Event]:
        """Progress of one job (stage, bytes, speed, ETA, job-level percent) until it ends.

        Without ``job_id``: every job of this tenant (of one batch, with ``batch_id``) that this engine
        runs, from the call on, until the engine closes. A slow reader loses the oldest progress events
        beyond ``buffer`` unread ones, never a step, status or terminal event."""
        if job_id is None:
            return self._services.jobs.stream(self._owner, batch_id, buffer)
        if batch_id is not None:
            raise InvalidRequest("give a job_id or a batch_id, not both", field="batch_id")
        return self._services.jobs.events(self._owner, job_id)

    async def cancel_job(self, job_id: str) -> Job:
        """Cancel ``job_id`` if Pending, or stop it if Processing (its download or ffmpeg stops, temporary
        files and any uploaded object are removed). Cancelling twice is harmless; a finished job
        cannot be cancelled."""
        return await self._services.jobs.cancel_job(self._owner, job_id)

    async def delete_file(self, job_id: str) -> Job:
        """Remove the stored media of ``job_id``; the job then says the file is gone (``file_deleted_at``)."""
        return await self._services.jobs.delete_file(self._owner, job_id)

    # -- batches --------------------------------------------------------------------------------------

    async def get_batch(self, batch_id: str) -> BatchStatus:
        """The status and episode counts of the batch ``batch_id`` (TornadoAPI's GET /batch/{id})."""
        return await self._services.jobs.get_batch(self._owner, batch_id)

    async def rename_batch_jobs(self, batch_id: str, renames: list[dict[str, Any]]) -> RenameResult:
        """Rename jobs of the paused batch ``batch_id``: ``renames`` is ``[{"job_id", "filename"}]``;
        returns ``{updated, errors}``."""
        return await self._services.jobs.rename_batch_jobs(self._owner, batch_id, renames)

    async def start_batch(self, batch_id: str) -> BatchStatus:
        """Start the paused batch ``batch_id``: its jobs are claimed from now on. Returns its status."""
        return await self._services.jobs.start_batch(self._owner, batch_id)

    # -- usage, quota and storage ---------------------------------------------------------------------

    async def usage(self) -> Usage:
        """This tenant's job counts, stored bytes (by backend) and what is left of its quota."""
        return await self._services.jobs.usage(self._owner)

    async def set_quota(self, quota: Quota | None) -> None:
        """Set this tenant's limits to ``quota`` (a :class:`Quota`), or clear them with None."""
        await self._services.jobs.set_quota(self._owner, quota)

    async def configure_storage(
        self, config: StorageConfig | dict[str, Any], *, verify: bool = True
    ) -> dict[str, str]:
        """Keep ``config`` (``S3Config``, ``AzureBlobConfig``, ``GCSConfig``, ``OSSConfig``,
        ``LocalStorageConfig`` or its dict) as this tenant's storage, encrypted at rest. With ``verify``
        (default) a test object is written, read back through a signed URL and deleted first.
        Returns ``{kind, description, base_folder}``."""
        return await self._services.storage.configure(self._owner, config, verify=verify)

    async def remove_storage(self) -> bool:
        """Forget this tenant's storage (its files stay where they are); False if it had none."""
        return await self._services.storage.remove(self._owner)

    async def set_cookies(self, cookies: str | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Keep this tenant's cookie jar (Netscape cookies.txt text, or ``[{domain, name, value, path?,
        secure?, expires?}]``), sealed; its jobs send the cookies to matching domains only.
        Returns ``{domains, count}`` (never a value)."""
        return await self._services.sources.set_cookies(self._owner, cookies)

    async def set_proxies(self, proxies: Sequence[str], rule: ProxyRule = "round_robin") -> dict[str, Any]:
        """Keep this tenant's upstream proxy pool: ``proxies`` are ``http://``, ``https://`` or
        ``socks5://`` URLs with credentials, chosen by ``rule`` (``round_robin``, ``sticky_job``,
        ``per_host``); sealed, it replaces the engine's for this tenant's jobs. Returns the labels."""
        return await self._services.sources.set_proxies(self._owner, proxies, rule)

    async def remove_sources(self, kind: SourceKind) -> bool:
        """Forget this tenant's sources of one ``kind``: ``"cookies"`` or ``"proxies"``; False if it
        had none."""
        return await self._services.sources.remove(self._owner, kind)

    async def sources(self) -> dict[str, Any]:
        """What this tenant stored, without a secret: cookie domains, proxy labels and rule."""
        return await self._services.sources.describe(self._owner)
