"""Wire types of processing: variants, status and stuck uploads."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class TriggerVariantsResult(msgspec.Struct, omit_defaults=True):
    success: bool
    message: str
    task_id: str
    current_status: str | None
    image_id: uuid.UUID
    skipped_duplicate: bool = False


class ProcessingStatus(msgspec.Struct):
    document_id: uuid.UUID
    file_id: uuid.UUID
    filename: str
    media_type: str
    document_type: str | None
    primary_status: str
    component_statuses: dict[str, str | None]
    text_extraction_status: str | None
    page_count: int | None
    chunk_count: int | None
    created_at: datetime
    processing_started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None


class UploadStatus(msgspec.Struct):
    file_id: uuid.UUID
    session_id: uuid.UUID | None
    unified_status: str
    component_statuses: dict[str, str | None]
    processing_ids: list[str]
    error_message: str | None
    last_error_at: datetime | None
    created_at: datetime
    last_updated_at: datetime
    completed_at: datetime | None
    retry_count: int
    processing_duration_seconds: float | None
    is_stuck: bool
    is_terminal: bool


class StuckUploads(msgspec.Struct):
    stuck_count: int
    images: list[UploadStatus]
