"""A document's plan: its text, digitization and chunks first; then the OCR of a PDF's scanned pages when it has
any; then its chunks' embedding."""

from __future__ import annotations

from dataclasses import replace

from cluster.actors import EmbedderClient
from pipelines.document import scanned_pages
from pipelines.document.chunk_embedding import embed_chunks, mark_failed
from pipelines.document.text import (
    COLUMNS,
    OCR_STEP,
    DocumentOptions,
    after_extraction,
    embed_when_chunked,
    extract_document,
    save_document,
)
from pipelines.engine.plan import MediaPlan
from pipelines.engine.step import Step
from pipelines.inference import configured
from pipelines.inference.clients import ModelClients
from store.settings import Settings
from store.step_objects import S3Location

DOCUMENT_TEXT = Step(
    name="document_text",
    component="text_extraction_status",
    more_components=("digitization_status",),
    run=extract_document,
    args=(DocumentOptions(),),
    columns=(*COLUMNS, "embedding_status"),
    failure_extra={"embedding_status": "skipped", "ocr_status": "skipped"},
    save=save_document,
    follow_ups=after_extraction,
)
# A PDF's scanned pages, read after its text layer. The text, digitization and embedding wait for it; the DELETE
# of the file too.
DOCUMENT_OCR = Step(
    name=OCR_STEP,
    component="ocr_status",
    more_components=("text_extraction_status", "digitization_status"),
    run_inline=scanned_pages.read_scanned_pages,
    columns=(*COLUMNS, "embedding_status"),
    save=scanned_pages.save_scanned_pages,
    follow_ups=embed_when_chunked,
    on_failure=scanned_pages.give_up,
)
# Without its embedders (steps) it cannot run: a client per model in use.
EMBED_CHUNKS = Step(name="embed_chunks", component="embedding_status", run_inline=embed_chunks, on_failure=mark_failed)

PLAN = MediaPlan("document", first_steps=(DOCUMENT_TEXT,))


def steps(settings: Settings, embedder: ModelClients[EmbedderClient] | EmbedderClient | None = None) -> dict[str, Step]:
    """The document steps with the settings' chunk sizes, OCR client and text embedders (or `embedder`)."""
    options = DocumentOptions(
        settings.models.embed_text.model, settings.chunking.max_tokens, settings.chunking.overlap_tokens
    )
    location = S3Location.from_settings(settings)
    configured_steps = (
        replace(DOCUMENT_TEXT, args=(options,)),
        replace(DOCUMENT_OCR, args=(location, options, configured.ocr_client(settings))),
        replace(EMBED_CHUNKS, args=(embedder or configured.text_embedders(settings),)),
    )
    return {step.name: step for step in configured_steps}
