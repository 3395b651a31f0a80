"""Storage SDK errors -> the engine's error kinds (pure; no SDK is imported here).

s3fs, adlfs, gcsfs and ossfs each wrap their SDK's errors differently (an OSError whose ``__cause__`` is
a botocore ``ClientError``; a bare azure ``HttpResponseError``; a gcsfs ``HttpError`` or an OSError with
"Forbidden"; an OSError caused by an oss2 ``OssError``). So we walk the whole cause/context chain and look
at what the exceptions carry (HTTP status, service error code, class names) instead of importing four
optional SDKs just to run ``isinstance``.

    kind                  what it means                              the engine
    storage_transient     5xx, 429, throttling, timeouts, resets     retries with backoff
    storage_denied        401/403, bad key or signature, no access   fails at once
    storage_error         anything else (missing bucket, 4xx ...)    fails at once
    disk_full             a local target's disk is full (ENOSPC)      retries with backoff
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..diskspace import is_disk_full
from ..errors import MissingBackend

__all__ = [
    "Classified",
    "MissingBackend",
    "StorageKind",
    "classify",
    "describe",
    "exception_chain",
    "redact",
    "require",
]

# the ErrorKinds of storage
StorageKind = Literal["storage_transient", "storage_denied", "storage_error", "disk_full"]

_DENIED_CODES = {
    "AccessDenied", "AllAccessDisabled", "AuthenticationFailed", "AuthorizationFailure",
    "AuthorizationPermissionMismatch", "ExpiredToken", "InvalidAccessKeyId", "InvalidClientTokenId",
    "InvalidSecurity", "InvalidToken", "SignatureDoesNotMatch", "InsufficientAccountPermissions",
    "AccountIsDisabled", "RequestTimeTooSkewed", "TokenRefreshRequired", "invalid_grant",
}  # fmt: skip
_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "ServiceUnavailable", "ServerBusy", "OperationTimedOut", "InternalServerError",
    "Md5Mismatch", "BadDigest",  # bytes spoiled on the way: sending them again may work
}  # fmt: skip
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
# Connection-level failures of botocore, aiohttp, requests/urllib3, azure-core and oss2, by class name.
_TRANSIENT_CLASSES = {
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ClientConnectionError", "ClientConnectorError", "ServerDisconnectedError", "ClientPayloadError",
    "ServerTimeoutError", "ServiceRequestError", "ServiceResponseError", "IncompleteReadError",
    "ProxyError", "ChunkedEncodingError", "ProtocolError", "RequestError", "TransportError",
}  # fmt: skip
_TRANSIENT_ERRNOS = {
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EBUSY, errno.EAGAIN,
}  # fmt: skip
_NOT_FOUND_CODES = {"NoSuchBucket", "ContainerNotFound", "BucketNotFound", "NoSuchKey", "BlobNotFound"}


@dataclass(frozen=True)
class Classified:
    kind: StorageKind
    status: int | None  # HTTP status, when any exception in the chain carried one
    code: str | None  # the service's error code (SignatureDoesNotMatch, AuthenticationFailed ...)
    not_found: bool  # the bucket / container / object does not exist


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _status(exc: BaseException) -> int | None:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    for attr in ("status_code", "status", "code"):  # azure, oss2 / aiohttp, gcsfs HttpError
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    return None


def _code(exc: BaseException) -> str | None:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    for attr in ("error_code", "code"):  # azure; oss2 (a string there, an int on gcsfs)
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def classify(exc: BaseException) -> Classified:
    status: int | None = None
    code: str | None = None
    transient = denied = not_found = False
    for err in exception_chain(exc):
        status = status or _status(err)
        code = code or _code(err)
        names = {cls.__name__ for cls in type(err).__mro__}
        if (
            isinstance(err, PermissionError)
            or "ClientAuthenticationError" in names
            or names & {"RefreshError", "DefaultCredentialsError"}
        ):
            denied = True
        elif isinstance(err, FileNotFoundError):
            not_found = True
        elif (
            isinstance(err, ConnectionError | TimeoutError)
            or names & _TRANSIENT_CLASSES
            or (isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS)
        ):
            transient = True
        elif isinstance(err, OSError) and str(err).startswith("Forbidden"):  # gcsfs' 403
            denied, status = True, status or 403
    if code in _DENIED_CODES or status in (401, 403):
        denied = True
    if code in _NOT_FOUND_CODES or status == 404:
        not_found = True
    if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
        transient = True
    # denial wins: retrying a refused key only delays the answer
    kind: StorageKind = "storage_denied" if denied else "storage_transient" if transient else "storage_error"
    if kind == "storage_error" and is_disk_full(exc):  # a file:// target on a full disk
        kind = "disk_full"
    return Classified(kind, status, code, not_found and not denied)


_URL_QUERY = re.compile(r"(\bhttps?://[^\s?'\"]+)\?[^\s'\"]*")
_KEYVALUE = re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|sig|Signature|secret|token)=([^;&\s'\"]+)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Drop URL query strings (SAS tokens, signatures), ``Key=value`` secrets and known secret values."""
    text = _URL_QUERY.sub(r"\1?…", text)
    text = _KEYVALUE.sub(r"\1=***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A one-line cause for people: the service's code and status, then its first message line."""
    info = classify(exc)
    root = list(exception_chain(exc))[-1]
    message = getattr(root, "message", None) or str(root) or type(root).__name__
    if isinstance(root, OSError) and root.strerror:  # without the file names: no local paths in texts
        message = f"[Errno {root.errno}] {root.strerror}" if root.errno else root.strerror
    first = redact(str(message).strip().splitlines()[0] if str(message).strip() else "", secrets)
    tags = ", ".join(x for x in (info.code, f"HTTP {info.status}" if info.status else None) if x)
    head = f"{tags}: " if tags else f"{type(root).__name__}: "
    return (head + first)[:300].rstrip(": ")


def require(module: str, extra: str, backend: str) -> Any:
    """Import an optional backend package, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingBackend(
            f"{backend} storage needs the '{module}' package: pip install 'tornado-engine[{extra}]'"
        ) from exc
