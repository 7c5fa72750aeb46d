"""The rows the store hands out, typed with their columns' types, and the one place records become them.

Queries return mappings of column name to value (Piccolo's dicts, asyncpg's records); `as_row` and `as_rows`
convert them once, validating each value against its field, so that callers read attributes, not keys. A
caller that needs only some columns passes its own Struct (a projection) to the functions that take `kind`:
they select exactly its fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import msgspec

R = TypeVar("R", bound=msgspec.Struct)
Json = dict[str, Any]


def as_row(kind: type[R], record: Mapping[str, Any]) -> R:
    return msgspec.convert(dict(record), kind)


def as_rows(kind: type[R], records: Iterable[Mapping[str, Any]]) -> list[R]:
    """Every record as `kind`, in one conversion (a page of 100 file rows: about half a millisecond)."""
    return msgspec.convert([dict(record) for record in records], list[kind])  # type: ignore[valid-type]


def column_names(kind: type[msgspec.Struct]) -> tuple[str, ...]:
    """The columns a projection selects: its fields."""
    return kind.__struct_fields__


class Dimensions(msgspec.Struct):
    width: int
    height: int


class Variant(msgspec.Struct):
    """A stored resized copy of an image."""

    key: str
    width: int
    height: int
    content_type: str


class FileStatusRow(msgspec.Struct):
    """What a file's processing status is read from: its component statuses (null where a component does not
    apply to its media type) and its lifecycle times."""

    id: uuid.UUID
    media_type: str
    variant_status: str | None
    description_status: str | None
    text_extraction_status: str | None
    digitization_status: str | None
    video_analysis_status: str | None
    crawl_status: str | None
    ocr_status: str | None
    embedding_status: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    processing_started_at: datetime | None
    completed_at: datetime | None


class FileSummaryRow(FileStatusRow):
    """The columns a file shows in a list (its list item, variant URLs and primary status): not its text, search
    vectors or full descriptions, which can be large and which the list does not show."""

    filename: str
    title: str | None
    tags: list[str]
    size_bytes: int
    content_type: str
    content_category: str
    folder_id: uuid.UUID | None
    project_id: uuid.UUID | None
    description_error: str | None
    upload_description: str | None
    user_description: str | None
    visible_text: str | None
    content_created_at: datetime | None
    dimensions: Dimensions | None
    format: str | None
    variants: dict[str, Variant] | None
    variant_count: int | None
    blur_hash: str | None
    document_type: str | None
    page_count: int | None
    chunk_count: int | None
    duration_seconds: float | None
    frame_rate: float | None
    video_codec: str | None
    resolution: str | None
    source_url: str | None
    domain: str | None
    og_metadata: Json | None
    favicon_url: str | None
    extracted_images: list[Any] | None
    extracted_images_count: int | None


class FileListRow(FileSummaryRow):
    """A listed file: its summary, and whether it has full descriptions (without reading them)."""

    has_full_description: bool


class FileRow(FileSummaryRow):
    """Every column of a `file` row."""

    tenant: uuid.UUID
    sha256: str
    object_key: str
    upload_method: str
    storage_target: str
    auto_describe: bool
    custom_schema_id: uuid.UUID | None
    compliance_type: str | None
    compliance_standard: str | None
    compliance_image_type: str | None
    compliance_status: str | None
    text_regions: list[Json] | None
    full_descriptions: list[Json] | None
    description_generated_at: datetime | None
    ai_models: Json | None
    extracted_text: str | None
    language: str | None
    video_details: Json | None
    deleted_at: datetime | None


class PatchedFile(msgspec.Struct):
    """What a metadata change returns of the file."""

    id: uuid.UUID
    title: str | None
    tags: list[str]
    user_description: str | None
    upload_description: str | None
    updated_at: datetime


class ExpiredFile(msgspec.Struct):
    """A soft-deleted file past retention: what purging it needs."""

    id: uuid.UUID
    object_key: str


class JobRow(msgspec.Struct):
    """Every column of a `job` row (store/jobs.py)."""

    id: uuid.UUID
    file_id: uuid.UUID
    tenant: uuid.UUID
    step: str
    lane: str
    status: str
    attempts: int
    max_attempts: int
    available_at: datetime
    lease_expires_at: datetime | None
    worker_id: str | None
    task_ids: list[str]
    error: str | None
    payload: Json
    traceparent: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    backfill_id: uuid.UUID | None = None


class ChunkRow(msgspec.Struct):
    """A retrieval chunk of a document."""

    id: uuid.UUID
    file_id: uuid.UUID
    tenant: uuid.UUID
    chunk_index: int
    content: str
    chunk_type: str
    heading_hierarchy: list[str]
    page_numbers: list[int]
    token_count: int
    embedding_status: str


class PageRow(msgspec.Struct):
    """A digitized page of a document; `elements` as the digitization wrote them."""

    page_number: int
    status: str
    elements: list[Json]
    error_message: str | None


class SessionSummaryRow(msgspec.Struct):
    """A session's counts and status, derived from its files (store/sessions.py)."""

    session_id: uuid.UUID
    upload_method: str
    status: str
    created_at: datetime
    cancelled_at: datetime | None
    total_files: int
    completed_files: int
    failed_files: int
    rejected_files: int
    skipped_files: int
    pending_files: int
    last_completed_at: datetime | None
    last_activity_at: datetime


class SessionFileRow(FileStatusRow):
    """What a session's file shows of its file row (not its text, which can be megabytes)."""

    tags: list[str]
    upload_description: str | None
    visible_text: str | None
    variants: dict[str, Variant] | None
    deleted_at: datetime | None  # soft-deleted since: shown as deleted, without its data


class SessionEntryRow(msgspec.Struct):
    """One file of a session's request: its outcome, and its file row unless rejected (or since purged)."""

    outcome: str  # accepted | skipped | rejected
    filename: str
    error: str | None
    file: SessionFileRow | None


class PartRow(msgspec.Struct):
    etag: str
    size: int


class UploadIntentRow(msgspec.Struct):
    """A direct upload's record (store/upload_intents.py)."""

    id: uuid.UUID
    tenant: uuid.UUID
    upload_mode: str
    status: str
    filename: str
    content_type: str
    media_type: str
    size_bytes: int
    claimed_file_hash: str
    part_size_bytes: int | None
    total_parts: int | None
    s3_upload_id: str | None
    object_key: str
    file_id: uuid.UUID
    deduplicated: bool
    options: Json
    parts: dict[int, PartRow]
    error_message: str | None
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    completed_at: datetime | None
