"""Upload sessions: the record of a batch upload. A session keeps its request's files in order, each accepted (a
new file), skipped (a duplicate: the tenant's existing copy) or rejected (the reason, no file). Its progress and
status are not stored but read from its files' component statuses, so they are never stale:

- a file is pending while a component is unfinished, failed when a component failed and none completed (the
  file's primary status `failed`), else completed (`completed` or `partially_completed`);
- the session is `cancelled` once cancelled, else `processing` while a file is pending, `failed` when every file
  was rejected or failed, else `completed`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.errors import AlreadyEnded, NotFound
from store.rows import SessionEntryRow, SessionFileRow, SessionSummaryRow, as_row, as_rows, column_names
from store.status import ALL_COMPONENTS, UNFINISHED, any_component_in
from store.tables import UploadSession

ACCEPTED, SKIPPED, REJECTED = "accepted", "skipped", "rejected"
ENDED = ("completed", "failed", "cancelled")  # session statuses


@dataclass(frozen=True)
class SessionFile:
    filename: str
    outcome: str  # accepted | skipped | rejected
    file_id: uuid.UUID | None  # the new file, or the existing copy when skipped
    error: str | None = None


async def create(
    session_id: uuid.UUID, tenant_id: uuid.UUID, upload_method: str, created_at: datetime, files: Sequence[SessionFile]
) -> None:
    """Record the session and its files (in the caller's transaction: the batch upload writes the files, their
    jobs and their session together)."""
    await UploadSession.raw(
        "INSERT INTO upload_session (id, tenant, upload_method, created_at) VALUES ({}, {}, {}, {})",
        session_id,
        tenant_id,
        upload_method,
        created_at,
    )
    await UploadSession.raw(
        """
        INSERT INTO upload_session_file (session_id, position, filename, outcome, file_id, error)
        SELECT {}, position - 1, filename, outcome, file_id, error
        FROM unnest({}::text[], {}::text[], {}::uuid[], {}::text[]) WITH ORDINALITY
            AS f (filename, outcome, file_id, error, position)
        """,
        session_id,
        [file.filename for file in files],
        [file.outcome for file in files],
        [file.file_id for file in files],
        [file.error for file in files],
    )


# A session's files: pending while a component is unfinished; failed when one failed and none completed.
_PENDING = any_component_in(UNFINISHED)
_FAILED = f"(NOT {_PENDING} AND {any_component_in(('failed',))} AND NOT {any_component_in(('completed',))})"


def _summaries_query(where: str, having: str) -> str:
    """Per session of the tenant (the first argument) that `where` keeps: its counts, its status (the module's
    rules) and its last activity; those `having` keeps, newest first, paged (the last two arguments)."""
    return f"""
    WITH counted AS (
        SELECT s.id AS session_id, s.upload_method, s.created_at, s.cancelled_at,
            count(*) AS total_files,
            count(*) FILTER (WHERE sf.outcome = '{REJECTED}') AS rejected_files,
            count(*) FILTER (WHERE sf.outcome = '{SKIPPED}' OR (sf.outcome = '{ACCEPTED}' AND file.id IS NULL))
                AS skipped_files,
            count(*) FILTER (WHERE {_PENDING}) AS pending_files,
            count(*) FILTER (WHERE {_FAILED}) AS failed_processing,
            max(file.completed_at) AS last_completed_at,
            greatest(s.created_at, max(file.updated_at)) AS last_activity_at
        FROM upload_session s
        JOIN upload_session_file sf ON sf.session_id = s.id
        LEFT JOIN file ON file.id = sf.file_id AND sf.outcome = '{ACCEPTED}'
        WHERE s.tenant = {{}} {where}
        GROUP BY s.id
    ), derived AS (
        SELECT *,
            rejected_files + failed_processing AS failed_files,
            total_files - rejected_files - failed_processing - skipped_files - pending_files AS completed_files,
            CASE WHEN cancelled_at IS NOT NULL THEN 'cancelled'
                 WHEN pending_files > 0 THEN 'processing'
                 WHEN rejected_files + failed_processing = total_files THEN 'failed'
                 ELSE 'completed' END AS status
        FROM counted
    )
    SELECT *, count(*) OVER () AS total_count FROM derived {having}
    ORDER BY created_at DESC, session_id
    OFFSET {{}} LIMIT {{}}
    """


async def summaries(
    tenant_id: uuid.UUID,
    *,
    session_id: uuid.UUID | None = None,
    status: str | None = None,
    upload_method: str | None = None,
    offset: int = 0,
    limit: int = 1,
) -> tuple[list[SessionSummaryRow], int]:
    """The tenant's sessions, newest first, with their counts and status; and how many match in all."""
    where, args = "", list[object]([tenant_id])
    if session_id is not None:
        where, args = where + " AND s.id = {}", [*args, session_id]
    if upload_method is not None:
        where, args = where + " AND s.upload_method = {}", [*args, upload_method]
    having = "" if status is None else "WHERE status = {}"
    rows = await UploadSession.raw(_summaries_query(where, having), *args, *([status] if status else []), offset, limit)
    return as_rows(SessionSummaryRow, rows), rows[0]["total_count"] if rows else 0


async def summary(tenant_id: uuid.UUID, session_id: uuid.UUID) -> SessionSummaryRow:
    """One session of the tenant's, as `summaries` gives it; NotFound for another tenant's or none."""
    rows, _ = await summaries(tenant_id, session_id=session_id)
    if not rows:
        raise NotFound(f"upload session {session_id} not found")
    return rows[0]


_FILE_COLUMNS = column_names(SessionFileRow)


def _entry(row: Mapping[str, Any]) -> SessionEntryRow:
    """The entry, with its file's columns (variants decoded: raw SQL hands JSON over as text) when it has one."""
    file = None
    if row["id"] is not None:
        variants = row["variants"]
        file = {name: row[name] for name in _FILE_COLUMNS} | {"variants": variants and json.loads(variants)}
    entry = {"outcome": row["outcome"], "filename": row["entry_filename"], "error": row["entry_error"], "file": file}
    return as_row(SessionEntryRow, entry)


async def files(
    session_id: uuid.UUID, *, offset: int = 0, limit: int | None = None, include_failed: bool = True
) -> tuple[list[SessionEntryRow], int]:
    """The session's files in request order, each with its file row (none when rejected or purged); and how many
    there are in all. Without `include_failed`, rejected files and files whose processing failed are left out."""
    failed = f"sf.outcome = '{REJECTED}' OR {_FAILED}"
    columns = ", ".join(f"file.{name}" for name in _FILE_COLUMNS)
    rows = await UploadSession.raw(
        f"""
        SELECT {columns}, sf.outcome, sf.filename AS entry_filename, sf.error AS entry_error,
            count(*) OVER () AS total_count
        FROM upload_session_file sf LEFT JOIN file ON file.id = sf.file_id
        WHERE sf.session_id = {{}} {"" if include_failed else f"AND NOT ({failed})"}
        ORDER BY sf.position OFFSET {{}} LIMIT {{}}
        """,
        session_id,
        offset,
        limit,
    )
    return [_entry(row) for row in rows], rows[0]["total_count"] if rows else 0


async def sessions_of_files(file_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The session that uploaded each file that came in one (the first, should a later one have skipped it as a
    duplicate)."""
    rows = await UploadSession.raw(
        "SELECT DISTINCT ON (sf.file_id) sf.file_id, sf.session_id FROM upload_session_file sf"
        " JOIN upload_session s ON s.id = sf.session_id WHERE sf.file_id = ANY({}::uuid[])"
        " ORDER BY sf.file_id, (sf.outcome = {}) DESC, s.created_at",
        list(file_ids),
        ACCEPTED,
    )
    return {row["file_id"]: row["session_id"] for row in rows}


async def cancel(tenant_id: uuid.UUID, session_id: uuid.UUID, now: datetime) -> None:
    """Cancel a session under way: its files' queued jobs are cancelled and their unstarted components end
    `skipped`; a step already running finishes, but queues nothing after it (store/jobs.py). AlreadyEnded when the
    session has already ended."""
    async with UploadSession._meta.db.transaction():
        await UploadSession.raw("SELECT 1 FROM upload_session WHERE id = {} FOR UPDATE", session_id)
        status = (await summary(tenant_id, session_id)).status
        if status in ENDED:
            raise AlreadyEnded(f"the session has already ended ({status}); only one under way can be cancelled")
        await UploadSession.raw("UPDATE upload_session SET cancelled_at = {} WHERE id = {}", now, session_id)
        await UploadSession.raw(
            "SELECT pg_notify({}, json_build_object('event', 'session_cancelled', 'session_id', {}::uuid)::text)",
            progress_channel(session_id),
            session_id,
        )
        accepted = await UploadSession.raw(
            "SELECT file_id FROM upload_session_file WHERE session_id = {} AND outcome = {} AND file_id IS NOT NULL",
            session_id,
            ACCEPTED,
        )
        await skip_unstarted([row["file_id"] for row in accepted], now)


async def skip_unstarted(file_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """End the files' unstarted work: queued jobs cancelled, pending and queued components `skipped`."""
    unstarted = ", ".join(
        f"{name} = CASE WHEN {name} IN ('pending', 'queued') THEN 'skipped' ELSE {name} END" for name in ALL_COMPONENTS
    )
    await UploadSession.raw(
        f"""
        WITH cancelled AS (
            UPDATE job SET status = 'cancelled', finished_at = {{}}, updated_at = {{}}
            WHERE status = 'queued' AND file_id = ANY({{}}::uuid[])
        )
        UPDATE file SET {unstarted}, updated_at = {{}}
        WHERE file.id = ANY({{}}::uuid[]) AND {any_component_in(("pending", "queued"))}
        """,
        now,
        now,
        list(file_ids),
        now,
        list(file_ids),
    )


def progress_channel(session_id: uuid.UUID) -> str:
    """The channel (Postgres NOTIFY, served as a websocket) on which a session's progress is announced."""
    return f"batch.{session_id}"


async def announce(file_id: uuid.UUID, step: str, outcome: str) -> None:
    """Announce on the file's session channel, if it came in a session, that one of its steps ended (`outcome`):
    the file's status and the session's progress as they now stand. NOTIFY in the caller's transaction: sent
    when it commits, never for a change rolled back."""
    pending_elsewhere = any_component_in(UNFINISHED, table="other_file")
    await UploadSession.raw(
        f"""
        SELECT pg_notify('batch.' || sf.session_id::text, json_build_object(
            'event', 'file_step', 'session_id', sf.session_id, 'file_id', sf.file_id, 'filename', sf.filename,
            'step', {{}}::text, 'outcome', {{}}::text,
            'file_status', CASE WHEN {_PENDING} THEN 'processing' WHEN {_FAILED} THEN 'failed' ELSE 'completed' END,
            'total_files', (SELECT count(*) FROM upload_session_file o WHERE o.session_id = sf.session_id),
            'pending_files', (
                SELECT count(*) FROM upload_session_file o JOIN file other_file ON other_file.id = o.file_id
                WHERE o.session_id = sf.session_id AND o.outcome = '{ACCEPTED}' AND {pending_elsewhere}
            )
        )::text)
        FROM upload_session_file sf JOIN file ON file.id = sf.file_id
        WHERE sf.file_id = {{}} AND sf.outcome = '{ACCEPTED}'
        """,
        step,
        outcome,
        file_id,
    )


async def in_cancelled_session(file_id: uuid.UUID) -> bool:
    """Whether the file came in a session since cancelled: its running step must queue nothing after it."""
    rows = await UploadSession.raw(
        "SELECT 1 FROM upload_session_file sf JOIN upload_session s ON s.id = sf.session_id"
        " WHERE sf.file_id = {} AND sf.outcome = {} AND s.cancelled_at IS NOT NULL",
        file_id,
        ACCEPTED,
    )
    return bool(rows)
