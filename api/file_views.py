"""From file rows to the spec's shapes. Variant URLs are presigned by the caller (api.variant_urls)
and passed in as `urls`; a variant that does not exist yet has a null URL."""

from __future__ import annotations

from typing import Any

import msgspec

from api.schemas.files import (
    Dimensions,
    DocumentFile,
    FileDetail,
    FileListItem,
    ImageFile,
    LinkFile,
    VideoFile,
)
from api.variant_urls import VariantUrls
from store.status import primary_status_of

Row = dict[str, Any]

_MEDIA_FIELDS = {
    "document": ("page_count", "text_extraction_status", "chunk_count"),
    "video": ("duration_seconds", "frame_rate", "video_codec", "resolution", "video_analysis_status"),
    "link": ("domain", "og_metadata", "favicon_url", "crawl_status", "extracted_images", "extracted_images_count"),
}


def download_path(row: Row) -> str:
    return f"/api/v2/files/{row['id']}/download"


def _dimensions(row: Row) -> Dimensions | None:
    value = row.get("dimensions")
    return msgspec.convert(value, Dimensions) if value else None


def _common(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "filename": row["filename"],
        "tags": row["tags"] or [],
        "size_bytes": row["size_bytes"],
        "content_type": row["content_type"],
        "content_category": row["content_category"],
        "folder_id": row["folder_id"],
        "project_id": row["project_id"],
        "primary_status": primary_status_of(row),
        "description_status": row["description_status"],
        "description_error": row["description_error"],
        "upload_description": row["upload_description"],
        "user_description": row["user_description"],
    }


def list_item(row: Row, urls: VariantUrls) -> FileListItem:
    media = row["media_type"]
    extra = {name: row[name] for name in _MEDIA_FIELDS.get(media, ())}
    if media == "document":
        extra["document_url"] = download_path(row)
    return FileListItem(
        **_common(row),
        media_type=media,
        **urls,
        visible_text=row["visible_text"],
        created_at=row["created_at"],
        content_created_at=row["content_created_at"],
        has_full_description=bool(row["full_descriptions"]),
        dimensions=_dimensions(row),
        format=row["format"],
        variant_status=row["variant_status"],
        variant_count=row["variant_count"],
        blur_hash=row["blur_hash"],
        document_type=row["document_type"],
        source_url=row["source_url"],
        **extra,
    )


def detail(row: Row, urls: VariantUrls) -> FileDetail:
    common = {
        **_common(row),
        "file_hash": row["sha256"],
        "download_url": download_path(row),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    media = row["media_type"]
    if media == "image":
        return ImageFile(
            **common,
            dimensions=_dimensions(row),
            format=row["format"],
            **urls,
            original_url=download_path(row),
            variant_status=row["variant_status"],
            variant_count=row["variant_count"],
            visible_text=row["visible_text"],
            text_regions=row["text_regions"],
            description_generated_at=row["description_generated_at"],
            full_descriptions=row["full_descriptions"],
            has_full_description=bool(row["full_descriptions"]),
            blur_hash=row["blur_hash"],
            content_created_at=row["content_created_at"],
            ai_models=row["ai_models"],
        )
    if media == "document":
        return DocumentFile(
            **common,
            document_type=row["document_type"],
            page_count=row["page_count"],
            chunk_count=row["chunk_count"],
            text_extraction_status=row["text_extraction_status"],
            digitization_status=row["digitization_status"],
            extracted_text=row["extracted_text"],
            document_url=download_path(row),
        )
    if media == "video":
        return VideoFile(
            **common,
            duration_seconds=row["duration_seconds"],
            frame_rate=row["frame_rate"],
            video_codec=row["video_codec"],
            resolution=row["resolution"],
            analysis_status=row["video_analysis_status"],
            video_analysis_status=row["video_analysis_status"],
            thumbnail_url=urls["thumbnail_url"],
        )
    return LinkFile(**common, **{name: row[name] for name in _MEDIA_FIELDS["link"]}, source_url=row["source_url"])
