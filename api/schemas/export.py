"""Wire types of the metadata export."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta


class ExportColumn(msgspec.Struct):
    field_key: str
    display_name: str
    group: str


class ExportColumns(msgspec.Struct):
    groups: dict[str, list[ExportColumn]]


class RequestedColumn(msgspec.Struct, forbid_unknown_fields=True):
    field_key: str
    display_name: Annotated[str, Meta(min_length=1, max_length=100)] | None = None  # the registry's name if absent


class ExportRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`folder_id` keeps the files filed in that folder (folders have no sub-folders here, so `include_subfolders`
    changes nothing); `google_sheets_title` and `connection_id` belong to the Google Sheets format, not offered."""

    format: Literal["csv", "xlsx", "docx", "google_sheets"]
    columns: Annotated[list[RequestedColumn], Meta(min_length=1, max_length=50)]
    file_ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=10_000)] | None = None
    folder_id: uuid.UUID | None = None
    include_subfolders: bool = False
    flatten_tags: bool = True
    sheet_name: Annotated[str, Meta(min_length=1, max_length=31, pattern=r"^[^\[\]:*?/\\]+$")] = "Files"
    google_sheets_title: str | None = None
    connection_id: uuid.UUID | None = None


class ExportResult(msgspec.Struct):
    download_url: str
    spreadsheet_url: str | None
    record_count: int
    format: str
