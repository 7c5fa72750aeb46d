"""Upload sessions as the spec shows them: from a session's counts (store/sessions.py) and its files' rows."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta

from api.processing_views import upload_status
from api.schemas.sessions import (
    ErrorSummary,
    RecentCompletion,
    RecentError,
    ResultsSummary,
    SessionList,
    SessionListItem,
    SessionResult,
    SessionResults,
    SessionStatus,
    SessionSummary,
)
from api.shaping import shaped
from api.variant_urls import variant_url
from store import jobs, sessions
from store.blob_store import BlobStore
from store.rows import SessionEntryRow, SessionFileRow, SessionSummaryRow
from store.status import primary_status_of

RECENT = 10  # completions and errors shown in a session's status
SUMMARY_COUNTS = (
    "uploading", "confirming", "queued", "processing", "completed", "failed", "partially_completed", "stuck"
)  # fmt: skip


def _progress(summary: SessionSummaryRow) -> float:
    total = summary.total_files
    return round((total - summary.pending_files) / total * 100, 1) if total else 100.0


def _completed_at(summary: SessionSummaryRow) -> datetime | None:
    if summary.status == "cancelled":
        return summary.cancelled_at
    if summary.status == "processing":
        return None
    return max(filter(None, (summary.created_at, summary.last_completed_at)))


def _estimated_completion(summary: SessionSummaryRow, now: datetime) -> datetime | None:
    """At the pace so far: the time the files done took, spread over those still pending."""
    done = summary.total_files - summary.pending_files
    if summary.status != "processing" or not done:
        return None
    return now + (now - summary.created_at) * summary.pending_files / done


def _file_status(entry: SessionEntryRow) -> str:
    """A session file's status: its file's primary status, `skipped` for a duplicate (or a file since purged),
    `failed` for a file the batch rejected, `deleted` for a file deleted since."""
    if entry.outcome == sessions.REJECTED:
        return "failed"
    if entry.outcome == sessions.SKIPPED or entry.file is None:
        return "skipped"
    if entry.file.deleted_at is not None:
        return "deleted"
    return primary_status_of(entry.file)


def _live(entry: SessionEntryRow) -> SessionFileRow | None:
    """The entry's file while it is not deleted: a deleted file's description, text, tags and thumbnail are gone
    from every answer, the session's too."""
    file = entry.file
    return file if file is not None and file.deleted_at is None else None


def _processing_ms(file: SessionFileRow | None) -> float | None:
    started, ended = (file.processing_started_at, file.completed_at) if file else (None, None)
    return round((ended - started).total_seconds() * 1000, 1) if started and ended else None


def _error(entry: SessionEntryRow) -> str | None:
    if entry.outcome == sessions.REJECTED:
        return entry.error
    file = _live(entry)
    return file.error_message if file else None


def _file_id(entry: SessionEntryRow) -> uuid.UUID | None:
    return entry.file.id if entry.file else None


def _list_item(summary: SessionSummaryRow) -> SessionListItem:
    return shaped(SessionListItem, summary, progress_percentage=_progress(summary), completed_at=_completed_at(summary))


async def session_list(
    tenant_id: uuid.UUID, status: str | None, upload_method: str | None, offset: int, limit: int
) -> SessionList:
    rows, total = await sessions.summaries(
        tenant_id, status=status, upload_method=upload_method, offset=offset, limit=limit
    )
    return SessionList(
        items=[_list_item(row) for row in rows],
        total_count=total,
        limit=limit,
        offset=offset,
        has_more=offset + len(rows) < total,
    )


async def session_status(tenant_id: uuid.UUID, session_id: uuid.UUID, now: datetime) -> SessionStatus:
    summary = await sessions.summary(tenant_id, session_id)
    entries, _ = await sessions.files(session_id)
    completed = [
        (entry.file, entry.filename, status)
        for entry in entries
        if entry.file and (status := _file_status(entry)) in ("completed", "partially_completed")
    ]
    completed.sort(key=lambda done: done[0].completed_at or summary.created_at, reverse=True)
    errors = [entry for entry in entries if _file_status(entry) == "failed"]
    return shaped(
        SessionStatus,
        summary,
        progress_percentage=_progress(summary),
        started_at=summary.created_at,  # a streaming batch starts as its request arrives
        completed_at=_completed_at(summary),
        estimated_completion_time=_estimated_completion(summary, now),
        recent_completions=[
            RecentCompletion(filename, file.id, status, file.upload_description, _processing_ms(file))
            for file, filename, status in completed[:RECENT]
        ],
        recent_errors=[
            RecentError(entry.filename, _file_id(entry), _error(entry) or "failed") for entry in errors[-RECENT:]
        ],
        results_url=f"/api/v2/files/sessions/{session_id}/results",
        websocket_channel=sessions.progress_channel(session_id),
    )


async def _result(entry: SessionEntryRow, blobs: BlobStore) -> SessionResult:
    file = _live(entry)
    return SessionResult(
        file_id=_file_id(entry),
        filename=entry.filename,
        status=_file_status(entry),
        description=file.upload_description if file else None,
        visible_text=file.visible_text if file else None,
        tags=file.tags if file else [],
        processing_time_ms=_processing_ms(file),
        error_message=_error(entry),
        thumbnail_url=await variant_url(blobs, file, "small_256") if file else None,
        created_at=entry.file.created_at if entry.file else None,
    )


async def session_results(
    tenant_id: uuid.UUID, session_id: uuid.UUID, include_failed: bool, offset: int, limit: int, blobs: BlobStore
) -> SessionResults:
    summary = await sessions.summary(tenant_id, session_id)
    entries, total = await sessions.files(session_id, offset=offset, limit=limit, include_failed=include_failed)
    return SessionResults(
        session_id=session_id,
        results=[await _result(entry, blobs) for entry in entries],
        total_count=total,
        offset=offset,
        limit=limit,
        has_more=offset + len(entries) < total,
        summary=ResultsSummary(
            total_files=summary.total_files,
            completed=summary.completed_files,
            failed=summary.failed_files,
            skipped=summary.skipped_files,
        ),
    )


async def session_summary(
    tenant_id: uuid.UUID, session_id: uuid.UUID, stuck_after: timedelta, now: datetime
) -> SessionSummary:
    """Counts by unified status (a duplicate counts as completed, a rejected file as failed) and by description
    status, over every file of the session."""
    summary = await sessions.summary(tenant_id, session_id)
    entries, _ = await sessions.files(session_id)
    stored = [entry.file for entry in entries if entry.outcome == sessions.ACCEPTED and entry.file]
    job_rows = await jobs.jobs_of_files([file.id for file in stored])
    counts = Counter(dict.fromkeys(SUMMARY_COUNTS, 0))
    descriptions = Counter(dict.fromkeys(("pending", "processing", "completed", "failed", "skipped"), 0))
    for entry in entries:
        if entry.outcome == sessions.REJECTED:
            counts["failed"] += 1
        elif entry.outcome == sessions.SKIPPED or entry.file is None:
            counts["completed"] += 1
        else:
            shown = upload_status(entry.file, job_rows[entry.file.id], stuck_after, now)
            counts[shown.unified_status] += 1
            counts["stuck"] += shown.is_stuck
            described = entry.file.description_status or "skipped"
            descriptions["pending" if described == "queued" else described] += 1
    messages = [
        message
        for entry in entries
        if (message := _error(entry)) and _file_status(entry) in ("failed", "partially_completed")
    ]
    return SessionSummary(
        session_id=session_id,
        overall_status=summary.status,
        completion_percentage=_progress(summary),
        counts={"total": len(entries), **counts},
        description_counts=dict(descriptions),
        error_summary=ErrorSummary(count=len(messages), messages=list(dict.fromkeys(messages))[:RECENT]),
        created_at=summary.created_at,
        last_activity_at=summary.last_activity_at,
    )
