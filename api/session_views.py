"""Upload sessions as the spec shows them: from a session's counts (store/sessions.py) and its files' rows."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

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
from api.variant_urls import variant_url
from store import jobs, sessions
from store.blob_store import BlobStore
from store.status import primary_status_of

Row = dict[str, Any]
RECENT = 10  # completions and errors shown in a session's status
SUMMARY_COUNTS = (
    "uploading", "confirming", "queued", "processing", "completed", "failed", "partially_completed", "stuck"
)  # fmt: skip


def _progress(summary: Row) -> float:
    total = summary["total_files"]
    return round((total - summary["pending_files"]) / total * 100, 1) if total else 100.0


def _completed_at(summary: Row) -> datetime | None:
    if summary["status"] == "cancelled":
        return summary["cancelled_at"]
    if summary["status"] == "processing":
        return None
    return max(filter(None, (summary["created_at"], summary["last_completed_at"])))


def _estimated_completion(summary: Row, now: datetime) -> datetime | None:
    """At the pace so far: the time the files done took, spread over those still pending."""
    done = summary["total_files"] - summary["pending_files"]
    if summary["status"] != "processing" or not done:
        return None
    return now + (now - summary["created_at"]) * summary["pending_files"] / done


def _file_status(row: Row) -> str:
    """A session file's status: its file's primary status, `skipped` for a duplicate (or a file since purged),
    `failed` for a file the batch rejected."""
    if row["outcome"] == sessions.REJECTED:
        return "failed"
    if row["outcome"] == sessions.SKIPPED or row["id"] is None:
        return "skipped"
    return primary_status_of(row)


def _processing_ms(row: Row) -> float | None:
    started, ended = row.get("processing_started_at"), row.get("completed_at")
    return round((ended - started).total_seconds() * 1000, 1) if started and ended else None


def _error(row: Row) -> str | None:
    return row["entry_error"] if row["outcome"] == sessions.REJECTED else row["error_message"]


def _list_item(summary: Row) -> SessionListItem:
    return SessionListItem(
        session_id=summary["session_id"],
        status=summary["status"],
        upload_method=summary["upload_method"],
        total_files=summary["total_files"],
        completed_files=summary["completed_files"],
        failed_files=summary["failed_files"],
        skipped_files=summary["skipped_files"],
        progress_percentage=_progress(summary),
        created_at=summary["created_at"],
        completed_at=_completed_at(summary),
    )


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
    rows, _ = await sessions.files(session_id)
    shown = [(row, _file_status(row)) for row in rows]
    completed = [(row, status) for row, status in shown if status in ("completed", "partially_completed")]
    completed.sort(key=lambda pair: pair[0]["completed_at"] or summary["created_at"], reverse=True)
    errors = [row for row, status in shown if status == "failed"]
    return SessionStatus(
        session_id=session_id,
        status=summary["status"],
        total_files=summary["total_files"],
        completed_files=summary["completed_files"],
        failed_files=summary["failed_files"],
        skipped_files=summary["skipped_files"],
        pending_files=summary["pending_files"],
        progress_percentage=_progress(summary),
        created_at=summary["created_at"],
        started_at=summary["created_at"],  # a streaming batch starts as its request arrives
        completed_at=_completed_at(summary),
        estimated_completion_time=_estimated_completion(summary, now),
        recent_completions=[
            RecentCompletion(row["entry_filename"], row["id"], status, row["upload_description"], _processing_ms(row))
            for row, status in completed[:RECENT]
        ],
        recent_errors=[
            RecentError(row["entry_filename"], row["id"], _error(row) or "failed") for row in errors[-RECENT:]
        ],
        results_url=f"/api/v2/files/sessions/{session_id}/results",
        websocket_channel=sessions.progress_channel(session_id),
    )


async def session_results(
    tenant_id: uuid.UUID, session_id: uuid.UUID, include_failed: bool, offset: int, limit: int, blobs: BlobStore
) -> SessionResults:
    summary = await sessions.summary(tenant_id, session_id)
    rows, total = await sessions.files(session_id, offset=offset, limit=limit, include_failed=include_failed)
    results = [
        SessionResult(
            file_id=row["id"],
            filename=row["entry_filename"],
            status=_file_status(row),
            description=row["upload_description"],
            visible_text=row["visible_text"],
            tags=row["tags"] or [],
            processing_time_ms=_processing_ms(row),
            error_message=_error(row),
            thumbnail_url=await variant_url(blobs, row, "small_256") if row["id"] else None,
            created_at=row["created_at"],
        )
        for row in rows
    ]
    return SessionResults(
        session_id=session_id,
        results=results,
        total_count=total,
        offset=offset,
        limit=limit,
        has_more=offset + len(rows) < total,
        summary=ResultsSummary(
            total_files=summary["total_files"],
            completed=summary["completed_files"],
            failed=summary["failed_files"],
            skipped=summary["skipped_files"],
        ),
    )


async def session_summary(
    tenant_id: uuid.UUID, session_id: uuid.UUID, stuck_after: timedelta, now: datetime
) -> SessionSummary:
    """Counts by unified status (a duplicate counts as completed, a rejected file as failed) and by description
    status, over every file of the session."""
    summary = await sessions.summary(tenant_id, session_id)
    rows, _ = await sessions.files(session_id)
    stored = [row for row in rows if row["outcome"] == sessions.ACCEPTED and row["id"] is not None]
    job_rows = await jobs.jobs_of_files([row["id"] for row in stored])
    counts = Counter(dict.fromkeys(SUMMARY_COUNTS, 0))
    descriptions = Counter(dict.fromkeys(("pending", "processing", "completed", "failed", "skipped"), 0))
    for row in rows:
        if row["outcome"] == sessions.REJECTED:
            counts["failed"] += 1
        elif row["outcome"] == sessions.SKIPPED or row["id"] is None:
            counts["completed"] += 1
        else:
            shown = upload_status(row, job_rows[row["id"]], stuck_after, now)
            counts[shown.unified_status] += 1
            counts["stuck"] += shown.is_stuck
            described = row["description_status"] or "skipped"
            descriptions["pending" if described == "queued" else described] += 1
    messages = [
        message for row in rows if (message := _error(row)) and _file_status(row) in ("failed", "partially_completed")
    ]
    return SessionSummary(
        session_id=session_id,
        overall_status=summary["status"],
        completion_percentage=_progress(summary),
        counts={"total": len(rows), **counts},
        description_counts=dict(descriptions),
        error_summary=ErrorSummary(count=len(messages), messages=list(dict.fromkeys(messages))[:RECENT]),
        created_at=summary["created_at"],
        last_activity_at=summary["last_activity_at"],
    )
