"""Wire types of the file resource, named and shaped as the spec names them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from api.schemas.text import Line, Text

_Json = dict[str, Any]


class Dimensions(msgspec.Struct):
    width: int
    height: int


class _Conditional(msgspec.Struct, omit_defaults=True):
    """Base for shapes whose media-specific fields appear only on the matching media type."""


class FileListItem(_Conditional):
    id: uuid.UUID
    media_type: str
    title: str | None
    filename: str
    thumbnail_url: str | None
    medium_url: str | None
    full_url: str | None
    upload_description: str | None
    user_description: str | None
    visible_text: str | None
    tags: list[str]
    size_bytes: int
    content_type: str
    content_category: str
    created_at: datetime
    content_created_at: datetime | None
    has_full_description: bool
    dimensions: Dimensions | None
    format: str | None
    primary_status: str
    variant_status: str | None
    variant_count: int | None
    blur_hash: str | None
    description_status: str | None
    description_error: str | None
    document_type: str | None
    source_url: str | None
    folder_id: uuid.UUID | None
    project_id: uuid.UUID | None
    # document
    page_count: int | UnsetType | None = UNSET
    text_extraction_status: str | UnsetType | None = UNSET
    chunk_count: int | UnsetType | None = UNSET
    document_url: str | UnsetType | None = UNSET
    # video
    duration_seconds: float | UnsetType | None = UNSET
    frame_rate: float | UnsetType | None = UNSET
    video_codec: str | UnsetType | None = UNSET
    resolution: str | UnsetType | None = UNSET
    video_analysis_status: str | UnsetType | None = UNSET
    # link
    domain: str | UnsetType | None = UNSET
    og_metadata: _Json | UnsetType | None = UNSET
    favicon_url: str | UnsetType | None = UNSET
    crawl_status: str | UnsetType | None = UNSET
    extracted_images: list[Any] | UnsetType | None = UNSET
    extracted_images_count: int | UnsetType | None = UNSET


class FileList(msgspec.Struct):
    items: list[FileListItem]
    total_count: int
    limit: int
    offset: int
    has_more: bool


class _FileDetail(msgspec.Struct, tag_field="media_type"):
    """Fields every media type shares."""

    id: uuid.UUID
    title: str | None
    filename: str
    tags: list[str]
    size_bytes: int
    content_type: str
    content_category: str
    file_hash: str
    folder_id: uuid.UUID | None
    project_id: uuid.UUID | None
    primary_status: str
    description_status: str | None
    description_error: str | None
    upload_description: str | None
    user_description: str | None
    download_url: str
    created_at: datetime
    updated_at: datetime


class ImageFile(_FileDetail, tag="image"):
    dimensions: Dimensions | None
    format: str | None
    full_url: str | None
    thumbnail_url: str | None
    medium_url: str | None
    original_url: str
    variant_status: str | None
    variant_count: int | None
    visible_text: str | None
    text_regions: list[_Json] | None
    description_generated_at: datetime | None
    full_descriptions: list[_Json] | None
    has_full_description: bool
    blur_hash: str | None
    content_created_at: datetime | None
    # Provenance (ours beyond the spec): per task (description, ocr, image_embedding), the model id and
    # revision that produced the output shown.
    ai_models: _Json | None


class DocumentFile(_FileDetail, tag="document"):
    document_type: str | None
    page_count: int | None
    chunk_count: int | None
    text_extraction_status: str | None
    digitization_status: str | None
    extracted_text: str | None
    document_url: str


class VideoFile(_FileDetail, tag="video"):
    duration_seconds: float | None
    frame_rate: float | None
    video_codec: str | None
    resolution: str | None  # as displayed: a rotation tag applied
    analysis_status: str | None
    video_analysis_status: str | None
    thumbnail_url: str | None
    # Ours beyond the spec: the variants of the representative frame (as an image's), what was read in the frames
    # (the distinct lines; text_regions: each with the frame times it was seen at), the probe's further facts
    # (container, real frame rate, rotation, bit rate, pixel format, audio codec), and provenance.
    medium_url: str | None
    full_url: str | None
    blur_hash: str | None
    content_created_at: datetime | None
    visible_text: str | None
    text_regions: list[_Json] | None
    video_details: _Json | None
    ai_models: _Json | None


class LinkFile(_FileDetail, tag="link"):
    source_url: str | None
    domain: str | None
    og_metadata: _Json | None
    favicon_url: str | None
    crawl_status: str | None
    extracted_images: list[Any] | None
    extracted_images_count: int | None


FileDetail = ImageFile | DocumentFile | VideoFile | LinkFile


class FilePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields present change; user_description=null restores the AI description."""

    title: Annotated[Line, Meta(max_length=255)] | UnsetType | None = UNSET
    tags: Annotated[list[Annotated[Line, Meta(max_length=50)]], Meta(max_length=40)] | UnsetType = UNSET
    user_description: Annotated[Text, Meta(max_length=10000)] | UnsetType | None = UNSET


class FilePatchResult(msgspec.Struct):
    id: uuid.UUID
    title: str | None
    tags: list[str]
    user_description: str | None
    upload_description: str | None
    updated_at: datetime


class FileDeleted(msgspec.Struct):
    id: uuid.UUID
    deleted_at: datetime
    message: str = "File deleted successfully"


class FileRestored(msgspec.Struct):
    id: uuid.UUID
    restored_at: datetime
    message: str = "File restored"


class BatchDeleteRequest(msgspec.Struct, forbid_unknown_fields=True):
    file_ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=100)]


class BatchDeleteEntry(msgspec.Struct):
    id: str
    status: str
    message: str | None
    deleted_at: datetime | None


class BatchDeleteSummary(msgspec.Struct):
    total: int
    deleted: int
    skipped: int
    failed: int


class BatchDeleteResult(msgspec.Struct):
    deleted: list[BatchDeleteEntry]
    skipped: list[BatchDeleteEntry]
    failed: list[BatchDeleteEntry]
    summary: BatchDeleteSummary


class FileUploadResponse(msgspec.Struct):
    file_id: uuid.UUID
    upload_method: str
    status: str
    processing_time_ms: float
    upload_completed: bool
    thumbnail_generation_started: bool
    analysis_started: bool
    skipped: bool
    existing_file_id: uuid.UUID | None
    storage_target: str
    media_type: str
    document_type: str | None
    text_extraction_status: str | None
