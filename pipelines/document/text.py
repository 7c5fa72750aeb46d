"""The `document_text` step: a document in, its text, digitized pages and retrieval chunks out. Runs as a Ray
task near the bytes; the pages and chunks travel back as plain values and are stored with the job's
completion (store/documents.py), so a reader never sees half of an extraction.

Chunks are measured in the tokens of the embedder that will read them, so none is cut short when embedded. A
PDF with scanned pages (no text layer) goes on to `document_ocr` (pipelines/document/scanned_pages.py) before its chunks
are embedded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from models.registry import resolve
from models.tokens import token_counter
from pipelines.document.chunking import MAX_TOKENS, OVERLAP_TOKENS, chunk
from pipelines.document.digitize import NEEDS_OCR, digitize
from pipelines.document.extraction import DocumentError, ExtractedDocument, Limits, extract
from pipelines.engine.step import FileRef, Result, StepFailed
from store import documents
from store.step_objects import S3Location, opened

COLUMNS = (
    "extracted_text",
    "page_count",
    "document_type",
    "language",
    "chunk_count",
    "text_extraction_status",
    "digitization_status",
    "ocr_status",
)
# Steps that follow: the one that reads scanned pages (pipelines/document/scanned_pages.py), the chunks' embedding.
OCR_STEP, EMBED_STEP = "document_ocr", "embed_chunks"


@dataclass(frozen=True)
class DocumentOptions:
    """What the step needs beyond the file (small and picklable: it travels to the Ray worker)."""

    text_model: str | None = None  # whose tokenizer measures chunks: the embedder's (None: the default)
    max_tokens: int = MAX_TOKENS
    overlap_tokens: int = OVERLAP_TOKENS
    limits: Limits = field(default_factory=Limits)


def extract_document(location: S3Location, file: FileRef, options: DocumentOptions) -> dict[str, Any]:
    if file.document_type is None:
        raise StepFailed(f"not a document: {file.content_type}")
    with opened(location, file.object_key) as source:
        try:
            document = extract(source, file.document_type, options.limits)
        except DocumentError as error:
            raise StepFailed(str(error)) from None
    return document_result(document, options)


def document_result(document: ExtractedDocument, options: DocumentOptions) -> dict[str, Any]:
    """The file columns, pages and chunks of an extracted document. While scanned pages wait for OCR, the text,
    its digitization and its embedding stay under way (the OCR step makes them anew with its text)."""
    digitization = digitize(document)
    count_tokens = token_counter(resolve("embed_text", options.text_model))
    chunks = chunk(digitization, count_tokens, max_tokens=options.max_tokens, overlap_tokens=options.overlap_tokens)
    scanned = any(page.status == NEEDS_OCR for page in digitization.pages)
    return {
        "extracted_text": document.text,
        "page_count": document.page_count,
        "document_type": document.document_type,
        "language": document.language,
        "chunk_count": len(chunks),
        "text_extraction_status": "processing" if scanned else "completed",
        "digitization_status": "processing" if scanned else digitization.status,
        "ocr_status": "queued" if scanned else None,
        # The chunks' embedding comes next, unless there is nothing to embed.
        "embedding_status": "queued" if chunks or scanned else "skipped",
        "pages": [page.to_dict() for page in digitization.pages],
        "chunks": [asdict(c) for c in chunks],
    }


async def save_document(file: FileRef, result: Result) -> None:
    await documents.replace(file.id, file.tenant_id, result["pages"], result["chunks"])


def after_extraction(result: Result) -> tuple[str, ...]:
    """Scanned pages are read first: the chunks are embedded once they hold the pages' OCR text."""
    return (OCR_STEP,) if result["ocr_status"] == "queued" else embed_when_chunked(result)


def embed_when_chunked(result: Result) -> tuple[str, ...]:
    return (EMBED_STEP,) if result["chunks"] else ()
