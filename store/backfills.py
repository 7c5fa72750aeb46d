"""Backfills: one step re-run over a selection of files, queued in the backfill lane in batches, and imports (a
bucket's objects registered as files, their first steps queued the same way).

A backfill row holds its selection, its `cursor` (the last file id queued, or an import's listing position) and
counters; each batch of jobs is queued in the transaction that moves the cursor, with the row locked, so a driver
that stops anywhere resumes exactly where the last commit left it, and two drivers of one backfill never queue a
file twice. Each job names its backfill: progress and cancellation are counts and updates of those jobs. A job is
unique per active (file, step) (store/jobs.py), so a file whose step is already under way is counted, not queued.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from piccolo.engine.postgres import PostgresTransaction

from store.tables import File, Job

KINDS = ("backfill", "import", "swap")
ONLY = ("failed", "missing", "all")
_FILE_COLUMNS = {column._meta.name for column in File._meta.columns}


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """Which files a backfill covers: the step's media types and the status column it drives, narrowed by tenant,
    media type, creation time and the step's status (`only`: failed, not completed, or every file); at most
    `limit` files."""

    media_types: tuple[str, ...]
    component: str
    error_column: str = "error_message"
    tenant_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    only: str = "missing"
    limit: int | None = None
    model: str | None = None  # the model the step's outputs are made with (recorded; the step uses those in use)


@dataclass(frozen=True)
class Backfill:
    id: uuid.UUID
    kind: str
    step: str
    selection: dict[str, Any]
    status: str  # running, completed, cancelled
    cursor: Any
    counts: dict[str, int]
    created_at: datetime
    enqueued_at: datetime | None  # when the last of its selection was queued
    finished_at: datetime | None

    def selected(self) -> Selection:
        return msgspec.convert(self.selection, Selection)


_COLUMNS = "id, kind, step, selection, status, cursor, counts, created_at, enqueued_at, finished_at"


def _backfill(row: Mapping[str, Any]) -> Backfill:
    values = dict(row)
    for name in ("selection", "cursor", "counts"):
        if isinstance(values[name], str):
            values[name] = json.loads(values[name])
    return Backfill(**values)


async def create(kind: str, step: str, selection: Mapping[str, Any]) -> Backfill:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
    rows = await Job.raw(
        f"INSERT INTO backfill (id, kind, step, selection, status) VALUES ({{}}, {{}}, {{}}, {{}}::jsonb, 'running')"
        f" RETURNING {_COLUMNS}",
        uuid.uuid4(),
        kind,
        step,
        msgspec.json.encode(selection).decode(),
    )
    return _backfill(rows[0])


async def get(backfill_id: uuid.UUID) -> Backfill | None:
    rows = await Job.raw(f"SELECT {_COLUMNS} FROM backfill WHERE id = {{}}", backfill_id)
    return _backfill(rows[0]) if rows else None


async def recent(limit: int = 50) -> list[Backfill]:
    rows = await Job.raw(f"SELECT {_COLUMNS} FROM backfill ORDER BY created_at DESC LIMIT {{}}", limit)
    return [_backfill(row) for row in rows]


def transaction() -> PostgresTransaction:
    """A transaction in which to lock a backfill and checkpoint it (or the caller's, when one is open)."""
    transaction: PostgresTransaction = Job._meta.db.transaction()
    return transaction


async def lock(backfill_id: uuid.UUID) -> Backfill | None:
    """The row, locked until the caller's transaction ends: one batch at a time per backfill."""
    rows = await Job.raw(f"SELECT {_COLUMNS} FROM backfill WHERE id = {{}} FOR UPDATE", backfill_id)
    return _backfill(rows[0]) if rows else None


async def checkpoint(backfill_id: uuid.UUID, cursor: Any, added: Mapping[str, int], *, enqueued: bool) -> None:
    """Move the cursor and add to the counters, in the caller's transaction (the one that queued the batch);
    `enqueued`: nothing of the selection is left to queue."""
    await Job.raw(
        """
        UPDATE backfill SET cursor = {}::jsonb, updated_at = now(),
            enqueued_at = CASE WHEN {} THEN coalesce(enqueued_at, now()) END,
            counts = (SELECT coalesce(jsonb_object_agg(key, total), jsonb_build_object()) FROM (
                SELECT key, sum(value::bigint) AS total FROM (
                    SELECT * FROM jsonb_each_text(counts) UNION ALL SELECT * FROM jsonb_each_text({}::jsonb)
                ) both_counts GROUP BY key) summed)
        WHERE id = {}
        """,
        json.dumps(cursor, default=str),
        enqueued,
        json.dumps(dict(added)),
        backfill_id,
    )


def _where(selection: Selection, after: uuid.UUID | None) -> tuple[str, list[Any]]:
    """The SQL condition on `file` and its arguments; column names come from steps (code), checked all the same."""
    for column in (selection.component, selection.error_column):
        if column not in _FILE_COLUMNS:
            raise ValueError(f"not a column of file: {column!r}")
    if selection.only not in ONLY:
        raise ValueError(f"unknown selection {selection.only!r}; one of {ONLY}")
    conditions = ["deleted_at IS NULL", "media_type = ANY({}::varchar[])"]
    args: list[Any] = [list(selection.media_types)]
    for condition, value in (
        ("tenant = {}", selection.tenant_id),
        ("created_at >= {}", selection.since),
        ("created_at < {}", selection.until),
        ("id > {}", after),
    ):
        if value is not None:
            conditions.append(condition)
            args.append(value)
    if selection.only == "failed":
        conditions.append(f"{selection.component} = 'failed'")
    elif selection.only == "missing":
        conditions.append(f"{selection.component} IS DISTINCT FROM 'completed'")
    return " AND ".join(conditions), args


async def count(selection: Selection) -> int:
    """How many files the selection covers now (a dry run), at most its limit."""
    where, args = _where(selection, None)
    limit = "" if selection.limit is None else f" LIMIT {int(selection.limit)}"
    rows = await Job.raw(f"SELECT count(*) AS n FROM (SELECT 1 FROM file WHERE {where}{limit}) f", *args)
    return int(rows[0]["n"])


async def queue_batch(backfill: Backfill, step: str, size: int) -> Backfill:
    """Queue the next `size` files of the selection after the cursor, in the backfill lane, and checkpoint; in one
    transaction with the row locked. A file whose step becomes queued (it was not under way) gets its status
    `queued` and its error cleared unless it has a completed output to keep showing. Returns the row after."""
    async with transaction():
        row = await lock(backfill.id)
        if row is None or row.status != "running" or row.enqueued_at is not None:
            return row or backfill
        selection = row.selected()
        done = int(row.counts.get("selected", 0))
        take = size if selection.limit is None else max(min(size, selection.limit - done), 0)
        where, args = _where(selection, uuid.UUID(row.cursor) if row.cursor else None)
        files = await Job.raw(f"SELECT id, tenant FROM file WHERE {where} ORDER BY id LIMIT {{}}", *args, take)
        ids = [file["id"] for file in files]
        queued = await enqueue_many(ids, [file["tenant"] for file in files], step, row.id)
        if queued:
            await Job.raw(
                f"UPDATE file SET {selection.component} = 'queued', {selection.error_column} = NULL"
                f" WHERE id = ANY({{}}::uuid[]) AND {selection.component} IS DISTINCT FROM 'completed'",
                queued,
            )
        added = {"selected": len(ids), "queued": len(queued), "under_way": len(ids) - len(queued)}
        cursor = str(ids[-1]) if ids else row.cursor
        exhausted = len(ids) < take or (selection.limit is not None and done + len(ids) >= selection.limit)
        await checkpoint(row.id, cursor, added, enqueued=exhausted)
    refreshed = await get(backfill.id)
    assert refreshed is not None
    return refreshed


async def enqueue_many(
    file_ids: Sequence[uuid.UUID], tenant_ids: Sequence[uuid.UUID], step: str, backfill_id: uuid.UUID
) -> list[uuid.UUID]:
    """Queue `step` for the files in the backfill lane, in one statement, skipping each file whose step is already
    queued or running (one active job per file and step); the files queued."""
    if not file_ids:
        return []
    rows = await Job.raw(
        """
        INSERT INTO job (id, file_id, tenant, step, lane, status, max_attempts, payload, available_at, created_at,
            updated_at, backfill_id)
        SELECT gen_random_uuid(), f.file_id, f.tenant, {}, 'backfill', 'queued', 3, jsonb_build_object(), now(),
            clock_timestamp(), now(), {}
        FROM unnest({}::uuid[], {}::uuid[]) AS f (file_id, tenant)
        ON CONFLICT (file_id, step) WHERE status IN ('queued', 'running') DO NOTHING
        RETURNING file_id
        """,
        step,
        backfill_id,
        list(file_ids),
        list(tenant_ids),
    )
    return [row["file_id"] for row in rows]


async def job_counts(backfill_id: uuid.UUID) -> dict[str, int]:
    """{status: jobs} of the jobs the backfill queued."""
    rows = await Job.raw("SELECT status, count(*) AS n FROM job WHERE backfill_id = {} GROUP BY status", backfill_id)
    return {row["status"]: int(row["n"]) for row in rows}


async def cancel(backfill_id: uuid.UUID) -> int | None:
    """Stop queueing and cancel its queued jobs (running ones finish: their results are valid); how many jobs were
    cancelled, or None when no running backfill has that id."""
    async with transaction():
        rows = await Job.raw(
            "UPDATE backfill SET status = 'cancelled', finished_at = now(), updated_at = now()"
            " WHERE id = {} AND status = 'running' RETURNING id",
            backfill_id,
        )
        cancelled = await cancel_jobs(backfill_id) if rows else None
    return cancelled


async def cancel_jobs(backfill_id: uuid.UUID) -> int:
    """Cancel the backfill's queued jobs (its running ones finish); how many."""
    cancelled = await Job.raw(
        "UPDATE job SET status = 'cancelled', finished_at = now(), updated_at = now()"
        " WHERE backfill_id = {} AND status = 'queued' RETURNING id",
        backfill_id,
    )
    return len(cancelled)


async def finish(backfill_id: uuid.UUID) -> bool:
    """Mark it completed once all of its selection is queued and none of its jobs is queued or running."""
    rows = await Job.raw(
        """
        UPDATE backfill SET status = 'completed', finished_at = now(), updated_at = now()
        WHERE id = {} AND status = 'running' AND enqueued_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM job WHERE backfill_id = backfill.id AND status IN ('queued', 'running'))
        RETURNING id
        """,
        backfill_id,
    )
    return bool(rows)
