"""Submitting work: one job, a playlist expanded into a batch, a bulk batch, a retry of a failed job; and
the metadata look-up that applies a job's URL rules without creating one.

Everything is validated before anything is stored (the network policy judges the source, storage and
webhook hosts; the tenant's storage quota is checked), and a submit returns once the store committed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .errors import FFmpegNotFound, InvalidRequest, InvalidState, UnresolvableHost
from .ffmpeg import locate_ffmpeg
from .lifecycle import Lifecycle
from .metadata import MediaMetadata, extract_metadata
from .models import Job, JobCreated, JobRequest, has_control_chars, name_from_title, now_ms
from .pipeline.playlist import Playlist, names_a_media_file, probe_playlist
from .results import BatchCreated, BulkCreated, BulkError, EpisodeRef
from .runtime import Runtime
from .safety import NetworkPolicy
from .sources.impersonation import check_target
from .states import Status
from .storage import StorageTarget
from .store.base import BatchRecord, JobStore
from .story import submitted
from .tenant_storage import TenantStorage, storage_endpoints
from .ytdlp import public_url

__all__ = ["MAX_BULK", "PlaylistOptions", "Submitter"]

MAX_BULK = 100


@dataclass(frozen=True)
class PlaylistOptions:
    """Whether a playlist, channel or show URL becomes a batch of its entries, and at most how many."""

    expand: bool = True
    max_entries: int = 500


class Submitter:
    """Creates jobs and batches for any tenant; :class:`TenantView` supplies the tenant (``owner``)."""

    def __init__(
        self,
        store: JobStore,
        jobs: Lifecycle,
        storage: TenantStorage,
        network: NetworkPolicy,
        runtime: Runtime,
        playlists: PlaylistOptions,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._storage = storage
        self._network = network
        self._runtime = runtime
        self._playlists = playlists

    async def create_job(
        self, owner: str, request: JobRequest | dict[str, Any], idempotency_key: str | None
    ) -> JobCreated:
        """Validate and durably store one job. A playlist URL is refused (InvalidRequest naming
        ``create_playlist``), unless playlists are not looked for (``expand_playlists=False``, or an
        idempotency key: the URL is then one job, as it was before)."""
        request = await self._prepare(owner, request, idempotency_key)
        playlist, probe_ms = await self._look(request, idempotency_key)
        if playlist is not None:
            raise InvalidRequest(
                f"This URL is a playlist of {len(playlist.entries)} entries: create_playlist() (or "
                "submit()) makes a batch of one job per entry",
                field="url",
            )
        return await self._insert_job(owner, request, idempotency_key, probe_ms)

    async def create_playlist(self, owner: str, request: JobRequest | dict[str, Any]) -> BatchCreated:
        """A playlist, channel or show URL as a batch of one job per entry; any other URL is refused."""
        request = await self._prepare(owner, request, None)
        playlist = await self._probe(request)
        if playlist is None:
            raise InvalidRequest("This URL is not a playlist, channel or show: use create_job()", field="url")
        return await self._create_playlist_batch(owner, request, playlist)

    async def submit(
        self, owner: str, request: JobRequest | dict[str, Any], idempotency_key: str | None
    ) -> JobCreated | BatchCreated:
        """TornadoAPI's POST /jobs: one job, or for a playlist URL a batch of one job per entry."""
        request = await self._prepare(owner, request, idempotency_key)
        playlist, probe_ms = await self._look(request, idempotency_key)
        if playlist is not None:
            return await self._create_playlist_batch(owner, request, playlist)
        return await self._insert_job(owner, request, idempotency_key, probe_ms)

    async def _prepare(
        self, owner: str, request: JobRequest | dict[str, Any], idempotency_key: str | None
    ) -> JobRequest:
        """The request validated, its hosts allowed and the tenant's storage quota not used up."""
        if not isinstance(request, JobRequest):
            request = JobRequest.from_dict(request)
        if idempotency_key is not None and (
            not 0 < len(idempotency_key) <= 200 or has_control_chars(idempotency_key)
        ):
            raise InvalidRequest(
                "idempotency_key must be 1-200 printable characters", field="idempotency_key"
            )
        await self._check_urls(request)
        await self._jobs.check_storage_quota(owner)
        return request

    async def _probe(self, request: JobRequest) -> Playlist | None:
        return await probe_playlist(
            request.url, max_entries=self._playlists.max_entries,
            socket_timeout=self._runtime.options.socket_timeout, executor=self._runtime.executor,
            proxy=self._runtime.proxy_url, bounds=self._runtime.options.resolve_bounds,
            slot=self._runtime.resolve_slot,
        )  # fmt: skip

    async def _look(
        self, request: JobRequest, idempotency_key: str | None
    ) -> tuple[Playlist | None, int | None]:
        """The playlist behind the URL, if one is looked for, and how long the look took (ms). A URL that
        names a media file is one item: not looked at (a create_job then needs no yt-dlp)."""
        if not self._playlists.expand or idempotency_key is not None or names_a_media_file(request.url):
            return None, None
        started = time.monotonic()
        playlist = await self._probe(request)
        return playlist, int((time.monotonic() - started) * 1000)

    async def _insert_job(
        self, owner: str, request: JobRequest, idempotency_key: str | None, probe_ms: int | None
    ) -> JobCreated:
        job = self._new_job(owner, request)
        job.probe_duration_ms = probe_ms
        stored = await self._store.insert_jobs([job], None, idempotency_key)
        if stored[0].id == job.id:  # not an earlier job found by its idempotency key
            submitted(stored)
        self._runtime.submitted([stored[0].id])
        return JobCreated(job_id=stored[0].id)

    async def _check_urls(self, request: JobRequest) -> None:
        """SSRF guard at the boundary: the source and webhook hosts must resolve to allowed addresses
        (one hop to a thread for all of a request's hosts)."""
        await asyncio.get_running_loop().run_in_executor(self._runtime.executor, self._check_hosts, request)
        if request.impersonate:  # the [impersonate] extra installed before the job is stored
            check_target(request.impersonate)

    def _check_hosts(self, request: JobRequest) -> None:
        """Blocking (DNS). A source host that does not resolve (now) is no bad request: the network guard
        judges every address when the source is fetched, and the DNS failure ends the job as a network
        failure."""
        check = self._network.check_url
        with contextlib.suppress(UnresolvableHost):
            check(request.url, "url")
        if request.storage:  # a job's own storage: its extra installed before the job is stored
            StorageTarget(request.storage).check()
            for endpoint in storage_endpoints(request.storage):
                check(endpoint, "storage")
        if request.webhook_url:
            check(request.webhook_url, "webhook_url")

    def _check_each(self, requests: list[JobRequest]) -> list[InvalidRequest | None]:
        """Blocking: :meth:`_check_hosts` for each request, its refusal or None."""
        problems: list[InvalidRequest | None] = []
        for request in requests:
            try:
                self._check_hosts(request)
                if request.impersonate:
                    check_target(request.impersonate)
                problems.append(None)
            except InvalidRequest as exc:
                problems.append(exc)
        return problems

    def _new_job(
        self, owner: str, request: JobRequest, batch_id: str | None = None, title: str | None = None
    ) -> Job:
        return Job(
            id=_new_id(), url=public_url(request.url), request=request, owner=owner,
            folder=request.folder, batch_id=batch_id, title=title,
            storage_sealed=self._storage.seal(request.storage) if request.storage else None,
        )  # fmt: skip

    async def _create_playlist_batch(
        self, owner: str, request: JobRequest, playlist: Playlist
    ) -> BatchCreated:
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
            jobs.append(self._new_job(owner, JobRequest(**fields), batch_id, entry.title))
        record = BatchRecord(
            batch_id, owner, now_ms(), request.paused, playlist.url, folder, [j.id for j in jobs],
            webhook_url=request.webhook_url,
        )  # fmt: skip
        await self._store.insert_jobs(jobs, record)
        submitted(jobs, batch_id)
        self._runtime.submitted(record.job_ids)
        return BatchCreated(
            batch_id=batch_id,
            total_episodes=len(jobs),
            episode_jobs=record.job_ids,
            episodes=[EpisodeRef(job_id=j.id, url=j.url, title=j.title) for j in jobs],
            paused=request.paused,
        )

    async def create_bulk(
        self, owner: str, items: list[str | dict[str, Any]], shared: dict[str, Any]
    ) -> BulkCreated:
        """Up to MAX_BULK URLs (or dicts) with shared options as one batch; bad entries go to ``errors``."""
        if not isinstance(items, list) or not items:
            raise InvalidRequest("urls must be a non-empty list", field="urls")
        if len(items) > MAX_BULK:
            raise InvalidRequest(f"Too many URLs (max {MAX_BULK})", field="urls")
        if "url" in shared:
            raise InvalidRequest("shared options must not contain 'url'", field="url")
        await self._jobs.check_storage_quota(owner)
        batch_id = _new_id()
        jobs, errors, valid = [], [], []
        for index, item in enumerate(items):
            fields = {**shared, **(item if isinstance(item, dict) else {"url": item})}
            try:
                valid.append((index, fields, JobRequest(**fields)))
            except InvalidRequest as exc:
                errors.append(_bulk_error(index, fields, exc))
        # every entry's hosts in one hop to a thread, not one per entry
        problems = await asyncio.get_running_loop().run_in_executor(
            self._runtime.executor, self._check_each, [request for _, _, request in valid]
        )
        for (index, fields, request), problem in zip(valid, problems, strict=True):
            if problem is None:
                jobs.append(self._new_job(owner, request, batch_id))
            else:
                errors.append(_bulk_error(index, fields, problem))
        errors.sort(key=lambda error: error.index)
        if jobs:
            paused = bool(jobs[0].request.paused)
            record = BatchRecord(batch_id, owner, now_ms(), paused, None, shared.get("folder"),
                                 [j.id for j in jobs], webhook_url=jobs[0].request.webhook_url)  # fmt: skip
            await self._store.insert_jobs(jobs, record)
            submitted(jobs, batch_id)
            self._runtime.submitted(record.job_ids)
        return BulkCreated(
            batch_id=batch_id if jobs else None,
            total_jobs=len(jobs),
            job_ids=[j.id for j in jobs],
            errors=errors,
        )

    async def retry_job(self, owner: str, job_id: str) -> JobCreated:
        """A Failed job runs again as a new job with the same parameters; the old one stays as it is."""
        job = await self._jobs.get_job(owner, job_id)
        if job.status is not Status.FAILED:
            raise InvalidState(f"Only Failed jobs can be retried (this one is {job.status.value})")
        await self._jobs.check_storage_quota(owner)
        new = self._new_job(owner, job.request)  # not in the old batch: its counts stay as they were
        new.storage_sealed = job.storage_sealed  # the request's own storage, if it had one
        await self._store.insert_jobs([new])
        submitted([new])
        self._runtime.submitted([new.id])
        return JobCreated(job_id=new.id)

    async def extract_metadata(self, url: str) -> MediaMetadata:
        """What is behind ``url``, under the same URL rules, network policy and retries as a job."""
        request = JobRequest(url=url)
        await self._check_urls(request)
        return await extract_metadata(
            request.url,
            socket_timeout=self._runtime.options.socket_timeout,
            proxy=self._runtime.proxy_url or None,
            retry=self._runtime.options.retry,
            executor=self._runtime.executor,
            bounds=self._runtime.options.resolve_bounds,
            slot=self._runtime.resolve_slot,
            ffprobe=self._ffprobe(),
            sources=self._runtime.sources.engine_sources(request.url),
        )

    def _ffprobe(self) -> str | None:
        """The ffprobe that reads a plain file's head for metadata; without one, metadata goes without."""
        try:
            return (self._runtime.options.ffmpeg or locate_ffmpeg()).ffprobe
        except FFmpegNotFound:
            return None


def _bulk_error(index: int, fields: dict[str, Any], exc: InvalidRequest) -> BulkError:
    url = fields.get("url") if isinstance(fields.get("url"), str) else None
    return BulkError(index=index, url=url, error=exc.message)


# a file name's 255 bytes, less the extension (".webm") and a " (n)" for a title the show repeats
_EPISODE_NAME_BYTES = 240


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, at a character boundary."""
    return text.encode("utf-8", "ignore")[:limit].decode("utf-8", "ignore")


def _name_from_long_title(title: str | None) -> str | None:
    """The title as a file name, trimmed to fit rather than dropped (normalizing may lengthen it)."""
    for limit in (_EPISODE_NAME_BYTES, _EPISODE_NAME_BYTES // 2):
        if name := name_from_title(_fit(title, limit) if title else None):
            return name
    return None


def _episode_filename(title: str | None, index: int, taken: set[str]) -> str:
    base = _name_from_long_title(title) or f"episode-{index + 1}"
    name, n = base, 2
    while name.casefold() in taken:  # two episodes with one title must not overwrite each other
        name, n = f"{base} ({n})", n + 1
    taken.add(name.casefold())
    return name


def _new_id() -> str:
    return str(uuid.uuid4())
