"""The `document_ocr` step: a PDF's scanned pages (no text layer, only images) read by the OCR model actor, so
that their text, digitized elements and chunks exist like those of any other page. `document_text` queues it
when it finds such pages; the document's text, digitization and embedding stay under way until it ends.

It runs in the engine's process, since the work is the actor's. The PDF is parsed again in a thread, its text
pages too, so that the text, language, pages and chunks are made from the whole document at once and in page
order; the scanned pages are rendered a few at a time (grayscale PNG) and sent to the actor's batch lane. The
result has `document_text`'s shape, is stored the same way, and the chunks are embedded next.

When OCR fails for good (no actor can serve), the scanned pages fail with the reason and the rest of the
document stands: its text, its status by its pages, and its chunks, which are embedded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pymupdf

from cluster.model_clients import OcrClient
from pipelines.document.digitize import COMPLETED, FAILED, NEEDS_OCR
from pipelines.document.extraction import DocumentError, extract, with_ocr
from pipelines.document.text import EMBED_STEP, DocumentOptions, document_result, save_document
from pipelines.engine.step import FileRef, StepFailed
from store import ai_outputs, documents, files, jobs
from store.step_objects import S3Location, opened

RENDER_DPI = 200  # PP-OCR recognises body text well from 150 DPI up (it detects on a ~960-pixel copy)
MAX_RENDER_SIDE = 4_000  # pixels: a poster-sized page is rendered at a lower resolution
PAGES_PER_REQUEST = 8  # rendered pages held at once

T = TypeVar("T")
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class Scan:
    raw: bytes  # the whole PDF
    document_type: str


@dataclass(frozen=True)
class ReadScannedPages:
    """`load`: the PDF's bytes; `run`: parse, render the scanned pages, have the actor read them, and make the
    document's text, pages and chunks."""

    location: S3Location
    options: DocumentOptions
    ocr: OcrClient

    async def load(self, file: FileRef) -> Scan:
        if file.document_type is None:
            raise StepFailed(f"not a document: {file.content_type}")
        return Scan(await asyncio.to_thread(_read, self.location, file.object_key), file.document_type)

    async def run(self, scan: Scan) -> dict[str, Any]:
        try:
            document = await _off_the_loop(extract, scan.raw, scan.document_type, self.options.limits)
        except DocumentError as error:
            raise StepFailed(str(error)) from None
        scanned = [page.number for page in document.pages if page.needs_ocr]
        regions: dict[int, list[dict[str, Any]]] = {}
        for start in range(0, len(scanned), PAGES_PER_REQUEST):
            numbers = scanned[start : start + PAGES_PER_REQUEST]
            found = await self.ocr.read(await _off_the_loop(render, scan.raw, numbers), lane="batch")
            regions.update(zip(numbers, (page["regions"] for page in found), strict=True))
        result = await _off_the_loop(lambda: document_result(with_ocr(document, regions), self.options))
        model = await self.ocr.provenance() if scanned else None
        return {**result, "ocr_status": "completed" if scanned else None, "model": model}


async def save_scanned_pages(file: FileRef, result: dict[str, Any]) -> None:
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


async def _off_the_loop(function: Callable[..., T], *args: Any) -> T:
    """In a thread, one at a time in this process: MuPDF may not run on two threads at once, and the first
    chunking imports the tokenizer, which two threads cannot do together (the work holds the GIL anyway)."""

    def alone() -> T:
        with _ONE_AT_A_TIME:
            return function(*args)

    return await asyncio.to_thread(alone)


def _read(location: S3Location, key: str) -> bytes:
    with opened(location, key) as stream:
        return stream.read()
