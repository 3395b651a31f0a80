"""SecretBox: encrypt credentials at rest (storage keys, tokens) with Fernet.

The key comes from ``$TORNADO_SECRET_KEY`` (one Fernet key, or several separated by commas: the first
encrypts, all decrypt, so keys can be rotated). Without it, a key is generated once and kept in
``<data_dir>/secret.key`` with mode 0600. Losing that file makes stored secrets unreadable: that is the
point, and the error says so instead of showing a traceback.

    box = SecretBox.from_env(data_dir)
    token = box.encrypt("my-account-key")      # str, safe to store
    box.decrypt(token) == "my-account-key"
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .errors import InvalidRequest, SecretBoxError, TornadoError

__all__ = ["KEY_ENV", "KEY_FILE", "SecretBox", "SecretBoxError", "load_or_create_key"]

KEY_ENV = "TORNADO_SECRET_KEY"
KEY_FILE = "secret.key"
_HINT = (
    "generate one with: "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def _fernet() -> Any:
    try:
        from cryptography import fernet
    except ImportError as exc:  # an optional dependency: say what to install
        raise TornadoError(
            "encrypting secrets needs the 'cryptography' package: pip install 'tornado-engine[all-storage]'"
        ) from exc
    return fernet


class SecretBox:
    """Symmetric encryption of small strings. Never shows its key in ``repr`` or errors."""

    def __init__(self, keys: str | bytes | list[str | bytes]) -> None:
        fernet = _fernet()
        raw = keys if isinstance(keys, list) else [k for k in _split(keys) if k]
        if not raw:
            raise InvalidRequest(f"{KEY_ENV} is empty; {_HINT}", field=KEY_ENV)
        try:
            self._fernet = fernet.MultiFernet([fernet.Fernet(k) for k in raw])
        except (ValueError, TypeError):
            # the message of cryptography's error is fine, but never echo the key material itself
            raise InvalidRequest(
                f"{KEY_ENV} is not a valid Fernet key (32 url-safe base64-encoded bytes); {_HINT}",
                field=KEY_ENV,
            ) from None

    @classmethod
    def from_env(cls, data_dir: str | Path, env: dict[str, str] | None = None) -> SecretBox:
        """The key from ``$TORNADO_SECRET_KEY``, else from (or newly written to) ``data_dir/secret.key``."""
        value = (os.environ if env is None else env).get(KEY_ENV, "").strip()
        if value:
            return cls(value)
        return cls(load_or_create_key(Path(data_dir) / KEY_FILE))

    def encrypt(self, plaintext: str) -> str:
        token: bytes = self._fernet.encrypt(plaintext.encode("utf-8"))
        return token.decode("ascii")

    def decrypt(self, token: str) -> str:
        fernet = _fernet()
        try:
            data: bytes = self._fernet.decrypt(token.encode("ascii"))
        except (fernet.InvalidToken, UnicodeEncodeError):
            raise SecretBoxError(
                f"a stored secret could not be decrypted: the key in ${KEY_ENV} (or {KEY_FILE} in the data"
                " folder) is not the one it was encrypted with"
            ) from None
        return data.decode("utf-8")

    def __repr__(self) -> str:
        return "SecretBox(key=***)"


def _split(keys: str | bytes) -> list[str | bytes]:
    if isinstance(keys, bytes):
        return [k.strip() for k in keys.split(b",")]
    return [k.strip() for k in keys.split(",")]


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, or create it with mode 0600.

    The new key is written to a private temporary file and hard-linked into place, which fails if the
    file appeared meanwhile: two processes starting together end up with the same, complete key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        key = bytes(_fernet().Fernet.generate_key())
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(key + b"\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    if path.stat().st_mode & 0o077:
        with contextlib.suppress(OSError):  # tighten a key file someone loosened
            os.chmod(path, 0o600)
    key = path.read_bytes().strip()
    if not key:
        raise InvalidRequest(f"the key file {path} is empty; delete it or set {KEY_ENV}", field=KEY_ENV)
    return key
