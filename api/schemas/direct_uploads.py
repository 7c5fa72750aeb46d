"""Wire types of direct uploads (POST /files/direct-uploads and its sub-resources), named as the spec names them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

MIB = 1024 * 1024
GIB = 1024 * MIB
MIN_PART_BYTES = 5 * MIB
MAX_PART_BYTES = 5 * GIB

UploadMode = Literal["single_shot", "multipart"]


class DirectUploadRequest(msgspec.Struct, kw_only=True):
    filename: Annotated[str, Meta(min_length=1, max_length=1000)]
    content_type: Annotated[str, Meta(max_length=100, pattern=r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")]
    size_bytes: Annotated[int, Meta(ge=1)]
    claimed_file_hash: Annotated[str, Meta(pattern="^[0-9a-fA-F]{64}$")]
    upload_mode: UploadMode | None = None
    part_size_bytes: Annotated[int, Meta(ge=MIN_PART_BYTES, le=MAX_PART_BYTES)] | None = None
    title: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    folder_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    skip_duplicates: bool = False
    storage_target: Literal["default", "custom"] = "default"
    auto_describe: bool = True
    content_category: str = "general"
    custom_schema_id: uuid.UUID | None = None
    compliance_type: Literal["mls", "marketplace"] | None = None
    compliance_standard: str | None = None
    compliance_image_type: Literal["main", "secondary"] = "main"


class SingleShotUpload(msgspec.Struct):
    upload_id: uuid.UUID
    upload_mode: str
    media_type: str
    method: str
    presigned_url: str
    headers: dict[str, str]
    object_key: str
    expires_at: datetime
    max_size_bytes: int
    bucket_name: str


class PartUrl(msgspec.Struct):
    part_number: int
    url: str
    expires_at: datetime


class MultipartUpload(msgspec.Struct):
    upload_id: uuid.UUID
    upload_mode: str
    media_type: str
    s3_upload_id: str
    object_key: str
    part_urls: list[PartUrl]
    part_size_bytes: int
    total_parts: int
    expires_at: datetime
    bucket_name: str


class DuplicateUpload(msgspec.Struct):
    """With skip_duplicates, the tenant already has these bytes: nothing to upload, no intent."""

    upload_id: None
    upload_mode: str
    media_type: str
    deduplicated: bool
    existing_file_id: uuid.UUID
    detail: str


class DirectUploadStatus(msgspec.Struct):
    upload_id: uuid.UUID
    upload_mode: str
    status: str
    media_type: str
    object_key: str
    filename: str
    size_bytes: int
    total_parts: int | None
    parts_confirmed: int | None
    progress_percent: float | None
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    error_message: str | None


class PartConfirmRequest(msgspec.Struct):
    part_number: Annotated[int, Meta(ge=1, le=10_000)]
    etag: Annotated[str, Meta(min_length=1, max_length=200)]
    size_bytes: Annotated[int, Meta(ge=1)]


class PartConfirmed(msgspec.Struct):
    upload_id: uuid.UUID
    part_number: int
    parts_confirmed: int
    total_parts: int
    progress_percent: float


class PartRetryRequest(msgspec.Struct):
    part_number: Annotated[int, Meta(ge=1, le=10_000)]


class PartRetryUrl(msgspec.Struct):
    upload_id: uuid.UUID
    part_number: int
    url: str
    expires_at: datetime


class DirectUploadCompleted(msgspec.Struct):
    upload_id: uuid.UUID
    file_id: uuid.UUID
    media_type: str
    filename: str
    object_key: str
    size_bytes: int
    deduplicated: bool
    status: str


class DirectUploadAborted(msgspec.Struct):
    upload_id: uuid.UUID
    aborted: bool
    reason: str | None
