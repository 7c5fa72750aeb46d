"""From a document's file row, page rows and chunk rows to the shapes of the document routes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from msgspec import UNSET

from api.paging import Page
from api.schemas.documents import (
    Digitization,
    DigitizationStatus,
    DigitizedPage,
    DocumentChunk,
    DocumentChunks,
    DocumentText,
    TextMetadata,
)
from api.shaping import shaped
from store.rows import ChunkRow, FileRow, PageRow

EMBEDDING_STATUSES = ("completed", "pending", "failed")


def document_text(row: FileRow) -> DocumentText:
    return DocumentText(
        document_id=row.id,
        filename=row.filename,
        text=row.extracted_text or "",  # a document without any text layer extracts to nothing
        page_count=row.page_count,
        metadata=TextMetadata(language=row.language),
    )


def chunk_text(chunk: ChunkRow, filename: str) -> dict[str, Any]:
    """The ChunkText fields of a chunk row that it does not name as they are."""
    return {"chunk_id": chunk.id, "document_id": chunk.file_id, "document_filename": filename}


def document_chunks(
    row: FileRow,
    chunk_rows: Sequence[ChunkRow],
    counts: Mapping[str, int],
    page: Page,
    vectors: dict[uuid.UUID, list[float]] | None = None,
) -> DocumentChunks:
    """One page of the chunks, with the total from `counts` (all the chunks per embedding status); with `vectors`
    (the active model's, by chunk id) each carries its embedding and the answer shows the counts."""
    chunks = [
        shaped(
            DocumentChunk,
            chunk,
            **chunk_text(chunk, row.filename),
            similarity_score=None,
            metadata=chunk,  # its token count, type and embedding status
            **({} if vectors is None else {"embedding": vectors.get(chunk.id)}),
        )
        for chunk in chunk_rows
    ]
    total = sum(counts.values())
    return DocumentChunks(
        document_id=row.id,
        chunks=chunks,
        total_chunks=total,
        **page.fields(len(chunks), total),
        status_counts=UNSET if vectors is None else {status: 0 for status in EMBEDDING_STATUSES} | dict(counts),
    )


def digitization_status_of(row: FileRow) -> str:
    """The spec's pending | processing | completed | failed: a queued digitization is still pending."""
    status = row.digitization_status or "pending"
    return "pending" if status == "queued" else status


def digitized_page(page: PageRow) -> DigitizedPage:
    return shaped(DigitizedPage, page, element_count=len(page.elements))


def _total_pages(row: FileRow, page_numbers: Iterable[int]) -> int:
    """The extracted page count, or more when digitization found more pages (never fewer than listed)."""
    return max(row.page_count or 0, *page_numbers, 0)


def digitization(row: FileRow, page_statuses: Mapping[int, str], pages: Sequence[PageRow], page: Page) -> Digitization:
    """One page of the digitized pages, counted among all of them (`page_statuses`)."""
    statuses = list(page_statuses.values())
    shapes = [digitized_page(digitized) for digitized in pages]
    return Digitization(
        document_id=row.id,
        status=digitization_status_of(row),
        total_pages=_total_pages(row, page_statuses),
        completed_pages=statuses.count("completed"),
        failed_pages=statuses.count("failed"),
        pages=shapes,
        **page.fields(len(shapes), len(statuses)),
    )


def digitization_status(row: FileRow, page_statuses: dict[int, str]) -> DigitizationStatus:
    total = _total_pages(row, page_statuses)
    return DigitizationStatus(
        document_id=row.id,
        status=digitization_status_of(row),
        total_pages=total,
        page_statuses={str(number): page_statuses.get(number, "pending") for number in range(1, total + 1)},
    )
