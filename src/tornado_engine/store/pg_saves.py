"""The PostgreSQL store's group commit of saves: every save waiting written in one transaction and one
statement, fenced row by row, the terminal ones' webhook events queued with them; each save its own
outcome (a stale token is LeaseLost for that save only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import JobCancelled, LeaseLost
from ..states import Status
from .pg_pool import Conn
from .pg_sql import OUTBOX_FIELDS, Q, after_jobs_ended, fetch_all, recordset
from .rules import OutboxRow

__all__ = ["Save", "save_group"]

_RECORD_FIELDS = ("id", "token", "status", "stored", "reserved", "data")


@dataclass(eq=False, slots=True)
class Save:
    job_id: str
    token: int
    status: str
    stored: int
    reserved: int
    data: str  # the record, JSON text
    terminal: bool
    batch_id: str | None
    outbox: list[OutboxRow]


def _refusal(save: Save, token: int | None, status: str | None, cancel_requested: bool) -> Exception | None:
    """Why a save was not written, from its row as it now stands; None: it was (see below)."""
    if token != save.token:
        return LeaseLost(f"job {save.job_id}: lease lost, write refused")
    if save.terminal and status == save.status:
        return None  # this very write, committed by an attempt whose connection was lost at COMMIT
    if status == Status.PROCESSING.value and cancel_requested:
        return JobCancelled(f"job {save.job_id} cancelled")
    return LeaseLost(f"job {save.job_id}: lease lost, write refused")


async def save_group(conn: Conn, saves: Sequence[Save]) -> list[Exception | None]:
    """Writes ``saves`` (distinct jobs) in the caller's transaction; the outcome of each, in order. A
    group that ends no batch's job makes one statement (and a read if refused): it needs none."""
    batches = sorted({s.batch_id for s in saves if s.terminal and s.batch_id is not None})
    if batches:
        await conn.execute(Q["lock_batches"], (batches,))
    records = [(s.job_id, s.token, s.status, s.stored, s.reserved, s.data) for s in saves]
    events = [(*row, s.job_id) for s in saves for row in s.outbox]
    params = (recordset(_RECORD_FIELDS, records), recordset(OUTBOX_FIELDS, events))
    written = {r[0] for r in await fetch_all(conn, Q["save_group"], params)}
    outcomes: list[Exception | None] = [None] * len(saves)
    refused = [n for n, s in enumerate(saves) if s.job_id not in written]
    if refused:
        rows = await fetch_all(conn, Q["fence_state"], ([saves[n].job_id for n in refused],))
        state = {r[0]: (r[1], r[2], r[3]) for r in rows}
        for n in refused:
            outcomes[n] = _refusal(saves[n], *state.get(saves[n].job_id, (None, None, False)))
    ended = {s.batch_id for s in saves if s.terminal and s.job_id in written and s.batch_id is not None}
    await after_jobs_ended(conn, sorted(ended))
    return outcomes
