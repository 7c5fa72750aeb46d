"""The `document_ocr` step: a PDF's scanned pages (no text layer, only images) read by the OCR model actor, so
that their text, digitized elements and chunks exist like those of any other page. `document_text` queues it
when it finds such pages; the document's text, digitization and embedding stay under way until it ends.

The PDF work runs in Ray tasks near the bytes, never in the engine's process (which may be the API's): one parses
the PDF again, its text pages too, so that the text, language, pages and chunks are made from the whole document
at once and in page order; then the scanned pages are rendered a few at a time (grayscale PNG), each batch by a
task of its own, and sent from here to the actor's batch lane; a last task makes the pages and chunks. A MuPDF
crash takes a Ray worker down, not the API. The result has `document_text`'s shape, is stored the same way, and
the chunks are embedded next.

When OCR fails for good (no actor can serve), the scanned pages fail with the reason and the rest of the
document stands: its text, its status by its pages, and its chunks, which are embedded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pymupdf

from cluster.model_clients import OcrClient
from pipelines.document.digitize import COMPLETED, FAILED, NEEDS_OCR
from pipelines.document.extraction import DocumentError, ExtractedDocument, extract, with_ocr
from pipelines.document.text import EMBED_STEP, DocumentOptions, document_result, save_document
from pipelines.engine.step import FileRef, Result, RunContext, StepFailed, files_lane, in_time, run_task
from store import ai_outputs, documents, files, jobs
from store.step_objects import S3Location, opened

log = logging.getLogger(__name__)

RENDER_DPI = 200  # PP-OCR recognises body text well from 150 DPI up (it detects on a ~960-pixel copy)
MAX_RENDER_SIDE = 4_000  # pixels: a poster-sized page is rendered at a lower resolution
PAGES_PER_REQUEST = 8  # rendered pages held at once


@dataclass(frozen=True)
class ReadScannedPages:
    """The step's run (its load is the file alone): parse and render in Ray tasks, have the actor read the
    scanned pages, and make the document's text, pages and chunks in a last task."""

    options: DocumentOptions
    ocr: OcrClient

    async def __call__(self, inputs: FileRef, context: RunContext) -> dict[str, Any]:
        file = inputs
        if file.document_type is None:
            raise StepFailed(f"not a document: {file.content_type}")
        document = await run_task(context, parse, context.location, file, self.options)
        scanned = [page.number for page in document.pages if page.needs_ocr]
        regions: dict[int, list[dict[str, Any]]] = {}
        for start in range(0, len(scanned), PAGES_PER_REQUEST):
            numbers = scanned[start : start + PAGES_PER_REQUEST]
            images = await run_task(context, render_pages, context.location, file.object_key, numbers)
            found = await in_time(context, self.ocr.read(images, lane=files_lane()))
            regions.update(zip(numbers, (page["regions"] for page in found), strict=True))
        result = await run_task(context, read_result, document, regions, self.options)
        model = await self.ocr.provenance() if scanned else None
        return {**result, "ocr_status": "completed" if scanned else None, "model": model}


def parse(location: S3Location, file: FileRef, options: DocumentOptions) -> ExtractedDocument:
    """In a Ray task: the whole document, its scanned pages flagged."""
    assert file.document_type is not None
    with opened(location, file.object_key) as source:
        try:
            return extract(source, file.document_type, options.limits)
        except DocumentError as error:
            raise StepFailed(str(error)) from None


def render_pages(location: S3Location, key: str, numbers: Sequence[int]) -> list[bytes]:
    """In a Ray task: the pages of the PDF at `key`, rendered (`render`). A page MuPDF cannot render fails the
    step at once: the same bytes fail again."""
    with opened(location, key) as source:
        raw = source.read()
    try:
        return render(raw, numbers)
    except Exception:  # MuPDF's words go to the log
        log.info("scanned pages %s could not be rendered", list(numbers), exc_info=True)
        raise StepFailed("The PDF is damaged: its scanned pages could not be rendered for OCR.") from None


def read_result(
    document: ExtractedDocument, regions: Mapping[int, Sequence[Mapping[str, Any]]], options: DocumentOptions
) -> dict[str, Any]:
    """In a Ray task: the document with what OCR read, as `document_text`'s result."""
    return document_result(with_ocr(document, regions), options)


async def save_scanned_pages(file: FileRef, result: Result) -> None:
    await save_document(file, result)
    if result["model"] is not None:
        await ai_outputs.record_models(file.id, {"ocr": result["model"]})


async def give_up(file: FileRef) -> None:
    """OCR failed for good: its pages fail with the file's error; the text, digitization and embedding end as
    they would have with those pages unreadable (in the transaction that fails the job)."""
    await documents.fail_pages(file.id, NEEDS_OCR, "OCR could not read this scanned page: ")
    statuses = await documents.page_statuses(file.id)
    settled = FAILED if all(status == FAILED for status in statuses.values()) else COMPLETED
    chunked = await documents.has_chunks(file.id)
    await files.set_columns(
        file.id,
        {
            "text_extraction_status": settled,
            "digitization_status": settled,
            "embedding_status": "queued" if chunked else "skipped",
        },
    )
    if chunked:
        await jobs.enqueue(file.id, file.tenant_id, EMBED_STEP)


def render(raw: bytes, numbers: Sequence[int]) -> list[bytes]:
    """The pages (1-based numbers) as grayscale PNGs at RENDER_DPI, or less for a page larger than
    MAX_RENDER_SIDE pixels at that resolution."""
    images = []
    with pymupdf.open(stream=raw, filetype="pdf") as document:
        for number in numbers:
            page = document.load_page(number - 1)
            zoom = min(RENDER_DPI / 72, MAX_RENDER_SIDE / max(page.rect.width, page.rect.height, 1.0))
            pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY, alpha=False)
            images.append(pixmap.tobytes("png"))
    return images
