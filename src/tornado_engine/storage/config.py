"""Typed storage configurations (pydantic), one per backend, and sealing them for storage at rest.

Every config has ``kind`` (the discriminator), ``base_folder`` (default ``videos``: objects land at
``base_folder/[folder/]filename.ext``), ``url_expiry_seconds`` (signed URL lifetime: 24 h by default,
capped at 7 days, the SigV4 / GCS V4 maximum) and upload tuning (``part_size``, ``concurrency``).

Secrets are ``SecretStr``: they print as ``**********``; ``repr`` shows only where the data goes, and
validation errors never echo input (``hide_input_in_errors``). ``seal_config`` / ``open_config`` turn a
config into one encrypted string for a job store and back.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator, model_validator

from ..secrets import SecretBox

__all__ = [
    "MAX_URL_EXPIRY",
    "AzureBlobConfig",
    "GCSConfig",
    "LocalStorageConfig",
    "OSSConfig",
    "S3Config",
    "StorageConfig",
    "open_config",
    "parse_connection_string",
    "parse_storage_config",
    "seal_config",
]

MAX_URL_EXPIRY = 7 * 24 * 3600
_MIB = 2**20


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    base_folder: str = "videos"
    url_expiry_seconds: int = Field(default=24 * 3600, ge=1)
    part_size: int = Field(default=8 * _MIB, ge=5 * _MIB, le=5 * 1024 * _MIB)  # S3's part limits
    concurrency: int = Field(default=4, ge=1, le=64)

    @field_validator("base_folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        value = value.strip().strip("/")
        parts = value.split("/") if value else []
        if any(p in ("", ".", "..") for p in parts) or "\\" in value or "\x00" in value or len(value) > 200:
            raise ValueError("base_folder must be a relative path without '..', '\\' or empty parts")
        return value

    @field_validator("url_expiry_seconds")
    @classmethod
    def _cap(cls, value: int) -> int:
        return min(value, MAX_URL_EXPIRY)  # capped rather than refused: 7 days is every signer's limit

    def describe(self) -> str:
        """Where the data goes, without secrets: for repr, logs and error messages."""
        raise NotImplementedError

    def secret_values(self) -> list[str]:
        """The plain secret strings, so error texts can be scrubbed of them."""
        out = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()}, base_folder={self.base_folder!r})"

    __str__ = __repr__


class S3Config(_Config):
    """S3 and S3-compatible services: AWS, Cloudflare R2, MinIO, DigitalOcean Spaces, B2, Wasabi ..."""

    kind: Literal["s3"] = "s3"
    bucket: str = Field(min_length=3, max_length=63)
    access_key_id: str = Field(min_length=1)
    secret_access_key: SecretStr
    session_token: SecretStr | None = None
    region: str | None = None
    endpoint_url: str | None = None  # None = AWS; e.g. https://<account>.r2.cloudflarestorage.com
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # boto3's upload_file default (10 threads): parts go up from threads, so on a busy machine more of
    # them get more CPU time (4 gave 0.96x boto3's throughput on moto at load 18, 10 gave 1.20x)
    concurrency: int = Field(default=10, ge=1, le=64)

    def describe(self) -> str:
        return f"S3 bucket {self.bucket!r} at {self.endpoint_url or 'AWS'}"


class AzureBlobConfig(_Config):
    """Azure Blob: a connection string, or the account name with an account key or a SAS token.

    Signed URLs need the account key (directly or in the connection string). With a SAS token only, the
    job's URL is the blob URL with that SAS appended: it carries the token's own scope and expiry.
    """

    kind: Literal["azure"] = "azure"
    container: str = Field(min_length=3, max_length=63)
    account_name: str | None = None
    account_key: SecretStr | None = None
    sas_token: SecretStr | None = None
    connection_string: SecretStr | None = None
    endpoint: str | None = None  # blob endpoint; default https://<account>.blob.core.windows.net

    @model_validator(mode="after")
    def _one_way_in(self) -> AzureBlobConfig:
        ways = [self.connection_string is not None, self.account_key is not None, self.sas_token is not None]
        if sum(ways) != 1:
            raise ValueError("give exactly one of connection_string, account_key or sas_token")
        if self.connection_string is None and not self.account_name:
            raise ValueError("account_name is required with account_key or sas_token")
        return self

    def describe(self) -> str:
        secret = self.connection_string.get_secret_value() if self.connection_string else ""
        conn = parse_connection_string(secret)
        account = self.account_name or conn.get("AccountName")
        where = self.endpoint or conn.get("BlobEndpoint") or (account and f"account {account!r}") or "Azure"
        return f"Azure Blob container {self.container!r} at {where}"


def parse_connection_string(text: str) -> dict[str, str]:
    """``A=1;B=x=y`` -> ``{"A": "1", "B": "x=y"}`` (values may hold '=': base64 keys, SAS tokens)."""
    out: dict[str, str] = {}
    for part in text.strip().strip(";").split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


class GCSConfig(_Config):
    """Google Cloud Storage with a service-account key (JSON text), which also signs the V4 URLs."""

    kind: Literal["gcs"] = "gcs"
    bucket: str = Field(min_length=3, max_length=222)
    service_account_json: SecretStr
    project: str | None = None  # default: the key's project_id
    endpoint_url: str | None = None  # None = https://storage.googleapis.com
    emulator: bool = False  # data calls without OAuth (emulators take none); signing still uses the key

    @field_validator("service_account_json")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        try:
            info = json.loads(value.get_secret_value())
        except ValueError:
            raise ValueError("service_account_json is not valid JSON") from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise ValueError('service_account_json must be a key of "type": "service_account"')
        missing = [k for k in ("private_key", "client_email", "token_uri") if not info.get(k)]
        if missing:
            raise ValueError(f"service_account_json lacks {', '.join(missing)}")
        return value

    def key_info(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.service_account_json.get_secret_value())
        return info

    def describe(self) -> str:
        return f"GCS bucket {self.bucket!r} at {self.endpoint_url or 'Google'}"


class OSSConfig(_Config):
    """Alibaba Cloud OSS, e.g. endpoint ``https://oss-cn-hangzhou.aliyuncs.com``."""

    kind: Literal["oss"] = "oss"
    endpoint: str = Field(min_length=1)
    bucket: str = Field(min_length=3, max_length=63)
    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretStr

    def describe(self) -> str:
        return f"OSS bucket {self.bucket!r} at {self.endpoint}"


class LocalStorageConfig(_Config):
    """A folder on this machine; URLs are ``file://`` URIs."""

    kind: Literal["local"] = "local"
    path: str = Field(min_length=1)

    def describe(self) -> str:
        return f"local folder {self.path!r}"


StorageConfig = Annotated[
    S3Config | AzureBlobConfig | GCSConfig | OSSConfig | LocalStorageConfig, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter[StorageConfig] = TypeAdapter(StorageConfig)


def parse_storage_config(data: dict[str, Any] | str) -> StorageConfig:
    """A config from a dict or JSON text with a ``kind`` of s3, azure, gcs, oss or local."""
    if isinstance(data, str):
        return _ADAPTER.validate_json(data)
    return _ADAPTER.validate_python(data)


def _reveal(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def seal_config(box: SecretBox, config: StorageConfig) -> str:
    """The whole config, secrets included, as one encrypted string (for a job store's row)."""
    plain = {name: _reveal(getattr(config, name)) for name in type(config).model_fields}
    return box.encrypt(json.dumps(plain, sort_keys=True))


def open_config(box: SecretBox, sealed: str) -> StorageConfig:
    return parse_storage_config(box.decrypt(sealed))
