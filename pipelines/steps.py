"""Which steps exist, which ones a new upload of each media type gets, and the steps as configured by the
settings (the models they use and their sizes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from cluster.model_actor import Batching, Recycling
from cluster.model_clients import DescriberClient, EmbedderClient, ImageEmbedderClient, OcrClient
from cluster.model_pool import InferenceUnavailable, ModelPool
from models.registry import Task
from pipelines import describe_image, read_text, scanned_pages
from pipelines.document import (
    COLUMNS,
    OCR_STEP,
    DocumentOptions,
    after_extraction,
    embed_when_chunked,
    extract_document,
    save_document,
)
from pipelines.embed_chunks import embed_chunks, mark_failed
from pipelines.embed_image import embed_image, save_provenance
from pipelines.model_clients import ModelClients
from pipelines.step import Result, Step
from pipelines.variants import make_variants
from store.errors import Misconfigured
from store.objects import S3Location
from store.settings import Settings

VARIANTS = Step(
    name="variants",
    component="variant_status",
    run=make_variants,
    columns=("dimensions", "format", "blur_hash", "content_created_at", "variants", "variant_count"),
    # An image that cannot be decoded gets none of the steps that follow its variants.
    failure_extra={"ocr_status": "skipped", "embedding_status": "skipped", "description_status": "skipped"},
)

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

# A PDF's scanned pages, read after its text layer; the OCR client and chunk sizes come from the settings
# (steps_for). The text, digitization and embedding wait for it; the DELETE of the file too.
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

# Its embedders come from the settings (steps_for): a client per model in use; without them the step cannot run.
EMBED_CHUNKS = Step(name="embed_chunks", component="embedding_status", run_inline=embed_chunks, on_failure=mark_failed)

# An image's variants are followed by these (steps_for): their S3 location and model clients come from the settings.
OCR = Step(
    name="ocr",
    component="ocr_status",
    run_inline=read_text.read_text,
    columns=read_text.COLUMNS,
    save=read_text.save_text,
)
EMBED_IMAGE = Step(name="embed_image", component="embedding_status", run_inline=embed_image, save=save_provenance)
DESCRIBE = Step(
    name="describe",
    component="description_status",
    run_inline=describe_image.describe_image,
    columns=describe_image.COLUMNS,
    error_column="description_error",
    save=describe_image.save_description,
)

STEPS: dict[str, Step] = {
    step.name: step for step in (VARIANTS, DOCUMENT_TEXT, DOCUMENT_OCR, EMBED_CHUNKS, OCR, EMBED_IMAGE, DESCRIBE)
}

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


def actor_options(settings: Settings) -> dict[str, Any]:
    """A model actor's share of a node and its retirement, as the settings configure them."""
    return {
        "num_cpus": settings.model_actor_num_cpus,
        "num_gpus": settings.model_actor_num_gpus,
        "threads": settings.model_actor_threads,
        "recycling": Recycling(max_batches=settings.model_actor_max_batches),
    }


def text_embedder(settings: Settings, model: str | None = None) -> EmbedderClient:
    """The client of the shared `embed_text` actor of `model` (None: the settings'), as the settings configure it
    (no Ray call yet)."""
    return EmbedderClient(model or settings.embed_text_model, batching=Batching(), **actor_options(settings))


def text_embedders(settings: Settings) -> ModelClients[EmbedderClient]:
    """A client per model in use, built as text_embedder builds them."""
    return ModelClients(settings, Task.EMBED_TEXT, partial(text_embedder, settings))


def _after_variants(describes: bool) -> Callable[[Result], tuple[str, ...]]:
    """An image's variants are followed by its OCR and embedding, and its description when a model is configured
    (the describe step itself skips a file uploaded with auto_describe=false)."""
    steps = (OCR.name, EMBED_IMAGE.name, *((DESCRIBE.name,) if describes else ()))
    return lambda result: steps


def steps_for(
    settings: Settings, embedder: ModelClients[EmbedderClient] | EmbedderClient | None = None
) -> dict[str, Step]:
    """Every step, with the settings' models and chunk sizes."""
    options = DocumentOptions(settings.embed_text_model, settings.chunk_max_tokens, settings.chunk_overlap_tokens)
    location, actors = S3Location.from_settings(settings), actor_options(settings)
    return {
        **STEPS,
        VARIANTS.name: replace(VARIANTS, follow_ups=_after_variants(settings.describe_model is not None)),
        DOCUMENT_TEXT.name: replace(DOCUMENT_TEXT, args=(options,)),
        DOCUMENT_OCR.name: replace(DOCUMENT_OCR, args=(location, options, OcrClient(settings.ocr_model, **actors))),
        EMBED_CHUNKS.name: replace(EMBED_CHUNKS, args=(embedder or text_embedders(settings),)),
        OCR.name: replace(OCR, args=(location, OcrClient(settings.ocr_model, **actors))),
        EMBED_IMAGE.name: replace(
            EMBED_IMAGE,
            args=(location, ModelClients(settings, Task.EMBED_IMAGE, partial(ImageEmbedderClient, **actors))),
        ),
        DESCRIBE.name: replace(
            DESCRIBE, args=(location, ModelClients(settings, Task.DESCRIBE, partial(DescriberClient, **actors)))
        ),
    }


def check_models(settings: Settings) -> None:
    """Refuse at start-up a configured model that is unknown or not on this machine, naming it and how to
    provide it, rather than failing every job later. (A missing describe model only skips descriptions, with
    the reason on each file: it is checked when an image is described.)"""
    models: dict[str, ModelPool] = {
        "SCOPIX_EMBED_TEXT_MODEL": text_embedder(settings),
        "SCOPIX_OCR_MODEL": OcrClient(settings.ocr_model),
        "SCOPIX_EMBED_IMAGE_MODEL": ImageEmbedderClient(settings.embed_image_model),
    }
    for setting, client in models.items():
        try:
            client.spec  # noqa: B018  (resolves: reads config files, loads no weights)
        except InferenceUnavailable as error:
            raise Misconfigured(f"{setting}: {error}") from error
