"""Document routes: the extracted text, the retrieval chunks (optionally with their vectors) and the structural
digitization, paged, one page, or as a status. Each answers 400 on a file that is not a document; the chunks and
the digitized pages are paged (limit, offset), so that no answer grows with the document."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, FromQuery, Parameter, QueryParameter

from api.deps import AppSettings, Tenant
from api.document_views import digitization, digitization_status, digitized_page, document_chunks, document_text
from api.paging import Offset, Page
from api.schemas.documents import (
    Digitization,
    DigitizationStatus,
    DigitizedPage,
    DocumentChunks,
    DocumentText,
)
from pipelines.inference.in_use import serving_text_model
from store import documents, embeddings, files
from store.errors import Conflict, NotFound, WrongMediaType
from store.rows import FileRow
from store.tenants import TenantRef

# A chunk with its vector is some 8 KB of JSON (384 dimensions), a digitized page up to a few hundred KB: a page
# of either stays a few MB however large the document.
DEFAULT_CHUNKS_LIMIT, MAX_CHUNKS_LIMIT = 100, 500
DEFAULT_PAGES_LIMIT, MAX_PAGES_LIMIT = 20, 100
# Past any document an operator lets us read (limits.document_pages), and within Postgres's integer.
MAX_PAGE_NUMBER = 1_000_000
PAGE_NUMBER = Parameter(ge=1, le=MAX_PAGE_NUMBER, description=f"1-indexed, at most {MAX_PAGE_NUMBER:,}")


async def _document(tenant: TenantRef, file_id: str) -> FileRow:
    row = await files.get_file(tenant.id, file_id)
    if row.media_type != "document":
        raise WrongMediaType(f"this route serves documents only; this file is a {row.media_type}")
    return row


def _extracted(row: FileRow) -> FileRow:
    """The row, once its text is extracted: an empty text before then would read as the answer."""
    status = row.text_extraction_status
    if status == "failed":
        raise Conflict(
            f"text extraction failed: {row.error_message or 'no reason recorded'}",
            code="text_extraction_failed",
            text_extraction_status=status,
        )
    if status != "completed":
        raise Conflict(
            f"the text is not extracted yet (text_extraction_status: {status}); retry once it is completed",
            code="text_not_ready",
            text_extraction_status=status,
        )
    return row


class DocumentsController(Controller):
    path = "/api/v2/files"
    tags = ("documents",)

    @get("/{file_id:str}/text")
    async def get_text(self, tenant: Tenant, file_id: FromPath[str]) -> DocumentText:
        """The full extracted text. 409 until extraction has completed (code `text_not_ready`, with the current
        `text_extraction_status`) or after it failed (code `text_extraction_failed`)."""
        return document_text(_extracted(await _document(tenant, file_id)))

    @get("/{file_id:str}/chunks")
    async def get_chunks(
        self,
        tenant: Tenant,
        settings: AppSettings,
        file_id: FromPath[str],
        include_embeddings: FromQuery[bool] = False,
        offset: Offset = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_CHUNKS_LIMIT)] = DEFAULT_CHUNKS_LIMIT,
    ) -> DocumentChunks:
        """The chunks stored now, in order, a page at a time (`limit` after the first `offset`), whatever the
        extraction's status: none before the first extraction completes, the previous extraction's while a new
        one runs (they are replaced whole). Unlike an empty text, an empty list is no false answer.
        `include_embeddings` adds each chunk's vector in the active text model's space (null where it has none
        yet) and counts all the chunks per embedding status."""
        row = await _document(tenant, file_id)
        rows = await documents.chunks_of(row.id, offset, limit)
        counts = await documents.chunk_counts(row.id)
        page = Page(offset, limit)
        if not include_embeddings:
            return document_chunks(row, rows, counts, page)
        model = await serving_text_model(settings)
        vectors = await embeddings.vectors_of(row.id, model.model_id, [chunk.id for chunk in rows]) if rows else {}
        return document_chunks(row, rows, counts, page, vectors)

    @get("/{file_id:str}/digitization")
    async def get_digitization(
        self,
        tenant: Tenant,
        file_id: FromPath[str],
        offset: Offset = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGES_LIMIT)] = DEFAULT_PAGES_LIMIT,
    ) -> Digitization:
        """The digitized pages with their elements and normalised bounding boxes, a page of them at a time
        (`limit` after the first `offset` of the pages digitized, in page order)."""
        row = await _document(tenant, file_id)
        statuses = await documents.page_statuses(row.id)
        return digitization(row, statuses, await documents.pages_of(row.id, offset, limit), Page(offset, limit))

    @get("/{file_id:str}/digitization/pages/{page_number:int}")
    async def get_digitization_page(
        self,
        tenant: Tenant,
        file_id: FromPath[str],
        page_number: Annotated[int, PAGE_NUMBER],
    ) -> DigitizedPage:
        """One digitized page; 404 when the page has not been digitized (or does not exist)."""
        row = await _document(tenant, file_id)
        page = await documents.page_of(row.id, page_number)
        if page is None:
            raise NotFound(
                f"page {page_number} of document {row.id} is not digitized "
                f"(digitization_status: {row.digitization_status}, page_count: {row.page_count})",
                code="page_not_found",
            )
        return digitized_page(page)

    @get("/{file_id:str}/digitization/status")
    async def get_digitization_status(self, tenant: Tenant, file_id: FromPath[str]) -> DigitizationStatus:
        """The digitization's status and every page's, without elements."""
        row = await _document(tenant, file_id)
        return digitization_status(row, await documents.page_statuses(row.id))
