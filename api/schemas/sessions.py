"""Wire types of the batch upload and of upload sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class BatchFileResult(msgspec.Struct):
    """A file the batch took: stored (`processing` or `completed`) or `skipped` as a duplicate."""

    file_id: uuid.UUID
    filename: str
    status: str
    processing_time_ms: float
    skipped: bool
    existing_file_id: uuid.UUID | None
    error: str | None
    storage_target: str
    media_type: str
    document_type: str | None
    text_extraction_status: str | None


class BatchRejection(msgspec.Struct):
    """A file the batch refused, with why (`code` as in the single upload's error)."""

    filename: str
    error: str
    code: str


class BatchUploadResponse(msgspec.Struct):
    """`status`: `rejected` (no file taken), `partial` (some rejected), `processing` (work queued) or `completed`.
    Progress: poll `status_url`, or follow `websocket_channel` at `ws(s)://<host>/api/v2/files/ws/<channel>`."""

    session_id: uuid.UUID
    total_files: int
    accepted_files: int
    rejected_files: int
    status: str
    immediate_results: list[BatchFileResult]
    status_url: str
    websocket_channel: str
    rejections: list[BatchRejection] | None


class SessionListItem(msgspec.Struct):
    session_id: uuid.UUID
    status: str
    upload_method: str
    total_files: int
    completed_files: int
    failed_files: int
    skipped_files: int
    progress_percentage: float
    created_at: datetime
    completed_at: datetime | None


class SessionList(msgspec.Struct):
    items: list[SessionListItem]
    total_count: int
    limit: int
    offset: int
    has_more: bool


class RecentCompletion(msgspec.Struct):
    filename: str
    file_id: uuid.UUID
    status: str
    description: str | None
    processing_time_ms: float | None


class RecentError(msgspec.Struct):
    filename: str
    file_id: uuid.UUID | None  # null for a file the batch rejected
    error: str


class SessionStatus(msgspec.Struct):
    """`status`: processing | completed | failed | cancelled (a streaming batch is never pending or uploading
    once its request has been answered)."""

    session_id: uuid.UUID
    status: str
    total_files: int
    completed_files: int
    failed_files: int
    skipped_files: int
    pending_files: int
    progress_percentage: float
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None
    estimated_completion_time: datetime | None
    recent_completions: list[RecentCompletion]
    recent_errors: list[RecentError]
    results_url: str
    websocket_channel: str


class SessionResult(msgspec.Struct):
    file_id: uuid.UUID | None  # null for a file the batch rejected
    filename: str
    status: str
    description: str | None
    visible_text: str | None
    tags: list[str]
    processing_time_ms: float | None
    error_message: str | None
    thumbnail_url: str | None
    created_at: datetime | None


class ResultsSummary(msgspec.Struct):
    total_files: int
    completed: int
    failed: int
    skipped: int


class SessionResults(msgspec.Struct):
    session_id: uuid.UUID
    results: list[SessionResult]
    total_count: int
    offset: int
    limit: int
    has_more: bool
    summary: ResultsSummary


class ErrorSummary(msgspec.Struct):
    count: int
    messages: list[str]


class SessionSummary(msgspec.Struct):
    session_id: uuid.UUID
    overall_status: str
    completion_percentage: float
    counts: dict[str, int]
    description_counts: dict[str, int]
    error_summary: ErrorSummary
    created_at: datetime
    last_activity_at: datetime
