"""Wire types of analyze and jobs: the analyze outcome is a union told apart by its `status`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec


class _Document(msgspec.Struct, tag_field="status"):
    """A document's facts as they stand, with its text."""

    document_id: uuid.UUID
    filename: str
    size_bytes: int
    processing_time_ms: float
    document_type: str | None
    text_extraction_status: str | None
    page_count: int | None
    chunk_count: int | None
    extracted_text: str | None


class AnalyzeCompleted(_Document, tag="completed"):
    """The text was extracted within the timeout."""


class AnalyzeProcessing(msgspec.Struct, tag_field="status", tag="processing"):
    """The timeout passed first: poll `poll_url` (GET /job/{job_id})."""

    document_id: uuid.UUID
    job_id: uuid.UUID
    poll_url: str
    document_type: str | None
    text_extraction_status: str | None


class AnalyzeFailed(msgspec.Struct, tag_field="status", tag="failed"):
    document_id: uuid.UUID
    job_id: uuid.UUID
    filename: str
    size_bytes: int
    processing_time_ms: float
    document_type: str | None
    text_extraction_status: str | None
    error_message: str


class AnalyzeSkipped(_Document, tag="skipped"):
    """A content-hash duplicate (skip_duplicates): the tenant's existing copy, as it stands now."""


AnalyzeResult = AnalyzeCompleted | AnalyzeProcessing | AnalyzeFailed | AnalyzeSkipped


class AnalyzeAccepted(msgspec.Struct):
    job_id: uuid.UUID
    status: Literal["processing"]
    poll_url: str


class JobStatus(msgspec.Struct):
    job_id: uuid.UUID
    status: Literal["processing", "completed", "failed", "cancelled"]
    document_id: uuid.UUID
    step: str
    created_at: datetime
    updated_at: datetime
    retry_count: int
    error_message: str | None
    result: AnalyzeCompleted | None  # for a completed `document_text` job
