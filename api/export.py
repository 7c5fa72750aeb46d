"""Exports of file metadata (GET /files/export/columns, POST /files/export): the tenant's live files, or those it
names, as CSV, XLSX or DOCX with the columns the client picks from a registry. The document is written to a
temporary file, stored in S3 under a key made of ids (`exports/<tenant>/<export>/...`) and handed back as a
presigned download URL, valid no longer than the export is kept (the periodic purge deletes it after
`retention.export_hours`, pipelines/purge.py). An export holds at most MAX_CELLS cells (files × columns), a
column once, and is built off the event loop. Header cells are written as data cells are: never a formula.
Google Sheets needs a Google Drive connection, which this service does not offer: that format is refused with the
reason."""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any

import docx
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from api.schemas.export import ExportColumn, ExportColumns, ExportRequest, ExportResult
from store import files
from store.blob_store import BlobStore
from store.errors import InvalidInput
from store.keys import export_key
from store.rows import Dimensions, FileStatusRow
from store.status import primary_status_of

MAX_RECORDS = 10_000
MAX_CELLS = 100_000  # 10,000 files of 10 columns, 5,000 of all 20
DOWNLOAD_SECONDS = 3600
_CHUNK = 1024 * 1024
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Source(FileStatusRow):
    """What the columns are read from: the component statuses (the status) and these."""

    filename: str
    title: str | None
    content_type: str
    size_bytes: int
    upload_description: str | None
    user_description: str | None
    tags: list[str]
    visible_text: str | None
    dimensions: Dimensions | None
    content_created_at: datetime | None
    document_type: str | None
    page_count: int | None
    language: str | None


@dataclass(frozen=True)
class Column:
    key: str
    name: str
    group: str
    value: Callable[[_Source], Any]


def _plain(key: str) -> Callable[[_Source], Any]:
    return attrgetter(key)


def _dimension(axis: str) -> Callable[[_Source], Any]:
    return lambda row: getattr(row.dimensions, axis) if row.dimensions else None


_COLUMNS = [
    Column("id", "ID", "basic", lambda row: str(row.id)),
    Column("filename", "Filename", "basic", _plain("filename")),
    Column("title", "Title", "basic", _plain("title")),
    Column("media_type", "Media Type", "basic", _plain("media_type")),
    Column("content_type", "Content Type", "basic", _plain("content_type")),
    Column("size_bytes", "Size (bytes)", "basic", _plain("size_bytes")),
    Column("created_at", "Created At", "basic", _plain("created_at")),
    Column("updated_at", "Updated At", "basic", _plain("updated_at")),
    Column("upload_description", "AI Description", "descriptions", _plain("upload_description")),
    Column("user_description", "User Description", "descriptions", _plain("user_description")),
    Column("tags", "Tags", "descriptions", _plain("tags")),
    Column("visible_text", "Visible Text", "descriptions", _plain("visible_text")),
    Column("width", "Width", "media", _dimension("width")),
    Column("height", "Height", "media", _dimension("height")),
    Column("content_created_at", "Captured At", "media", _plain("content_created_at")),
    Column("document_type", "Document Type", "media", _plain("document_type")),
    Column("page_count", "Page Count", "media", _plain("page_count")),
    Column("language", "Language", "media", _plain("language")),
    Column("status", "Processing Status", "processing", primary_status_of),
    Column("error_message", "Error", "processing", _plain("error_message")),
]
COLUMNS = {column.key: column for column in _COLUMNS}


def export_columns() -> ExportColumns:
    groups: dict[str, list[ExportColumn]] = {}
    for column in _COLUMNS:
        groups.setdefault(column.group, []).append(ExportColumn(column.key, column.name, column.group))
    return ExportColumns(groups)


async def export(tenant_id: uuid.UUID, request: ExportRequest, blobs: BlobStore, retention: timedelta) -> ExportResult:
    """`retention`: how long the export is kept; its download URL lasts no longer."""
    if request.format == "google_sheets":
        raise InvalidInput(
            "exports to Google Sheets need a Google Drive connection, which this service does not offer; "
            "use csv, xlsx or docx",
            field="format",
        )
    unknown = [column.field_key for column in request.columns if column.field_key not in COLUMNS]
    if unknown:
        raise InvalidInput(f"unknown columns {unknown}; see /api/v2/files/export/columns", field="columns")
    keys = [column.field_key for column in request.columns]
    if repeated := sorted({key for key in keys if keys.count(key) > 1}):
        raise InvalidInput(f"each column at most once; repeated: {repeated}", field="columns")
    most = min(MAX_RECORDS, MAX_CELLS // len(keys))
    rows = await files.live_rows(
        tenant_id, _Source, file_ids=request.file_ids, folder_id=request.folder_id, limit=most + 1
    )
    if len(rows) > most:
        raise InvalidInput(
            f"an export holds at most {MAX_CELLS:,} cells, here {most:,} files of {len(keys)} columns; "
            "narrow it with file_ids or folder_id, or ask for fewer columns",
            field="file_ids",
        )
    name = f"files_{datetime.now(UTC):%Y-%m-%d}.{request.format}"
    key = export_key(tenant_id, uuid.uuid4(), name)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        await asyncio.to_thread(_build, path, request, rows)  # CPU: not in the event loop
        await _store(blobs, key, path)
    seconds = min(DOWNLOAD_SECONDS, int(retention.total_seconds()))
    url = await blobs.presigned_get(key, seconds, filename=name, content_type=_TYPES[request.format])
    return ExportResult(download_url=url, spreadsheet_url=None, record_count=len(rows), format=request.format)


def _build(path: Path, request: ExportRequest, rows: Sequence[_Source]) -> None:
    """The table, header first, each cell through `_cell`, written in the format asked for."""
    header = [_cell(column.display_name or COLUMNS[column.field_key].name, True) for column in request.columns]
    table = [[_cell(COLUMNS[column.field_key].value(row), request.flatten_tags) for column in request.columns]
             for row in rows]  # fmt: skip
    _WRITERS[request.format](path, header, table, request.sheet_name)


def _cell(value: Any, flatten_tags: bool) -> Any:
    """A cell's value: a list (tags) joined with commas, or as a JSON array; times in ISO 8601; text without the
    control characters XML forbids, and never read as a formula by a spreadsheet (a leading =, +, - or @ is
    quoted)."""
    if isinstance(value, list):
        value = ", ".join(value) if flatten_tags else json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        return f"'{value}" if value.startswith(_FORMULA_STARTS) else value
    return value


async def _store(blobs: BlobStore, key: str, path: Path) -> None:
    writer = blobs.writer(key)
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                await writer.write(chunk)
        await writer.close()
    except BaseException:
        await writer.abort()
        raise


def _csv(path: Path, header: list[str], table: Sequence[list[Any]], sheet_name: str) -> None:
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # the BOM tells spreadsheets it is UTF-8
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(["" if cell is None else cell for cell in row] for row in table)


def _xlsx(path: Path, header: list[str], table: Sequence[list[Any]], sheet_name: str) -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name)
    sheet.append(header)
    for row in table:
        sheet.append(row)
    workbook.save(path)


def _docx(path: Path, header: list[str], table: Sequence[list[Any]], sheet_name: str) -> None:
    document = docx.Document()
    document.add_heading(sheet_name, level=1)
    grid = document.add_table(rows=1, cols=len(header))
    for cell, text in zip(grid.rows[0].cells, header, strict=True):
        cell.text = text
    for row in table:
        for cell, value in zip(grid.add_row().cells, row, strict=True):
            cell.text = "" if value is None else str(value)
    document.save(str(path))


_WRITERS: dict[str, Callable[[Path, list[str], Sequence[list[Any]], str], None]] = {
    "csv": _csv,
    "xlsx": _xlsx,
    "docx": _docx,
}
_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
