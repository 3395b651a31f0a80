"""Per-tenant storage: TornadoAPI's POST/DELETE /user/s3, /user/blob, /user/gcs, /user/oss, /user/bucket.

A configuration is verified (a test object written, read back through a signed URL, deleted) before it is
accepted, its endpoint must pass the network policy like any URL the engine fetches, and it is kept in the
store encrypted (:class:`SecretBox`). Jobs of the tenant then go there; without one, to the engine's.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import InvalidRequest
from .models import Job
from .safety import NetworkPolicy
from .secrets import SecretBox
from .storage import StorageConfig, StorageTarget, open_config, parse_storage_config, seal_config
from .store.base import JobStore

__all__ = ["FRESH_SECONDS", "TenantStorage", "storage_endpoints"]

# TornadoAPI's endpoint names, /user/bucket being the legacy name of /user/s3
_KIND_ALIASES = {"bucket": "s3", "blob": "azure", "s3": "s3", "azure": "azure", "gcs": "gcs", "oss": "oss",
                 "local": "local"}  # fmt: skip


# How long a tenant's storage, as read from the store, stands for its next jobs' attempts in this process
# (a store read per attempt was one in six of a job's store calls). A change made here applies at once; one
# made by another process within a second at most (storage changes are rare admin calls).
FRESH_SECONDS = 1.0
_MAX_OWNERS = 1024  # entries past their second are dropped once more tenants than this were looked up


def storage_endpoints(config: StorageConfig) -> list[str]:
    """The URLs a storage config makes the engine connect to (judged by the network policy)."""
    found = [getattr(config, name, None) for name in ("endpoint_url", "endpoint")]
    return [url for url in found if isinstance(url, str) and url]


class TenantStorage:
    """Each tenant's storage: kept sealed in the store, resolved (and cached) for the jobs that need it."""

    def __init__(
        self,
        store: JobStore,
        default: StorageTarget,
        network: NetworkPolicy,
        executor: Executor,
        secrets_dir: Path,
    ) -> None:
        self._store = store
        self._default = default
        self._network = network
        self._executor = executor
        self._secrets_dir = secrets_dir
        self._secret_box: SecretBox | None = None
        self._targets: dict[str, tuple[str, StorageTarget]] = {}  # owner or sealed config -> (sealed, target)
        self._read: dict[str, tuple[float, str | None]] = {}  # owner -> (monotonic read time, sealed)

    @property
    def _box(self) -> SecretBox:
        """Encrypts tenants' storage credentials at rest; key from $TORNADO_SECRET_KEY or the data dir."""
        if self._secret_box is None:
            self._secret_box = SecretBox.from_env(self._secrets_dir)
        return self._secret_box

    def seal(self, config: StorageConfig) -> str:
        """``config`` encrypted for the store (a job's own storage travels with the job like this)."""
        return seal_config(self._box, config)

    async def configure(
        self, owner: str, config: StorageConfig | dict[str, Any], *, verify: bool = True
    ) -> dict[str, str]:
        """Verify and keep ``owner``'s storage; returns ``{kind, description, base_folder}``."""
        if isinstance(config, dict):
            config = _parse(config)
        loop = asyncio.get_running_loop()
        for endpoint in storage_endpoints(config):
            await loop.run_in_executor(self._executor, self._network.check_url, endpoint, "storage")
        target = StorageTarget(config)
        await loop.run_in_executor(self._executor, target.check)  # its extra installed, even unverified
        if verify:
            await loop.run_in_executor(self._executor, lambda: target.verify())
        data = dict(await self._store.get_tenant(owner) or {})
        data["storage"] = self.seal(config)
        await self._store.put_tenant(owner, data)
        self._targets.pop(owner, None)
        self._read.pop(owner, None)
        return {"kind": config.kind, "description": config.describe(), "base_folder": config.base_folder}

    async def remove(self, owner: str) -> bool:
        """Forget ``owner``'s storage (its files stay where they are); False if it had none."""
        data = dict(await self._store.get_tenant(owner) or {})
        had = data.pop("storage", None) is not None
        await self._store.put_tenant(owner, data)
        self._targets.pop(owner, None)
        self._read.pop(owner, None)
        return had

    async def _sealed_of(self, owner: str, fresh: bool) -> str | None:
        """``owner``'s sealed storage config, read again once :data:`FRESH_SECONDS` old (or if ``fresh``)."""
        now = time.monotonic()
        cached = self._read.get(owner)
        if cached is not None and not fresh and now - cached[0] < FRESH_SECONDS:
            return cached[1]
        data = await self._store.get_tenant(owner)
        sealed = (data or {}).get("storage")
        if len(self._read) >= _MAX_OWNERS:
            self._read = {k: v for k, v in self._read.items() if now - v[0] < FRESH_SECONDS}
        self._read[owner] = (now, sealed if isinstance(sealed, str) else None)
        return self._read[owner][1]

    async def _of_owner(self, owner: str, fresh: bool = False) -> StorageTarget:
        """Where ``owner``'s jobs go now: its own storage, else the engine's."""
        sealed = await self._sealed_of(owner, fresh)
        if sealed is None:
            return self._default
        cached = self._targets.get(owner)
        if cached is None or cached[0] != sealed:  # built once: backends keep connection pools
            cached = (sealed, StorageTarget(open_config(self._box, sealed)))
            self._targets[owner] = cached
        return cached[1]

    def _sealed_target(self, sealed: str) -> StorageTarget:
        cached = self._targets.get(sealed)
        if cached is None:  # built once: backends keep connection pools
            cached = (sealed, StorageTarget(open_config(self._box, sealed)))
            self._targets[sealed] = cached
        return cached[1]

    async def for_job(self, job: Job) -> StorageTarget:
        """Where a job's file goes: the request's own storage, else its tenant's, else the engine's."""
        if job.storage_sealed:
            return self._sealed_target(job.storage_sealed)
        return await self._of_owner(job.owner)

    async def of_stored_file(self, job: Job) -> StorageTarget:
        """The target a finished job's file is in (for delete_file)."""
        if job.storage_sealed:
            return self._sealed_target(job.storage_sealed)
        tenant = await self._of_owner(job.owner, fresh=True)
        if job.storage_url in (None, tenant.url):
            return tenant
        if job.storage_url == self._default.url:
            return self._default
        if job.storage_url.startswith("file://"):
            return StorageTarget(job.storage_url)
        raise InvalidRequest("the storage this file went to is no longer configured", field="storage")


def _parse(config: dict[str, Any]) -> StorageConfig:
    """A storage config from TornadoAPI's JSON (its endpoint names accepted as kinds)."""
    data = dict(config)
    data["kind"] = _KIND_ALIASES.get(str(data.get("kind", "")).lower(), data.get("kind"))
    try:
        return parse_storage_config(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ()))
        raise InvalidRequest(f"storage {field}: {err['msg']}", field="storage") from None
