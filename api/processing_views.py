"""From file and job rows to the processing status shapes of the spec."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from api.schemas.processing import ProcessingStatus, UploadStatus
from api.shaping import shaped
from store.rows import FileRow, FileStatusRow, JobRow
from store.status import TERMINAL, components_of, primary_status_of, unified_status


def upload_status(
    row: FileStatusRow,
    job_rows: list[JobRow],
    stuck_after: timedelta,
    now: datetime,
    session_id: uuid.UUID | None = None,
) -> UploadStatus:
    primary = primary_status_of(row)
    terminal = primary in TERMINAL
    last_updated = max([row.updated_at, *(job.updated_at for job in job_rows)])
    errors = [job for job in job_rows if job.error]
    started = row.processing_started_at
    ended = row.completed_at if terminal and row.completed_at else now
    return UploadStatus(
        file_id=row.id,
        session_id=session_id,
        unified_status=unified_status(primary),
        component_statuses={**components_of(row), "upload_status": "completed", "processing_status": primary},
        processing_ids=[task for job in job_rows for task in job.task_ids],
        error_message=row.error_message or (errors[-1].error if errors else None),
        last_error_at=errors[-1].updated_at if errors else None,
        created_at=row.created_at,
        last_updated_at=last_updated,
        completed_at=row.completed_at if terminal else None,
        retry_count=sum(max(job.attempts - 1, 0) for job in job_rows),
        processing_duration_seconds=round((ended - started).total_seconds(), 3) if started else None,
        is_stuck=not terminal and last_updated < now - stuck_after,
        is_terminal=terminal,
    )


def processing_status(row: FileRow) -> ProcessingStatus:
    return shaped(
        ProcessingStatus,
        row,
        document_id=row.id,
        file_id=row.id,
        primary_status=primary_status_of(row),
        component_statuses=components_of(row),
    )
