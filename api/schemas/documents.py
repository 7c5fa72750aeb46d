"""Wire types of the document routes: extracted text, retrieval chunks and the structural digitization."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class TextMetadata(msgspec.Struct):
    language: str | None  # ISO 639-1, None when the text is too short or mixed to tell


class DocumentText(msgspec.Struct):
    document_id: uuid.UUID
    filename: str
    text: str
    page_count: int | None
    metadata: TextMetadata


class ChunkMetadata(msgspec.Struct):
    token_count: int  # in the embedder's tokens
    chunk_type: str  # paragraph | table | list | key_value | figure | mixed
    embedding_status: str  # pending | completed | failed


class ChunkText(msgspec.Struct):
    """What a chunk is, wherever it is shown (the document's chunks, search hits)."""

    chunk_id: uuid.UUID
    document_id: uuid.UUID
    document_filename: str
    chunk_index: int
    content: str
    page_numbers: list[int]
    heading_hierarchy: list[str]


class DocumentChunk(ChunkText, omit_defaults=True):
    similarity_score: float | None  # null on a direct fetch; search results fill it
    metadata: ChunkMetadata
    # Only with include_embeddings=true: the vector in the active text model's space, null while the chunk
    # has none there yet (not embedded, or embedded by another model only).
    embedding: list[float] | UnsetType | None = UNSET


class DocumentChunks(msgspec.Struct, omit_defaults=True):
    """One page of the chunks, `limit` after the first `offset`, in order; `total_chunks` counts them all, and
    `has_more` says whether chunks follow this page (paged like the spec's other lists)."""

    document_id: uuid.UUID
    chunks: list[DocumentChunk]
    total_chunks: int
    limit: int
    offset: int
    has_more: bool
    # Only with include_embeddings=true: all chunks per embedding_status (completed, pending and failed always).
    status_counts: dict[str, int] | UnsetType = UNSET


class BoundingBox(msgspec.Struct):
    """Normalised to the page: 0..1 from the top-left corner."""

    x: float
    y: float
    w: float
    h: float


class Element(msgspec.Struct, omit_defaults=True):
    type: str  # heading | paragraph | table (Markdown) | key_value | list | figure
    content: str
    bounding_box: BoundingBox | None  # null for formats without page geometry (DOCX, TXT, MD)
    metadata: dict[str, Any] | UnsetType = UNSET  # heading: {level}; key_value: {key, value}


class DigitizedPage(msgspec.Struct):
    """A page's status is `completed`, `failed` (with `error_message`), or `needs_ocr`: a scanned page
    without a text layer, which has no elements until OCR has read it (then `completed`, or `failed` when OCR
    could not run)."""

    page_number: int
    status: str
    element_count: int
    elements: list[Element]
    error_message: str | None


class Digitization(msgspec.Struct):
    """`status` is the document's digitization: pending | processing | completed | failed. `pages` lists one page
    of the digitized pages (none before digitization completes), `limit` after the first `offset`, in order, and
    `has_more` says whether digitized pages follow it; `completed_pages` and `failed_pages` count all the
    digitized pages by status, so a `needs_ocr` page is in neither."""

    document_id: uuid.UUID
    status: str
    total_pages: int
    completed_pages: int
    failed_pages: int
    pages: list[DigitizedPage]
    limit: int
    offset: int
    has_more: bool


class DigitizationStatus(msgspec.Struct):
    """`page_statuses` maps every page number ("1", "2", ...) to its status; a page that has not been
    digitized yet is `pending`."""

    document_id: uuid.UUID
    status: str
    total_pages: int
    page_statuses: dict[str, str]
