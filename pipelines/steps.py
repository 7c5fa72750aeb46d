"""Which steps exist, which ones a new upload of each media type gets, and the steps as configured by the
settings (the models they use and their sizes)."""

from __future__ import annotations

from dataclasses import replace

from cluster.actors import Batching, EmbedderClient, InferenceUnavailable, Recycling
from pipelines.document import COLUMNS, DocumentOptions, embed_when_chunked, extract_document, save_document
from pipelines.embed_chunks import embed_chunks, mark_failed
from pipelines.step import Step
from pipelines.variants import make_variants
from store.errors import Misconfigured
from store.settings import Settings

VARIANTS = Step(
    name="variants",
    component="variant_status",
    run=make_variants,
    columns=("dimensions", "format", "blur_hash", "content_created_at", "variants", "variant_count"),
)

DOCUMENT_TEXT = Step(
    name="document_text",
    component="text_extraction_status",
    more_components=("digitization_status",),
    run=extract_document,
    args=(DocumentOptions(),),
    columns=(*COLUMNS, "embedding_status"),
    failure_extra={"embedding_status": "skipped"},
    save=save_document,
    follow_ups=embed_when_chunked,
)

# Its embedder comes from the settings (steps_for); without one the step cannot run.
EMBED_CHUNKS = Step(name="embed_chunks", component="embedding_status", run_inline=embed_chunks, on_failure=mark_failed)

STEPS: dict[str, Step] = {step.name: step for step in (VARIANTS, DOCUMENT_TEXT, EMBED_CHUNKS)}

# Pipelines for videos and links arrive with their own steps.
UPLOAD_STEPS: dict[str, tuple[str, ...]] = {
    "image": ("variants",),
    "document": ("document_text",),
    "video": (),
    "link": (),
}


def queued_components(media_type: str) -> tuple[str, ...]:
    """The component statuses that a new upload's steps drive (they start `queued`)."""
    return tuple(component for name in UPLOAD_STEPS[media_type] for component in STEPS[name].components)


def text_embedder(settings: Settings) -> EmbedderClient:
    """The client of the shared `embed_text` actor, as the settings configure it (no Ray call yet)."""
    return EmbedderClient(
        settings.embed_text_model,
        num_cpus=settings.model_actor_num_cpus,
        num_gpus=settings.model_actor_num_gpus,
        threads=settings.model_actor_threads,
        batching=Batching(),
        recycling=Recycling(max_batches=settings.model_actor_max_batches),
    )


def steps_for(settings: Settings, embedder: EmbedderClient | None = None) -> dict[str, Step]:
    """Every step, with the settings' models and chunk sizes."""
    options = DocumentOptions(settings.embed_text_model, settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    return {
        **STEPS,
        DOCUMENT_TEXT.name: replace(DOCUMENT_TEXT, args=(options,)),
        EMBED_CHUNKS.name: replace(EMBED_CHUNKS, args=(embedder or text_embedder(settings),)),
    }


def check_models(settings: Settings) -> None:
    """Refuse at start-up a configured model that is unknown or not on this machine, naming it and how to
    provide it, rather than failing every job later."""
    try:
        text_embedder(settings).spec  # noqa: B018  (resolves: reads config files, loads no weights)
    except InferenceUnavailable as error:
        raise Misconfigured(f"SCOPIX_EMBED_TEXT_MODEL: {error}") from error
