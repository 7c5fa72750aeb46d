"""A document's plan: its text, digitization and chunks first (a Ray task); then the OCR of a PDF's scanned pages
when it has any; then its chunks' embedding (both through model actors: their load, run and save are in the step
modules)."""

from __future__ import annotations

from dataclasses import replace

from cluster.model_clients import EmbedderClient, OcrClient
from pipelines.document import scanned_pages
from pipelines.document.chunk_embedding import EmbedChunks, mark_failed
from pipelines.document.extraction import Limits
from pipelines.document.text import (
    COLUMNS,
    EMBED_STEP,
    OCR_STEP,
    DocumentOptions,
    after_extraction,
    embed_when_chunked,
    extract_document,
    save_document,
)
from pipelines.engine.plan import MediaPlan
from pipelines.engine.step import InProcess, RayTask, Step
from pipelines.inference import configured
from pipelines.inference.clients import ModelClients
from store.settings import Settings

DOCUMENT_TEXT = Step(
    name="document_text",
    component="text_extraction_status",
    more_components=("digitization_status",),
    run=RayTask(extract_document, (DocumentOptions(),)),
    columns=(*COLUMNS, "embedding_status"),
    failure_extra={"embedding_status": "skipped", "ocr_status": "skipped"},
    save=save_document,
    follow_ups=after_extraction,
)

PLAN = MediaPlan("document", first_steps=(DOCUMENT_TEXT,))


def document_ocr_step(options: DocumentOptions, ocr: OcrClient) -> Step:
    """A PDF's scanned pages, read after its text layer. The text, digitization and embedding wait for it; the
    DELETE of the file too."""
    reader = scanned_pages.ReadScannedPages(options, ocr)
    return Step(
        OCR_STEP,
        "ocr_status",
        reader,
        save=scanned_pages.save_scanned_pages,
        more_components=("text_extraction_status", "digitization_status"),
        columns=(*COLUMNS, "embedding_status"),
        follow_ups=embed_when_chunked,
        on_failure=scanned_pages.give_up,
    )


def embed_chunks_step(embedders: ModelClients[EmbedderClient] | EmbedderClient) -> Step:
    """Without its embedders it cannot run: a client per model in use, or one that pins the model."""
    embed = EmbedChunks(embedders)
    return Step(
        EMBED_STEP, "embedding_status", InProcess(embed.run), load=embed.load, save=embed.save, on_failure=mark_failed
    )


def document_options(settings: Settings) -> DocumentOptions:
    limits = Limits(max_pages=settings.limits.document_pages, max_xml_elements=settings.limits.docx_xml_elements)
    return DocumentOptions(
        settings.models.embed_text.model, settings.chunking.max_tokens, settings.chunking.overlap_tokens, limits
    )


def steps(settings: Settings, embedder: ModelClients[EmbedderClient] | EmbedderClient | None = None) -> dict[str, Step]:
    """The document steps with the settings' chunk sizes, OCR client and text embedders (or `embedder`)."""
    options = document_options(settings)
    configured_steps = (
        replace(DOCUMENT_TEXT, run=RayTask(extract_document, (options,))),
        document_ocr_step(options, configured.ocr_client(settings)),
        embed_chunks_step(embedder or configured.text_embedders(settings)),
    )
    return {step.name: step for step in configured_steps}
