"""PostgreSQL connections: the pool with a quick reconnect, one transaction per operation retried only
when it cannot have committed, and DSN passwords kept out of every message.

- Connections come from psycopg_pool, checked before use (a round trip) unless their last statement
  ended less than a second ago, so connections the server dropped (restart, ``pg_terminate_backend``)
  are replaced. One that fails its check, or a statement, has every idle one checked with it (a restart
  took them all), and reconnecting retries every 0.1-1 s rather than psycopg_pool's 1, 2, 4, 8 ... s,
  so the store works again within about a second of the server's return. (A check on every use was one
  round trip in four of each operation at a worker's full rate.)
- Each connection sets ``idle_in_transaction_session_timeout`` (60 s unless configured): a worker frozen
  inside a transaction (SIGSTOP, a VM pause) loses its session and its row locks instead of holding them
  until it thaws.
- A connection error is retried once when the transaction provably did not commit (it failed before
  COMMIT was sent, so the server rolled it back), or when the operation is idempotent. A failure during
  COMMIT is ambiguous: it is reported, never retried, so no write is ever applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from ..errors import StoreError
from ..telemetry import instruments

__all__ = ["Conn", "Connections", "redact_dsn"]

_log = logging.getLogger("tornado_engine.store.postgres")

_T = TypeVar("_T")
Conn = psycopg.AsyncConnection[TupleRow]

_RETRY_DELAY = 0.2
_FRESH = 1.0  # seconds: a connection whose last statement ended this recently is handed out unchecked
_BACKEND = {"tornado.store.backend": "postgresql"}


def redact_dsn(text: str) -> str:
    """``text`` with every password of a PostgreSQL URL or keyword DSN replaced by ``***``."""
    text = re.sub(r"(\w+://[^:@/?#]*:)[^@/]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", r"\1***", text, flags=re.IGNORECASE)


def _password_forms(dsn: str) -> list[str]:
    """The password as written in the DSN and as decoded, to scrub from server and driver messages."""
    forms = re.findall(r"\w+://[^:@/?#]*:([^@/]*)@", dsn)
    forms += [m[1] for m in re.findall(r"password\s*=\s*('?)([^'\s&]*)\1", dsn, flags=re.IGNORECASE)]
    with contextlib.suppress(psycopg.Error):
        forms += [v for k, v in conninfo_to_dict(dsn).items() if "password" in k and isinstance(v, str)]
    return sorted({f for f in forms if f}, key=len, reverse=True)


class _StatementError(StoreError):
    """The server refused a statement (not a connection problem)."""


class _QuickReconnect(AttemptWithBackoff):
    """psycopg_pool tries to connect again after 1 s, then 2, 4, 8, 16 s ... (up to ``reconnect_timeout``):
    after a 10 s restart the server was back, but the pool's next try came only ~5 s later. Here: from
    0.1 s, growing by half, never more than ~1 s apart."""

    INITIAL_DELAY = 0.1
    DELAY_BACKOFF = 1.5
    MAX_DELAY = 1.0

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.MAX_DELAY * random.uniform(0.9, 1.1))


class _Pool(AsyncConnectionPool[Conn]):
    """psycopg_pool with a quick reconnect. Both hooks are psycopg_pool internals (3.2, 3.3); should they
    go, the pool keeps working with its own backoff, and test_store_conformance says so."""

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _QuickReconnect(timeout=self.reconnect_timeout), growing)

    async def _check_connection(self, conn: Conn) -> None:
        try:
            await super()._check_connection(conn)
        except Exception:
            # The server dropped this one (a restart, pg_terminate_backend): the idle others most likely
            # went with it. Check them all now, so that the caller waits for a new connection instead of
            # finding the next dead one after a back-off of 1 s, then 2 s ...
            with contextlib.suppress(Exception):
                await self.check()
            raise


class Connections:
    """The store's pool: ``run`` an operation in one transaction (or a single statement in none)."""

    def __init__(
        self, dsn: str, *, min_size: int, max_size: int, connect_timeout: float, timeout: float,
        idle_in_transaction_timeout: float | None,
    ) -> None:  # fmt: skip
        self.dsn = dsn
        self.safe_dsn = redact_dsn(dsn)
        self._secrets = _password_forms(dsn)
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            raise StoreError(f"invalid PostgreSQL store URL: {self.safe_dsn}") from None
        self._kwargs: dict[str, Any] = {"autocommit": True}  # transactions are explicit, one per operation
        if "application_name" not in params:
            self._kwargs["application_name"] = "tornado_engine"
        if "connect_timeout" not in params:
            self._kwargs["connect_timeout"] = max(1, int(connect_timeout))
        self._min_size, self._max_size = min_size, max_size
        self._connect_timeout, self._timeout = connect_timeout, timeout
        if "idle_in_transaction_session_timeout" in str(params.get("options", "")):
            idle_in_transaction_timeout = None  # the DSN says what it wants
        self._idle_timeout = idle_in_transaction_timeout
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._used: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()  # last statement

    def redact(self, text: object) -> str:
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, "***")
        return redact_dsn(out)

    async def _configure(self, conn: Conn) -> None:
        """Each new connection: a transaction left idle (a frozen worker) ends with its session."""
        if self._idle_timeout:
            await conn.execute(
                b"SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                (str(max(1, int(self._idle_timeout * 1000))),),
            )

    async def _check(self, conn: Conn) -> None:
        """Before a connection is handed out. One whose statement just worked is live; should the server
        have dropped it since, its first statement fails before any COMMIT, and the operation is retried
        on a checked one (``_run``). One idle for longer is tested with a round trip."""
        if time.monotonic() - self._used.get(conn, float("-inf")) >= _FRESH:
            await AsyncConnectionPool.check_connection(conn)

    async def _probe(self) -> None:
        """One direct connection first: a wrong user, database or password fails at once with the
        server's own reason, instead of the pool retrying it in the background until its timeout."""
        try:
            conn = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(self.dsn, **self._kwargs), self._connect_timeout
            )
        except psycopg.Error as exc:
            reason = self.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            raise StoreError(f"cannot open PostgreSQL store {self.safe_dsn}: {reason}") from None
        except TimeoutError:
            raise StoreError(
                f"cannot open PostgreSQL store {self.safe_dsn}: no answer within {self._connect_timeout:g} s"
            ) from None
        await conn.close()

    async def connect(self) -> Conn:
        """A connection of its own, outside the pool (the job notifications' listener)."""
        return await asyncio.wait_for(
            psycopg.AsyncConnection.connect(self.dsn, **self._kwargs), self._connect_timeout
        )

    async def open(self, setup: Callable[[Conn], Awaitable[object]]) -> None:
        """Open the pool and run ``setup`` (the schema's migrations) on its first connection."""
        pool: AsyncConnectionPool[Conn] = _Pool(
            self.dsn, kwargs=self._kwargs, min_size=self._min_size, max_size=self._max_size, open=False,
            configure=self._configure,
            check=self._check,  # replaces connections the server dropped
            timeout=self._timeout, name="tornado-store",
        )  # fmt: skip
        await self._probe()
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
            async with pool.connection() as conn:
                await setup(conn)
        except psycopg.Error as exc:
            await pool.close()
            raise StoreError(f"cannot open PostgreSQL store {self.safe_dsn}: {self.redact(exc)}") from None
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def run(
        self, fn: Callable[[Conn], Awaitable[_T]], *, idempotent: bool = False, transaction: bool = True
    ) -> _T:
        """Run ``fn`` in one transaction, or for a single statement in none (two round trips fewer); retry
        once on a connection error that cannot have committed. Timed in ``tornado.store.duration``."""
        started = time.perf_counter()
        try:
            return await self._run(fn, idempotent=idempotent, transaction=transaction)
        finally:
            instruments.store_duration.record(time.perf_counter() - started, _BACKEND)

    async def _run(self, fn: Callable[[Conn], Awaitable[_T]], *, idempotent: bool, transaction: bool) -> _T:
        for attempt in (1, 2):
            if self._pool is None:
                raise StoreError("the store is not open")
            committing = False
            try:
                async with self._pool.connection() as conn:
                    if not transaction:
                        committing = True  # a statement on its own commits as it runs
                        result = await fn(conn)
                    else:
                        async with conn.transaction():
                            result = await fn(conn)
                            committing = True  # leaving the block sends COMMIT
                    self._used[conn] = time.monotonic()
                return result
            # connection lost, pool timeout, deadlock, shutdown; a session ended by its idle timeout
            except (psycopg.OperationalError, psycopg.errors.IdleInTransactionSessionTimeout) as exc:
                if committing and not idempotent:
                    raise StoreError(
                        "PostgreSQL connection lost while committing; the change may or may not have"
                        f" been applied: {self.redact(exc)}"
                    ) from None
                if attempt == 2:
                    raise StoreError(f"PostgreSQL store unavailable: {self.redact(exc)}") from None
                _log.warning("PostgreSQL: %s; retrying once", self.redact(exc))
                with contextlib.suppress(Exception):  # the idle ones went with it (a restart): find them
                    await self._pool.check()
                await asyncio.sleep(_RETRY_DELAY * random.uniform(0.5, 1.5))
            except psycopg.Error as exc:
                raise _StatementError(f"PostgreSQL store error: {self.redact(exc)}") from None
        raise AssertionError("unreachable")
