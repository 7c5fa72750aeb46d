"""From file rows to the spec's shapes: the fields named as the row's columns come from the row (api.shaping),
only the computed ones (primary status, links) are written here. Variant URLs are presigned by the caller
(api.variant_urls) and passed in as `urls`; a variant that does not exist yet has a null URL."""

from __future__ import annotations

from functools import cache
from typing import Any

from api.schemas.files import DocumentFile, FileDetail, FileListItem, ImageFile, LinkFile, VideoFile
from api.shaping import fields_of, shaped, shared_fields
from api.variant_urls import VariantUrls
from store.rows import FileListRow, FileRow, FileStatusRow
from store.status import primary_status_of

# The list item's media-specific fields: shown on files of that media type only.
_MEDIA_FIELDS = {
    "document": ("page_count", "text_extraction_status", "chunk_count", "document_url"),
    "video": ("duration_seconds", "frame_rate", "video_codec", "resolution", "video_analysis_status"),
    "link": ("domain", "og_metadata", "favicon_url", "crawl_status", "extracted_images", "extracted_images_count"),
}
_DETAILS: dict[str, type[ImageFile] | type[DocumentFile] | type[VideoFile] | type[LinkFile]] = {
    "image": ImageFile,
    "document": DocumentFile,
    "video": VideoFile,
    "link": LinkFile,
}


def download_path(row: FileStatusRow) -> str:
    return f"/api/v2/files/{row.id}/download"


def _computed(row: FileStatusRow, urls: VariantUrls) -> dict[str, Any]:
    """The fields every shape of a file computes from its row."""
    return urls | {"primary_status": primary_status_of(row), "document_url": download_path(row)}


@cache
def _list_fields(media_type: str) -> tuple[str, ...]:
    """What a list item of the media type takes from the row: not the fields of other media types."""
    others = {name for media, names in _MEDIA_FIELDS.items() if media != media_type for name in names}
    return tuple(name for name in shared_fields(FileListItem, FileListRow) if name not in others)


def list_item(row: FileListRow, urls: VariantUrls) -> FileListItem:
    computed = _computed(row, urls)
    if row.media_type != "document":
        del computed["document_url"]
    return shaped(FileListItem, **fields_of(row, _list_fields(row.media_type)), **computed)


def detail(row: FileRow, urls: VariantUrls) -> FileDetail:
    download = download_path(row)
    return shaped(
        _DETAILS[row.media_type],
        row,
        **_computed(row, urls),
        has_full_description=bool(row.full_descriptions),
        file_hash=row.sha256,
        download_url=download,
        original_url=download,
        analysis_status=row.video_analysis_status,
    )
